// Delivery tracking (SPEC B7): which numbers of one platform request (one msgid) got a final
// report. It lives in the account state, so every sms-send and sms-receive of the account shares
// it (in this process with `memory`, in every instance with `redis`) and a redeploy keeps it.
// sms-send opens a request after its reply and emits the summary its deadline hands back;
// sms-receive reports each delivery report it emits.
//
// Per tracked request (msgid) the state holds: a tally of its numbers (each marked once: the
// first report wins), a small record (owner, sentAt, batch), with `redis` the msg's JSON, and a
// deadline of kind `track:<owner>` at sentAt + timeout, moved to "now" when the last number is
// marked. Whoever takes the tally (exactly one caller, across instances) emits the summary.
import type { Clock } from "../clock";
import { systemClock } from "../clock";
import { CodeTable } from "../platform/codes";
import type { AccountState, Mark } from "../state/index";
import { formatInstant } from "../platform/time";

/** `trackTimeout` is at most 2880 minutes (SPEC B7). */
// The setting's rule lives with the other settings (props.ts, which the editor loads too).
import { DEFAULT_TRACK_TIMEOUT_MS, MAX_TRACK_TIMEOUT_MS } from "../props";
export { DEFAULT_TRACK_TIMEOUT_MS, MAX_TRACK_TIMEOUT_MS, parseTrackTimeout } from "../props";
/** A report for a msgid not opened yet (it beat the send reply) is kept this long (SPEC B7). */
export const EARLY_MS = 5 * 60_000;
/** Most such reports kept per msgid: a request's 50,000 numbers plus room for duplicates. */
export const EARLY_MAX = 60_000;
/**
 * How long a send's state outlives its deadline: a deadline that comes due while no instance runs
 * its node (a restart, a Node-RED down for hours) still finds its tally when one does (SPEC B6a).
 */
export const MARGIN_MS = 24 * 3600_000;
/**
 * A request whose reply came after its timeout is summed up right after its tally exists. Its
 * deadline is set before the tally, this much later: if setting it "now" afterwards fails, the
 * summary still comes.
 */
const LATE_GRACE_MS = 30_000;
/** With `redis`, the msg kept for the summary is at most this many bytes of JSON (SPEC B7). */
export const MAX_MSG_BYTES = 64 * 1024;

// "Tracking in use", so reports nobody waits for cost nothing: the state holds when a tracked send
// last started on the account (written at most once per ACTIVE_REFRESH_MS per instance; a later
// start only ever raises it, so instances never undo each other). While a send may still take
// reports (the longest timeout plus the margin after that start) every report is matched; while
// one may be in flight (ACTIVE_MS) a report for an unknown msgid is kept for its open. Another
// instance's "not in use" answer is trusted for NEGATIVE_CACHE_MS.
const ACTIVE_MS = 10 * 60_000;
const ACTIVE_REFRESH_MS = 60_000;
const NEGATIVE_CACHE_MS = 250;
const MARKER_TTL_MS = MAX_TRACK_TIMEOUT_MS + MARGIN_MS + ACTIVE_REFRESH_MS;
/** Expired local entries (only left by sends nobody finished here) are looked for this often. */
const SWEEP_MS = 10_000;

const DELIVERED = "DELIVRD";

const tallyKey = (msgid: string) => `track:t:${msgid}`;
const recordKey = (msgid: string) => `track:r:${msgid}`;
const msgKey = (msgid: string) => `track:m:${msgid}`;
const earlyKey = (msgid: string) => `track:e:${msgid}`;
const ACTIVE_KEY = "track:on";

/** The deadline kind of an owner's (a send node's) tracked requests. */
export function trackKind(owner: string): string {
  return `track:${owner}`;
}

export interface Batch {
  /** 1-based */
  index: number;
  count: number;
}

/** One platform request to track, after its reply gave a msgid. */
export interface TrackOpen {
  msgid: string;
  /** the request's numbers, normalised as sms-receive normalises reported ones */
  mobiles: readonly string[];
  /** the sms-send node's id: its deadline handler emits the summary */
  owner: string;
  /** ms since the epoch (the state's clock): when the request was sent */
  sentAt: number;
  /** `trackTimeout` in ms; clamped to 48 h */
  timeoutMs: number;
  batch: Batch;
  /**
   * The input msg. With `memory` this object is kept as it is, but for `req`/`res` (pass a clone
   * if the flow goes on changing it); with `redis` its JSON-safe properties are, serialised at its
   * first open: pass the same object to each request of a send and do not change it between them.
   */
  msg: Record<string, unknown>;
}

