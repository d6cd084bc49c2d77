// The push endpoint of sms-receive without Node-RED: request → params → checks → messages.
// Kept apart so the node file stays a thin adapter and so this logic is testable on its own.
import { createHash, hash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import {
  charsetOf,
  decodeText,
  decoderFor,
  firstValues,
  MAX_PARAMS,
  parseForm,
  repairUndecoded,
  TooManyParams,
} from "./charset";
import type { CodeTable } from "../platform/codes";
import { normaliseMobile, type MobileCheck } from "../platform/numbers";
import { parsePush, type Extra, type MoPush, type Params, type ReportPush } from "./parse";
import { parseJson } from "./json";
import { Reassembly, type Assembled } from "./reassembly";
import type { AccountState, ClaimBound } from "../state/index";
import { formatInstant, parsePlatformTime } from "../platform/time";

export const MAX_BODY_BYTES = 64 * 1024;
/** Most pushes in one JSON array (SPEC A5); a body Node-RED parsed itself may be far above 64 KiB. */
export const MAX_BATCH = 1000;
export const DEFAULT_PATH = "/sms/push";

/**
 * Part wait (s). At least 1 s: parts are separate pushes, and a shorter wait would emit most long
 * SMS in pieces. At most a day: a platform pushes the parts of one SMS within minutes, pending
 * parts hold memory for as long as they wait, and setTimeout cannot wait longer than 24.8 days.
 */
export const PART_TIMEOUT = { min: 1, max: 86_400, fallback: 600 } as const;

export interface PartTimeout {
  seconds: number;
  /** set when the given value could not be used as it was: the catalog key and its params */
  problem: { key: "partTimeoutClamped" | "partTimeoutUnreadable"; params: Record<string, string | number> } | null;
}

/**
 * Reads the node's `partTimeout` (a number or numeric string) the way the editor's validator does.
 * Absent (a hand-written or older flow) is the default, with nothing to say.
 */
export function readPartTimeout(v: unknown): PartTimeout {
  if (v === undefined || v === null) return { seconds: PART_TIMEOUT.fallback, problem: null };
  const text = typeof v === "string" ? v.trim() : typeof v === "number" ? String(v) : "";
  const n = text === "" ? NaN : Number(text);
  if (!Number.isFinite(n)) {
    const shown = typeof v === "string" ? v : String(v);
    return {
      seconds: PART_TIMEOUT.fallback,
      problem: { key: "partTimeoutUnreadable", params: { value: shown, used: PART_TIMEOUT.fallback } },
    };
  }
  const seconds = Math.min(PART_TIMEOUT.max, Math.max(PART_TIMEOUT.min, n));
  if (seconds === n) return { seconds, problem: null };
  const params = { value: text, used: seconds, min: PART_TIMEOUT.min, max: PART_TIMEOUT.max };
  return { seconds, problem: { key: "partTimeoutClamped", params } };
}

export function normalisePath(p: unknown): string {
  const s = typeof p === "string" && p.trim() ? p.trim() : DEFAULT_PATH;
  return s.startsWith("/") ? s : "/" + s;
}

export interface ReceiveOptions {
  /** the account's state (SPEC B6): duplicates and pending parts live there, not in this node */
  state: AccountState;
  /** keeps this receiver's state apart from the account's other receivers (its path) */
  scope: string;
  codes: CodeTable;
  offsetMinutes: number;
  /** how `mobile` is normalised in the outputs, as sms-send does (the pushed value stays in mobileRaw) */
  mobileCheck: MobileCheck;
  /** configured receiver credentials; checks are on when either is set */
  receiver: string;
  receiverPassword: string;
  reassemble: boolean;
  partTimeoutMs: number;
  maxPending?: number;
  maxPendingBytes?: number;
  dedupeMs?: number;
  emitReport: (msg: ReportMessage) => void;
  emitMo: (msg: MoMessage) => void;
  /** a report taken (not a duplicate): delivery tracking (SPEC B7) matches it to its send */
  onReport?: (msgid: string, mobile: string, status: string) => void;
  /**
   * an inbound SMS emitted (once, after dedupe and reassembly; not a lone part of a long SMS): the
   * account's inbox (SPEC B11) reads replies in it
   */
  onMo?: (mo: { mobile: string; text: string; destcode: string }) => void;
  /**
   * The endpoint takes pushes from anyone (no receiver credentials, no allow-list): its dedupe
   * windows are then bounded per account (SPEC B4a), so forged pushes cannot exhaust memory.
   */
  open?: boolean;
  /** most dedupe keys per account when `open` (tests lower it) */
  maxOpenKeys?: number;
  /** elements of a JSON array refused while others were taken (answered OK): index and reason each */
  onBadElements?: (bad: string[], of: number) => void;
  /** a push refused for its receiver credentials (401): the node counts and logs it */
  onUnauthorized?: () => void;
  /** a state operation failed after the answer was written (the push is still emitted) */
  onError: (e: unknown) => void;
}

export interface ReportMessage {
  topic: "report";
  msgid: string;
  payload: {
    msgid: string;
    mobile: string;
    mobileRaw: string;
    status: string;
    delivered: boolean;
    description: string;
    reportTime: string | null;
    reportTimeRaw: string;
    receivedAt: string;
    extra: Extra;
  };
}

export interface MoMessage {
  topic: "mo";
  payload: {
    mobile: string;
    mobileRaw: string;
    destcode: string;
    text: string;
    moTime: string | null;
    moTimeRaw: string;
    parts: number;
    complete: boolean;
    missing: number[];
    receivedAt: string;
    extra: Extra;
    /** only when reassembly is off and this is one part of a long SMS */
    emshead?: { id: string; total: number; number: number };
  };
}

export interface Answer {
  status: 200 | 400 | 401 | 413 | 415 | 503;
  body: string;
}

const OK: Answer = { status: 200, body: "OK" };
// Not taken, so not lost: the platform pushes it again, and after a redeploy the new node takes it.
const STOPPED: Answer = { status: 503, body: "Service Unavailable: the receiver is stopping; push again" };

interface PartMeta {
  moTimeRaw: string;
  mobileRaw: string;
  receivedAt: string;
  extra: Extra;
}

/** Pending long-SMS parts per receiver: most messages, and most bytes of their parts. */
export const MAX_PENDING = 1000;
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** Dedupe keys per account when anyone may push (SPEC B4a); beyond, the oldest are forgotten. */
export const MAX_OPEN_KEYS = 100_000;

// A duplicate window key names the push; beyond this length it is hashed, so pushed strings
// cannot make the window's keys (memory, Redis) large.
const MAX_KEY = 80;
function windowKey(parts: Array<string | number>): string {
  const key = parts.join("\u0000");
  return key.length > MAX_KEY ? createHash("sha1").update(key).digest("base64") : key;
}

function digest(s: string): Buffer {
  return hash("sha256", s, "buffer");
}

// receiver and pswd are checked together, in constant time and without leaking their lengths:
// one digest per push against one computed at start.
const credentialKey = (receiver: string, pswd: string) => `${receiver.length}:${receiver}\u0000${pswd}`;

function first(v: unknown): string {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === "string" ? x : typeof x === "number" ? String(x) : "";
}

/** The pushes of one JSON array body (SPEC A5), with the params the URL gave them all. */
export class Batch {
  constructor(
    readonly items: unknown[],
    readonly shared: Params,
  ) {}
}

export interface Handled {
  answer: Answer;
  /** emits the accepted pushes; called after the answer is written */
  emit?: () => void;
}

type One = { ok: true; emit?: () => void } | { ok: false; status: 400 | 401; reason: string };

export class PushEndpoint {
  readonly stats = { reports: 0, mo: 0, duplicates: 0, rejected: 0, unauthorized: 0 };
  private readonly reassembly: Reassembly<PartMeta>;
  private readonly dedupeMs: number;
  private readonly auth: boolean;
  private readonly expected: Buffer;
  private readonly unlisten: () => void;
  private closed = false;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly bound: ClaimBound | undefined;

  constructor(private readonly o: ReceiveOptions) {
    // One group for the whole account (every receiver on its state, reports and parts alike).
    this.bound = o.open ? { group: "push:dedupe", max: o.maxOpenKeys ?? MAX_OPEN_KEYS } : undefined;
    this.auth = o.receiver !== "" || o.receiverPassword !== "";
    this.expected = digest(credentialKey(o.receiver, o.receiverPassword));
    this.dedupeMs = o.dedupeMs ?? 600_000;
    this.reassembly = new Reassembly<PartMeta>({
      state: o.state,
      scope: o.scope,
      timeoutMs: o.partTimeoutMs,
      maxPending: o.maxPending ?? MAX_PENDING,
      maxBytes: o.maxPendingBytes ?? MAX_PENDING_BYTES,
      dedupeMs: this.dedupeMs,
      claimBound: this.bound,
      onMessage: (m) => this.emitAssembled(m),
      onError: o.onError,
    });
    this.unlisten = this.reassembly.listen();
  }

  /**
   * Emits `emit` unless the same push was already taken within the dedupe window (by this node,
   * the node it replaced, or, with Redis, another instance). A state that fails answers from
   * local memory (failover), so a push is emitted at least once, never dropped.
   */
  private once(key: string, emit: () => void): () => void {
    const state = this.o.state;
    // Memory answers at once: no promise, no in-flight entry (de-duplicating and emitting were
    // 11 % of a report storm's CPU profile through promises, 5 % without).
    if (state.claimNow) {
      return () => {
        let first: boolean;
        try {
          first = state.claimNow!(`${this.o.scope}:seen:${key}`, this.dedupeMs, this.bound);
        } catch (e) {
          this.o.onError(e);
          first = true;
        }
        if (first) emit();
        else this.stats.duplicates++;
      };
    }
    return () =>
      this.track(
        state.claim(`${this.o.scope}:seen:${key}`, this.dedupeMs, this.bound).then(
          (first) => {
            if (first) emit();
            else this.stats.duplicates++;
          },
          (e: unknown) => {
            this.o.onError(e);
            emit();
          },
        ),
      );
  }

  /**
   * A push answered OK whose state operation is still under way: close() waits for it, so its
   * message leaves through this node (not a closed one) and is not lost to the redeploy.
   */
  private track(p: Promise<unknown>): void {
    const t = p.catch(this.o.onError).finally(() => this.inflight.delete(t));
    this.inflight.add(t);
  }

  // receivedAt has whole seconds: one formatted string per second serves a push storm.
  private stampSecond = -1;
  private stamp = "";
  private now(): string {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.stampSecond) {
      this.stampSecond = second;
      this.stamp = formatInstant(second * 1000, this.o.offsetMinutes);
    }
    return this.stamp;
  }

  // A report storm's pushes mostly share their reportTime (minutes or seconds): the last one read
  // serves again (parsePlatformTime is pure; the offset is the node's).
  private timeRaw: string | undefined;
  private timeRead: string | null = null;
  private reportTime(raw: string): string | null {
    if (raw !== this.timeRaw) {
      this.timeRead = parsePlatformTime(raw, this.o.offsetMinutes);
      this.timeRaw = raw;
    }
    return this.timeRead;
  }

  /**
   * Handles one push's params, or an array of pushes (SPEC A5). Returns the HTTP answer; messages
   * are emitted by `emit`, after the caller has written the answer.
   */
  handle(input: Params | Batch): Handled {
    // A push whose body was still arriving when the node closed: answering OK would lose it.
    if (this.closed) return { answer: STOPPED };
    if (!(input instanceof Batch)) {
      const one = this.one(input);
      if (one.ok) return { answer: OK, emit: one.emit };
      return {
        answer: { status: one.status, body: one.status === 401 ? "Unauthorized" : `Bad Request: ${one.reason}` },
      };
    }
    const { items, shared } = input;
    if (items.length > MAX_BATCH) {
      this.stats.rejected++;
      return { answer: { status: 413, body: `Payload Too Large: more than ${MAX_BATCH} pushes in one request` } };
    }
    // Each element gets the URL's params: 1,000 of them on 1,000 elements would be a million
    // copies before the credential check (SPEC B4a: no push holds the event loop). Beyond a
    // budget the request is refused as a whole.
    if (!isEmpty(shared) && Object.keys(shared).length * items.length > MAX_BATCH_COPIES) {
      this.stats.rejected++;
      return { answer: { status: 400, body: `Bad Request: too many parameters for ${items.length} pushes` } };
    }
    // Each element's params, on top of the ones in the URL; an element that is not an object has
    // only those (and is malformed).
    const whole = items.map((el) => (isObject(el) ? (isEmpty(shared) ? el : { ...shared, ...el }) : null));
    // Credentials first, for all: a request with one forged element is not half taken.
    if (this.auth && whole.some((p) => !this.authorised(p ?? shared))) {
      this.stats.unauthorized++;
      this.o.onUnauthorized?.();
      return { answer: { status: 401, body: "Unauthorized" } };
    }
    const emits: Array<() => void> = [];
    const bad: string[] = [];
    whole.forEach((p, i) => {
      const one: One = p ? this.one(p, false) : { ok: false, status: 400, reason: "not an object" };
      if (one.ok) {
        if (one.emit) emits.push(one.emit);
      } else bad.push(`[${i}] ${one.reason}`);
    });
    // One element whose emit throws (a flow's hook) does not cost the others theirs.
    const emit = emits.length
      ? () => {
          for (const e of emits) {
            try {
              e();
            } catch (err) {
              this.o.onError(err);
            }
          }
        }
      : undefined;
    if (bad.length === 0) return { answer: OK, emit };
    this.stats.rejected += bad.length;
    // Some taken (SPEC B4a): OK, since a 400 would make the platform push the whole array again
    // and every valid inbound SMS in it (they have no id to de-duplicate on) would come out again.
    if (bad.length < items.length) {
      this.o.onBadElements?.(bad, items.length);
      return { answer: OK, emit };
    }
    const listed = bad.length > 10 ? [...bad.slice(0, 10), `… (+${bad.length - 10})`] : bad;
    return {
      answer: { status: 400, body: `Bad Request: ${bad.length} of ${items.length} rejected: ${listed.join("; ")}` },
    };
  }

  private authorised(params: Params): boolean {
    const given = digest(credentialKey(first(params?.receiver), first(params?.pswd)));
    return timingSafeEqual(given, this.expected);
  }

  private one(params: Params, checkAuth = true): One {
    // Credentials first: a caller without them learns nothing about what a valid push looks like.
    if (checkAuth && this.auth && !this.authorised(params)) {
      this.stats.unauthorized++;
      this.o.onUnauthorized?.();
      return { ok: false, status: 401, reason: "Unauthorized" };
    }
    const parsed = parsePush(params);
    if (!parsed.ok) {
      if (checkAuth) this.stats.rejected++;
      return { ok: false, status: 400, reason: parsed.reason };
    }
    const push = parsed.push;
    const mobile = normaliseMobile(push.mobile, this.o.mobileCheck) ?? push.mobile;
    const receivedAt = this.now();
    if (push.kind === "report") {
      const key = windowKey(["r", push.msgid, mobile, push.status, push.reportTimeRaw]);
      return {
        ok: true,
        emit: this.once(key, () => {
          this.o.onReport?.(push.msgid, mobile, push.status);
          this.emitReport(push, mobile, receivedAt);
        }),
      };
    }
    if (!push.ems) return { ok: true, emit: () => this.emitPlain(push, mobile, receivedAt) };
    if (!this.o.reassemble) {
      const key = windowKey(["p", mobile, push.destcode, push.ems.id, push.ems.total, push.ems.number]);
      return { ok: true, emit: this.once(key, () => this.emitPlain(push, mobile, receivedAt)) };
    }
    const meta = { moTimeRaw: push.moTimeRaw, mobileRaw: push.mobileRaw, receivedAt, extra: push.extra };
    const part = { mobile, destcode: push.destcode, ...push.ems, text: push.text, meta };
    return {
      ok: true,
      emit: () =>
        this.track(
          this.reassembly.add(part).then((r) => {
            if (r === "duplicate") this.stats.duplicates++;
          }),
        ),
    };
  }

  /** Emits, as incomplete, the long SMS still pending under another scope (this node's old path). */
  adopt(scope: string): Promise<number> {
    return new Reassembly<PartMeta>({
      state: this.o.state,
      scope,
      timeoutMs: this.o.partTimeoutMs,
      maxPending: this.o.maxPending ?? MAX_PENDING,
      maxBytes: this.o.maxPendingBytes ?? MAX_PENDING_BYTES,
      dedupeMs: this.dedupeMs,
      claimBound: this.bound,
      onMessage: (m) => this.emitAssembled(m),
      onError: this.o.onError,
    }).flush();
  }

  /**
   * Later pushes get 503. Pending long SMS stay in the account state for the node that replaces
   * this one (a redeploy), unless `flush`: then they are emitted now, as incomplete (a node
   * removed for good, or Node-RED stopping, with state this process would lose).
   */
  async close(flush: boolean): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    if (flush) await this.reassembly.flush();
    this.unlisten();
  }

  private emitReport(p: ReportPush, mobile: string, receivedAt: string): void {
    this.stats.reports++;
    this.o.emitReport({
      topic: "report",
      msgid: p.msgid,
      payload: {
        msgid: p.msgid,
        mobile,
        mobileRaw: p.mobileRaw,
        status: p.status,
        delivered: p.status === "DELIVRD",
        description: this.o.codes.status(p.status),
        reportTime: this.reportTime(p.reportTimeRaw),
        reportTimeRaw: p.reportTimeRaw,
        receivedAt,
        extra: p.extra,
      },
    });
  }

  private emitPlain(p: MoPush, mobile: string, receivedAt: string): void {
    this.stats.mo++;
    const ems = p.ems;
    // A part of a long SMS (reassembly off) is not what the person sent: never read as a reply.
    if (!ems || ems.total <= 1) this.o.onMo?.({ mobile, text: p.text, destcode: p.destcode });
    const missing = ems ? Array.from({ length: ems.total }, (_, i) => i + 1).filter((n) => n !== ems.number) : [];
    this.o.emitMo({
      topic: "mo",
      payload: {
        mobile,
        mobileRaw: p.mobileRaw,
        destcode: p.destcode,
        text: p.text,
        moTime: parsePlatformTime(p.moTimeRaw, this.o.offsetMinutes),
        moTimeRaw: p.moTimeRaw,
        parts: 1,
        complete: missing.length === 0,
        missing,
        receivedAt,
        extra: p.extra,
        ...(ems ? { emshead: { ...ems } } : {}),
      },
    });
  }

  private emitAssembled(m: Assembled<PartMeta>): void {
    this.stats.mo++;
    // Only a whole message is read as a reply: what arrived of one is not what the person sent.
    if (m.complete) this.o.onMo?.({ mobile: m.mobile, text: m.text, destcode: m.destcode });
    // The first part's time is when the sender's message began; the last part's receipt is when
    // it was complete here.
    const first = m.metas[0];
    const last = m.metas.reduce((a, b) => (b.receivedAt > a.receivedAt ? b : a), first);
    this.o.emitMo({
      topic: "mo",
      payload: {
        mobile: m.mobile,
        mobileRaw: first.mobileRaw,
        destcode: m.destcode,
        text: m.text,
        moTime: parsePlatformTime(first.moTimeRaw, this.o.offsetMinutes),
        moTimeRaw: first.moTimeRaw,
        parts: m.received.length,
        complete: m.complete,
        missing: m.missing,
        receivedAt: last.receivedAt,
        extra: first.extra,
      },
    });
  }
}

