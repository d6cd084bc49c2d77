// On-call escalation (SPEC B11) without Node-RED: an alert becomes pages that go on, to the person
// on call, then to the next, until someone acknowledges by replying or the alert resolves.
//
// Everything lives in the account state (B6), so a redeploy keeps it and, with Redis, every
// instance shares it. Each alert is one versioned record, and every change to it is one
// compare-and-set (`cas`) of that record together with whatever else the change touches: a step
// that pages a number for the first time writes the number's code table in the same `cas`, a
// resolve frees the codes and lowers the node's open count in it. So an acknowledgement and the
// step it races with cannot both win: whichever `cas` lands first decides, the other re-reads and
// finds the alert moved (acknowledged: no page; stepped: the page went before the ack).
//
// Records (key names inside the account's state; `<node>` is the node id with no ":" left):
//   oncall:<node>:a:<id>     the alert (id = "=" + key, or "#" + a hash of a long key)
//   oncall:<node>:n          how many alerts the node remembers (maxOpen), and until when
//   oncall:<node>:b:<mobile> a number's bundle window and the pages waiting in it
//   oncall:<node>:o          the outbox: what replies decided, for the instance running the node
//   oncall:n:<mobile>        the number's code table (account-wide: one person, one set of codes)
//   oncall:n:<mobile>:<b>    codes 64b+1 .. 64b+64 of the number: [code, node, id, generation, until]
// Deadlines (kind `oncall:<node>`): an alert's next step, or when it is forgotten (its id); a
// bundle window's end ("b" + mobile); the outbox ("o"). Replies may be taken by any instance: the
// state they change is shared, and what they emit goes through the outbox and its deadline, so the
// instance running the node emits it.
import { createHash } from "node:crypto";
import type { Clock } from "../clock";
import { systemClock } from "../clock";
import { Fifo } from "../fifo";
import type { Lang } from "../i18n";
import { fill } from "../i18n";
import type { MobileCheck } from "../platform/numbers";
import { normaliseMobile } from "../platform/numbers";
import { formatInstant } from "../platform/time";
import type { AccountState, CasWrite, Versioned } from "../state/index";
import { inboxFor, type Inbound } from "./inbox";
import { parseReply, type Reply } from "./replies";
import { readPlan, Rota, type Plan, type PlanInput } from "./rota";

export type EventName = "opened" | "notified" | "escalated" | "acknowledged" | "closed" | "resolved" | "exhausted";
export type NotifyKind = "page" | "bundle" | "confirm" | "resolved";

/** One alert of a bundle (`msg.oncall.alerts`). */
export interface BundledAlert {
  key: string;
  code: number;
  step: number;
  round: number;
  count: number;
}

/** `msg.oncall` on output 1. `step` and `round` count from 1. */
export interface OncallInfo {
  kind: NotifyKind;
  key: string;
  code: number | null;
  step: number;
  round: number;
  count: number;
  alerts?: BundledAlert[];
}

/** A msg for output 1 (notify): one SMS. */
export interface NotifyMsg {
  mobile: string[];
  payload: string;
  topic: string;
  oncall: OncallInfo;
}

/** `msg.payload` on output 2 (events). */
export interface EventPayload {
  event: EventName;
  key: string;
  step: number;
  round: number;
  /** the numbers paged (notified, escalated) or told (resolved, closed) */
  to: string[];
  /** who acknowledged or closed: a number, `msg.ackBy`, or null */
  by: string | null;
  /** ISO time in the account's offset */
  at: string;
  count: number;
}

export interface EventMsg {
  topic: string;
  payload: EventPayload;
}

/** What leaves the node, in order: output 1 (index 0) or output 2 (index 1). */
export type Out = { port: 0; msg: NotifyMsg } | { port: 1; msg: EventMsg };

/** An input the chain refuses: the node's error (Catch) with this code. */
export class OncallError extends Error {
  constructor(
    readonly code: "INVALID_PAYLOAD" | "MAX_OPEN",
    message: string,
  ) {
    super(message);
    this.name = "OncallError";
  }
}

export interface OncallOptions extends PlanInput {
  state: AccountState;
  /** the node's id: keeps two on-call nodes' alerts apart */
  scope: string;
  clock?: Clock;
  /** the language of the SMS texts and errors (the runtime's) */
  lang?: Lang;
  /** the account's UTC offset in minutes (default +480) */
  offsetMinutes?: number;
  mobileCheck?: MobileCheck;
  /** the account's signature: a bundle's SMS stays within 2 segments with it */
  signature?: string;
}

/** The last event, for the node's status. */
export interface LastEvent {
  event: EventName;
  key: string;
  at: number;
}

export interface OncallListener {
  /** what a deadline or a reply produced, in order */
  emit(outs: Out[]): void;
  /** a deadline's work failed (it fires again later) */
  error(e: unknown): void;
  /** the open count or the last event changed */
  changed?(): void;
}

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** Codes of one number per record: a person paged for 10,000 alerts is 313 small records. */
const CODES_PER_BUCKET = 32;
/** Records written by a reply (which does not know the node's `keep`) live this long at least. */
const REPLY_TTL = 720 * HOUR + 2 * DAY;
const MAX_ATTEMPTS = 200;
/** Due steps decided in one transaction at most. */
const CHUNK = 32;
/** Keys longer than this are hashed in the state's key names (a whole payload can be a key). */
const INLINE_KEY = 64;
/** Two segments (SPEC A1: over 70 characters a part holds 67). */
const BUNDLE_MAX = 134;
const OPEN_WAIT_MS = 2000;

type Status = "o" | "e" | "a";

/** An alert as the code works with it (see Stored for how it is kept). */
interface Rec {
  /** key */
  k: string;
  /** generation: its open time (base 36) and a few random characters; tells it from an earlier alert of the key */
  g: string;
  /** opened at (read from the generation) */
  o: number;
  /** latest text */
  x: string;
  /** count */
  n: number;
  /** step and round, from 0 */
  s: number;
  r: number;
  /** open (chain running), exhausted, acknowledged */
  st: Status;
  /** open: when the next step is due; exhausted, acknowledged: the time of that event */
  at: number;
  /** numbers paged: [code, last paged at (0: its page waits in a bundle)] */
  p: Record<string, [number, number]>;
  /** until when its code entries hold (the longest this alert can be remembered) */
  u?: number;
  /** pages of this step still without a delivery summary */
  q?: number;
  /** a page of this step was delivered */
  d?: 1;
  by?: string | null;
  /** the node's `keep` in hours: a reply (which may be taken by any instance) must know when it is forgotten */
  kp?: number;
}

/** Acknowledged or exhausted and past `keep`: not remembered any more (a reply does nothing to it). */
function isForgotten(rec: Rec, now: number): boolean {
  return rec.st !== "o" && rec.kp !== undefined && now >= rec.at + rec.kp * HOUR;
}

/**
 * An alert as kept in the state (10,000 open alerts stay small): no key when its id holds it,
 * no open time (the generation has it), times in ms after the open, -1 for a page that waits in
 * a bundle.
 */
type Stored = Omit<Rec, "k" | "o" | "s" | "r" | "st"> & { k?: string; s?: number; r?: number; st?: Status };

const GEN_TIME = 9;

function openedAt(g: string): number {
  return parseInt(g.slice(0, GEN_TIME), 36);
}

function decode(id: string, v: Stored | null): Rec | null {
  if (!v || typeof v.g !== "string" || !v.p) return null;
  const o = openedAt(v.g);
  const p: Rec["p"] = {};
  for (const m in v.p) p[m] = [v.p[m][0], v.p[m][1] < 0 ? 0 : o + v.p[m][1]];
  const rec: Rec = {
    k: v.k ?? id.slice(1),
    g: v.g,
    o,
    x: v.x,
    n: v.n,
    s: v.s ?? 0,
    r: v.r ?? 0,
    st: v.st ?? "o",
    at: o + v.at,
    p,
  };
  if (v.u !== undefined) rec.u = o + v.u;
  if (v.q !== undefined) rec.q = v.q;
  if (v.d) rec.d = 1;
  if (v.by !== undefined) rec.by = v.by;
  if (v.kp !== undefined) rec.kp = v.kp;
  return rec;
}