export interface Opened {
  /** every number already had a report (they beat the reply): the summary is due now */
  complete: boolean;
  /** reports that arrived before the reply and were applied now */
  early: number;
  /** msg properties left out of what `redis` keeps (not JSON, or beyond 64 KiB); always [] with memory */
  dropped: string[];
}

/**
 * What report() did: `marked` (a pending number got its status), `complete` (it was the last
 * one: the summary is due), `duplicate` (already final), `stranger` (not a number of that send),
 * `early` (no such send yet: kept 5 minutes for its open), `ignored` (no such send, and no send
 * of the account is tracked now).
 */
export type ReportOutcome = "marked" | "complete" | "duplicate" | "stranger" | "early" | "ignored";

export interface Failed {
  mobile: string;
  status: string;
  description: string;
}

/** `msg.payload` of a summary (SPEC B7). */
export interface SummaryPayload {
  /** null when the platform gave the request no msgid: nothing could ever be matched to it */
  msgid: string | null;
  total: number;
  delivered: string[];
  failed: Failed[];
  pending: string[];
  /** pending is empty */
  complete: boolean;
  /** ISO in the account's offset; null only when the send's record was lost (evicted) */
  sentAt: string | null;
  doneAt: string;
  /** null only when the send's record was lost (evicted) */
  batch: Batch | null;
}

export type SummaryMsg = Record<string, unknown> & { msgid: string | null; payload: SummaryPayload };

/**
 * The summary of a request that cannot be tracked (no msgid from the platform, or tracking could
 * not start): every number pending, at once, so a flow waiting for it (an escalation) goes on.
 */
export function untrackedSummary(
  msg: Record<string, unknown>,
  o: {
    msgid: string | null;
    mobiles: readonly string[];
    sentAt: number;
    now: number;
    batch: Batch;
    offsetMinutes: number;
  },
): SummaryMsg {
  const payload: SummaryPayload = {
    msgid: o.msgid,
    total: o.mobiles.length,
    delivered: [],
    failed: [],
    pending: [...o.mobiles].sort(byText),
    complete: o.mobiles.length === 0,
    sentAt: formatInstant(o.sentAt, o.offsetMinutes),
    doneAt: formatInstant(o.now, o.offsetMinutes),
    batch: { index: o.batch.index, count: o.batch.count },
  };
  return { ...msg, msgid: o.msgid, payload };
}

export interface SummaryFormat {
  /** the account's UTC offset in minutes (sms-config `tz`); default +08:00 */
  offsetMinutes?: number;
  /** a status's text (the config's CodeTable in the runtime's language); default en-US */
  describe?: (status: string) => string;
}

export interface SummaryListener extends SummaryFormat {
  summary(msg: SummaryMsg): void;
  /** the state failed while finishing `msgid` (its deadline fires again later) */
  error?(e: unknown, msgid: string): void;
}

export interface TrackerOptions {
  clock?: Clock;
}

interface Record_ {
  owner: string;
  sentAt: number;
  batch: Batch;
}

interface Local {
  owner: string;
  /** memory only: the input msg itself */
  msg?: Record<string, unknown>;
  record: Record_;
  /** when this process stops counting it (see tracking()) */
  until: number;
}

const trackers = new WeakMap<AccountState, Tracker>();

/** The account state's tracker: one per state, shared by every node of the account in this process. */
export function trackerFor(state: AccountState, opts: TrackerOptions = {}): Tracker {
  let t = trackers.get(state);
  if (!t) trackers.set(state, (t = new Tracker(state, opts)));
  return t;
}