/** A push's params (a Batch for a JSON array body), or an answer decided before parsing. */
export type ParamsResult = { params: Params | Batch } | { answer: Answer };

const PROBE: ParamsResult = { answer: OK };
const TOO_LARGE: ParamsResult = { answer: { status: 413, body: "Payload Too Large" } };
const UNREADABLE: ParamsResult = { answer: { status: 400, body: "Bad Request: unreadable body" } };
/** URL params times array elements merged at most (a real push carries a few of each). */
const MAX_BATCH_COPIES = 20_000;
const TOO_MANY: ParamsResult = { answer: { status: 400, body: `Bad Request: more than ${MAX_PARAMS} parameters` } };

type PushRequest = IncomingMessage & { body?: unknown; _body?: boolean; query?: unknown };

/**
 * A push's params: the query for GET and HEAD (answered without waiting: the platform pushes by
 * GET), else the query and the body, read here (bounded) unless Node-RED's own middleware already
 * parsed it. A GET or HEAD without any param is a platform checking the URL: answered OK.
 */
export function readParams(req: PushRequest): ParamsResult | Promise<ParamsResult> {
  const query = queryOf(req);
  if (query === null) return TOO_MANY;
  if (req.method !== "POST") return isEmpty(query) ? PROBE : { params: query };
  if (req._body || (req.body !== undefined && req.readableEnded)) return parsed(req.body, query, req);
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) return TOO_LARGE;
  // Read by a middleware that kept nothing: waiting for its end would wait forever.
  if (req.readableEnded) return parseBody(Buffer.alloc(0), req.headers["content-type"], query);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(c);
      // Too large: answered now, not at the end of a body that may never end (the answer closes
      // the connection, see receive-http.ts).
      over = true;
      chunks.length = 0;
      req.pause();
      resolve(TOO_LARGE);
    });
    req.on("end", () =>
      resolve(over ? TOO_LARGE : parseBody(Buffer.concat(chunks), req.headers["content-type"], query)),
    );
    req.on("error", () => resolve(UNREADABLE));
    // An aborted request may end with neither: resolving twice is harmless, never resolving is not.
    req.on("close", () => resolve(UNREADABLE));
  });
}

