// Calendar arithmetic of the alert guard (SPEC B8) in the account's fixed UTC offset: the local
// day (for the daily cap), sending hours that may wrap midnight, and when they next begin; and the
// rules of the guard's options, which the editor runs too (bundled into resources/: no Node.js here).
import { fill, type Lang, type Texts } from "../i18n";
import { formatInstant } from "../platform/time";

/** Sending hours as ms after local midnight; `start !== end`, `end < start` wraps midnight. */
export interface Hours {
  start: number;
  end: number;
}

export const GUARD_TEXTS = {
  badHours: {
    "en-US": 'Sending hours "{value}" are not valid: write them as HH:MM-HH:MM, e.g. 08:00-22:00 or 22:00-07:00',
    "zh-CN": "发送时段“{value}”无效：请写成 HH:MM-HH:MM，例如 08:00-22:00 或 22:00-07:00",
  },
  emptyHours: {
    "en-US": 'Sending hours "{value}" begin and end at the same time: leave them empty to send at any time',
    "zh-CN": "发送时段“{value}”的开始与结束时间相同：如需全天发送，请留空",
  },
  badNumber: {
    "en-US": "{name} must be a number of at least {min}, got {value}",
    "zh-CN": "{name} 必须是不小于 {min} 的数字，实际为 {value}",
  },
  badOption: {
    "en-US": "{name} must be a whole number of at least {min}, got {value}",
    "zh-CN": "{name} 必须是不小于 {min} 的整数，实际为 {value}",
  },
  badChoice: {
    "en-US": "{name} must be one of {choices}, got {value}",
    "zh-CN": "{name} 必须是 {choices} 之一，实际为 {value}",
  },
} satisfies Record<string, Texts>;

export type GuardTextKey = keyof typeof GUARD_TEXTS;

/** A guard option that cannot work: the node shows it and does not start guarding. */
export class GuardConfigError extends Error {
  constructor(
    readonly key: GuardTextKey,
    lang: Lang,
    readonly params: Record<string, unknown>,
  ) {
    super(fill(GUARD_TEXTS[key][lang], params));
    this.name = "GuardConfigError";
  }
}

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

export type KeyMode = "topic" | "payload" | "topic+payload";
export type Outside = "hold" | "drop";
export const KEY_MODES: readonly KeyMode[] = ["topic", "payload", "topic+payload"];
export const OUTSIDE_MODES: readonly Outside[] = ["hold", "drop"];

/** A number option (minutes, counts): empty is the default; `whole` ones take no fractions. */
export function readCount(value: unknown, fallback: number, name: string, whole: boolean, lang: Lang): number {
  if (value === undefined || value === null || (typeof value === "string" && value.trim() === "")) return fallback;
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n) || n < 0 || (whole && !Number.isInteger(n))) {
    throw new GuardConfigError(whole ? "badOption" : "badNumber", lang, { name, min: 0, value: String(value) });
  }
  return n;
}

/** One of a fixed set of values; empty is the default. */
export function readChoice<T extends string>(
  value: unknown,
  allowed: readonly T[],
  fallback: T,
  name: string,
  lang: Lang,
): T {
  if (value === undefined || value === null || value === "") return fallback;
  if ((allowed as readonly unknown[]).includes(value)) return value as T;
  throw new GuardConfigError("badChoice", lang, { name, choices: allowed.join(", "), value: String(value) });
}

/** The guard node's options, each read as the runtime reads it: the editor's validators use these. */
export const GUARD_OPTIONS: Record<string, (value: unknown, lang: Lang) => unknown> = {
  key: (v, lang) => readChoice(v, KEY_MODES, "topic", "key", lang),
  window: (v, lang) => readCount(v, 30, "window", false, lang),
  dailyCap: (v, lang) => readCount(v, 0, "dailyCap", true, lang),
  hours: (v, lang) => parseHours(typeof v === "string" ? v : "", lang),
  outside: (v, lang) => readChoice(v, OUTSIDE_MODES, "hold", "outside", lang),
  holdMax: (v, lang) => readCount(v, 1000, "holdMax", true, lang),
};