/** Only what is not the default is kept (an open alert at its first step needs no s, r, st). */
function encode(id: string, rec: Rec): Stored {
  const o = rec.o;
  const p: Stored["p"] = {};
  for (const m in rec.p) p[m] = [rec.p[m][0], rec.p[m][1] ? rec.p[m][1] - o : -1];
  const v = { g: rec.g, x: rec.x, n: rec.n, at: rec.at - o, p } as Stored;
  if (id !== `=${rec.k}`) v.k = rec.k;
  if (rec.s) v.s = rec.s;
  if (rec.r) v.r = rec.r;
  if (rec.st !== "o") v.st = rec.st;
  if (rec.u !== undefined) v.u = rec.u - o;
  if (rec.q) v.q = rec.q;
  if (rec.d) v.d = 1;
  if (rec.by !== undefined) v.by = rec.by;
  if (rec.kp !== undefined) v.kp = rec.kp;
  return v;
}

/** A code table entry: [code, node, alert id, generation, until (seconds since the epoch)]. */
type Entry = [number, string, string, string, number];

const alive = (e: Entry, now: number) => e[4] * 1000 > now;
const toSec = (ms: number) => Math.ceil(ms / 1000);

interface Top {
  /** full buckets: a bitmap in hex, bucket b is bit b % 4 of character b / 4 */
  f: string;
  /** highest bucket used */
  m: number;
  /** latest until of any entry: the table lives as long */
  u: number;
}

interface Bundle {
  /** the window ends */
  u: number;
  /** pages waiting: [alert id, generation] */
  i: Array<[string, string]>;
}

/** What a reply decided, kept for the instance running the owning node. */
interface OutItem {
  e: "acknowledged" | "closed";
  k: string;
  s: number;
  r: number;
  n: number;
  by: string;
  /** the replier's code for it */
  c: number;
  x: string;
  /** the other numbers paged (a close tells them) */
  to: string[];
  at: number;
}

const TEXTS = {
  ack: { "en-US": " Reply {code} to ack", "zh-CN": " 回复{code}确认" },
  confirm: { "en-US": "Acknowledged {text}", "zh-CN": "已确认 {text}" },
  closedConfirm: { "en-US": "Closed {text}", "zh-CN": "已关闭 {text}" },
  resolved: { "en-US": "Resolved {text}", "zh-CN": "已恢复 {text}" },
  bundleHead: { "en-US": "{count} alerts: ", "zh-CN": "{count}条告警：" },
  bundleItem: { "en-US": "#{code} {text}", "zh-CN": "#{code} {text}" },
  bundleSep: { "en-US": "; ", "zh-CN": "；" },
  bundleMore: { "en-US": "+{count} more", "zh-CN": "另{count}条" },
  bundleTail: { "en-US": ". Reply #code to ack, aa for all", "zh-CN": "。回复编号确认，aa全部确认" },
  emptyKey: {
    "en-US": "msg.topic must name the alert (its key); it is empty",
    "zh-CN": "msg.topic 必须是告警的名称（键），当前为空",
  },
  badText: {
    "en-US": "msg.payload must be the alert's text (a string or a number), got {type}",
    "zh-CN": "msg.payload 必须是告警内容（字符串或数字），实际为 {type}",
  },
  maxOpen: {
    "en-US": 'Alert "{key}" not opened: this node already has {max} open alerts (maxOpen)',
    "zh-CN": "告警“{key}”未开启：本节点已有 {max} 个未结束的告警（maxOpen）",
  },
} satisfies Record<string, Record<Lang, string>>;

const say = (key: keyof typeof TEXTS, lang: Lang, params: Record<string, unknown> = {}) =>
  fill(TEXTS[key][lang], params);

