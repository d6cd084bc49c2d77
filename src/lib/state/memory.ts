// The account state in this process: every operation is one synchronous step (so it is atomic),
// wrapped in a resolved promise to share the interface with Redis.
import type { Clock } from "../clock";
import { systemClock } from "../clock";
import { Fifo } from "../fifo";
import { randomBytes } from "node:crypto";
import type {
  AccountState,
  Admission,
  AdmitCheck,
  CasWrite,
  ClaimBound,
  DueHandler,
  DueOptions,
  Mark,
  PartAdd,
  PartLimits,
  StateMode,
  Tally,
  Versioned,
} from "./index";

export interface MemoryStateOptions {
  clock?: Clock;
  /** most keys kept (claims, records, lists, tallies); beyond it the soonest to expire goes first */
  maxKeys?: number;
}

interface Entry {
  value: unknown;
  expires: number;
}

/**
 * A record written by `cas`: told apart from a plain record by its type. As the local copy of a
 * failover, `base` is the shared version it was changed from here (undefined: a copy as read).
 */
class Rec {
  constructor(
    readonly value: string,
    readonly version: string,
    readonly base?: string,
  ) {}
}

interface TallyValue {
  pending: Set<string>;
  marks: Map<string, string>;
}

interface Pending {
  key: string;
  parts: Map<number, string>;
  bytes: number;
  expires: number;
}

interface PartGroup {
  messages: Map<string, Pending>;
  /** arrival order of messages, for eviction; entries of finished messages are skipped */
  order: Fifo<Pending>;
  bytes: number;
}

/** A binary min-heap on `at`, for expiries and deadlines. */
class Heap<T extends { at: number }> {
  items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p].at <= a[i].at) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length && last) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l].at < a[m].at) m = l;
        if (r < a.length && a[r].at < a[m].at) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }

  rebuild(keep: (item: T) => boolean): void {
    const rest = this.items.filter(keep);
    this.items = [];
    for (const item of rest) this.push(item);
  }
}

const SEP = "\u0000";
const MAX_TIMER = 2 ** 31 - 1;
/** A handler that failed gets its deadline again after this, doubling up to RETRY_MAX_MS. */
const RETRY_MS = 2000;
const RETRY_MAX_MS = 5 * 60_000;
/** How long a deletion made during an outage waits to be handed to Redis. */
const TOMBSTONE_MS = 24 * 3600_000;

/** What this state holds that a failover hands to Redis when it is back (SPEC B6a). */
export interface Snapshot {
  /** claims and guard windows: a push taken here during an outage is not emitted again after it */
  claims: Array<{ key: string; expires: number }>;
  records: Array<{ key: string; value: string; expires: number }>;
  lists: Array<{ key: string; items: string[]; expires: number }>;
  tallies: Array<{ key: string; pending: string[]; marks: Map<string, string>; expires: number }>;
  /** versioned records changed here (`base`: the shared version they were changed from) */
  changed: Array<{ key: string; value: string | null; base: string | null; expires: number }>;
  parts: Array<{ group: string; key: string; parts: Map<number, string>; expires: number }>;
  deadlines: Array<{ kind: string; id: string; at: number }>;
}

export class MemoryState implements AccountState {
  readonly backend = "memory" as const;
  readonly mode: StateMode = "shared";
  private readonly clock: Clock;
  private readonly maxKeys: number;
  private readonly entries = new Map<string, Entry>();
  // Expiry order, lazily cleaned: an item whose entry has since been replaced or removed is stale.
  private readonly expiries = new Heap<{ at: number; key: string }>();
  private readonly groups = new Map<string, PartGroup>();
  private readonly deadlines = new Map<string, number>();
  private readonly dueOrder = new Heap<{ at: number; id: string }>();
  private readonly handlers = new Map<string, DueHandler>();
  // Due deadlines whose kind had no handler (mid-redeploy), by kind, until one arrives.
  private readonly waiting = new Map<string, Set<string>>();
  private readonly retries = new Map<string, number>();
  // Bounded claim families (ClaimBound): their claims in the order they were taken.
  private readonly claimGroups = new Map<string, Fifo<{ key: string; expires: number }>>();
  // Versions: unique to this state (a random stem per process) and growing.
  private readonly stem = randomBytes(4).toString("hex");
  private seq = 0;
  /** as a failover's local state: versioned records keep the shared version they came from */
  copies = false;
  /** versioned records deleted here (a failover hands the deletion on) */
  private readonly tombstones = new Set<string>();
  private timer: unknown = null;
  private timerAt = Infinity;
  private closed = false;

