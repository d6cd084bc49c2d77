import { platformStamp } from "../lib/platform/time";
import { PUSH_CHARSETS, type PushCharset } from "./charset";
import { check, type Check } from "./rules";

export const PUSH_STYLES = ["get", "form", "json"] as const;
export const TIME_FORMATS = [
  "YYMMDDhhmm",
  "YYMMDDhhmmss",
  "yyyyMMddHHmmss",
  "epochMs",
  "yyyy-MM-dd HH:mm:ss",
  "iso",
  "isoUtc",
] as const;
export const MOBILE_FORMATS = ["plain", "86", "+86"] as const;

export type PushStyle = (typeof PUSH_STYLES)[number];
export type TimeFormat = (typeof TIME_FORMATS)[number];
export type MobileFormat = (typeof MOBILE_FORMATS)[number];

/**
 * How pushes look on the wire: the variants real platforms of this family send (SPEC A5), so a
 * receiver can be tested against each. Every field is optional; unset means the documented
 * platform behaviour (GET, UTF-8, `YYMMDDhhmm`, numbers as submitted, no extra params).
 *
 * Where they are set: for the whole simulator (`SimulatorOptions`, `POST /sim/config`, CLI flags);
 * per account for its delivery reports (`SimAccountConfig`, `POST /sim/accounts`); per injected
 * inbound SMS (`InjectMo`, `POST /sim/mo`). A value set on the account or the injection replaces
 * the simulator's (`extra` as a whole, not key by key).
 */
export interface PushVariant {
  /**
   * `get` (default): params in the query string, as the platform documents. `form`: POST
   * `application/x-www-form-urlencoded`. `json`: POST one JSON object per push (UTF-8).
   */
  pushStyle?: PushStyle;
  /**
   * Format of `reportTime` / `moTime`, in the platform's offset (UTC+8) unless it says otherwise:
   * `YYMMDDhhmm` (default, `2405011002`), `YYMMDDhhmmss`, `yyyyMMddHHmmss`, `epochMs` (a JSON
   * number in `json` pushes), `yyyy-MM-dd HH:mm:ss`, `iso` (`2024-05-01T10:02:03.456+08:00`),
   * `isoUtc` (`2024-05-01T02:02:03.456Z`). An `InjectMo.moTime` given as text is pushed as given.
   */
  timeFormat?: TimeFormat;
  /** `mobile` as submitted (`plain`, default) or with a country prefix: `86` → 8613800138000, `+86` → +8613800138000. */
  mobileFormat?: MobileFormat;
  /**
   * Charset of the percent-encoding in `get` and `form` pushes: `utf-8` (default), `gb18030`
   * (`msg=%C4%E3%BA%C3` = 你好), or `gbk` (as gb18030, but a character that needs a four-byte
   * code, such as an emoji, becomes `?`). JSON pushes are always UTF-8.
   */
  pushCharset?: PushCharset;
  /** Name the charset in the push's content-type (`...; charset=gb18030`); off by default, as most platforms do not. */
  declareCharset?: boolean;
  /**
   * Delivery reports also carry `notifyTime` (`YYMMDDhhmmss`, push time), `batchSeq` (one number
   * per send), `uid` (the send's `uid` param, empty when none), `price` and `chargeCount` (parts
   * billed per number). In `json` pushes `batchSeq`, `price` and `chargeCount` are JSON numbers.
   */
  reportExtras?: boolean;
  /**
   * Extra params added to every push. In `json` pushes they go as they are (numbers, nested
   * objects, arrays); in `get`/`form` pushes a string goes as it is and anything else as its JSON text.
   */
  extra?: Record<string, unknown>;
  /**
   * 0 (default): one report per push. n ≥ 1: the reports of one send go as JSON arrays of up to
   * n reports per POST, whatever `pushStyle` says (arrays exist only in JSON).
   */
  batchReports?: number;
  /** In JSON reports, `msgid` as a bare JSON number, every digit kept (20 digits are beyond 2^53). */
  msgidAsNumber?: boolean;
}

export const PUSH_RULES: Record<keyof Required<PushVariant>, Check> = {
  pushStyle: check.optional(check.oneOf(PUSH_STYLES)),
  timeFormat: check.optional(check.oneOf(TIME_FORMATS)),
  mobileFormat: check.optional(check.oneOf(MOBILE_FORMATS)),
  pushCharset: check.optional(check.oneOf(PUSH_CHARSETS)),
  declareCharset: check.optional(check.boolean),
  reportExtras: check.optional(check.boolean),
  extra: check.optional(check.object),
  batchReports: check.optional(check.count),
  msgidAsNumber: check.optional(check.boolean),
};

/** The variant fields of `o` that are set, so that they can overlay the simulator's. */
export function variantOf(o: PushVariant): PushVariant {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(PUSH_RULES) as Array<keyof PushVariant>) {
    if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
  }
  return out as PushVariant;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

/** An instant in one of the push time formats; `offsetMinutes` is the platform's offset. */
export function formatPushTime(ms: number, offsetMinutes: number, f: TimeFormat): string | number {
  const stamp = platformStamp(ms, offsetMinutes);
  switch (f) {
    case "YYMMDDhhmm":
      return stamp.slice(2, 12);
    case "YYMMDDhhmmss":
      return stamp.slice(2);
    case "yyyyMMddHHmmss":
      return stamp;
    case "epochMs":
      return ms;
    case "yyyy-MM-dd HH:mm:ss":
      return `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)} ${stamp.slice(8, 10)}:${stamp.slice(10, 12)}:${stamp.slice(12)}`;
    case "iso": {
      const sign = offsetMinutes < 0 ? "-" : "+";
      const a = Math.abs(offsetMinutes);
      const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, -1);
      return `${local}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
    }
    case "isoUtc":
      return new Date(ms).toISOString();
  }
}

export function formatMobile(mobile: string, f: MobileFormat | undefined): string {
  return f === "86" ? `86${mobile}` : f === "+86" ? `+86${mobile}` : mobile;
}
