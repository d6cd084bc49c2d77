// The alert-storm guard (SPEC B8) without Node-RED: what `sms-guard` decides for each alert.
// Every counter and held alert lives in the account state (B6), so a redeploy keeps them and,
// with Redis, every instance shares them; each decision another instance could race on is one
// `admit` (one atomic step for all numbers of an alert).
import { createHash } from "node:crypto";
import type { Clock } from "../clock";
import { systemClock } from "../clock";
import type { Lang } from "../i18n";
import type { AccountState, Admission, AdmitCheck } from "../state/index";
import {
  Calendar,
  KEY_MODES,
  OUTSIDE_MODES,
  parseHours,
  readChoice,
  readCount,
  type KeyMode,
  type Outside,
} from "./hours";

export type { KeyMode, Outside };
export type Reason = "window" | "cap" | "hours" | "overflow";
export type Msg = Record<string, unknown>;

export interface GuardOptions {
  state: AccountState;
  /** the node's id: keeps the counters and held alerts of two guard nodes apart */
  scope: string;
  clock?: Clock;
  /** what makes two alerts the same (default `topic`) */
  key?: KeyMode;
  /** minutes (default 30; 0 = off); the editor's strings are accepted */
  window?: number | string;
  /** SMS per number per local day (default 0 = off) */
  dailyCap?: number | string;
  /** `HH:MM-HH:MM` in the account's offset, may wrap midnight; empty = always */
  hours?: string;
  outside?: Outside;
  /** most alerts held outside the hours (default 1000) */
  holdMax?: number | string;
  /** the account's UTC offset in minutes (default +480, China) */
  offsetMinutes?: number;
  /** language of the option errors */
  lang?: Lang;
}

export interface Alert {
  /** the input msg: its topic/payload give the key, `priority: "critical"` bypasses hours and window */
  msg: Msg;
  /** the recipients, already validated and normalised (as `sms-send` does) */
  mobiles: readonly string[];
}

/** `msg.guard` on output 1 (send). */
export interface SendGuard {
  key: string;
  allowed: number;
  suppressed: number;
  /** ISO time the alert arrived, when it was held outside the hours */
  heldSince?: string;
}

/** `msg.guard` on output 2 (suppressed). */
export interface SuppressGuard {
  key: string;
  reasons: Record<string, Reason>;
  /** ISO time (account offset) when the first of these numbers would be allowed */
  until: string;
}

/** What one alert gives: the numbers for output 1 and those for output 2, either may be absent. */
export interface Outcome {
  key: string;
  send?: { mobile: string[]; guard: SendGuard };
  suppressed?: { mobile: string[]; guard: SuppressGuard };
}

/** An alert that comes out of the held list (released, or pushed out by `holdMax`), with its msg. */
export interface Released extends Outcome {
  msg: Msg;
}

export interface Decision extends Outcome {
  /** kept until the hours begin: nothing for this alert now */
  held: boolean;
  /** older held alerts pushed out by `holdMax`: each goes to output 2 with `overflow` */
  overflow: Released[];
}

/** The last decision, for the node's status. */
export interface LastDecision {
  at: number;
  key: string;
  kind: "sent" | "suppressed" | "held" | "released";
  /** numbers let through (summed over a release) */
  allowed: number;
  /** numbers held back (summed over a release; pushed-out numbers of a hold) */
  suppressed: number;
  reasons: Reason[];
}

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
/** A held msg is kept as JSON of at most this many characters (as a tracked send's msg, B7). */
export const MAX_HELD_CHARS = 64 * 1024;
/**
 * Checks per `admit`: one Redis script must stay short. A release of many held alerts (or an
 * alert to more numbers) takes several; each number's check is still one atomic step.
 */
const ADMIT_CHUNK = 1000;
/** Keys longer than this are hashed in the state's key names (a whole payload can be a key). */
const INLINE_KEY = 64;
const RELEASE = "release";
/** The cap of a guard without one: it still counts towards the account's day (SPEC B8a). */
const UNCAPPED = Number.MAX_SAFE_INTEGER;

interface HeldItem {
  key: string;
  mobiles: string[];
  at: number;
  msg: Msg;
}