  constructor(opts: MemoryStateOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.maxKeys = Math.max(1, opts.maxKeys ?? 1_000_000);
  }

  onMode(_fn: (mode: StateMode, reason: string) => void): () => void {
    // Memory is always where it should be: its mode never changes.
    return () => undefined;
  }

  // --- the synchronous core (also used by the Redis failover as its local state) ----------------

  claimNow(key: string, ttlMs: number, bound?: ClaimBound): boolean {
    const now = this.clock.now();
    if (this.live(key, now)) return false;
    const expires = now + ttlMs;
    this.set(key, true, expires);
    if (bound) {
      let order = this.claimGroups.get(bound.group);
      if (!order) this.claimGroups.set(bound.group, (order = new Fifo()));
      order.push({ key, expires });
      while (order.length > Math.max(1, bound.max)) {
        const old = order.shift()!;
        // Only the claim this item stands for: the key may have expired and been claimed again.
        if (this.entries.get(old.key)?.expires === old.expires) this.entries.delete(old.key);
      }
    }
    return true;
  }

  readNow(key: string): Versioned | null {
    if (this.tombstones.has(key)) return null;
    const v = this.live(key, this.clock.now())?.value;
    return v instanceof Rec ? { value: v.value, version: v.version } : null;
  }

  casNow(writes: CasWrite[]): string | null {
    const now = this.clock.now();
    const current: Array<Rec | undefined> = [];
    for (const w of writes) {
      const v = this.live(w.key, now)?.value;
      const rec = v instanceof Rec ? v : undefined;
      // A record deleted here is absent, though it keeps where it came from.
      const version = rec && !this.tombstones.has(w.key) ? rec.version : null;
      if (version !== w.expect) return null;
      current.push(rec);
    }
    const version = `${this.stem}.${++this.seq}`;
    writes.forEach((w, i) => {
      // Changed here: remembers which shared version it came from (null: none was there).
      const base = current[i] ? (current[i]!.base ?? current[i]!.version) : null;
      if (w.value === null) {
        // As a failover's copy, a deletion is a change too: kept as a tombstone until handed on.
        if (this.copies && current[i]) {
          this.set(w.key, new Rec("", version, base ?? ""), now + TOMBSTONE_MS);
          this.tombstones.add(w.key);
        } else this.entries.delete(w.key);
      } else {
        this.set(w.key, new Rec(w.value, version, this.copies ? (base ?? "") : undefined), now + w.ttlMs);
        this.tombstones.delete(w.key);
      }
    });
    return version;
  }

  admitNow(checks: AdmitCheck[]): Admission[] {
    const now = this.clock.now();
    return checks.map((c) => {
      const w = c.window && this.live(c.window.key, now);
      if (w) return { ok: false, reason: "window", retryInMs: w.expires - now };
      const count = c.cap ? this.live(c.cap.key, now) : undefined;
      if (c.cap && count && (count.value as number) >= c.cap.max) {
        return { ok: false, reason: "cap", retryInMs: count.expires - now };
      }
      if (c.window) this.set(c.window.key, true, now + c.window.ttlMs);
      if (c.cap) {
        if (count) count.value = (count.value as number) + 1;
        else this.set(c.cap.key, 1, now + c.cap.ttlMs);
      }
      return { ok: true };
    });
  }

  paceNow(key: string, intervalMs: number): number {
    const now = this.clock.now();
    const e = this.live(key, now);
    const start = Math.max(now, e ? (e.value as number) : 0);
    // Kept a little past the reserved start: afterwards "now" is later than it anyway.
    this.set(key, start + intervalMs, start + intervalMs + 60_000);
    return start - now;
  }

  putNow(key: string, value: string, ttlMs: number): void {
    this.set(key, value, this.clock.now() + ttlMs);
  }