function isEmpty(o: object): boolean {
  for (const _k in o) return false;
  return true;
}

/**
 * The query, each name with its first value (SPEC B4a): Express's parse, unless it left a value
 * undecoded (its parser keeps a value whose percent-escapes are not UTF-8 as it came): then the raw
 * query string, read here (GB18030 bytes). Null when it has more than MAX_PARAMS params (Express's
 * parser drops those beyond its limit silently, so they are counted on the raw string).
 */
function queryOf(req: PushRequest): Params | null {
  const url = req.url ?? "";
  const at = url.indexOf("?");
  if (at < 0) return {};
  if (countParams(url, at + 1) > MAX_PARAMS) return null;
  const q = req.query;
  if (q && typeof q === "object" && !needsOwnParse(q as Params)) return firstValues(q as Params);
  try {
    return { ...parseForm(Buffer.from(url.slice(at + 1), "latin1")) };
  } catch (e) {
    if (e instanceof TooManyParams) return null;
    throw e;
  }
}

/** Non-empty `&`-separated params of `s` from `from`, counted up to one past MAX_PARAMS. */
function countParams(s: string, from: number): number {
  let n = 0;
  for (let i = from; i <= s.length && n <= MAX_PARAMS;) {
    let end = s.indexOf("&", i);
    if (end < 0) end = s.length;
    if (end > i) n++;
    i = end + 1;
  }
  return n;
}

