// What this process wrote to Redis that lives only there until it is taken: pending long-SMS
// parts, held alerts, open tallies of tracked sends, kept records, and the deadlines that take
// them. A Redis that comes back without its data (restarted without persistence, a replica
// promoted before it had the last writes) would drop them; the failover puts these back
// (SPEC B6a: nothing is ever dropped). What another process took meanwhile may come back once
// more: a duplicate during an outage, which B6a allows; a deadline put back for data already taken
// finds nothing and ends.
//
// Bounded: each kind keeps at most MAX entries and MAX_CHARS characters of text (the oldest go
// first: what they hold is then only in Redis, as before) and forgets what expired. A tracked send
// to more than MAX_MEMBERS numbers is not kept here.
import type { Tally } from "./index";

const MAX = 100_000;
const MAX_CHARS = 16 * 1024 * 1024;
const MAX_MEMBERS = 10_000;

interface Timed {
  expires: number;
  /** characters held (strings kept alive by this copy) */
  size: number;
}

/** A Map in insertion order, pruned from its oldest end: entries of one kind mostly expire in that order. */
class Bounded<V extends Timed> {
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
  delete(key: string): void {
    const v = this.map.get(key);
    if (!v) return;
    this.chars -= v.size;
    this.map.delete(key);
  }
  live(now: number): Array<[string, V]> {
    return [...this.map].filter(([, v]) => v.expires > now);
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

export class Shadow {
  private readonly records = new Bounded<{ value: string; expires: number; size: number }>();
  private readonly lists = new Bounded<{ items: string[]; expires: number; size: number }>();
  private readonly tallies = new Bounded<{
    pending: Set<string>;
    marks: Map<string, string>;
    expires: number;
    size: number;
  }>();
  private readonly parts = new Bounded<{
    group: string;
    key: string;
    parts: Map<number, string>;
    expires: number;
    size: number;
  }>();
  private readonly deadlines = new Bounded<{ kind: string; id: string; at: number; expires: number; size: number }>();

  put(key: string, value: string, expires: number, now: number): void {
    this.records.set(key, { value, expires, size: value.length }, now);
  }
  taken(key: string): void {
    this.records.delete(key);
  }

  /** `items` as stored in Redis (envelopes), in arrival order. */
  appended(key: string, items: string[], expires: number, now: number): void {
    const l = this.lists.get(key);
    const all = l ? l.items.concat(items) : items.slice();
    this.lists.set(key, { items: all, expires, size: all.reduce((n, i) => n + i.length, 0) }, now);
  }
  listTaken(key: string): void {
    this.lists.delete(key);
  }

  tally(key: string, members: readonly string[], expires: number, now: number): void {
    if (members.length > MAX_MEMBERS) return this.tallies.delete(key);
    this.tallies.set(key, { pending: new Set(members), marks: new Map(), expires, size: members.length * 12 }, now);
  }
  marked(key: string, member: string, value: string): void {
    const t = this.tallies.get(key);
    if (!t || t.marks.has(member)) return;
    t.marks.set(member, value);
    t.pending.delete(member);
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
    this.parts.set(id, { group, key, parts, expires, size }, now);
  }
  partsTaken(group: string, key: string): void {
    this.parts.delete(`${group}\n${key}`);
  }

  scheduled(kind: string, id: string, at: number, now: number): void {
    this.deadlines.set(`${kind}\n${id}`, { kind, id, at, expires: at + DEADLINE_KEEP_MS, size: id.length }, now);
  }
  settled(kind: string, id: string): void {
    this.deadlines.delete(`${kind}\n${id}`);
  }
  drained(kind: string): void {
    for (const k of [...this.deadlines.map.keys()]) if (k.startsWith(`${kind}\n`)) this.deadlines.delete(k);
  }

  /** What to put back into a Redis that lost its data (data first, then the deadlines that take it). */
  copy(now: number): ShadowCopy {
    return {
      records: this.records.live(now).map(([key, v]) => ({ key, value: v.value, expires: v.expires })),
      lists: this.lists.live(now).map(([key, v]) => ({ key, items: v.items, expires: v.expires })),
      tallies: this.tallies
        .live(now)
        .map(([key, v]) => ({ key, tally: { pending: [...v.pending], marks: v.marks }, expires: v.expires })),
      parts: this.parts.live(now).map(([, v]) => v),
      deadlines: this.deadlines.live(now).map(([, v]) => ({ kind: v.kind, id: v.id, at: v.at })),
    };
  }
}