interface Pending {
  key: string;
  mobiles: readonly string[];
  critical: boolean;
  since?: number;
}

export class Guard {
  /** the last decision (for the status) */
  last: LastDecision | undefined;
  private readonly state: AccountState;
  private readonly clock: Clock;
  private readonly cal: Calendar;
  private readonly keyMode: KeyMode;
  private readonly windowMs: number;
  private readonly cap: number;
  private readonly outside: Outside;
  private readonly holdMax: number;
  private readonly base: string;
  private readonly kind: string;
  private heldCount = 0;
  // Updates of the held count run one after another, so this process never loses its own.
  private counting: Promise<unknown> = Promise.resolve();

  constructor(opts: GuardOptions) {
    const lang = opts.lang ?? "en-US";
    if (typeof opts.scope !== "string" || opts.scope === "") throw new Error("guard: scope (the node id) is required");
    this.state = opts.state;
    this.clock = opts.clock ?? systemClock;
    this.cal = new Calendar(opts.offsetMinutes ?? 480, parseHours(opts.hours ?? "", lang));
    this.keyMode = readChoice(opts.key, KEY_MODES, "topic", "key", lang);
    this.windowMs = readCount(opts.window, 30, "window", false, lang) * MIN;
    this.cap = readCount(opts.dailyCap, 0, "dailyCap", true, lang);
    this.outside = readChoice(opts.outside, OUTSIDE_MODES, "hold", "outside", lang);
    this.holdMax = readCount(opts.holdMax, 1000, "holdMax", true, lang);
    // No ":" is left in the scope, so no two scopes' key names can meet.
    const scope = encodeURIComponent(opts.scope);
    this.base = `guard:${scope}:`;
    this.kind = `guard:${scope}`;
  }

  /**
   * Alerts held now. Kept in the state next to the list (so a redeploy shows it); with several
   * instances it is what this instance last saw, exact again at the next hold or release.
   */
  get held(): number {
    return this.heldCount;
  }

  async decide(alert: Alert): Promise<Decision> {
    const now = this.clock.now();
    const { msg } = alert;
    const key = alertKey(msg, this.keyMode);
    const mobiles = alert.mobiles.length > 1 ? [...new Set(alert.mobiles)] : [...alert.mobiles];
    const critical = msg.priority === "critical";
    if (!critical && !this.cal.inHours(now)) {
      if (this.outside === "hold") return this.hold({ key, mobiles, at: now, msg }, now);
      const o = this.refused(key, mobiles, "hours", this.cal.nextStart(now));
      return this.noted(now, { ...o, held: false, overflow: [] });
    }
    const [o] = await this.admit([{ key, mobiles, critical }], now);
    return this.noted(now, { ...o, held: false, overflow: [] });
  }

  /**
   * Takes every held alert and decides each again, in arrival order, against window and cap.
   * Outside the hours (a deadline that came late, hours changed) they are kept for the next ones.
   */
  async release(): Promise<Released[]> {
    const raws = await this.state.takeList(this.key("held"));
    const now = this.clock.now();
    // Put back as they were: the count already has them.
    if (!this.cal.inHours(now)) return raws.length ? this.keep(raws, now, 0) : [];
    await this.setCount(() => 0);
    const items = raws.map(parseHeld).filter((h): h is HeldItem => h !== null);
    if (!items.length) return [];
    let outcomes: Outcome[];
    try {
      outcomes = await this.admit(
        items.map((h) => ({ key: h.key, mobiles: h.mobiles, critical: false, since: h.at })),
        now,
      );
    } catch (e) {
      // Taken but not decided: put them back, so a later release has them.
      await this.keep(raws, now, raws.length).catch(() => undefined);
      throw e;
    }
    const out = outcomes.map((o, i) => ({ ...o, msg: items[i].msg }));
    this.last = summary(now, "released", out);
    return out;
  }