/** What is wrong with an option's value (null when the runtime takes it). */
export function guardOptionProblem(name: string, value: unknown, lang: Lang = "en-US"): GuardConfigError | null {
  try {
    GUARD_OPTIONS[name](value, lang);
    return null;
  } catch (e) {
    if (e instanceof GuardConfigError) return e;
    throw e;
  }
}

// What people type: ASCII or full-width colons, and a dash, tilde or "至" between the times.
const HOURS = /^(\d{1,2})[:：](\d{2})\s*(?:-|–|—|~|～|至|到)\s*(\d{1,2})[:：](\d{2})$/;

/**
 * `HH:MM-HH:MM` in local time; the end may be `24:00`. Empty (or 00:00-24:00) means always (null). Anything else,
 * and a range that begins where it ends, is a GuardConfigError.
 */
export function parseHours(text: string, lang: Lang = "en-US"): Hours | null {
  const s = text.trim();
  if (s === "") return null;
  const m = HOURS.exec(s);
  const at = (h: string, mi: string) => Number(h) * 60 * MIN + Number(mi) * MIN;
  if (!m || Number(m[2]) > 59 || Number(m[4]) > 59 || Number(m[1]) > 23) {
    throw new GuardConfigError("badHours", lang, { value: text });
  }
  const start = at(m[1], m[2]);
  const end = at(m[3], m[4]);
  if (end > DAY) throw new GuardConfigError("badHours", lang, { value: text });
  if (start === end) throw new GuardConfigError("emptyHours", lang, { value: text });
  // The whole day is the same as no hours: nothing is ever outside them.
  return start === 0 && end === DAY ? null : { start, end };
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Local days and sending hours in one fixed offset (minutes east of UTC). */
export class Calendar {
  private readonly offsetMs: number;
  // The day of the last dayKey call: nearly every call of a busy guard is on the same day.
  private cachedDay = NaN;
  private cachedKey = "";

  constructor(
    readonly offsetMinutes: number,
    readonly hours: Hours | null,
  ) {
    this.offsetMs = offsetMinutes * MIN;
  }

  /** The local date, `YYYY-MM-DD`. */
  dayKey(ms: number): string {
    const day = Math.floor((ms + this.offsetMs) / DAY);
    if (day !== this.cachedDay) {
      const d = new Date(day * DAY);
      this.cachedKey = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
      this.cachedDay = day;
    }
    return this.cachedKey;
  }

  /** The next local midnight after `ms` (the end of its local day). */
  nextMidnight(ms: number): number {
    return (Math.floor((ms + this.offsetMs) / DAY) + 1) * DAY - this.offsetMs;
  }

  inHours(ms: number): boolean {
    const h = this.hours;
    if (!h) return true;
    const t = this.timeOfDay(ms);
    return h.start < h.end ? t >= h.start && t < h.end : t >= h.start || t < h.end;
  }

  /** The first start of the hours strictly after `ms`. */
  nextStart(ms: number): number {
    const start = this.hours?.start ?? 0;
    const dayStart = ms - this.timeOfDay(ms);
    const at = dayStart + start;
    return at > ms ? at : at + DAY;
  }

  /** `ms` when it is inside the hours, else when they next begin. */
  allowedFrom(ms: number): number {
    return this.inHours(ms) ? ms : this.nextStart(ms);
  }

  /** ISO 8601 in the offset, rounded up to the second (never earlier than the moment). */
  iso(ms: number): string {
    return formatInstant(Math.ceil(ms / 1000) * 1000, this.offsetMinutes);
  }

  private timeOfDay(ms: number): number {
    return (((ms + this.offsetMs) % DAY) + DAY) % DAY;
  }
}
