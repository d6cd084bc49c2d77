// What this process wrote to Redis that lives only there until it is taken: pending long-SMS
// parts, held alerts, open tallies of tracked sends, kept records, and the deadlines that take
// them. A Redis that comes back without its data (restarted without persistence) would drop
// them; the failover puts these back (SPEC B6a: nothing is ever dropped).
//
// What another process took meanwhile must not come back (a second delivery summary, held alerts
// released twice): the failover sweeps these copies against Redis every few seconds and forgets
// each one Redis no longer has (`sweep`). Only what was taken in the last sweep period could still
// come back once: a duplicate during an outage, which B6a allows.
//
// Bounded: each kind keeps at most MAX entries and MAX_CHARS characters of text (the oldest go
// first: what they hold is then only in Redis, as before) and forgets what expired. A tracked send
// to more than MAX_MEMBERS numbers is not kept here. Large copies are built a slice at a time.
import type { Tally } from "./index";

const MAX = 100_000;
const MAX_CHARS = 16 * 1024 * 1024;
const MAX_MEMBERS = 10_000;
/** Entries handled between two turns of the event loop (a copy of 100,000 does not hold it). */
const SLICE = 2000;

/** How Redis tells whether an entry is still there: a key of it, or a deadline's member. */
export type Probe = { key: string } | { zset: string; member: string };

interface Entry {
  expires: number;
  /** characters held (strings kept alive by this copy) */
  size: number;
  probe: Probe;
  /** changes at each write: a handler that rescheduled its own deadline keeps it */
  seq: number;
}

const yieldTurn = () => new Promise<void>((r) => setImmediate(r));

/** A Map in insertion order, pruned from its oldest end. */
class Bounded<V extends Entry> {
  readonly map = new Map<string, V>();
  private chars = 0;
  set(key: string, v: V, now: number): void {
    this.delete(key);
    this.map.set(key, v);
    this.chars += v.size;
    for (const [k, old] of this.map) {
      if (this.map.size <= MAX && this.chars <= MAX_CHARS && old.expires > now) break;
      this.delete(k);
    }
  }
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  grow(v: V, by: number): void {
    v.size += by;
    this.chars += by;
  }
  delete(key: string): void {
    const v = this.map.get(key);
    if (!v) return;
    this.chars -= v.size;
    this.map.delete(key);
  }
  /** The oldest `n` entries: checked, then moved to the end (the next sweep checks others). */
  oldest(n: number): Array<[string, V]> {
    const out: Array<[string, V]> = [];
    for (const e of this.map) {
      if (out.length >= n) break;
      out.push(e);
    }
    return out;
  }
  requeue(key: string, v: V): void {
    if (this.map.get(key) !== v) return;
    this.map.delete(key);
    this.map.set(key, v);
  }
  async live<T>(now: number, pick: (k: string, v: V) => T): Promise<T[]> {
    const out: T[] = [];
    let i = 0;
    for (const [k, v] of [...this.map]) {
      if (v.expires > now) out.push(pick(k, v));
      if (++i % SLICE === 0) await yieldTurn();
    }
    return out;
  }
}

export interface ShadowCopy {
  records: Array<{ key: string; value: string; expires: number }>;
  lists: Array<{ key: string; items: string[]; expires: number }>;
  tallies: Array<{ key: string; tally: Tally; expires: number }>;
  parts: Array<{ group: string; key: string; parts: Map<number, string>; expires: number }>;
  deadlines: Array<{ kind: string; id: string; at: number }>;
}

/** Deadlines are put back up to this long after they were due (a Node-RED down for hours). */
const DEADLINE_KEEP_MS = 24 * 3600_000;

type RecordE = Entry & { value: string };
type ListE = Entry & { items: string[] };
type TallyE = Entry & { pending: Set<string>; marks: Map<string, string> };
type PartsE = Entry & { group: string; key: string; parts: Map<number, string> };
type DeadlineE = Entry & { kind: string; id: string; at: number };

export class Shadow {
  private seq = 0;
  private readonly records = new Bounded<RecordE>();
  private readonly lists = new Bounded<ListE>();
  private readonly tallies = new Bounded<TallyE>();
  private readonly parts = new Bounded<PartsE>();
  private readonly deadlines = new Bounded<DeadlineE>();

  put(key: string, value: string, expires: number, now: number): void {
    this.records.set(key, { value, expires, size: value.length, probe: { key }, seq: ++this.seq }, now);
  }
  taken(key: string): void {
    this.records.delete(key);
  }