  /**
   * Releases held alerts when their deadline is due (on one instance), and, at once, any left
   * from before (a restart, changed hours). `onCount` hears the held count read back from the
   * state. Returns the function that stops listening.
   */
  listen(
    onRelease: (r: Released) => void,
    onError: (e: unknown) => void,
    onCount: (held: number) => void = () => undefined,
  ): () => void {
    // A release that failed is said and fires again (the held alerts are still in the state).
    const off = this.state.onDue(this.kind, () =>
      this.release()
        .then((rs) => {
          for (const r of rs) onRelease(r);
        })
        .catch((e: unknown) => {
          onError(e);
          throw e;
        }),
    );
    const start = () => {
      this.state.schedule(this.kind, RELEASE, this.cal.allowedFrom(this.clock.now())).catch(onError);
      this.refreshCount().then(onCount, onError);
    };
    start();
    // At a Node-RED start the account's Redis is still connecting, so the above went to the local
    // state: once Redis is there, its held alerts (and their count) are looked at again.
    const offMode = this.state.onMode((mode) => {
      if (mode === "shared") start();
    });
    return () => {
      off();
      offMode();
    };
  }

  /** The node is removed for good: its deadline and held alerts go. Returns how many were held. */
  async discard(): Promise<number> {
    await this.state.drain(this.kind);
    const raws = await this.state.takeList(this.key("held"));
    await this.setCount(async () => {
      await this.state.take(this.key("heldn"));
      return 0;
    });
    return raws.length;
  }

  // --- internals ------------------------------------------------------------------------------

  private key(name: string): string {
    return this.base + name;
  }

  private async hold(h: HeldItem, now: number): Promise<Decision> {
    const start = this.cal.nextStart(now);
    const raw = heldJson(h);
    if (raw === null) {
      // Too large to keep: it goes to output 2 now, as if pushed out.
      const o = this.refused(h.key, h.mobiles, "overflow", start);
      return this.noted(now, { ...o, held: false, overflow: [] });
    }
    // Kept a day past the start of the hours: room for a restart that comes late.
    const ttl = start - now + DAY;
    // Both go out before any await: holds keep their arrival order, and a release that took the
    // list just before this append is followed by a deadline that releases it.
    const appended = this.state.append(this.key("held"), [raw], this.holdMax, ttl);
    const scheduled = this.state.schedule(this.kind, RELEASE, start);
    const dropped = await appended;
    await scheduled;
    await this.setCount((n) => Math.min(this.holdMax, n + 1), ttl);
    const overflow = this.overflowed(dropped, start);
    const d: Decision = { key: h.key, held: true, overflow };
    const suppressed = overflow.reduce((n, r) => n + (r.suppressed?.mobile.length ?? 0), 0);
    this.last = { at: now, key: h.key, kind: "held", allowed: 0, suppressed, reasons: suppressed ? ["overflow"] : [] };
    return d;
  }

  /** Puts taken alerts back (in their order) for the next hours; `added` of them are not counted. */
  private async keep(raws: string[], now: number, added: number): Promise<Released[]> {
    const start = this.cal.nextStart(now);
    const ttl = start - now + DAY;
    const appended = this.state.append(this.key("held"), raws, this.holdMax, ttl);
    const scheduled = this.state.schedule(this.kind, RELEASE, start);
    const dropped = await appended;
    await scheduled;
    await this.setCount((n) => Math.min(this.holdMax, n + added), ttl);
    return this.overflowed(dropped, start);
  }

  private overflowed(dropped: string[], start: number): Released[] {
    const out: Released[] = [];
    for (const raw of dropped) {
      const h = parseHeld(raw);
      if (h) out.push({ ...this.refused(h.key, h.mobiles, "overflow", start), msg: h.msg });
    }
    return out;
  }

  /** Reads the held count kept in the state (after a redeploy, or another instance's holds). */
  refreshCount(): Promise<number> {
    return this.setCount((n) => n, null);
  }

  /** `ttlMs` null: only read. */
  private setCount(next: (n: number) => number | Promise<number>, ttlMs: number | null = DAY): Promise<number> {
    const run = async () => {
      const n = await next(Number(await this.state.get(this.key("heldn"))) || 0);
      if (ttlMs !== null) await this.state.put(this.key("heldn"), String(n), ttlMs);
      this.heldCount = n;
      return n;
    };
    const p = this.counting.then(run, run);
    this.counting = p.catch(() => undefined);
    return p;
  }