// Cheap on the common path: a value without "%" was decoded (or had nothing to decode).
function needsOwnParse(q: Params): boolean {
  for (const k in q) {
    const v = q[k];
    if (k.includes("%") || (typeof v === "string" && v.includes("%"))) return true;
    if (Array.isArray(v) && v.some((x) => typeof x === "string" && x.includes("%"))) return true;
  }
  return false;
}

/**
 * A body Node-RED's own middleware parsed (with httpAdminRoot and httpNodeRoot both "/"). Only a
 * form body gets the first-value rule and the GB18030 repair (SPEC B4a): a JSON body's text is
 * emitted exactly as sent, and its arrays are values.
 */
function parsed(body: unknown, query: Params, req: PushRequest): ParamsResult {
  const type = req.headers["content-type"];
  if (typeof body === "string" || Buffer.isBuffer(body)) {
    return parseBody(Buffer.isBuffer(body) ? body : Buffer.from(body), type, query);
  }
  const form = /urlencoded/i.test(type ?? "");
  if (Array.isArray(body)) return { params: new Batch(form ? body.map(repaired) : body, query) };
  if (isObject(body)) {
    // Counted before anything is copied (Node-RED's parser takes up to 5 MB: 300,000 keys).
    if (moreKeysThan(body, MAX_PARAMS)) return TOO_MANY;
    return { params: merge(query, form ? (repaired(firstValues(body)) as Params) : body) };
  }
  return { params: query };
}

