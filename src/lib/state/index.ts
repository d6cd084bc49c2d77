// The account state (SPEC B6): everything the package remembers, outside node instances. One
// small interface named after what the features need; `memory.ts` keeps it in this process,
// `redis.ts` in Redis (shared by instances, kept across restarts), `failover.ts` falls back to
// memory while Redis is unreachable. Features never ask which one they run on.

/** Where an account's state lives now: where it was configured, or this process while Redis is down. */
export type StateMode = "shared" | "local";

/** One number's admission by the guard: a window per (key, number) and a cap per number per day. */
export interface AdmitCheck {
  /** claimed for `ttlMs` when admitted; refused while held by an earlier admission */
  window?: { key: string; ttlMs: number };
  /** counted when admitted; refused at `max`. The count lives `ttlMs` from its first admission. */
  cap?: { key: string; max: number; ttlMs: number };
}

/**
 * A bound on a family of claims (SPEC B4a: dedupe windows of an open endpoint): at most `max` live
 * claims in `group`; beyond it the oldest are forgotten first.
 */
export interface ClaimBound {
  group: string;
  max: number;
}

/** A record with the version of its last write (compare-and-set, for sms-oncall). */
export interface Versioned {
  value: string;
  version: string;
}

/** One write of a `cas`: `key` must still be at version `expect` (null: absent); `value` null deletes. */
export interface CasWrite {
  key: string;
  expect: string | null;
  value: string | null;
  /** how long the record lives after this write (ignored for a delete) */
  ttlMs: number;
}

export type Admission = { ok: true } | { ok: false; reason: "window" | "cap"; retryInMs: number };

export interface PartLimits {
  /** how long the parts are kept (the deadline that flushes them is the caller's) */
  ttlMs: number;
  /** most messages pending in the group; beyond it the oldest is taken and returned as evicted */
  maxPending: number;
  /** most bytes of part values pending in the group (memory only; Redis bounds by count) */
  maxBytes: number;
}

export interface PartAdd {
  /** complete: this call took every part (exactly one caller sees it); duplicate: number was in */
  result: "added" | "duplicate" | "complete";
  /** every part, by number, when complete */
  parts?: Map<number, string>;
  /** older messages pushed out by the bounds: already taken, to be emitted as incomplete */
  evicted?: Array<{ key: string; parts: Map<number, string> }>;
}

export interface Mark {
  /** unknown: no such tally; stranger: not one of its members; duplicate: already marked */
  result: "marked" | "duplicate" | "stranger" | "unknown";
  /** members still unmarked (after this mark) */
  left: number;
}

export interface Tally {
  marks: Map<string, string>;
  pending: string[];
}

/**
 * Called when a deadline of its kind is due, on one instance at a time. A handler that returns a
 * promise which rejects has failed: the deadline fires again later (at least once).
 */
export type DueHandler = (id: string) => void | Promise<void>;

export interface DueOptions {
  /**
   * With Redis: deadlines of this kind set by this process also fire from its memory while Redis
   * cannot be reached (SPEC B6a: on-call steps go on during an outage). Their handler must be
   * idempotent: with Redis there, it is called for both (the second finds its work done).
   */
  continueLocally?: boolean;
}

export interface AccountState {
  readonly backend: "memory" | "redis";
  readonly mode: StateMode;
  /** mode changes; `reason` is a short text without secrets (for the log) */
  onMode(fn: (mode: StateMode, reason: string) => void): () => void;

  /** true for the first caller within `ttlMs` (dedupe windows, the balance window) */
  claim(key: string, ttlMs: number, bound?: ClaimBound): Promise<boolean>;
  /**
   * The same claim answered at once, by a state that keeps its claims in this process (memory);
   * absent where a claim is a round trip (Redis). A push storm's dedupe takes it when it can.
   */
  claimNow?(key: string, ttlMs: number, bound?: ClaimBound): boolean;
  /** one decision per check, in order; each admitted check takes its window and counts */
  admit(checks: AdmitCheck[]): Promise<Admission[]>;
  /**
   * Rate pacing: reserves the next start `intervalMs` after the previous one for `key` and
   * returns how many ms the caller waits for it (0 = now).
   */
  pace(key: string, intervalMs: number): Promise<number>;

  put(key: string, value: string, ttlMs: number): Promise<void>;
  get(key: string): Promise<string | null>;
  /** get and delete: exactly one caller gets a value */
  take(key: string): Promise<string | null>;

  /** a versioned record (written by `cas` only), or null */
  read(key: string): Promise<Versioned | null>;
  /**
   * Writes all or none: each key must still be at its `expect` version. Returns the version now
   * held by every written key (one new version per call), or null when any key had moved.
   */
  cas(writes: CasWrite[]): Promise<string | null>;

  /** appends to a list kept `ttlMs` after the last append; returns the oldest items dropped beyond `max` */
  append(key: string, values: string[], max: number, ttlMs: number): Promise<string[]>;
  /** the whole list, emptied: exactly one caller gets each item */
  takeList(key: string): Promise<string[]>;

  /** reassembly: adds part `number` of `total` to message `key` of `group` */
  addPart(
    group: string,
    key: string,
    number: number,
    total: number,
    value: string,
    limits: PartLimits,
  ): Promise<PartAdd>;
  /** every part received so far, the message removed (a timeout's flush); null when gone */
  takeParts(group: string, key: string): Promise<Map<number, string> | null>;

  /** a set of members, each marked once (delivery tracking) */
  tally(key: string, members: readonly string[], ttlMs: number): Promise<void>;
  mark(key: string, member: string, value: string): Promise<Mark>;
  /** the marks and the unmarked members, the tally removed; null when gone */
  takeTally(key: string): Promise<Tally | null>;

  /** sets (or moves) deadline `id` of `kind` to `at` (ms since the epoch, the state's clock) */
  schedule(kind: string, id: string, at: number): Promise<void>;
  cancel(kind: string, id: string): Promise<void>;
  /**
   * Handles deadlines of `kind` in this process: each due one goes to one handler on one instance
   * at a time, and again only when that handler failed. Deadlines due while no instance handles
   * their kind wait for one.
   */
  onDue(kind: string, handler: DueHandler, opts?: DueOptions): () => void;
  /** removes every deadline of `kind` and returns their ids (a node removed for good, a stop) */
  drain(kind: string): Promise<string[]>;

  close(): Promise<void>;
}