  /** One `admit` (per chunk) for every number of every alert, in order. */
  private async admit(items: Pending[], now: number): Promise<Outcome[]> {
    const windowMs = this.windowMs;
    const cap = this.cap;
    const criticalWindows: string[] = [];
    // The day's count is the account's (SPEC B8a): every guard node of the account counts what it
    // lets through, also one without a cap of its own; each checks it against its own cap.
    const capTtl = this.cal.nextMidnight(now) - now;
    const capBase = `guard:day:${this.cal.dayKey(now)}:`;
    const max = cap || UNCAPPED;
    const checks: AdmitCheck[] = [];
    for (const it of items) {
      // The number is last and has no ":": a key holding ":" still names one (key, number).
      const wBase = `${this.base}w:${stateKey(it.key)}:`;
      for (const m of it.mobiles) {
        const check: AdmitCheck = { cap: { key: capBase + m, max, ttlMs: capTtl } };
        // Critical skips the window check but still takes a free window (below): its SMS counts.
        if (windowMs && !it.critical) check.window = { key: wBase + m, ttlMs: windowMs };
        checks.push(check);
      }
    }
    const results: Admission[] = [];
    for (let i = 0; i < checks.length; i += ADMIT_CHUNK) {
      results.push(
        ...(await this.state.admit(checks.length > ADMIT_CHUNK ? checks.slice(i, i + ADMIT_CHUNK) : checks)),
      );
    }
    let i = 0;
    const out = items.map((it) => {
      const send: string[] = [];
      const held: string[] = [];
      const reasons: Record<string, Reason> = {};
      let until = Infinity;
      for (const m of it.mobiles) {
        const r = results[i++];
        if (r.ok) {
          send.push(m);
          if (it.critical && windowMs) criticalWindows.push(`${this.base}w:${stateKey(it.key)}:${m}`);
        } else {
          held.push(m);
          reasons[m] = r.reason;
          const t = now + r.retryInMs;
          until = Math.min(until, it.critical ? t : this.cal.allowedFrom(t));
        }
      }
      return this.outcome(it.key, send, held, reasons, until, it.since);
    });
    // Not atomic with the admit: at worst a racing instance's critical send also takes it.
    if (criticalWindows.length) await Promise.all(criticalWindows.map((k) => this.state.claim(k, windowMs)));
    return out;
  }

  private refused(key: string, mobiles: readonly string[], reason: Reason, until: number): Outcome {
    const reasons: Record<string, Reason> = {};
    for (const m of mobiles) reasons[m] = reason;
    return this.outcome(key, [], [...mobiles], reasons, until);
  }

  private outcome(
    key: string,
    send: string[],
    held: string[],
    reasons: Record<string, Reason>,
    until: number,
    since?: number,
  ): Outcome {
    const o: Outcome = { key };
    if (send.length) {
      const guard: SendGuard = { key, allowed: send.length, suppressed: held.length };
      if (since !== undefined) guard.heldSince = this.cal.iso(since);
      o.send = { mobile: send, guard };
    }
    if (held.length) o.suppressed = { mobile: held, guard: { key, reasons, until: this.cal.iso(until) } };
    return o;
  }

  private noted(now: number, d: Decision): Decision {
    const suppressed = d.suppressed?.mobile.length ?? 0;
    const allowed = d.send?.mobile.length ?? 0;
    this.last = {
      at: now,
      key: d.key,
      kind: allowed || !suppressed ? "sent" : "suppressed",
      allowed,
      suppressed,
      reasons: d.suppressed ? distinct(Object.values(d.suppressed.guard.reasons)) : [],
    };
    return d;
  }
}

/**
 * The two output messages of an outcome (null where nothing goes): output 1 is `msg` itself,
 * output 2 a clone when both are used (`clone` is the runtime's, e.g. RED.util.cloneMessage).
 */
export function messagesFor(msg: Msg, o: Outcome, clone: (m: Msg) => Msg): [Msg | null, Msg | null] {
  const second = o.suppressed ? (o.send ? clone(msg) : msg) : null;
  if (o.send) Object.assign(msg, { mobile: o.send.mobile, guard: o.send.guard });
  if (second && o.suppressed) Object.assign(second, { mobile: o.suppressed.mobile, guard: o.suppressed.guard });
  return [o.send ? msg : null, second];
}