  getNow(key: string): string | null {
    const e = this.live(key, this.clock.now());
    return e ? (e.value as string) : null;
  }

  takeNow(key: string): string | null {
    const v = this.getNow(key);
    if (v !== null) this.entries.delete(key);
    return v;
  }

  appendNow(key: string, values: string[], max: number, ttlMs: number): string[] {
    const now = this.clock.now();
    const e = this.live(key, now);
    const list = e ? (e.value as string[]) : [];
    list.push(...values);
    const dropped = list.length > max ? list.splice(0, list.length - max) : [];
    this.set(key, list, now + ttlMs);
    return dropped;
  }

  takeListNow(key: string): string[] {
    const e = this.live(key, this.clock.now());
    if (!e) return [];
    this.entries.delete(key);
    return e.value as string[];
  }

  addPartNow(group: string, key: string, number: number, total: number, value: string, limits: PartLimits): PartAdd {
    const now = this.clock.now();
    let g = this.groups.get(group);
    if (!g) {
      g = { messages: new Map(), order: new Fifo(), bytes: 0 };
      this.groups.set(group, g);
    }
    this.expireParts(g, now);
    let m = g.messages.get(key);
    if (m?.parts.has(number)) return { result: "duplicate" };
    const evicted: NonNullable<PartAdd["evicted"]> = [];
    if (!m) {
      m = { key, parts: new Map(), bytes: 0, expires: 0 };
      g.messages.set(key, m);
      g.order.push(m);
    }
    // A JS string holds 2 bytes per UTF-16 unit, plus the part's map entry and string headers
    // (about 100 bytes): what the process really keeps.
    const bytes = 2 * (value.length + key.length) + 100;
    m.parts.set(number, value);
    m.bytes += bytes;
    g.bytes += bytes;
    m.expires = now + limits.ttlMs;
    if (m.parts.size >= total) {
      this.dropMessage(g, m);
      return { result: "complete", parts: m.parts };
    }
    while (g.messages.size > limits.maxPending || g.bytes > limits.maxBytes) {
      // The oldest other message first; a message alone over the byte bound goes itself.
      const oldest = this.oldest(g, m) ?? (g.messages.get(m.key) === m ? m : undefined);
      if (!oldest) break;
      this.dropMessage(g, oldest);
      evicted.push({ key: oldest.key, parts: oldest.parts });
    }
    return evicted.length ? { result: "added", evicted } : { result: "added" };
  }

  takePartsNow(group: string, key: string): Map<number, string> | null {
    const g = this.groups.get(group);
    const m = g?.messages.get(key);
    if (!g || !m) return null;
    this.dropMessage(g, m);
    return m.parts;
  }

  tallyNow(key: string, members: readonly string[], ttlMs: number): void {
    const value: TallyValue = { pending: new Set(members), marks: new Map() };
    this.set(key, value, this.clock.now() + ttlMs);
  }

  markNow(key: string, member: string, value: string): Mark {
    const e = this.live(key, this.clock.now());
    if (!e) return { result: "unknown", left: 0 };
    const t = e.value as TallyValue;
    if (t.pending.delete(member)) {
      t.marks.set(member, value);
      return { result: "marked", left: t.pending.size };
    }
    return { result: t.marks.has(member) ? "duplicate" : "stranger", left: t.pending.size };
  }

  takeTallyNow(key: string): Tally | null {
    const e = this.live(key, this.clock.now());
    if (!e) return null;
    this.entries.delete(key);
    const t = e.value as TallyValue;
    return { marks: t.marks, pending: [...t.pending] };
  }

  scheduleNow(kind: string, id: string, at: number): void {
    const k = kind + SEP + id;
    this.deadlines.set(k, at);
    this.dueOrder.push({ at, id: k });
    if (this.dueOrder.size > 2 * this.deadlines.size + 1024) {
      this.dueOrder.rebuild((d) => this.deadlines.get(d.id) === d.at);
    }
    this.arm();
  }

  cancelNow(kind: string, id: string): void {
    this.deadlines.delete(kind + SEP + id);
  }