/** The state's key name of an alert: short keys as they are, long ones hashed. */
export function alertId(key: string): string {
  return key.length <= INLINE_KEY ? `=${key}` : `#${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

const topKey = (mobile: string) => `oncall:n:${mobile}`;
const bucketKey = (mobile: string, b: number) => `oncall:n:${mobile}:${b}`;
const bucketOf = (code: number) => Math.floor((code - 1) / CODES_PER_BUCKET);

function parse<T>(v: Versioned | null): T | null {
  if (!v) return null;
  try {
    return JSON.parse(v.value) as T;
  } catch {
    return null;
  }
}

// --- one compare-and-set over everything a change reads --------------------------------------

/** Thrown inside a transaction that needs a lock it does not hold: it is run again with it. */
class Relock {
  constructor(readonly keys: string[]) {}
}

/** A record read before the locks were taken (and what it was read as). */
interface Seed {
  raw: Versioned | null;
  value: unknown;
}

/**
 * Reads (with their versions) and writes of one attempt; committed as one `cas`. Each record is
 * parsed once per attempt and written as it stands at the commit.
 */
class Txn {
  private readonly reads = new Map<string, Versioned | null>();
  private readonly values = new Map<string, unknown>();
  /** written keys: the alert id of a record (it is encoded), "" for plain JSON, null to delete */
  private readonly writes = new Map<string, { id: string; ttlMs: number } | null>();
  readonly after: Array<() => Promise<unknown>> = [];

  constructor(
    private readonly state: AccountState,
    private readonly held: ReadonlySet<string>,
    readonly now: number,
    /** records read before the locks were taken: if one moved since, the `cas` fails and all is read again */
    seed?: ReadonlyMap<string, Seed>,
  ) {
    if (seed) {
      for (const [k, v] of seed) {
        this.reads.set(k, v.raw);
        this.values.set(k, v.value);
      }
    }
  }

  /** Reads a record once per attempt; after a write in this attempt, what was written. */
  async get<T>(key: string): Promise<T | null> {
    if (!this.reads.has(key)) this.reads.set(key, await this.state.read(key));
    return this.current<T>(key);
  }

  /** Reads several at once (one round trip each, issued together). */
  async getAll<T>(keys: string[]): Promise<Array<T | null>> {
    const missing = keys.filter((k) => !this.reads.has(k));
    const got = await Promise.all(missing.map((k) => this.state.read(k)));
    missing.forEach((k, i) => this.reads.set(k, got[i]));
    return keys.map((k) => this.current<T>(k));
  }

  private current<T>(key: string, id?: string): T | null {
    if (!this.values.has(key)) {
      const raw = parse<Stored>(this.reads.get(key)!);
      this.values.set(key, id === undefined ? raw : decode(id, raw));
    }
    return this.values.get(key) as T | null;
  }

  /** An alert record (decoded), read once per attempt. */
  async rec(key: string, id: string): Promise<Rec | null> {
    if (!this.reads.has(key)) this.reads.set(key, await this.state.read(key));
    return this.current<Rec>(key, id);
  }

  async recs(keys: string[], ids: string[]): Promise<Array<Rec | null>> {
    const missing = keys.filter((k) => !this.reads.has(k));
    const got = await Promise.all(missing.map((k) => this.state.read(k)));
    missing.forEach((k, i) => this.reads.set(k, got[i]));
    return keys.map((k, i) => this.current<Rec>(k, ids[i]));
  }

  setRec(key: string, id: string, rec: Rec, ttlMs: number): void {
    this.write(key, rec, { id, ttlMs });
  }

  set(key: string, value: unknown, ttlMs: number): void {
    this.write(key, value, { id: "", ttlMs });
  }

  private write(key: string, value: unknown, w: { id: string; ttlMs: number }): void {
    if (!this.reads.has(key)) throw new Error(`write of ${key} without reading it`);
    this.values.set(key, value);
    this.writes.set(key, { id: w.id, ttlMs: Math.max(SEC, Math.ceil(w.ttlMs)) });
  }

  del(key: string): void {
    if (!this.reads.has(key)) throw new Error(`delete of ${key} without reading it`);
    this.values.set(key, null);
    if (this.reads.get(key) === null) this.writes.delete(key);
    else this.writes.set(key, null);
  }

  /** Throws Relock unless every key is held: the decision must not race with this process's others. */
  need(...keys: string[]): void {
    const missing = keys.filter((k) => !this.held.has(k));
    if (missing.length) throw new Relock(missing);
  }

  get empty(): boolean {
    return this.writes.size === 0;
  }

  commit(): Promise<string | null> {
    const writes: CasWrite[] = [];
    for (const [key, w] of this.writes) {
      const v = this.values.get(key);
      writes.push({
        key,
        expect: this.reads.get(key)?.version ?? null,
        value: w === null ? null : JSON.stringify(w.id ? encode(w.id, v as Rec) : v),
        ttlMs: w === null ? 0 : w.ttlMs,
      });
    }
    return this.state.cas(writes);
  }
}

/**
 * Locks in this process, by name: changes that would only make each other's `cas` fail (pages
 * to one number taking codes, opens counting) wait their turn here instead of retrying. Across
 * instances the `cas` alone decides.
 */
class Locks {
  private readonly tails = new Map<string, Promise<void>>();
  /** per number, the bucket a code was last taken from here: read with the table's head at once */
  readonly hint = new Map<string, number>();

  async acquire(keys: string[]): Promise<() => void> {
    const releases: Array<() => void> = [];
    // Always in one order: two changes needing the same two locks cannot wait for each other.
    for (const key of [...new Set(keys)].sort()) {
      const prev = this.tails.get(key) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => (release = r));
      const tail = prev.then(() => mine);
      this.tails.set(key, tail);
      await prev;
      releases.push(() => {
        release();
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    }
    return () => releases.reverse().forEach((r) => r());
  }
}

/**
 * At most `limit` tasks at once, the others wait in order: a burst of due steps (10,000 alerts
 * whose waits end together) does not hold 10,000 half-done decisions in memory at once.
 */
class Gate {
  private running = 0;
  private readonly waiting = new Fifo<() => void>();

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

const locksOf = new WeakMap<AccountState, Locks>();
function locksFor(state: AccountState): Locks {
  let l = locksOf.get(state);
  if (!l) locksOf.set(state, (l = new Locks()));
  return l;
}

/**
 * Runs `fn` until its writes commit as one `cas` (or it writes nothing), holding the locks it
 * asks for. `onCommit` gets what the committing attempt decided at once (what it emits leaves
 * before anything else can happen); then its `after` work runs (deadlines), whose failure rejects.
 */
/** A transaction that kept colliding (another instance kept changing what it read). */
class Contended extends Error {
  constructor() {
    super("oncall: the state kept changing under a decision (too many attempts)");
    this.name = "Contended";
  }
}

async function transact<T>(
  state: AccountState,
  clock: Clock,
  locks: string[],
  fn: (txn: Txn) => Promise<T>,
  onCommit?: (result: T) => void,
  seed?: ReadonlyMap<string, Seed>,
  attempts = MAX_ATTEMPTS,
): Promise<T> {
  const want = new Set(locks);
  for (let attempt = 0; attempt < attempts; attempt++) {
    const release = await locksFor(state).acquire([...want]);
    let done: { txn: Txn; result: T } | null = null;
    let relock = false;
    try {
      const txn = new Txn(state, want, clock.now(), attempt === 0 ? seed : undefined);
      try {
        const result = await fn(txn);
        if (txn.empty || (await txn.commit()) !== null) done = { txn, result };
      } catch (e) {
        if (!(e instanceof Relock)) throw e;
        for (const k of e.keys) want.add(k);
        relock = true;
      }
    } finally {
      release();
    }
    if (done) {
      onCommit?.(done.result);
      await Promise.all(done.txn.after.map((f) => f()));
      return done.result;
    }
    // Another instance changed something this read: read again (a little later when it keeps
    // happening, so two instances do not keep colliding).
    if (!relock && attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 2)));
  }
  throw new Contended();
}

/** Where what a change decided goes at once (the node's outputs); without one, it is returned. */
export type Sink = (outs: Out[]) => void;

const toSink =
  (sink: Sink | undefined) =>
  (outs: Out[] | null): void => {
    if (sink && outs?.length) sink(outs);
  };

// --- code tables: per number, the smallest free code -----------------------------------------

/** Whether bucket `b` is full in a table's bitmap (hex, 4 buckets a character). */
function isFull(f: string, b: number): boolean {
  return b >> 2 < f.length && (parseInt(f[b >> 2], 16) & (1 << (b & 3))) !== 0;
}

/** The first bucket not full. */
function firstFree(f: string): number {
  let i = 0;
  while (i < f.length && f[i] === "f") i++;
  if (i === f.length) return 4 * i;
  const bits = parseInt(f[i], 16);
  let b = 0;
  while (bits & (1 << b)) b++;
  return 4 * i + b;
}

function setFull(f: string, b: number, full: boolean): string {
  const at = b >> 2;
  const padded = f.length > at ? f : f.padEnd(at + 1, "0");
  const bits = parseInt(padded[at], 16);
  const next = full ? bits | (1 << (b & 3)) : bits & ~(1 << (b & 3));
  return (padded.slice(0, at) + next.toString(16) + padded.slice(at + 1)).replace(/0+$/, "");
}

async function takeCode(
  txn: Txn,
  hints: Map<string, number>,
  mobile: string,
  owner: string,
  id: string,
  gen: string,
  until: number,
): Promise<number> {
  // The table's head and the bucket codes came from last time, in one go (usually that bucket).
  const hinted = hints.get(mobile) ?? 0;
  const [head] = await txn.getAll<Top>([topKey(mobile), bucketKey(mobile, hinted)]);
  const top: Top = head ?? { f: "", m: -1, u: 0 };
  let full = top.f;
  for (let b = firstFree(full); ; b++) {
    if (isFull(full, b)) continue;
    const entries = ((await txn.get<Entry[]>(bucketKey(mobile, b))) ?? []).filter((e) => alive(e, txn.now));
    // Entries are kept in code order: the first gap is the smallest free code.
    let code = b * CODES_PER_BUCKET + 1;
    let at = 0;
    while (at < entries.length && entries[at][0] === code) {
      code++;
      at++;
    }
    if (code > (b + 1) * CODES_PER_BUCKET) {
      full = setFull(full, b, true);
      continue;
    }
    entries.splice(at, 0, [code, owner, id, gen, toSec(until)]);
    let last = 0;
    for (const e of entries) if (e[4] > last) last = e[4];
    last *= 1000;
    txn.set(bucketKey(mobile, b), entries, last - txn.now + DAY);
    if (entries.length >= CODES_PER_BUCKET) full = setFull(full, b, true);
    hints.set(mobile, isFull(full, b) ? b + 1 : b);
    const u = Math.max(top.u, until);
    // Written even when unchanged: a free elsewhere in the table then makes this `cas` fail,
    // so the code taken is always the smallest free one.
    txn.set(topKey(mobile), { f: full, m: Math.max(top.m, b), u } satisfies Top, u - txn.now + DAY);
    return code;
  }
}

/** Moves a code's entry forward in time (options changed: a longer chain or keep). */
async function extendCode(
  txn: Txn,
  mobile: string,
  code: number,
  owner: string,
  id: string,
  gen: string,
  until: number,
): Promise<void> {
  const b = bucketOf(code);
  const entries = (await txn.get<Entry[]>(bucketKey(mobile, b))) ?? [];
  const e = entries.find((x) => x[0] === code && x[1] === owner && x[2] === id && x[3] === gen);
  if (!e || e[4] >= toSec(until)) return;
  e[4] = toSec(until);
  txn.set(bucketKey(mobile, b), entries, until - txn.now + DAY);
  const top: Top = (await txn.get<Top>(topKey(mobile))) ?? { f: "", m: b, u: 0 };
  if (top.u < until) txn.set(topKey(mobile), { ...top, u: until }, until - txn.now + DAY);
}

async function freeCode(txn: Txn, mobile: string, code: number, owner: string, id: string, gen: string) {
  const b = bucketOf(code);
  const key = bucketKey(mobile, b);
  const before = (await txn.get<Entry[]>(key)) ?? [];
  const entries = before.filter(
    (e) => alive(e, txn.now) && !(e[0] === code && e[1] === owner && e[2] === id && e[3] === gen),
  );
  if (entries.length === before.length) return;
  if (entries.length) txn.set(key, entries, Math.max(...entries.map((e) => e[4] * 1000)) - txn.now + DAY);
  else txn.del(key);
  const top = await txn.get<Top>(topKey(mobile));
  if (top && isFull(top.f, b)) {
    txn.set(topKey(mobile), { ...top, f: setFull(top.f, b, false) }, top.u - txn.now + DAY);
  }
}

/** Every live entry of a number's table (a reply reads them). */
async function entriesOf(state: AccountState, mobile: string, now: number): Promise<Entry[]> {
  const top = parse<Top>(await state.read(topKey(mobile)));
  if (!top || top.m < 0) return [];
  const buckets = await Promise.all(
    Array.from({ length: top.m + 1 }, (_, b) => state.read(bucketKey(mobile, b)).then((v) => parse<Entry[]>(v))),
  );
  return buckets.flatMap((b) => b ?? []).filter((e) => alive(e, now));
}

// --- the chain --------------------------------------------------------------------------------

/** A new alert's generation: its open time and a few random characters (unique enough per key). */
function gen(now: number): string {
  return now.toString(36).padStart(GEN_TIME, "0") + Math.random().toString(36).slice(2, 5).padEnd(3, "0");
}

/** The next step after (s, r), or null when the chain ran out. */
function nextStep(plan: Plan, s: number, r: number): { s: number; r: number } | null {
  if (s + 1 < plan.steps.length) return { s: s + 1, r };
  if (r < plan.repeat) return { s: 0, r: r + 1 };
  return null;
}

/** How long an alert can be remembered at most from its open (its code entries live this long). */
function lifeBound(plan: Plan): number {
  const chain = plan.steps.reduce((t, s) => t + s.wait, 0) * MIN * (plan.repeat + 1);
  return chain + plan.bundle * SEC + 2 * plan.keep * HOUR + DAY;
}

export class OnCall {
  /** the last event (for the status) */
  last: LastEvent | undefined;
  readonly plan: Plan;
  readonly rota: Rota;
  private readonly state: AccountState;
  private readonly clock: Clock;
  private readonly lang: Lang;
  private readonly offset: number;
  private readonly check: MobileCheck;
  private readonly signature: string;
  private readonly scope: string;
  private readonly base: string;
  readonly kind: string;
  private readonly keepMs: number;
  private openCount = 0;
  private ready: Promise<void> | null = null;
  private readonly gate = new Gate(8);
  private readonly queued: Array<{
    id: string;
    sink?: Sink;
    resolve: (outs: Out[]) => void;
    reject: (e: unknown) => void;
  }> = [];

  constructor(opts: OncallOptions) {
    if (typeof opts.scope !== "string" || opts.scope === "") throw new Error("oncall: scope (the node id) is required");
    this.state = opts.state;
    this.clock = opts.clock ?? systemClock;
    this.lang = opts.lang ?? "en-US";
    this.offset = opts.offsetMinutes ?? 480;
    this.check = opts.mobileCheck ?? "cn";
    this.signature = opts.signature ?? "";
    this.plan = readPlan(opts, this.check, this.lang);
    this.rota = Rota.of(this.plan, this.offset);
    this.keepMs = this.plan.keep * HOUR;
    // No ":" is left in the scope, so no two scopes' key names can meet.
    this.scope = encodeURIComponent(opts.scope);
    this.base = `oncall:${this.scope}:`;
    this.kind = `oncall:${this.scope}`;
  }

  /** Alerts this node remembers (open, exhausted or acknowledged, not resolved), as last seen. */
  get open(): number {
    return this.openCount;
  }

  // --- inputs ---------------------------------------------------------------------------------

  /**
   * A firing alert: opens it (and pages its first step at once) when its key is not open, else
   * counts it and keeps its latest text for later steps.
   */
  async fire(key: unknown, text: unknown, sink?: Sink): Promise<Out[]> {
    const k = this.keyOf(key);
    if (typeof text !== "string" && !(typeof text === "number" && Number.isFinite(text))) {
      throw new OncallError("INVALID_PAYLOAD", say("badText", this.lang, { type: typeName(text) }));
    }
    const x = String(text);
    await this.settled();
    const id = alertId(k);
    // Counting an open alert needs no lock; opening one (which may first retire a forgotten one
    // of the key, in the same `cas`) counts against maxOpen and takes codes.
    const seen = await this.read(id);
    if (seen && !this.forgotten(seen, this.clock.now())) {
      const counted = await transact(this.state, this.clock, [], async (txn) => {
        const rec = await txn.rec(this.key(id), id);
        if (!rec || this.forgotten(rec, txn.now)) return false;
        rec.n++;
        rec.x = x;
        this.write(txn, id, rec);
        return true;
      });
      if (counted) return [];
    }
    return this.openAlert(k, id, x, sink);
  }

  /** Resolves the open alert of `key` (nothing when there is none). */
  async resolve(key: unknown, sink?: Sink): Promise<Out[]> {
    const k = this.keyOf(key);
    await this.settled();
    const id = alertId(k);
    if (!(await this.read(id))) return [];
    return transact(
      this.state,
      this.clock,
      [this.countLock()],
      async (txn) => {
        const cur = await txn.rec(this.key(id), id);
        if (!cur) return [];
        await this.retire(txn, id, cur);
        // A forgotten alert is over already: it goes without a word.
        return this.forgotten(cur, txn.now) ? [] : this.resolvedOuts(cur, txn.now);
      },
      toSink(sink),
    );
  }

  /** Acknowledges the open alert of `key` from the flow (`msg.ack`); `by` is `msg.ackBy`. */
  async acknowledge(key: unknown, by?: unknown, sink?: Sink): Promise<Out[]> {
    const k = this.keyOf(key);
    await this.settled();
    const id = alertId(k);
    const who = typeof by === "string" || typeof by === "number" ? String(by) : null;
    const paged = who === null ? null : normaliseMobile(who, this.check);
    let outs: Out[] = [];
    await transact(
      this.state,
      this.clock,
      [],
      async (txn) => {
        const rec = await txn.rec(this.key(id), id);
        if (!rec || rec.st === "a" || this.forgotten(rec, txn.now)) return null;
        const item = this.acked(txn, id, rec, paged && rec.p[paged] ? paged : who);
        txn.after.push(() => this.arm(id, rec));
        return item;
      },
      (item) => {
        if (!item) return;
        // A confirm SMS only to a number that was paged for it (a name from a dashboard gets none).
        const code = paged && item.by === paged ? item.c : 0;
        outs = this.itemOuts({ ...item, c: code }, code > 0);
        toSink(sink)(outs);
      },
    );
    return outs;
  }

  /**
   * A delivery summary of sms-send (SPEC B7) for a page or a bundle: when none of a step's pages
   * reached anyone, its next step starts at once.
   */
  async summary(
    info: { kind?: unknown; key?: unknown; step?: unknown; round?: unknown; alerts?: unknown },
    delivered: boolean,
    sink?: Sink,
  ): Promise<Out[]> {
    await this.settled();
    const items: Array<{ key: string; step: number; round: number }> = [];
    if (info.kind === "bundle" && Array.isArray(info.alerts)) {
      for (const a of info.alerts as Array<Record<string, unknown>>) {
        if (a && typeof a.key === "string") items.push({ key: a.key, step: Number(a.step), round: Number(a.round) });
      }
    } else if (info.kind === "page" && typeof info.key === "string") {
      items.push({ key: info.key, step: Number(info.step), round: Number(info.round) });
    }
    const outs: Out[] = [];
    for (const it of items) {
      const id = alertId(it.key);
      const got = await this.transactStep(
        id,
        (rec) => {
          if (rec.st !== "o" || rec.s + 1 !== it.step || rec.r + 1 !== it.round) return "skip";
          if (delivered) return rec.d ? "skip" : "delivered";
          const left = Math.max(0, (rec.q ?? 1) - 1);
          return left === 0 && !rec.d ? "step" : { q: left };
        },
        sink,
      );
      outs.push(...got);
    }
    return outs;
  }

  // --- deadlines and replies --------------------------------------------------------------------

  /**
   * Hands this node's due work (steps, forgets, bundle windows, the outbox) to `on`, and reads the
   * replies of the account for every on-call node's alerts. Returns the function that stops it.
   */
  listen(on: OncallListener): () => void {
    // What a deadline decided leaves at once; a failure after it (setting the next deadline)
    // rejects, so the deadline fires again and finds its work done.
    // Steps go on from this process's memory while Redis is away (SPEC B6a); `due` is idempotent.
    const off = this.state.onDue(
      this.kind,
      (id) =>
        this.due(id, (outs) => on.emit(outs)).then(
          () => on.changed?.(),
          (e: unknown) => {
            on.error(e);
            throw e;
          },
        ),
      { continueLocally: true },
    );
    const offReplies = repliesFor(this.state, this.clock).join();
    // Left from before (a restart, a reply taken while this node was being redeployed).
    const start = () => {
      this.state.schedule(this.kind, "o", this.clock.now()).catch((e: unknown) => on.error(e));
      this.refreshCount().then(() => on.changed?.(), on.error);
    };
    start();
    const offMode = this.state.onMode((mode) => {
      if (mode === "shared") start();
    });
    return () => {
      off();
      offReplies();
      offMode();
    };
  }

  /** One due deadline of this node: what it emits. Idempotent: it re-reads and acts only when due. */
  async due(id: string, sink?: Sink): Promise<Out[]> {
    if (!(id.startsWith("=") || id.startsWith("#"))) return this.gate.run(() => this.dueNow(id, sink));
    // Steps that come due together are taken in chunks (see stepChunk), a few chunks at a time.
    return new Promise<Out[]>((resolve, reject) => {
      this.queued.push({ id, sink, resolve, reject });
      if (this.queued.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const all = this.queued.splice(0);
    for (let i = 0; i < all.length; i += CHUNK) {
      const chunk = all.slice(i, i + CHUNK);
      this.gate.run(() =>
        this.stepChunk(chunk).then(
          (outs) => chunk.forEach((c, j) => c.resolve(outs[j])),
          (e: unknown) => chunk.forEach((c) => c.reject(e)),
        ),
      );
    }
  }

  private async dueNow(id: string, sink?: Sink): Promise<Out[]> {
    await this.settled();
    if (id === "o") return this.drainOutbox(sink);
    if (id.startsWith("b")) return this.flushBundle(id.slice(1), sink);
    const raw = await this.state.read(this.key(id));
    const rec = decode(id, parse<Stored>(raw));
    if (!rec) return [];
    const now = this.clock.now();
    if (rec.st === "o") {
      if (now < rec.at) {
        await this.state.schedule(this.kind, id, rec.at);
        return [];
      }
      // What this read shows goes into the step's `cas` (if it moved meanwhile, all is read again).
      const pre = { raw, rec, locks: this.stepLocks(rec, now) };
      return this.transactStep(id, (cur, t) => (cur.st === "o" && t >= cur.at ? "step" : "skip"), sink, pre);
    }
    if (now < rec.at + this.keepMs) {
      await this.state.schedule(this.kind, id, rec.at + this.keepMs);
      return [];
    }
    await transact(this.state, this.clock, [this.countLock()], async (txn) => {
      const cur = await txn.rec(this.key(id), id);
      if (cur && cur.st !== "o" && txn.now >= cur.at + this.keepMs) await this.retire(txn, id, cur);
    });
    return [];
  }

  /** The node is removed for good: its alerts, bundles and outbox go. Returns how many alerts. */
  async discard(): Promise<number> {
    const ids = await this.state.drain(this.kind);
    let alerts = 0;
    for (const id of ids) {
      if (id === "o") {
        await transact(this.state, this.clock, [], async (txn) => {
          await txn.get(this.key("o"));
          txn.del(this.key("o"));
        });
      } else if (id.startsWith("b")) {
        await transact(this.state, this.clock, [], async (txn) => {
          await txn.get(this.key(`b:${id.slice(1)}`));
          txn.del(this.key(`b:${id.slice(1)}`));
        });
      } else {
        const gone = await transact(this.state, this.clock, [this.countLock()], async (txn) => {
          const cur = await txn.rec(this.key(id), id);
          if (!cur) return false;
          await this.retire(txn, id, cur);
          return true;
        });
        if (gone) alerts++;
      }
    }
    return alerts;
  }

  /** Reads the open count kept in the state (another instance's opens, a redeploy). */
  async refreshCount(): Promise<number> {
    const c = parse<{ n: number }>(await this.state.read(this.key("n")));
    this.openCount = c?.n ?? 0;
    return this.openCount;
  }

  // --- internals --------------------------------------------------------------------------------

  private key(name: string): string {
    return this.base + (name.startsWith("=") || name.startsWith("#") ? `a:${name}` : name);
  }

  private countLock(): string {
    return `c:${this.scope}`;
  }

  private keyOf(key: unknown): string {
    const k = typeof key === "string" ? key : typeof key === "number" && Number.isFinite(key) ? String(key) : "";
    if (k === "") throw new OncallError("INVALID_PAYLOAD", say("emptyKey", this.lang));
    return k;
  }

  /**
   * With Redis, decisions wait up to 2 s after a start for its first connection (SPEC B6a) rather
   * than deciding on a local state that knows nothing of the shared alerts.
   */
  private settled(): Promise<void> {
    if (this.ready) return this.ready;
    if (this.state.backend !== "redis" || this.state.mode === "shared") return (this.ready = Promise.resolve());
    this.ready = new Promise<void>((resolve) => {
      const timer = setTimeout(done, OPEN_WAIT_MS);
      const off = this.state.onMode((mode) => {
        if (mode === "shared") done();
      });
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
    return this.ready;
  }

  /** An acknowledged or exhausted alert past its `keep` is forgotten: a firing opens a new one. */
  private forgotten(rec: Rec, now: number): boolean {
    return rec.st !== "o" && now >= rec.at + this.keepMs;
  }

  private async read(id: string): Promise<Rec | null> {
    return decode(id, parse<Stored>(await this.state.read(this.key(id))));
  }

  private ttl(rec: Rec, now: number): number {
    return (rec.st === "o" ? rec.at : rec.at + this.keepMs) - now + DAY;
  }

  private write(txn: Txn, id: string, rec: Rec): void {
    rec.kp = this.plan.keep;
    txn.setRec(this.key(id), id, rec, this.ttl(rec, txn.now));
  }

  /** Its deadline: the next step, or when it is forgotten. */
  private arm(id: string, rec: Rec): Promise<void> {
    return this.state.schedule(this.kind, id, rec.st === "o" ? rec.at : rec.at + this.keepMs);
  }

  /** The number locks a page of `rec` to `targets` needs: numbers taking a code, or that may bundle. */
  private pageLocks(rec: Rec, targets: string[], until: number): string[] {
    const all = this.plan.bundle > 0 || (rec.u ?? 0) < until;
    return (all ? [...new Set([...targets, ...Object.keys(rec.p)])] : targets.filter((m) => !rec.p[m])).map(
      (m) => `n:${m}`,
    );
  }

  /** The locks the next step of `rec` (read before taking them) will need at `now`. */
  private stepLocks(rec: Rec, now: number): string[] {
    const next = rec.st === "o" ? nextStep(this.plan, rec.s, rec.r) : null;
    if (!next) return [];
    return this.pageLocks(rec, this.rota.targets(this.plan.steps[next.s].to, now), rec.o + lifeBound(this.plan));
  }

  private async openAlert(k: string, id: string, text: string, sink?: Sink): Promise<Out[]> {
    // The first step's numbers all take a code: their locks with the count's, from the start.
    const first = this.rota.targets(this.plan.steps[0].to, this.clock.now()).map((m) => `n:${m}`);
    return transact(
      this.state,
      this.clock,
      [this.countLock(), ...first],
      async (txn): Promise<Out[]> => {
        const now = txn.now;
        const old = await txn.rec(this.key(id), id);
        // Opened meanwhile (another instance, another input): counted instead.
        if (old && !this.forgotten(old, now)) {
          old.n++;
          old.x = text;
          this.write(txn, id, old);
          return [];
        }
        const count = (await txn.get<{ n: number; u: number }>(this.key("n"))) ?? { n: 0, u: 0 };
        if (old) {
          // Forgotten but not yet cleaned up: its codes go now, and it leaves the count.
          await this.freeAll(txn, id, old);
          count.n = Math.max(0, count.n - 1);
        }
        if (count.n >= this.plan.maxOpen) {
          throw new OncallError("MAX_OPEN", say("maxOpen", this.lang, { key: k, max: this.plan.maxOpen }));
        }
        const rec: Rec = { k, g: gen(now), o: now, x: text, n: 1, s: 0, r: 0, st: "o", at: now, p: {} };
        const outs: Out[] = [this.event("opened", rec, [], null, now)];
        outs.push(...(await this.page(txn, id, rec)));
        count.n++;
        count.u = Math.max(count.u, now + lifeBound(this.plan));
        txn.set(this.key("n"), count, count.u - now + DAY);
        this.write(txn, id, rec);
        txn.after.push(() => this.arm(id, rec));
        txn.after.push(async () => {
          this.openCount = count.n;
        });
        this.noted(outs);
        return outs;
      },
      toSink(sink),
    );
  }

  /**
   * One step of an alert whose record `decide` looks at: "step" pages the next step (or ends the
   * chain), "delivered" notes a delivered page, `{ q }` counts a page's summary, "skip" does nothing.
   */
  private async transactStep(
    id: string,
    decide: (rec: Rec, now: number) => "step" | "skip" | "delivered" | { q: number },
    sink?: Sink,
    pre?: { raw: Versioned | null; rec: Rec; locks: string[] },
  ): Promise<Out[]> {
    return transact(
      this.state,
      this.clock,
      pre?.locks ?? [],
      async (txn): Promise<Out[]> => {
        const rec = await txn.rec(this.key(id), id);
        if (!rec) return [];
        const what = decide(rec, txn.now);
        if (what === "skip") return [];
        if (what === "delivered") {
          rec.d = 1;
          this.write(txn, id, rec);
          return [];
        }
        if (typeof what === "object") {
          rec.q = what.q;
          this.write(txn, id, rec);
          return [];
        }
        return this.stepIn(txn, id, rec);
      },
      toSink(sink),
      pre && new Map([[this.key(id), { raw: pre.raw, value: pre.rec }]]),
    );
  }

  /** The alert's next step (or the end of its chain) inside `txn`: what it emits. */
  private async stepIn(txn: Txn, id: string, rec: Rec): Promise<Out[]> {
    const now = txn.now;
    const next = nextStep(this.plan, rec.s, rec.r);
    let outs: Out[];
    if (!next) {
      rec.st = "e";
      rec.at = now;
      delete rec.q;
      delete rec.d;
      outs = [this.event("exhausted", rec, [], null, now)];
    } else {
      rec.s = next.s;
      rec.r = next.r;
      outs = await this.page(txn, id, rec);
    }
    this.write(txn, id, rec);
    txn.after.push(() => this.arm(id, rec));
    this.noted(outs);
    return outs;
  }

  /**
   * Due steps of several alerts in one transaction (a burst: many waits ending together): the
   * code tables they take codes from are read and written once, their locks taken once. Each
   * alert's step is decided exactly as alone; when the chunk keeps colliding with other changes
   * (another instance), each goes alone.
   */
  private async stepChunk(items: Array<{ id: string; sink?: Sink }>): Promise<Array<Out[]>> {
    await this.settled();
    const raws = await Promise.all(items.map((it) => this.state.read(this.key(it.id))));
    const now = this.clock.now();
    const recs = raws.map((raw, i) => decode(items[i].id, parse<Stored>(raw)));
    const steps: number[] = [];
    const alone: number[] = [];
    recs.forEach((rec, i) => (rec && rec.st === "o" && now >= rec.at ? steps : alone).push(i));
    const result: Array<Out[]> = items.map(() => []);
    if (steps.length > 1) {
      const locks = new Set<string>();
      for (const i of steps) for (const l of this.stepLocks(recs[i]!, now)) locks.add(l);
      const seed = new Map(steps.map((i) => [this.key(items[i].id), { raw: raws[i], value: recs[i] }] as const));
      try {
        await transact(
          this.state,
          this.clock,
          [...locks],
          async (txn) => {
            const outs = new Map<number, Out[]>();
            for (const i of steps) {
              const id = items[i].id;
              const rec = await txn.rec(this.key(id), id);
              outs.set(i, rec && rec.st === "o" && txn.now >= rec.at ? await this.stepIn(txn, id, rec) : []);
            }
            return outs;
          },
          (outs) => {
            for (const i of steps) {
              result[i] = outs.get(i) ?? [];
              toSink(items[i].sink)(result[i]);
            }
          },
          seed,
          3,
        );
      } catch (e) {
        if (!(e instanceof Contended)) throw e;
        alone.push(...steps);
      }
    } else alone.push(...steps);
    await Promise.all(alone.map(async (i) => (result[i] = await this.dueNow(items[i].id, items[i].sink))));
    return result;
  }

  /**
   * Pages the alert's current step (rec.s, rec.r) now: codes taken for numbers paged the first
   * time, pages to numbers inside a bundle window wait in it. Sets the next step's time.
   */
  private async page(txn: Txn, id: string, rec: Rec): Promise<Out[]> {
    const now = txn.now;
    const step = this.plan.steps[rec.s];
    const targets = this.rota.targets(step.to, now);
    const until = rec.o + lifeBound(this.plan);
    const bundling = this.plan.bundle > 0;
    // Locks first (numbers that take a code or may bundle), then the decisions.
    txn.need(...this.pageLocks(rec, targets, until));
    const extend = (rec.u ?? 0) < until;
    const hints = locksFor(this.state).hint;
    const now_: string[] = [];
    let msgs = 0;
    for (const m of targets) {
      if (!rec.p[m]) rec.p[m] = [await takeCode(txn, hints, m, this.scope, id, rec.g, until), 0];
      else if (extend) await extendCode(txn, m, rec.p[m][0], this.scope, id, rec.g, until);
    }
    if (extend) {
      // Options changed (a longer chain or keep): the entries of numbers paged before follow.
      for (const m of Object.keys(rec.p)) {
        if (!targets.includes(m)) await extendCode(txn, m, rec.p[m][0], this.scope, id, rec.g, until);
      }
      rec.u = until;
    }
    for (const m of targets) {
      if (bundling && (await this.intoBundle(txn, m, id, rec))) {
        msgs++;
        continue;
      }
      rec.p[m][1] = now;
      now_.push(m);
    }
    // Numbers with the same code get the same text: one SMS for them.
    const byCode = new Map<number, string[]>();
    for (const m of now_) {
      const c = rec.p[m][0];
      const list = byCode.get(c);
      if (list) list.push(m);
      else byCode.set(c, [m]);
    }
    const outs: Out[] = [];
    for (const [code, mobile] of byCode) {
      outs.push({
        port: 0,
        msg: {
          mobile,
          payload: rec.x + this.ackText(code),
          topic: rec.k,
          oncall: { kind: "page", key: rec.k, code, step: rec.s + 1, round: rec.r + 1, count: rec.n },
        },
      });
    }
    rec.q = msgs + byCode.size;
    delete rec.d;
    rec.at = now + step.wait * MIN;
    const first = rec.s === 0 && rec.r === 0;
    outs.push(this.event(first ? "notified" : "escalated", rec, targets, null, now));
    return outs;
  }

  /** Puts a page to `m` into its open bundle window (true), or opens a window for it (false: page now). */
  private async intoBundle(txn: Txn, m: string, id: string, rec: Rec): Promise<boolean> {
    const key = this.key(`b:${m}`);
    const b = await txn.get<Bundle>(key);
    const now = txn.now;
    if (b && b.u > now) {
      if (!b.i.some(([i, g]) => i === id && g === rec.g)) b.i.push([id, rec.g]);
      txn.set(key, b, b.u - now + DAY);
      txn.after.push(() => this.state.schedule(this.kind, `b${m}`, b.u));
      return true;
    }
    const u = now + this.plan.bundle * SEC;
    txn.set(key, { u, i: [] } satisfies Bundle, u - now + DAY);
    return false;
  }

  /** The end of a number's bundle window: one SMS for the pages that waited, unless settled since. */
  private async flushBundle(m: string, sink?: Sink): Promise<Out[]> {
    const key = this.key(`b:${m}`);
    return transact(
      this.state,
      this.clock,
      [`n:${m}`],
      async (txn): Promise<Out[]> => {
        const b = await txn.get<Bundle>(key);
        const now = txn.now;
        if (!b) return [];
        if (b.u > now) {
          txn.after.push(() => this.state.schedule(this.kind, `b${m}`, b.u));
          return [];
        }
        const recs = await txn.recs(
          b.i.map(([id]) => this.key(id)),
          b.i.map(([id]) => id),
        );
        const items: Array<{ id: string; rec: Rec }> = [];
        b.i.forEach(([id, g], i) => {
          const rec = recs[i];
          // Acknowledged or resolved since it waited: its page never leaves.
          if (rec && rec.g === g && (rec.st === "o" || rec.st === "e") && rec.p[m]) items.push({ id, rec });
        });
        if (!items.length) {
          txn.del(key);
          return [];
        }
        for (const { id, rec } of items) {
          rec.p[m][1] = now;
          this.write(txn, id, rec);
        }
        const u = now + this.plan.bundle * SEC;
        txn.set(key, { u, i: [] } satisfies Bundle, u - now + DAY);
        const alerts: BundledAlert[] = items.map(({ rec }) => ({
          key: rec.k,
          code: rec.p[m][0],
          step: rec.s + 1,
          round: rec.r + 1,
          count: rec.n,
        }));
        const first = alerts[0];
        const out: Out = {
          port: 0,
          msg: {
            mobile: [m],
            payload: this.bundleText(items.map(({ rec }) => ({ code: rec.p[m][0], text: rec.x }))),
            topic: first.key,
            oncall: { kind: "bundle", ...first, alerts },
          },
        };
        return [out];
      },
      toSink(sink),
    );
  }

  /** `3 alerts: #1 disk full; #2 cpu high; +1 more. Reply …` within two segments (signature included). */
  bundleText(items: Array<{ code: number; text: string }>): string {
    const lang = this.lang;
    const head = say("bundleHead", lang, { count: items.length });
    const tail = say("bundleTail", lang);
    const sep = say("bundleSep", lang);
    const budget = BUNDLE_MAX - (this.signature ? this.signature.length : 0) - head.length - tail.length;
    const parts: string[] = [];
    let used = 0;
    for (let i = 0; i < items.length; i++) {
      const left = items.length - i - 1;
      const more = left ? sep.length + say("bundleMore", lang, { count: left }).length : 0;
      const room = budget - used - (parts.length ? sep.length : 0) - more;
      const bare = say("bundleItem", lang, { code: items[i].code, text: "" });
      // Each text gets at most its share of the room, so more alerts can be named.
      const share = Math.max(8, Math.floor((budget - used) / Math.min(items.length - i, 3)) - bare.length);
      const maxText = Math.min(room - bare.length, share);
      if (maxText < 4) {
        parts.push(say("bundleMore", lang, { count: items.length - i }));
        break;
      }
      const t = items[i].text.length > maxText ? items[i].text.slice(0, maxText - 1) + "…" : items[i].text;
      const item = say("bundleItem", lang, { code: items[i].code, text: t });
      used += (parts.length ? sep.length : 0) + item.length;
      parts.push(item);
    }
    return head + parts.join(sep) + tail;
  }

  /** Acknowledges `rec` (already read in `txn`): the record changes; returns what to tell. */
  private acked(txn: Txn, id: string, rec: Rec, by: string | null): OutItem {
    const now = txn.now;
    rec.st = "a";
    rec.at = now;
    rec.by = by;
    delete rec.q;
    delete rec.d;
    this.write(txn, id, rec);
    const code = by && rec.p[by] ? rec.p[by][0] : 0;
    return {
      e: "acknowledged",
      k: rec.k,
      s: rec.s,
      r: rec.r,
      n: rec.n,
      by: by ?? "",
      c: code,
      x: rec.x,
      to: [],
      at: now,
    };
  }

  /** Deletes an alert: its codes freed, the count lowered. */
  private async retire(txn: Txn, id: string, rec: Rec): Promise<void> {
    const count = (await txn.get<{ n: number; u: number }>(this.key("n"))) ?? { n: 1, u: txn.now };
    await this.freeAll(txn, id, rec);
    txn.del(this.key(id));
    count.n = Math.max(0, count.n - 1);
    txn.set(this.key("n"), count, Math.max(count.u - txn.now, 0) + DAY);
    txn.after.push(async () => {
      this.openCount = count.n;
      await this.state.cancel(this.kind, id);
    });
  }

  private async freeAll(txn: Txn, id: string, rec: Rec): Promise<void> {
    const numbers = Object.keys(rec.p);
    txn.need(...numbers.map((m) => `n:${m}`));
    for (const m of numbers) await freeCode(txn, m, rec.p[m][0], this.scope, id, rec.g);
  }

  private async drainOutbox(sink?: Sink): Promise<Out[]> {
    let outs: Out[] = [];
    const items = await transact(
      this.state,
      this.clock,
      [],
      async (txn) => {
        const list = (await txn.get<OutItem[]>(this.key("o"))) ?? [];
        if (list.length) txn.del(this.key("o"));
        return list;
      },
      (list) => {
        outs = list.flatMap((it) => this.itemOuts(it, true));
        this.noted(outs);
        toSink(sink)(outs);
      },
    );
    if (items.some((it) => it.e === "closed")) await this.refreshCount();
    return outs;
  }

  /** What an acknowledgement or a close tells: the event, the confirm, and for a close the others. */
  private itemOuts(it: OutItem, confirm: boolean): Out[] {
    const rec = { k: it.k, s: it.s, r: it.r, n: it.n };
    const by = it.by || null;
    if (it.e === "acknowledged") {
      const outs: Out[] = [];
      if (confirm && by) outs.push(this.notify("confirm", rec, [by], say("confirm", this.lang, { text: it.x }), it.c));
      outs.push(this.event("acknowledged", rec, [], by, it.at));
      this.noted(outs);
      return outs;
    }
    const outs: Out[] = [this.notify("confirm", rec, [it.by], say("closedConfirm", this.lang, { text: it.x }), it.c)];
    const others = this.plan.resolvedNotify === "none" ? [] : it.to.filter((m) => m !== it.by);
    if (others.length)
      outs.push(this.notify("resolved", rec, others, say("resolved", this.lang, { text: it.x }), null));
    outs.push(this.event("closed", rec, others, by, it.at));
    return outs;
  }

  /** The resolved SMS (to every number a page reached, unless `resolvedNotify` is none) and event. */
  private resolvedOuts(rec: Rec, now: number): Out[] {
    const to = this.plan.resolvedNotify === "none" ? [] : reached(rec);
    const outs: Out[] = [];
    if (to.length) outs.push(this.notify("resolved", rec, to, say("resolved", this.lang, { text: rec.x }), null));
    outs.push(this.event("resolved", rec, to, null, now));
    this.noted(outs);
    return outs;
  }

  private notify(
    kind: NotifyKind,
    rec: { k: string; s: number; r: number; n: number },
    mobile: string[],
    payload: string,
    code: number | null,
  ): Out {
    return {
      port: 0,
      msg: {
        mobile,
        payload,
        topic: rec.k,
        oncall: { kind, key: rec.k, code, step: rec.s + 1, round: rec.r + 1, count: rec.n },
      },
    };
  }

  private event(
    event: EventName,
    rec: { k: string; s: number; r: number; n: number },
    to: string[],
    by: string | null,
    at: number,
  ): Out {
    return {
      port: 1,
      msg: {
        topic: rec.k,
        payload: {
          event,
          key: rec.k,
          step: rec.s + 1,
          round: rec.r + 1,
          to: [...to],
          by,
          at: this.iso(at),
          count: rec.n,
        },
      },
    };
  }

  private isoCache = { ms: NaN, text: "" };

  /** ISO time in the account's offset; a burst of events in one second formats it once. */
  private iso(ms: number): string {
    const sec = Math.floor(ms / SEC);
    if (sec !== this.isoCache.ms) this.isoCache = { ms: sec, text: formatInstant(sec * SEC, this.offset) };
    return this.isoCache.text;
  }

  private ackParts: [string, string] | null = null;

  /** ` Reply 3 to ack` / ` 回复3确认` (the template split once). */
  private ackText(code: number): string {
    if (!this.ackParts) {
      const [a, b] = TEXTS.ack[this.lang].split("{code}");
      this.ackParts = [a, b];
    }
    return this.ackParts[0] + code + this.ackParts[1];
  }

  private noted(outs: Out[]): void {
    for (let i = outs.length - 1; i >= 0; i--) {
      const o = outs[i];
      if (o.port === 1) {
        this.last = { event: o.msg.payload.event, key: o.msg.payload.key, at: this.clock.now() };
        return;
      }
    }
  }

  // The reply desk uses these (one desk per account state serves every node's alerts).

  /** @internal a reply's decision on one node's alerts: acknowledge or close them, one `cas`. */
  static async answer(
    state: AccountState,
    clock: Clock,
    owner: string,
    targets: Array<{ id: string; gen: string }>,
    from: string,
    action: "ack" | "close",
  ): Promise<boolean> {
    const base = `oncall:${owner}:`;
    const recKey = (id: string) => `${base}a:${id}`;
    const kind = `oncall:${owner}`;
    const locks = action === "close" ? [`c:${owner}`] : [];
    const done = await transact(state, clock, locks, async (txn) => {
      const now = txn.now;
      const recs = await txn.recs(
        targets.map((t) => recKey(t.id)),
        targets.map((t) => t.id),
      );
      const items: OutItem[] = [];
      const ids: string[] = [];
      for (let i = 0; i < targets.length; i++) {
        const rec = recs[i];
        const { id, gen: g } = targets[i];
        // Settled already (acknowledged, resolved, a newer alert with the key): nothing changes.
        if (!rec || rec.g !== g || !rec.p[from] || isForgotten(rec, now)) continue;
        if (action === "ack") {
          if (rec.st === "a") continue;
          rec.st = "a";
          rec.at = now;
          rec.by = from;
          delete rec.q;
          delete rec.d;
          txn.setRec(recKey(id), id, rec, REPLY_TTL);
          items.push({
            e: "acknowledged",
            k: rec.k,
            s: rec.s,
            r: rec.r,
            n: rec.n,
            by: from,
            c: rec.p[from][0],
            x: rec.x,
            to: [],
            at: now,
          });
        } else {
          const numbers = Object.keys(rec.p);
          txn.need(...numbers.map((m) => `n:${m}`));
          for (const m of numbers) await freeCode(txn, m, rec.p[m][0], owner, id, g);
          txn.del(recKey(id));
          const count = (await txn.get<{ n: number; u: number }>(`${base}n`)) ?? { n: 1, u: now };
          count.n = Math.max(0, count.n - 1);
          txn.set(`${base}n`, count, Math.max(count.u - now, 0) + DAY);
          items.push({
            e: "closed",
            k: rec.k,
            s: rec.s,
            r: rec.r,
            n: rec.n,
            by: from,
            c: rec.p[from][0],
            x: rec.x,
            to: reached(rec),
            at: now,
          });
        }
        ids.push(id);
      }
      if (!items.length) return null;
      const box = (await txn.get<OutItem[]>(`${base}o`)) ?? [];
      box.push(...items);
      txn.set(`${base}o`, box, 2 * DAY);
      return { ids, now };
    });
    if (!done) return false;
    // The outbox goes out from the instance running the node; the steps move to now, where the
    // handler finds them settled (the step deadline is cancelled, the forget one set).
    await Promise.all([
      state.schedule(kind, "o", done.now),
      ...done.ids.map((id) => (action === "close" ? state.cancel(kind, id) : state.schedule(kind, id, done.now))),
    ]);
    return true;
  }
}