/**
 * The key value of an alert: strings as they are, numbers and booleans as text, buffers as their
 * UTF-8 text (`base64:` when they are not text), objects as JSON with sorted properties (the same
 * object gives the same key whatever its property order); missing is the empty key.
 * `topic+payload` is the JSON array `[topic, payload]` of those texts.
 */
export function alertKey(msg: Msg, mode: KeyMode = "topic"): string {
  if (mode === "topic") return keyText(msg.topic);
  if (mode === "payload") return keyText(msg.payload);
  const t = keyText(msg.topic);
  const p = keyText(msg.payload);
  return t === "" && p === "" ? "" : JSON.stringify([t, p]);
}

function keyText(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Buffer.isBuffer(v)) {
    const s = v.toString("utf8");
    return Buffer.from(s, "utf8").equals(v) ? s : `base64:${v.toString("base64")}`;
  }
  return stableJson(v, []) ?? "";
}

/** JSON with object properties sorted; cycles are left out. */
function stableJson(value: unknown, stack: object[]): string | undefined {
  let v = value;
  if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON(): unknown }).toJSON();
  }
  if (typeof v === "bigint") return JSON.stringify(String(v));
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (stack.includes(v)) return undefined;
  stack.push(v);
  let out: string;
  if (Array.isArray(v)) out = `[${v.map((x) => stableJson(x, stack) ?? "null").join(",")}]`;
  else {
    const parts: string[] = [];
    for (const k of Object.keys(v).sort()) {
      const s = stableJson((v as Record<string, unknown>)[k], stack);
      if (s !== undefined) parts.push(`${JSON.stringify(k)}:${s}`);
    }
    out = `{${parts.join(",")}}`;
  }
  stack.pop();
  return out;
}

/** A key as part of a state key name: short keys as they are, long ones (a whole payload) hashed. */
function stateKey(key: string): string {
  return key.length <= INLINE_KEY ? `=${key}` : `#${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

/**
 * A held alert as JSON: the msg's JSON-safe properties (`req`/`res` and repeated objects left
 * out, BigInt as text); null when it is over MAX_HELD_CHARS.
 */
function heldJson(h: HeldItem): string | null {
  const seen = new WeakSet<object>();
  const msg = h.msg;
  const json = JSON.stringify(
    { k: h.key, m: h.mobiles, t: h.at, msg },
    function (this: unknown, k: string, v: unknown) {
      if (this === msg && (k === "req" || k === "res")) return undefined;
      if (typeof v === "bigint") return String(v);
      if (v !== null && typeof v === "object") {
        if (seen.has(v)) return undefined;
        seen.add(v);
      }
      return v;
    },
  );
  return json.length > MAX_HELD_CHARS ? null : json;
}

function parseHeld(raw: string): HeldItem | null {
  try {
    const h = JSON.parse(raw) as { k?: unknown; m?: unknown; t?: unknown; msg?: unknown };
    if (typeof h.k !== "string" || !Array.isArray(h.m) || typeof h.t !== "number") return null;
    if (!h.msg || typeof h.msg !== "object") return null;
    return { key: h.k, mobiles: h.m.map(String), at: h.t, msg: h.msg as Msg };
  } catch {
    return null;
  }
}

function summary(now: number, kind: LastDecision["kind"], out: Outcome[]): LastDecision {
  let allowed = 0;
  let suppressed = 0;
  const reasons: Reason[] = [];
  for (const o of out) {
    allowed += o.send?.mobile.length ?? 0;
    suppressed += o.suppressed?.mobile.length ?? 0;
    if (o.suppressed) reasons.push(...Object.values(o.suppressed.guard.reasons));
  }
  return { at: now, key: out[out.length - 1]?.key ?? "", kind, allowed, suppressed, reasons: distinct(reasons) };
}

function distinct<T>(xs: T[]): T[] {
  return xs.length > 1 ? [...new Set(xs)] : xs;
}