  drainNow(kind: string): string[] {
    const ids: string[] = [];
    const prefix = kind + SEP;
    for (const k of this.deadlines.keys()) {
      if (k.startsWith(prefix)) {
        this.deadlines.delete(k);
        ids.push(k.slice(prefix.length));
      }
    }
    this.waiting.delete(kind);
    return ids;
  }

  /** The state's clock (a failover stamps list items with it). */
  clockNow(): number {
    return this.clock.now();
  }

  /** Whether versioned record `key` was changed here and not handed to Redis yet. */
  changedHere(key: string): boolean {
    const v = this.live(key, this.clock.now())?.value;
    return v instanceof Rec && v.base !== undefined;
  }

  /** Puts a change back that could not be handed over (value null: a deletion). */
  restoreChangeNow(key: string, value: string | null, base: string | null, expires: number): void {
    if (this.changedHere(key)) return;
    const version = `${this.stem}.${++this.seq}`;
    this.set(key, new Rec(value ?? "", version, base ?? ""), Math.max(expires, this.clock.now() + 1));
    if (value === null) this.tombstones.add(key);
    else this.tombstones.delete(key);
  }

  /** Keeps a copy of a shared versioned record (a failover reads and writes through this state). */
  copyNow(key: string, rec: Versioned | null, expires: number): void {
    const now = this.clock.now();
    const mine = this.live(key, now)?.value;
    // A copy changed here is not overwritten by what Redis said: it goes to Redis when it is back.
    if (mine instanceof Rec && mine.base !== undefined) return;
    if (rec === null) this.entries.delete(key);
    else if (expires > now) this.set(key, new Rec(rec.value, rec.version), expires);
  }

  /** The keys of the copies of shared versioned records kept here (a failover's sweep checks them). */
  async copyKeys(): Promise<string[]> {
    const now = this.clock.now();
    const out: string[] = [];
    let n = 0;
    for (const [key, e] of this.entries) {
      // A turn of the event loop now and then: 300,000 entries are not one long hold.
      if (++n % 5000 === 0) await new Promise((r) => setImmediate(r));
      if (isCopy(e, now)) out.push(key);
    }
    return out;
  }

  /** The version of the copy kept for `key`, or null (none, or changed here). */
  copyVersionNow(key: string): string | null {
    const v = this.live(key, this.clock.now())?.value;
    return v instanceof Rec && v.base === undefined ? v.version : null;
  }

  /** Forgets the copy of `key` if it is still that version (Redis no longer has the record). */
  dropCopyNow(key: string, version: string): void {
    if (this.copyVersionNow(key) === version) this.entries.delete(key);
  }

  /** Puts a claim back unless one is there (a handover that failed). */
  claimBackNow(key: string, expires: number): void {
    if (!this.live(key, this.clock.now())) this.set(key, true, expires);
  }

  /** Puts records back unless one is there (a handover that failed). */
  putIfAbsentNow(key: string, value: string, expires: number): void {
    if (!this.live(key, this.clock.now())) this.set(key, value, expires);
  }

  /** Puts items back in front of a list (a take that could not be completed). */
  unshiftListNow(key: string, items: string[], expires: number): void {
    if (!items.length) return;
    const now = this.clock.now();
    const e = this.live(key, now);
    const list = e ? (e.value as string[]) : [];
    this.set(key, items.concat(list), Math.max(expires, e?.expires ?? 0));
  }

  /** Puts parts back (each part once; completeness is left to the message's deadline). */
  mergePartsNow(group: string, key: string, parts: Map<number, string>, expires: number): void {
    let g = this.groups.get(group);
    if (!g) this.groups.set(group, (g = { messages: new Map(), order: new Fifo(), bytes: 0 }));
    let m = g.messages.get(key);
    if (!m) {
      m = { key, parts: new Map(), bytes: 0, expires };
      g.messages.set(key, m);
      g.order.push(m);
    }
    for (const [n, v] of parts) {
      if (m.parts.has(n)) continue;
      const bytes = 2 * (v.length + key.length) + 100;
      m.parts.set(n, v);
      m.bytes += bytes;
      g.bytes += bytes;
    }
    m.expires = Math.max(m.expires, expires);
  }

