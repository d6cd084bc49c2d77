import { MAX_PARAMS } from "./charset";

/** Params named by SPEC A3/A4; every other param is kept in `extra`. */
const REPORT_NAMES = new Set(["receiver", "pswd", "msgid", "reportTime", "mobile", "status"]);
const MO_NAMES = new Set(["receiver", "pswd", "moTime", "destcode", "mobile", "msg", "isems", "emshead"]);

export const LIMITS = {
  msgid: 100,
  mobile: 32,
  status: 64,
  time: 32,
  destcode: 32,
  text: 4000,
  /**
   * Characters of one long-SMS part. A part carries at most 153 GSM-7 characters (67 in UCS-2)
   * after its header, and no SMS holds more than 160: anything longer is not a part, and a bound
   * this close to real parts is what keeps 255 parts × 1,000 pending messages small.
   */
  partText: 160,
  /** nesting of an extra param's value; Node-RED clones messages recursively */
  extraDepth: 32,
  /** a long SMS of 700 characters has 11 parts; 255 is the most an 8-bit UDH can say */
  maxTotal: 255,
} as const;

export type Params = Record<string, unknown>;

export interface ReportPush {
  kind: "report";
  msgid: string;
  /** trimmed */
  mobile: string;
  /** as pushed */
  mobileRaw: string;
  status: string;
  reportTimeRaw: string;
  receiver: string;
  pswd: string;
  extra: Extra;
  /** approximate bytes the extra params take in memory */
  extraBytes: number;
}

/** Params not named by SPEC A3/A4, as they came (any JSON type). */
export type Extra = Record<string, unknown>;

interface Extras {
  extra: Extra;
  bytes: number;
}

export interface EmsHead {
  id: string;
  total: number;
  number: number;
}

export interface MoPush {
  kind: "mo";
  /** trimmed */
  mobile: string;
  /** as pushed */
  mobileRaw: string;
  destcode: string;
  text: string;
  moTimeRaw: string;
  /** null for a plain SMS */
  ems: EmsHead | null;
  receiver: string;
  pswd: string;
  extra: Extra;
  extraBytes: number;
}

export type PushResult = { ok: true; push: ReportPush | MoPush } | { ok: false; reason: string };

/** Reads one param: a repeated param (array) uses its first value; objects are not params. */
function str(params: Params, name: string): string | undefined | null {
  let v = params[name];
  if (Array.isArray(v)) v = v[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return null;
}

function field(params: Params, name: string, max: number, required: boolean): string | { error: string } {
  const v = str(params, name);
  if (v === null) return { error: `${name} must be text` };
  if (v === undefined || (required && v.trim() === "")) {
    return required ? { error: `missing ${name}` } : "";
  }
  if (v.length > max) return { error: `${name} too long (${v.length} > ${max})` };
  return v;
}

/**
 * Every param not named by SPEC A3/A4, kept as it came: extra params are never a reason to refuse
 * a push. What one push can carry (the body and URL limits) bounds them; only a nesting deeper than
 * `extraDepth` is refused, since Node-RED's recursive message cloning would overflow on it.
 */
function extras(params: Params, named: Set<string>): Extras | { error: string } {
  const extra: Extra = {};
  let bytes = 0;
  for (const k of Object.keys(params)) {
    if (named.has(k)) continue;
    const v = params[k];
    const size = measure(v, LIMITS.extraDepth);
    if (size < 0) return { error: `${k} nested too deeply (> ${LIMITS.extraDepth} levels)` };
    bytes += 2 * k.length + size;
    // A "__proto__" key from JSON.parse is an own property; assigning it would set the prototype.
    if (k === "__proto__")
      Object.defineProperty(extra, k, { value: v, enumerable: true, writable: true, configurable: true });
    else extra[k] = v;
  }
  return { extra, bytes };
}

/** Approximate bytes of a JSON value in memory, or -1 when it nests deeper than `depth`. */
function measure(v: unknown, depth: number): number {
  if (typeof v === "string") return 16 + 2 * v.length;
  if (v === null || typeof v !== "object") return 16;
  if (depth === 0) return -1;
  let bytes = 32;
  for (const k of Object.keys(v)) {
    const size = measure((v as Record<string, unknown>)[k], depth - 1);
    if (size < 0) return -1;
    bytes += 16 + 2 * k.length + size;
  }
  return bytes;
}

const isErr = (v: unknown): v is { error: string } => typeof v === "object" && v !== null && "error" in v;

export function parseEmshead(raw: string): EmsHead | { error: string } {
  const m = /^\s*([A-Za-z0-9_-]{1,32})\s*,\s*(\d{1,6})\s*,\s*(\d{1,6})\s*$/.exec(raw);
  if (!m) return { error: "emshead must be id,total,number" };
  const total = Number(m[2]);
  const number = Number(m[3]);
  if (total < 1 || total > LIMITS.maxTotal) return { error: `emshead total must be 1..${LIMITS.maxTotal}` };
  if (number < 1 || number > total) return { error: "emshead number must be 1..total" };
  return { id: m[1], total, number };
}

/** Classifies and checks a push: `status` → report, `mobile` + `msg` → inbound, else malformed. */
export function parsePush(params: Params): PushResult {
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    return { ok: false, reason: "no parameters" };
  }
  // The forms' limit (SPEC B4a) holds for a JSON push too: its keys are its params.
  let count = 0;
  for (const _k in params) if (++count > MAX_PARAMS) return { ok: false, reason: `more than ${MAX_PARAMS} parameters` };
  const receiver = str(params, "receiver");
  const pswd = str(params, "pswd");
  if (receiver === null || pswd === null) return { ok: false, reason: "receiver/pswd must be text" };
  if (params.status !== undefined) return parseReport(params, receiver ?? "", pswd ?? "");
  if (params.mobile !== undefined && params.msg !== undefined) return parseMo(params, receiver ?? "", pswd ?? "");
  return { ok: false, reason: "neither a delivery report (status) nor an inbound SMS (mobile, msg)" };
}