  /** `items` as stored in Redis (envelopes), in arrival order; `dropped`: what Redis trimmed. */
  appended(key: string, items: string[], dropped: readonly string[], expires: number, now: number): void {
    const l = this.lists.get(key);
    let all = l ? l.items.concat(items) : items.slice();
    if (dropped.length) {
      const gone = new Set(dropped);
      all = all.filter((i) => !gone.has(i));
    }
    const size = all.reduce((n, i) => n + i.length, 0);
    this.lists.set(key, { items: all, expires, size, probe: { key }, seq: ++this.seq }, now);
  }
  listTaken(key: string): void {
    this.lists.delete(key);
  }

  tally(key: string, members: readonly string[], expires: number, now: number): void {
    if (members.length > MAX_MEMBERS) return this.tallies.delete(key);
    const size = members.reduce((n, m) => n + m.length, 0);
    const probe = { key: `${key}:t` };
    this.tallies.set(key, { pending: new Set(members), marks: new Map(), expires, size, probe, seq: ++this.seq }, now);
  }
  marked(key: string, member: string, value: string): void {
    const t = this.tallies.get(key);
    if (!t || t.marks.has(member)) return;
    t.marks.set(member, value);
    t.pending.delete(member);
    this.tallies.grow(t, value.length);
  }
  tallyTaken(key: string): void {
    this.tallies.delete(key);
  }

  part(group: string, key: string, n: number, value: string, expires: number, now: number): void {
    const id = `${group}\n${key}`;
    const m = this.parts.get(id);
    const parts = m?.parts ?? new Map<number, string>();
    const size = (m?.size ?? 0) + (parts.has(n) ? 0 : value.length);
    if (!parts.has(n)) parts.set(n, value);
    const probe = { key: `${group}:m:${key}` };
    this.parts.set(id, { group, key, parts, expires, size, probe, seq: ++this.seq }, now);
  }
  partsTaken(group: string, key: string): void {
    this.parts.delete(`${group}\n${key}`);
  }

  scheduled(kind: string, id: string, at: number, now: number): void {
    const probe = { zset: `due:${kind}`, member: id };
    const e = { kind, id, at, expires: at + DEADLINE_KEEP_MS, size: id.length, probe, seq: ++this.seq };
    this.deadlines.set(`${kind}\n${id}`, e, now);
  }
  /** The write number of a deadline's copy now (0: none). */
  deadlineSeq(kind: string, id: string): number {
    return this.deadlines.get(`${kind}\n${id}`)?.seq ?? 0;
  }
  /** Its work done: forgotten, unless it was scheduled again meanwhile (`seq` moved). */
  settled(kind: string, id: string, seq?: number): void {
    const k = `${kind}\n${id}`;
    if (seq !== undefined && this.deadlines.get(k)?.seq !== seq) return;
    this.deadlines.delete(k);
  }
  async drained(kind: string): Promise<void> {
    let i = 0;
    for (const k of [...this.deadlines.map.keys()]) {
      if (k.startsWith(`${kind}\n`)) this.deadlines.delete(k);
      if (++i % SLICE === 0) await yieldTurn();
    }
  }

  /**
   * Checks the oldest `n` copies of each kind against Redis (`present` answers, in order, whether
   * each probe is still there) and forgets those Redis no longer has: another process took them.
   */
  /** Entries of the fullest kind (how large a sweep's batches must be). */
  get largest(): number {
    return Math.max(
      this.records.map.size,
      this.lists.map.size,
      this.tallies.map.size,
      this.parts.map.size,
      this.deadlines.map.size,
    );
  }

  async sweep(n: number, now: number, present: (probes: Probe[]) => Promise<boolean[]>): Promise<void> {
    const maps: Array<Bounded<Entry>> = [this.records, this.lists, this.tallies, this.parts, this.deadlines];
    for (const m of maps) {
      const batch = m.oldest(n).filter(([k, v]) => {
        if (v.expires > now) return true;
        m.delete(k);
        return false;
      });
      if (!batch.length) continue;
      const there = await present(batch.map(([, v]) => v.probe));
      batch.forEach(([k, v], i) => (there[i] ? m.requeue(k, v) : m.get(k) === v && m.delete(k)));
    }
  }

  /** What to put back into a Redis that lost its data (data first, then the deadlines that take it). */
  async copy(now: number): Promise<ShadowCopy> {
    return {
      records: await this.records.live(now, (key, v) => ({ key, value: v.value, expires: v.expires })),
      lists: await this.lists.live(now, (key, v) => ({ key, items: v.items, expires: v.expires })),
      tallies: await this.tallies.live(now, (key, v) => ({
        key,
        tally: { pending: [...v.pending], marks: new Map(v.marks) },
        expires: v.expires,
      })),
      parts: await this.parts.live(now, (_, v) => ({ group: v.group, key: v.key, parts: v.parts, expires: v.expires })),
      deadlines: await this.deadlines.live(now, (_, v) => ({ kind: v.kind, id: v.id, at: v.at })),
    };
  }
}