  /** Puts a tally back (marks already here win). */
  mergeTallyNow(key: string, t: Tally, expires: number): void {
    const e = this.live(key, this.clock.now());
    if (!e) {
      this.set(key, { pending: new Set(t.pending), marks: new Map(t.marks) } as TallyValue, expires);
      return;
    }
    const mine = e.value as TallyValue;
    for (const [m, v] of t.marks) if (mine.pending.delete(m)) mine.marks.set(m, v);
  }

  /**
   * Takes out everything a failover hands to Redis when it is back: claims and windows, records,
   * lists, tallies, versioned records changed here, pending parts and deadlines. Counters and paces
   * stay (they only ever let one more through: SPEC B6a), and so do copies of shared records.
   */
  exportNow(keepDeadlines: (kind: string) => boolean = () => false): Snapshot {
    const now = this.clock.now();
    const out: Snapshot = { claims: [], records: [], lists: [], tallies: [], changed: [], parts: [], deadlines: [] };
    for (const [key, e] of this.entries) {
      if (e.expires <= now) continue;
      const v = e.value;
      if (v === true) out.claims.push({ key, expires: e.expires });
      else if (typeof v === "string") out.records.push({ key, value: v, expires: e.expires });
      else if (Array.isArray(v)) out.lists.push({ key, items: v as string[], expires: e.expires });
      else if (v instanceof Rec) {
        if (v.base === undefined) continue;
        out.changed.push({
          key,
          value: this.tombstones.has(key) ? null : v.value,
          base: v.base === "" ? null : v.base,
          expires: e.expires,
        });
      } else if (v && typeof v === "object" && (v as TallyValue).pending instanceof Set) {
        const t = v as TallyValue;
        out.tallies.push({ key, pending: [...t.pending], marks: t.marks, expires: e.expires });
      } else continue;
      this.entries.delete(key);
    }
    this.tombstones.clear();
    for (const [group, g] of this.groups) {
      for (const m of g.messages.values()) {
        if (m.expires > now) out.parts.push({ group, key: m.key, parts: m.parts, expires: m.expires });
      }
    }
    this.groups.clear();
    // Deadlines go, but those of kinds that go on locally (they stay here as well).
    for (const [k, at] of this.deadlines) {
      const sep = k.indexOf(SEP);
      const kind = k.slice(0, sep);
      out.deadlines.push({ kind, id: k.slice(sep + 1), at });
      if (!keepDeadlines(kind)) this.deadlines.delete(k);
    }
    for (const kind of this.waiting.keys()) if (!keepDeadlines(kind)) this.waiting.delete(kind);
    this.dueOrder.rebuild((d) => this.deadlines.get(d.id) === d.at);
    return out;
  }

  /** Copies of shared versioned records kept here (unchanged here): what Redis held, as last seen. */
  copiesNow(): Array<{ key: string; value: string; expires: number }> {
    const now = this.clock.now();
    const out: Array<{ key: string; value: string; expires: number }> = [];
    for (const [key, e] of this.entries) {
      if (isCopy(e, now)) {
        out.push({ key, value: (e.value as Rec).value, expires: e.expires });
      }
    }
    return out;
  }

  /** Whether exportNow() would hand anything over. */
  holdsShared(keepDeadlines: (kind: string) => boolean = () => false): boolean {
    if (this.tombstones.size) return true;
    for (const k of this.deadlines.keys()) if (!keepDeadlines(k.slice(0, k.indexOf(SEP)))) return true;
    for (const g of this.groups.values()) if (g.messages.size) return true;
    const now = this.clock.now();
    for (const e of this.entries.values()) {
      if (e.expires <= now) continue;
      const v = e.value;
      if (v === true || typeof v === "string" || Array.isArray(v)) return true;
      if (v instanceof Rec ? v.base !== undefined : v && typeof v === "object") return true;
    }
    return false;
  }

  // --- the interface --------------------------------------------------------------------------

  claim(key: string, ttlMs: number, bound?: ClaimBound): Promise<boolean> {
    return Promise.resolve(this.claimNow(key, ttlMs, bound));
  }

  read(key: string): Promise<Versioned | null> {
    return Promise.resolve(this.readNow(key));
  }

  cas(writes: CasWrite[]): Promise<string | null> {
    return Promise.resolve(this.casNow(writes));
  }