function parseReport(params: Params, receiver: string, pswd: string): PushResult {
  const msgid = field(params, "msgid", LIMITS.msgid, true);
  const mobile = field(params, "mobile", LIMITS.mobile, true);
  const status = field(params, "status", LIMITS.status, true);
  const time = field(params, "reportTime", LIMITS.time, false);
  const extra = extras(params, REPORT_NAMES);
  for (const v of [msgid, mobile, status, time, extra]) if (isErr(v)) return { ok: false, reason: v.error };
  return {
    ok: true,
    push: {
      kind: "report",
      msgid: (msgid as string).trim(),
      mobile: (mobile as string).trim(),
      mobileRaw: mobile as string,
      status: (status as string).trim(),
      reportTimeRaw: time as string,
      receiver,
      pswd,
      extra: (extra as Extras).extra,
      extraBytes: (extra as Extras).bytes,
    },
  };
}

function parseMo(params: Params, receiver: string, pswd: string): PushResult {
  const mobile = field(params, "mobile", LIMITS.mobile, true);
  const text = field(params, "msg", LIMITS.text, false);
  const destcode = field(params, "destcode", LIMITS.destcode, false);
  const time = field(params, "moTime", LIMITS.time, false);
  const isems = field(params, "isems", 8, false);
  const head = field(params, "emshead", 64, false);
  const extra = extras(params, MO_NAMES);
  for (const v of [mobile, text, destcode, time, isems, head, extra])
    if (isErr(v)) return { ok: false, reason: v.error };
  let ems: EmsHead | null = null;
  const flag = (isems as string).trim();
  if (flag === "1") {
    if ((head as string).trim() === "") return { ok: false, reason: "missing emshead (isems=1)" };
    const parsed = parseEmshead(head as string);
    if (isErr(parsed)) return { ok: false, reason: parsed.error };
    ems = parsed;
    const length = (text as string).length;
    if (length > LIMITS.partText) {
      return { ok: false, reason: `msg too long for a long-SMS part (${length} > ${LIMITS.partText})` };
    }
  } else if (flag !== "" && flag !== "0") {
    return { ok: false, reason: "isems must be 0 or 1" };
  }
  return {
    ok: true,
    push: {
      kind: "mo",
      mobile: (mobile as string).trim(),
      mobileRaw: mobile as string,
      destcode: (destcode as string).trim(),
      text: text as string,
      moTimeRaw: time as string,
      ems,
      receiver,
      pswd,
      extra: (extra as Extras).extra,
      extraBytes: (extra as Extras).bytes,
    },
  };
}