export class Tracker {
  private readonly clock: Clock;
  /** `redis` (also while failing over to local): the msg is kept as JSON, "in use" is shared */
  private readonly shared: boolean;
  private readonly local = new Map<string, Local>();
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly serialisedMsgs = new WeakMap<object, { json: string; dropped: string[] }>();
  private nextSweep = 0;
  /** the latest start of a tracked send known here: our own, or read from the state */
  private lastStart = -Infinity;
  private writtenStart = -Infinity;
  private checkedAt = -Infinity;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly state: AccountState,
    opts: TrackerOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.shared = state.backend === "redis";
  }

  /**
   * A tracked send is about to start: from now on reports of the account are matched, and for 10
   * minutes reports for msgids not opened yet are kept (one may beat its reply). open() does it
   * too; sms-send awaits it before each tracked send, so another instance knows before the
   * platform can report anything (one state write per minute at most). Never rejects.
   */
  async expect(): Promise<void> {
    const now = this.clock.now();
    this.lastStart = Math.max(this.lastStart, now);
    if (!this.shared || now - this.writtenStart < ACTIVE_REFRESH_MS) return;
    this.writtenStart = now;
    const mode = this.state.mode;
    try {
      await this.state.put(ACTIVE_KEY, String(now), MARKER_TTL_MS);
    } catch {
      this.writtenStart = -Infinity;
    }
    // Written while the state ran locally (Redis connecting at a start, or down): other instances
    // did not see it, and would ignore the reports of this send for a minute. Write it again next time.
    if (mode !== "shared" || this.state.mode !== "shared") this.writtenStart = -Infinity;
  }

  /**
   * Starts tracking one platform request. Reports that beat it are applied; when they complete
   * it, its summary is due at once. Open each msgid once.
   */
  async open(o: TrackOpen): Promise<Opened> {
    const msgid = String(o.msgid);
    if (!msgid || !o.owner) throw new TypeError("open() needs a msgid and an owner");
    const now = this.clock.now();
    const timeoutMs = Math.min(Math.max(1, Number(o.timeoutMs) || DEFAULT_TRACK_TIMEOUT_MS), MAX_TRACK_TIMEOUT_MS);
    const due = o.sentAt + timeoutMs;
    // Past its deadline already (the reply took longer than the timeout): summed up right after
    // the tally exists, never before (a deadline firing first would find nothing to sum up).
    const late = due <= now;
    const ttl = Math.max(0, due - now) + MARGIN_MS;
    const kind = trackKind(o.owner);
    const record: Record_ = { owner: o.owner, sentAt: o.sentAt, batch: { index: o.batch.index, count: o.batch.count } };
    let dropped: string[] = [];
    this.remember(msgid, {
      owner: o.owner,
      // With memory the msg object itself is kept, without the HTTP request and response an
      // http-in flow carries (SPEC B9a: nothing held for days that Redis would not keep either).
      msg: this.shared ? undefined : withoutHttp(o.msg),
      record,
      // With memory the msg must outlive a deadline that waits for a redeploy; with redis this is
      // only for counting (another instance may have finished it: we cannot know).
      until: this.shared ? Math.max(due, now) : Math.max(due, now) + MARGIN_MS,
    });
    try {
      // Record (and msg) before the tally: whoever marks its last number reads the owner there.
      // The deadline before the tally too: the last mark moves it to now, and must not be undone.
      const writes: Array<Promise<unknown>> = [
        this.expect(),
        this.state.put(recordKey(msgid), JSON.stringify(record), ttl),
        this.state.schedule(kind, msgid, late ? now + LATE_GRACE_MS : due),
      ];
      if (this.shared) {
        const kept = this.serialised(o.msg);
        dropped = kept.dropped;
        writes.push(this.state.put(msgKey(msgid), kept.json, ttl));
      }
      await Promise.all(writes);
      await this.state.tally(tallyKey(msgid), o.mobiles, ttl);
    } catch (e) {
      // Nothing is tracked: the caller sums it up now (every number pending).
      this.forget(msgid);
      await this.state.cancel(kind, msgid).catch(() => undefined);
      throw e;
    }
    // The tally exists: from here on its deadline sums it up, whatever fails below (SPEC B6a: one
    // summary per request; a failure here must not make the caller send a second one).
    let applied = 0;
    let complete = o.mobiles.length === 0;
    try {
      // Reports that beat the reply. One racing with this open finds the tally on its second look.
      const early = fresh(await this.state.takeList(earlyKey(msgid)), this.clock.now());
      if (early.length) {
        // Issued in arrival order (one connection keeps it): the first report still wins.
        const marks = await Promise.all(
          early.map(([mobile, status]) => this.state.mark(tallyKey(msgid), mobile, status)),
        );
        for (const m of marks) {
          if (m.result !== "marked") continue;
          applied++;
          if (m.left === 0) complete = true;
        }
      }
    } catch {
      // The early reports stay where they are: the summary at the deadline reads them.
    }
    if (complete || late) await this.state.schedule(kind, msgid, this.clock.now()).catch(() => undefined);
    return { complete, early: applied, dropped };
  }

  /**
   * One delivery report, from any sms-receive of the account (after its own dedupe). The common
   * case (a tracked send, not its last number) is one state operation.
   */
  async report(msgid: string, mobile: string, status: string): Promise<ReportOutcome> {
    const id = String(msgid ?? "");
    // A report without a msgid or number belongs to no send (sms-receive refuses those anyway).
    if (!id || !mobile) return "ignored";
    // An account that tracks nothing: no state operation at all.
    if (!this.usage().match && !(await this.lookAgain()).match) return "ignored";
    const key = tallyKey(id);
    const first = await this.state.mark(key, mobile, status);
    if (first.result !== "unknown") return this.after(id, first);
    if (!this.usage().keep && !(await this.lookAgain()).keep) return "ignored";
    await this.state.append(earlyKey(id), [encodeEarly(mobile, status, this.clock.now())], EARLY_MAX, EARLY_MS);
    // The send may have opened between our two steps, after it looked for early reports: look
    // again. If it still is not there, its open() will find what we appended.
    const again = await this.state.mark(key, mobile, status);
    return again.result === "unknown" ? "early" : this.after(id, again);
  }

  /**
   * The msg as `redis` keeps it. The requests of one send share their msg (a personalised send's
   * msg.mobile may hold 100,000 recipient objects, for as many requests): serialised once.
   */
  private serialised(msg: Record<string, unknown>): { json: string; dropped: string[] } {
    let kept = this.serialisedMsgs.get(msg);
    if (!kept) this.serialisedMsgs.set(msg, (kept = jsonSafe(msg)));
    return kept;
  }

  /** match: a tracked send may still take reports; keep: one may be in flight (reports can beat its reply) */
  private usage(): { match: boolean; keep: boolean } {
    const now = this.clock.now();
    // What another instance wrote is up to a refresh older than its real last start.
    const slack = this.shared ? ACTIVE_REFRESH_MS : 0;
    const keep = now < this.lastStart + ACTIVE_MS + slack;
    if (keep) return { match: true, keep };
    if (!this.shared) return { match: this.tracked(), keep };
    return { match: now < this.lastStart + MAX_TRACK_TIMEOUT_MS + MARGIN_MS + slack, keep };
  }

  /** With memory this tracker sees every open of the account; otherwise another instance may have. */
  private tracked(): boolean {
    this.sweep();
    return this.local.size > 0;
  }

  /** usage() after reading the state's marker, unless read within NEGATIVE_CACHE_MS. */
  private async lookAgain(): Promise<{ match: boolean; keep: boolean }> {
    if (!this.shared) return this.usage();
    // Reports arriving while a look is under way wait for its answer, not the previous one.
    if (!this.checking) {
      const now = this.clock.now();
      if (now - this.checkedAt < NEGATIVE_CACHE_MS) return this.usage();
      this.checkedAt = now;
      this.checking = this.state
        .get(ACTIVE_KEY)
        .then((v) => {
          const start = Number(v);
          if (v !== null && Number.isFinite(start)) this.lastStart = Math.max(this.lastStart, start);
        })
        .catch(() => undefined)
        .finally(() => (this.checking = null));
    }
    await this.checking;
    return this.usage();
  }

  private async after(msgid: string, m: Mark): Promise<ReportOutcome> {
    if (m.result === "duplicate" || m.result === "stranger") return m.result;
    if (m.left > 0) return "marked";
    // The last number: the summary is due now. Exactly one mark sees left 0.
    const owner = this.local.get(msgid)?.owner ?? (await this.readRecord(msgid))?.owner;
    // Without the record (evicted) the deadline at the timeout still sums it up.
    if (owner) await this.state.schedule(trackKind(owner), msgid, this.clock.now());
    return "complete";
  }

  /**
   * Sums up one request and forgets it: the summary msg, or null when someone else (another
   * instance, a drop) already did or it expired. Called by the owner's deadline (see listen()).
   */
  async finish(msgid: string, fmt: SummaryFormat = {}): Promise<SummaryMsg | null> {
    const id = String(msgid);
    const tally = await this.state.takeTally(tallyKey(id));
    const local = this.local.get(id);
    this.forget(id);
    if (!tally) return null;
    // The tally is ours from here: nothing may lose the summary now, so failures below degrade.
    // Read, then removed: a removal whose answer is lost may have run, a read may be asked again.
    const [recordRaw, msgRaw, early] = await Promise.all([
      this.state.get(recordKey(id)).catch(() => null),
      this.shared ? this.state.get(msgKey(id)).catch(() => null) : Promise.resolve(null),
      this.state.takeList(earlyKey(id)).catch(() => [] as string[]),
    ]);
    void this.state.take(recordKey(id)).catch(() => undefined);
    if (this.shared) void this.state.take(msgKey(id)).catch(() => undefined);
    const record = parseRecord(recordRaw) ?? local?.record ?? null;
    let pending = tally.pending;
    const late = fresh(early, this.clock.now());
    if (late.length) {
      // Left by a report that raced with this finish (its mark found no tally): still in time.
      const open = new Set(pending);
      for (const [mobile, status] of late) if (open.delete(mobile)) tally.marks.set(mobile, status);
      pending = [...open];
    }
    const offset = fmt.offsetMinutes ?? 480;
    const describe = fmt.describe ?? defaultDescribe;
    const delivered: string[] = [];
    const failed: Failed[] = [];
    for (const [mobile, status] of tally.marks) {
      if (status === DELIVERED) delivered.push(mobile);
      else failed.push({ mobile, status, description: describe(status) });
    }
    // Sorted: the same summary whatever order the reports (and the state) kept them in.
    delivered.sort(byText);
    failed.sort((a, b) => byText(a.mobile, b.mobile));
    pending = pending.slice().sort(byText);
    const payload: SummaryPayload = {
      msgid: id,
      total: tally.marks.size + pending.length,
      delivered,
      failed,
      pending,
      complete: pending.length === 0,
      sentAt: record ? formatInstant(record.sentAt, offset) : null,
      doneAt: formatInstant(this.clock.now(), offset),
      batch: record ? { ...record.batch } : null,
    };
    // A new object: the batches of one send share their input msg.
    const base = this.shared ? parseMsg(msgRaw) : (local?.msg ?? {});
    return { ...base, msgid: id, payload };
  }

  /**
   * Hands the owner's due summaries to `on.summary` (the sms-send node with that id; call again
   * from the replacing node after a redeploy). Returns the function that stops it (node close); it
   * resolves when the summaries under way have left (so none leaves through a closed node).
   */
  listen(owner: string, on: SummaryListener): () => Promise<void> {
    const kind = trackKind(owner);
    const busy = new Set<Promise<void>>();
    let stopped = false;
    const off = this.state.onDue(kind, (msgid) => {
      // Stopped meanwhile: this deadline is the replacing node's (failing gives it back).
      if (stopped) return Promise.reject(new Error("stopped"));
      const p = this.deliver(msgid, on);
      busy.add(p);
      const settle = () => void busy.delete(p);
      p.then(settle, settle);
      return p;
    });
    return async () => {
      stopped = true;
      off();
      await Promise.allSettled([...busy]);
    };
  }

  /** The handler's work: its promise rejects when the state failed (the deadline fires again). */
  private async deliver(msgid: string, on: SummaryListener): Promise<void> {
    let msg: SummaryMsg | null;
    try {
      msg = await this.finish(msgid, on);
    } catch (e) {
      safely(() => on.error?.(e, msgid));
      throw e;
    }
    if (msg) safely(() => on.summary(msg));
  }

  /**
   * A send node removed for good: its deadlines, tallies and records are discarded. Returns how
   * many tracked requests were dropped (for its one log line).
   */
  async drop(owner: string): Promise<number> {
    const ids = new Set(await this.state.drain(trackKind(owner)));
    for (const id of this.byOwner.get(owner) ?? []) ids.add(id);
    const taken = await Promise.all([...ids].map((id) => this.discard(id)));
    return taken.filter(Boolean).length;
  }

  private async discard(msgid: string): Promise<boolean> {
    this.forget(msgid);
    const [tally] = await Promise.all([
      this.state.takeTally(tallyKey(msgid)),
      this.state.take(recordKey(msgid)),
      this.shared ? this.state.take(msgKey(msgid)) : null,
      this.state.takeList(earlyKey(msgid)),
    ]);
    return tally !== null;
  }

  /**
   * How many requests of `owner` are being tracked, as far as this process knows: exact with
   * `memory`. With `redis`, the requests opened or finished here; one finished by another
   * instance is counted until its timeout.
   */
  tracking(owner: string): number {
    this.sweep();
    return this.byOwner.get(owner)?.size ?? 0;
  }

  private async readRecord(msgid: string): Promise<Record_ | null> {
    return parseRecord(await this.state.get(recordKey(msgid)));
  }

  private remember(msgid: string, entry: Local): void {
    this.sweep();
    const old = this.local.get(msgid);
    if (old) this.byOwner.get(old.owner)?.delete(msgid);
    this.local.set(msgid, entry);
    let ids = this.byOwner.get(entry.owner);
    if (!ids) this.byOwner.set(entry.owner, (ids = new Set()));
    ids.add(msgid);
  }

  private forget(msgid: string): void {
    const e = this.local.get(msgid);
    if (!e) return;
    this.local.delete(msgid);
    const ids = this.byOwner.get(e.owner);
    ids?.delete(msgid);
    if (ids && !ids.size) this.byOwner.delete(e.owner);
  }

  private sweep(): void {
    const now = this.clock.now();
    if (now < this.nextSweep) return;
    this.nextSweep = now + SWEEP_MS;
    for (const [msgid, e] of this.local) if (e.until <= now) this.forget(msgid);
  }
}