  admit(checks: AdmitCheck[]): Promise<Admission[]> {
    return Promise.resolve(this.admitNow(checks));
  }

  pace(key: string, intervalMs: number): Promise<number> {
    return Promise.resolve(this.paceNow(key, intervalMs));
  }

  put(key: string, value: string, ttlMs: number): Promise<void> {
    this.putNow(key, value, ttlMs);
    return Promise.resolve();
  }

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.getNow(key));
  }

  take(key: string): Promise<string | null> {
    return Promise.resolve(this.takeNow(key));
  }

  append(key: string, values: string[], max: number, ttlMs: number): Promise<string[]> {
    return Promise.resolve(this.appendNow(key, values, max, ttlMs));
  }

  takeList(key: string): Promise<string[]> {
    return Promise.resolve(this.takeListNow(key));
  }

  addPart(
    group: string,
    key: string,
    number: number,
    total: number,
    value: string,
    limits: PartLimits,
  ): Promise<PartAdd> {
    return Promise.resolve(this.addPartNow(group, key, number, total, value, limits));
  }

  takeParts(group: string, key: string): Promise<Map<number, string> | null> {
    return Promise.resolve(this.takePartsNow(group, key));
  }

  tally(key: string, members: readonly string[], ttlMs: number): Promise<void> {
    this.tallyNow(key, members, ttlMs);
    return Promise.resolve();
  }

  mark(key: string, member: string, value: string): Promise<Mark> {
    return Promise.resolve(this.markNow(key, member, value));
  }

  takeTally(key: string): Promise<Tally | null> {
    return Promise.resolve(this.takeTallyNow(key));
  }

  schedule(kind: string, id: string, at: number): Promise<void> {
    this.scheduleNow(kind, id, at);
    return Promise.resolve();
  }

  cancel(kind: string, id: string): Promise<void> {
    this.cancelNow(kind, id);
    return Promise.resolve();
  }

  onDue(kind: string, handler: DueHandler, _opts?: DueOptions): () => void {
    this.handlers.set(kind, handler);
    // Deadlines that came due while nobody handled their kind (a redeploy) go now, but not
    // inside the caller's constructor: its node may not be wired yet.
    if (this.waiting.has(kind)) {
      this.clock.setTimeout(() => {
        if (this.handlers.get(kind) === handler) this.deliverWaiting(kind);
      }, 0);
    }
    return () => {
      if (this.handlers.get(kind) === handler) this.handlers.delete(kind);
    };
  }

  drain(kind: string): Promise<string[]> {
    return Promise.resolve(this.drainNow(kind));
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.handlers.clear();
    return Promise.resolve();
  }

  /** Keys held (for tests and the soak: nothing may grow without bound). */
  get size(): { keys: number; deadlines: number; pendingMessages: number; pendingBytes: number } {
    let pendingMessages = 0;
    let pendingBytes = 0;
    for (const g of this.groups.values()) {
      pendingMessages += g.messages.size;
      pendingBytes += g.bytes;
    }
    return { keys: this.entries.size, deadlines: this.deadlines.size, pendingMessages, pendingBytes };
  }

  // --- internals ------------------------------------------------------------------------------

  private live(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires > now) return e;
    this.entries.delete(key);
    return undefined;
  }

  private set(key: string, value: unknown, expires: number): void {
    const now = this.clock.now();
    this.sweep(now);
    const e = this.entries.get(key);
    if (e) {
      e.value = value;
      if (e.expires === expires) return;
      e.expires = expires;
    } else this.entries.set(key, { value, expires });
    this.expiries.push({ at: expires, key });
    while (this.entries.size > this.maxKeys) this.evictOne();
    if (this.expiries.size > 2 * this.entries.size + 1024) {
      this.expiries.rebuild((x) => this.entries.get(x.key)?.expires === x.at);
    }
  }

  private sweep(now: number): void {
    for (let top = this.expiries.peek(); top && top.at <= now; top = this.expiries.peek()) {
      this.expiries.pop();
      if (this.entries.get(top.key)?.expires === top.at) this.entries.delete(top.key);
    }
  }

  /** Over the key bound: the entry closest to expiring goes (it had the least time left anyway). */
  private evictOne(): void {
    for (let top = this.expiries.pop(); top; top = this.expiries.pop()) {
      if (this.entries.get(top.key)?.expires === top.at) {
        this.entries.delete(top.key);
        return;
      }
    }
  }

  private expireParts(g: PartGroup, now: number): void {
    // Parts outlive their deadline only when nobody flushed them (no receive node for a day):
    // past their ttl they are garbage, as a Redis key with that ttl would be.
    for (let m = g.order.peek(); m; m = g.order.peek()) {
      if (g.messages.get(m.key) !== m) g.order.shift();
      else if (m.expires <= now) this.dropMessage(g, m);
      else break;
    }
  }

  /** The oldest live message other than `except` (which moves to the back: it is being added to). */
  private oldest(g: PartGroup, except: Pending): Pending | undefined {
    for (let seen = g.order.length; seen > 0; seen--) {
      const m = g.order.peek()!;
      if (g.messages.get(m.key) === m && m !== except) return m;
      g.order.shift();
      if (m === except) g.order.push(m);
    }
    return undefined;
  }

  private dropMessage(g: PartGroup, m: Pending): void {
    if (g.messages.get(m.key) !== m) return;
    g.messages.delete(m.key);
    g.bytes -= m.bytes;
    if (g.order.length > 2 * g.messages.size + 1024) g.order.retain((x) => g.messages.get(x.key) === x);
  }

  private arm(): void {
    if (this.closed) return;
    let next: number | undefined;
    for (let top = this.dueOrder.peek(); top; top = this.dueOrder.peek()) {
      if (this.deadlines.get(top.id) === top.at) {
        next = top.at;
        break;
      }
      this.dueOrder.pop();
    }
    if (next === undefined || (this.timer !== null && this.timerAt <= next)) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timerAt = next;
    // A timer cannot wait longer than 2^31-1 ms; one that wakes early just arms again.
    this.timer = this.clock.setTimeout(() => this.fire(), Math.min(MAX_TIMER, Math.max(0, next - this.clock.now())));
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.clock.now();
    const due: string[] = [];
    for (let top = this.dueOrder.peek(); top && top.at <= now; top = this.dueOrder.peek()) {
      this.dueOrder.pop();
      if (this.deadlines.get(top.id) === top.at) due.push(top.id);
    }
    for (const k of due) this.deliver(k);
    this.arm();
  }

  /** Hands a due deadline to its kind's handler, or parks it until one arrives. */
  private deliver(k: string): void {
    const sep = k.indexOf(SEP);
    const kind = k.slice(0, sep);
    const handler = this.handlers.get(kind);
    if (!handler) {
      let parked = this.waiting.get(kind);
      if (!parked) this.waiting.set(kind, (parked = new Set()));
      parked.add(k);
      return;
    }
    this.deadlines.delete(k);
    const retry = () => {
      // A failed handler (it reports its own failure) gets the deadline again later (SPEC B6a:
      // never lost because the state could not answer), unless it was set again meanwhile.
      if (this.deadlines.has(k) || this.closed) return void this.retries.delete(k);
      const n = (this.retries.get(k) ?? 0) + 1;
      this.retries.set(k, n);
      this.scheduleNow(kind, k.slice(sep + 1), this.clock.now() + Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** (n - 1)));
    };
    let result: void | Promise<void>;
    try {
      result = handler(k.slice(sep + 1));
    } catch {
      return retry();
    }
    if (result instanceof Promise) result.then(() => this.retries.delete(k), retry);
    else this.retries.delete(k);
  }

  private deliverWaiting(kind: string): void {
    const parked = this.waiting.get(kind);
    if (!parked) return;
    this.waiting.delete(kind);
    const now = this.clock.now();
    for (const k of parked) {
      const at = this.deadlines.get(k);
      // Cancelled or moved later since it was parked: nothing to do now (a move re-armed it).
      if (at !== undefined && at <= now) this.deliver(k);
    }
  }
}

/** A copy of a shared versioned record, unchanged here (what Redis held, as last seen). */
function isCopy(e: Entry, now: number): boolean {
  return e.expires > now && e.value instanceof Rec && e.value.base === undefined;
}