/** Whether `o` has more than `max` own keys (stops counting there). */
function moreKeysThan(o: object, max: number): boolean {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k) && ++n > max) return true;
  return false;
}

function isObject(v: unknown): v is Params {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function repaired(el: unknown): unknown {
  if (!isObject(el)) return el;
  let out: Params | null = null;
  for (const [k, v] of Object.entries(el)) {
    if (typeof v !== "string") continue;
    const fixed = repairUndecoded(v);
    if (fixed !== v) (out ??= { ...(el as Params) })[k] = fixed;
  }
  return out ?? el;
}

/** Body params win over query params. */
function merge(query: Params, body: Params): Params {
  return isEmpty(query) ? body : { ...query, ...body };
}

function parseBody(bytes: Buffer, type: string | undefined, query: Params): ParamsResult {
  const label = charsetOf(type);
  const charset = label ? decoderFor(label) : null;
  if (charset === undefined) {
    return { answer: { status: 415, body: `Unsupported Media Type: charset "${label.slice(0, 40)}"` } };
  }
  if (isJson(bytes, type)) {
    let v: unknown;
    try {
      v = parseJson(decodeText(bytes, charset));
    } catch {
      return UNREADABLE;
    }
    if (Array.isArray(v)) return { params: new Batch(v, query) };
    if (!isObject(v)) return UNREADABLE;
    return { params: merge(query, v) };
  }
  try {
    return { params: { ...query, ...parseForm(bytes, charset) } };
  } catch (e) {
    if (e instanceof TooManyParams) return TOO_MANY;
    throw e;
  }
}

function isJson(bytes: Buffer, type: string | undefined): boolean {
  if (/json/i.test(type ?? "")) return true;
  if (/form/i.test(type ?? "")) return false;
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b === 0x7b || b === 0x5b;
  return false;
}