const defaultCodes = new CodeTable("en-US");
const defaultDescribe = (status: string) => defaultCodes.status(status);

function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A listener's failure is its own (the node reports it); the tracker goes on.
  }
}

// An early report carries its arrival time: the list lives 5 minutes after its *last* append
// (and Redis expires it by real time only), while each report is kept 5 minutes from its own.
function encodeEarly(mobile: string, status: string, at: number): string {
  return JSON.stringify([mobile, status, at]);
}

/** The early reports still in time, in arrival order: [mobile, status]. */
function fresh(items: readonly string[], now: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const item of items) {
    try {
      const v = JSON.parse(item) as unknown;
      if (!Array.isArray(v) || typeof v[0] !== "string" || typeof v[1] !== "string") continue;
      if (typeof v[2] === "number" && now - v[2] < EARLY_MS) out.push([v[0], v[1]]);
    } catch {
      // Not ours (a different version?): matches nothing.
    }
  }
  return out;
}

function parseRecord(raw: string | null): Record_ | null {
  if (raw === null) return null;
  try {
    const r = JSON.parse(raw) as Record_;
    if (typeof r?.owner === "string" && typeof r.sentAt === "number" && r.batch) return r;
  } catch {
    // Unreadable: treated as lost.
  }
  return null;
}