/** The numbers a page of this alert reached (not those whose page still waits in a bundle). */
function reached(rec: Rec): string[] {
  return Object.keys(rec.p).filter((m) => rec.p[m][1] > 0);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

// --- replies: one desk per account state in this process ---------------------------------------

/**
 * Reads every inbound SMS of the account (its inbox) as an answer to pages, for the alerts of
 * every on-call node of the account (any instance's: the code tables are shared). Listens while
 * at least one on-call node of the account runs in this process.
 */
export class ReplyDesk {
  private users = 0;
  private off: (() => void) | null = null;
  /** the last answer's work (tests and the benchmark wait for it) */
  last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly state: AccountState,
    private readonly clock: Clock,
  ) {}

  join(): () => void {
    if (this.users++ === 0)
      this.off = inboxFor(this.state).listen((m) => {
        const p = this.take(m);
        this.last = p;
        return p.then(() => undefined);
      });
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (--this.users === 0) {
        this.off?.();
        this.off = null;
      }
    };
  }

  /** One inbound SMS: acknowledges or closes what it names; true when it changed something. */
  async take(m: Inbound): Promise<boolean> {
    const reply = parseReply(m.text);
    if (!reply || typeof m.mobile !== "string" || !m.mobile) return false;
    const from = m.mobile;
    const action = reply.kind === "code" ? reply.action : "ack";
    // "The latest unacknowledged": when the one chosen was settled meanwhile (another reply,
    // another instance), the choice is made again, as if the replies had come one after another.
    for (let attempt = 0; attempt < 20; attempt++) {
      const now = this.clock.now();
      const entries =
        reply.kind === "code"
          ? ((parse<Entry[]>(await this.state.read(bucketKey(from, bucketOf(reply.code)))) ?? []).filter(
              (e) => e[0] === reply.code && alive(e, now),
            ) as Entry[])
          : await entriesOf(this.state, from, now);
      if (!entries.length) return false;
      const chosen = reply.kind === "code" ? entries : await this.unacknowledged(from, entries, reply);
      if (!chosen.length) return false;
      const byOwner = new Map<string, Array<{ id: string; gen: string }>>();
      for (const e of chosen) {
        const list = byOwner.get(e[1]);
        const t = { id: e[2], gen: e[3] };
        if (list) list.push(t);
        else byOwner.set(e[1], [t]);
      }
      const results = await Promise.all(
        [...byOwner].map(([owner, targets]) => OnCall.answer(this.state, this.clock, owner, targets, from, action)),
      );
      if (results.some(Boolean) || reply.kind !== "latest") return results.some(Boolean);
    }
    return false;
  }

  /** The alerts paged to `from` still unacknowledged: the latest of them, or all. */
  private async unacknowledged(from: string, entries: Entry[], reply: Reply): Promise<Entry[]> {
    const now = this.clock.now();
    const recs = await Promise.all(
      entries.map((e) => this.state.read(`oncall:${e[1]}:a:${e[2]}`).then((v) => decode(e[2], parse<Stored>(v)))),
    );
    const open = entries
      .map((e, i) => ({ e, rec: recs[i] }))
      .filter(
        ({ e, rec }) => rec && rec.g === e[3] && rec.st !== "a" && rec.p[from] && !isForgotten(rec, now),
      ) as Array<{
      e: Entry;
      rec: Rec;
    }>;
    if (reply.kind === "all") return open.map((x) => x.e);
    let best: { e: Entry; rec: Rec } | null = null;
    for (const x of open) {
      const t = x.rec.p[from][1];
      const bt = best?.rec.p[from][1] ?? -1;
      if (!best || t > bt || (t === bt && x.e[0] > best.e[0])) best = x;
    }
    return best ? [best.e] : [];
  }
}

const desks = new WeakMap<AccountState, ReplyDesk>();

/** The account state's reply desk: one per state, shared by every on-call node in this process. */
export function repliesFor(state: AccountState, clock: Clock = systemClock): ReplyDesk {
  let d = desks.get(state);
  if (!d) desks.set(state, (d = new ReplyDesk(state, clock)));
  return d;
}