function parseMsg(raw: string | null): Record<string, unknown> {
  if (raw === null) return {};
  try {
    const v = JSON.parse(raw) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // Unreadable: the summary goes out with msgid and payload only.
  }
  return {};
}

/**
 * The msg as `redis` keeps it (SPEC B7): each top-level property as JSON, without `req`/`res`
 * (and `payload`, which the summary replaces). A property JSON cannot hold (a function, a cycle,
 * a BigInt) is left out; beyond 64 KiB in all, the largest are left out until the rest fits, so
 * `topic` and an alert's small fields survive a huge `msg.mobile`.
 */
export function jsonSafe(msg: Record<string, unknown>): { json: string; dropped: string[] } {
  const parts: Array<{ key: string; json: string; bytes: number }> = [];
  const dropped: string[] = [];
  for (const key of Object.keys(msg ?? {})) {
    if (key === "req" || key === "res" || key === "payload") continue;
    const value = msg[key];
    if (value === undefined) continue;
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (json === undefined) {
      dropped.push(key);
      continue;
    }
    const entry = `${JSON.stringify(key)}:${json}`;
    parts.push({ key, json: entry, bytes: Buffer.byteLength(entry) + 1 });
  }
  let total = 2 + parts.reduce((n, p) => n + p.bytes, 0);
  if (total > MAX_MSG_BYTES) {
    const out = new Set<string>();
    for (const p of [...parts].sort((a, b) => b.bytes - a.bytes)) {
      if (total <= MAX_MSG_BYTES) break;
      out.add(p.key);
      total -= p.bytes;
      dropped.push(p.key);
    }
    return {
      json: `{${parts
        .filter((p) => !out.has(p.key))
        .map((p) => p.json)
        .join(",")}}`,
      dropped,
    };
  }
  return { json: `{${parts.map((p) => p.json).join(",")}}`, dropped };
}

/** A shallow copy of the msg without Node-RED's HTTP request and response (`req`/`res`). */
function withoutHttp(msg: Record<string, unknown>): Record<string, unknown> {
  if (!("req" in msg) && !("res" in msg)) return msg;
  const copy = { ...msg };
  delete copy.req;
  delete copy.res;
  return copy;
}
