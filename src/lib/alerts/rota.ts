// Who is on call when (SPEC B11), and the rules of sms-oncall's options: the rota in order, its
// rotation at a handover in the account's fixed UTC offset, and the chain of steps. The editor runs
// this module too (bundled into resources/ by scripts/resources.js): it shows who is on call now
// and next with the runtime's own arithmetic, and refuses exactly what the node would. No Node.js
// API here.
import { fill, type Lang, type Texts } from "../i18n";
import { listForMessage, parseMobiles, splitMobiles, type MobileCheck } from "../platform/numbers";
import { formatInstant } from "../platform/time";

export type Rotate = "none" | "daily" | "weekly";
export type ResolvedNotify = "notified" | "none";
export const ROTATES: readonly Rotate[] = ["none", "daily", "weekly"];
export const RESOLVED_NOTIFY: readonly ResolvedNotify[] = ["notified", "none"];

/** Whom a step pages: the one on call now, the one after, the whole rota, or given numbers. */
export type Target = "oncall" | "next" | "all" | string[];

export interface Step {
  to: Target;
  /** minutes before the next step when nobody acknowledged (1-1440) */
  wait: number;
}

export const DEFAULT_STEPS: readonly Step[] = [
  { to: "oncall", wait: 5 },
  { to: "next", wait: 10 },
  { to: "all", wait: 15 },
];

export const ONCALL_TEXTS = {
  noRota: {
    "en-US": "The rota is empty: give at least one mobile number",
    "zh-CN": "值班表为空：请至少填写一个手机号码",
  },
  badRota: {
    "en-US": "The rota has {count} invalid number(s): {list}",
    "zh-CN": "值班表中有 {count} 个无效号码：{list}",
  },
  badHandover: {
    "en-US": 'Handover "{value}" is not valid: write it as {example}',
    "zh-CN": "交接时间“{value}”无效：请写成 {example}",
  },
  noRotaStart: {
    "en-US": "A rota that rotates needs its start: the day (YYYY-MM-DD) the first number took over",
    "zh-CN": "轮换的值班表需要起始日期：第一个号码开始值班的日期（YYYY-MM-DD）",
  },
  badRotaStart: {
    "en-US": 'Rota start "{value}" is not a date: write it as YYYY-MM-DD, e.g. 2024-01-01',
    "zh-CN": "值班起始日期“{value}”无效：请写成 YYYY-MM-DD，例如 2024-01-01",
  },
  badSteps: {
    "en-US": 'Steps must be a JSON list of {"to", "wait"} with at least one step: {reason}',
    "zh-CN": '步骤必须是至少包含一个 {"to", "wait"} 的 JSON 列表：{reason}',
  },
  badStepTo: {
    "en-US": 'Step {step}: "to" must be oncall, next, all or a list of numbers, got {value}',
    "zh-CN": "第 {step} 步：“to”必须是 oncall、next、all 或号码列表，实际为 {value}",
  },
  badStepNumbers: {
    "en-US": "Step {step}: {count} invalid number(s): {list}",
    "zh-CN": "第 {step} 步：{count} 个无效号码：{list}",
  },
  badStepWait: {
    "en-US": 'Step {step}: "wait" must be a whole number of minutes from 1 to 1440, got {value}',
    "zh-CN": "第 {step} 步：“wait”必须是 1 到 1440 之间的整数分钟，实际为 {value}",
  },
  badRange: {
    "en-US": "{name} must be a whole number from {min} to {max}, got {value}",
    "zh-CN": "{name} 必须是 {min} 到 {max} 之间的整数，实际为 {value}",
  },
  badChoice: {
    "en-US": "{name} must be one of {choices}, got {value}",
    "zh-CN": "{name} 必须是 {choices} 之一，实际为 {value}",
  },
} satisfies Record<string, Texts>;

export type OncallTextKey = keyof typeof ONCALL_TEXTS;

/** An option that cannot work: the node shows it and does not start. */
export class OncallConfigError extends Error {
  constructor(
    readonly key: OncallTextKey,
    lang: Lang,
    readonly params: Record<string, unknown>,
  ) {
    super(fill(ONCALL_TEXTS[key][lang], params));
    this.name = "OncallConfigError";
  }
}

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const WEEK = 7 * DAY;
const DAY_NAMES: Record<string, number> = {};
// 0 = Monday. English (short and long, any case) and Chinese (周一, 星期一, 礼拜一) day names.
["mon", "tue", "wed", "thu", "fri", "sat", "sun"].forEach((d, i) => (DAY_NAMES[d] = i));
["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"].forEach((d, i) => (DAY_NAMES[d] = i));
["一", "二", "三", "四", "五", "六", "日"].forEach((d, i) => {
  for (const p of ["周", "星期", "礼拜"]) DAY_NAMES[p + d] = i;
});
DAY_NAMES["周天"] = DAY_NAMES["星期天"] = DAY_NAMES["礼拜天"] = 6;
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** A handover: minutes after local midnight, and for a weekly rota the weekday (0 = Monday). */
export interface Handover {
  minute: number;
  weekday: number | null;
}

const isBlank = (v: unknown) => v === undefined || v === null || (typeof v === "string" && v.trim() === "");

/** The rota's numbers, validated and normalised as sms-send does; at least one. */
export function readRota(value: unknown, check: MobileCheck = "cn", lang: Lang = "en-US"): string[] {
  const entries = splitMobiles(isBlank(value) ? [] : value) ?? [String(value)];
  const parsed = parseMobiles(entries, check);
  if (parsed.invalid.length) {
    throw new OncallConfigError("badRota", lang, {
      count: parsed.invalid.length,
      list: listForMessage(parsed.invalid),
    });
  }
  if (!parsed.valid.length) throw new OncallConfigError("noRota", lang, {});
  return parsed.valid;
}

/** `HH:MM` (daily) or `Mon HH:MM` (weekly); empty is `09:00` / `Mon 09:00`. */
export function parseHandover(value: unknown, rotate: Rotate, lang: Lang = "en-US"): Handover {
  const weekly = rotate === "weekly";
  const text = isBlank(value) ? "" : String(value).trim();
  if (text === "") return { minute: 9 * 60, weekday: weekly ? 0 : null };
  const bad = () =>
    new OncallConfigError("badHandover", lang, { value: text, example: weekly ? "Mon 09:00" : "09:00" });
  const m = /^(?:([^\d\s]+)\s*)?(\d{1,2})[:：](\d{2})$/.exec(text);
  if (!m || Number(m[2]) > 23 || Number(m[3]) > 59) throw bad();
  const minute = Number(m[2]) * 60 + Number(m[3]);
  if (!weekly) {
    if (m[1] !== undefined) throw bad();
    return { minute, weekday: null };
  }
  const day = m[1] === undefined ? undefined : DAY_NAMES[m[1].toLowerCase()];
  if (day === undefined) throw bad();
  return { minute, weekday: day };
}

/** `YYYY-MM-DD` as the UTC midnight of that date (ms), or null when empty. */
export function parseRotaStart(value: unknown, lang: Lang = "en-US"): number | null {
  if (isBlank(value)) return null;
  const text = String(value).trim();
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(text);
  const ms = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
  const d = new Date(ms);
  if (!m || Number.isNaN(ms) || d.getUTCMonth() !== Number(m[2]) - 1 || d.getUTCDate() !== Number(m[3])) {
    throw new OncallConfigError("badRotaStart", lang, { value: text });
  }
  return ms;
}

function wholeInRange(value: unknown, fallback: number, min: number, max: number, name: string, lang: Lang): number {
  if (isBlank(value)) return fallback;
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value.trim()) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new OncallConfigError("badRange", lang, { name, min, max, value: String(value) });
  }
  return n;
}

function choice<T extends string>(value: unknown, allowed: readonly T[], fallback: T, name: string, lang: Lang): T {
  if (isBlank(value)) return fallback;
  if ((allowed as readonly unknown[]).includes(value)) return value as T;
  throw new OncallConfigError("badChoice", lang, { name, choices: allowed.join(", "), value: String(value) });
}

/** The chain: a JSON list (or the list itself) of `{ to, wait }`; empty is the default chain. */
export function parseSteps(value: unknown, check: MobileCheck = "cn", lang: Lang = "en-US"): Step[] {
  if (isBlank(value)) return DEFAULT_STEPS.map((s) => ({ ...s }));
  let list: unknown = value;
  if (typeof value === "string") {
    try {
      list = JSON.parse(value);
    } catch (e) {
      throw new OncallConfigError("badSteps", lang, { reason: String((e as Error).message) });
    }
  }
  if (!Array.isArray(list) || !list.length) {
    throw new OncallConfigError("badSteps", lang, { reason: Array.isArray(list) ? "[]" : JSON.stringify(list) });
  }
  return list.map((raw: unknown, i) => {
    const step = i + 1;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
      throw new OncallConfigError("badSteps", lang, { reason: `${step}: ${JSON.stringify(raw)}` });
    }
    const { to, wait } = raw as { to?: unknown; wait?: unknown };
    let target: Target;
    if (to === "oncall" || to === "next" || to === "all") target = to;
    else if ((typeof to === "string" && to.trim() !== "") || (Array.isArray(to) && to.length)) {
      const parsed = parseMobiles(splitMobiles(to) ?? [], check);
      if (parsed.invalid.length || !parsed.valid.length) {
        const invalid = parsed.invalid.length ? parsed.invalid : [JSON.stringify(to)];
        throw new OncallConfigError("badStepNumbers", lang, {
          step,
          count: invalid.length,
          list: listForMessage(invalid),
        });
      }
      target = parsed.valid;
    } else throw new OncallConfigError("badStepTo", lang, { step, value: JSON.stringify(to ?? null) });
    const n = typeof wait === "number" ? wait : typeof wait === "string" && wait.trim() ? Number(wait) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 1440) {
      throw new OncallConfigError("badStepWait", lang, { step, value: JSON.stringify(wait ?? null) });
    }
    return { to: target, wait: n };
  });
}

/** sms-oncall's options as the editor saves them (strings) or a flow gives them. */
export interface PlanInput {
  rota?: unknown;
  rotate?: unknown;
  handover?: unknown;
  rotaStart?: unknown;
  steps?: unknown;
  repeat?: unknown;
  bundle?: unknown;
  resolvedNotify?: unknown;
  maxOpen?: unknown;
  keep?: unknown;
}

/** The options read and checked: what the chain runs on. */
export interface Plan {
  rota: string[];
  rotate: Rotate;
  handover: Handover;
  /** UTC midnight of the start date (ms), null without rotation */
  rotaStart: number | null;
  steps: Step[];
  repeat: number;
  /** seconds, 0 = off */
  bundle: number;
  resolvedNotify: ResolvedNotify;
  maxOpen: number;
  /** hours */
  keep: number;
}

/** Each option read as the runtime reads it (the editor's validators call these one by one). */
export const ONCALL_OPTIONS = {
  rota: (v: unknown, lang: Lang, check: MobileCheck) => readRota(v, check, lang),
  rotate: (v: unknown, lang: Lang) => choice(v, ROTATES, "none", "rotate", lang),
  steps: (v: unknown, lang: Lang, check: MobileCheck) => parseSteps(v, check, lang),
  repeat: (v: unknown, lang: Lang) => wholeInRange(v, 0, 0, 10, "repeat", lang),
  bundle: (v: unknown, lang: Lang) => wholeInRange(v, 0, 0, 600, "bundle", lang),
  resolvedNotify: (v: unknown, lang: Lang) => choice(v, RESOLVED_NOTIFY, "notified", "resolvedNotify", lang),
  maxOpen: (v: unknown, lang: Lang) => wholeInRange(v, 1000, 1, 1_000_000, "maxOpen", lang),
  keep: (v: unknown, lang: Lang) => wholeInRange(v, 24, 1, 720, "keep", lang),
};

export function readPlan(input: PlanInput, check: MobileCheck = "cn", lang: Lang = "en-US"): Plan {
  const rotate = ONCALL_OPTIONS.rotate(input.rotate, lang);
  const handover = parseHandover(input.handover, rotate, lang);
  const rotaStart = parseRotaStart(input.rotaStart, lang);
  if (rotate !== "none" && rotaStart === null) throw new OncallConfigError("noRotaStart", lang, {});
  return {
    rota: ONCALL_OPTIONS.rota(input.rota, lang, check),
    rotate,
    handover,
    rotaStart,
    steps: ONCALL_OPTIONS.steps(input.steps, lang, check),
    repeat: ONCALL_OPTIONS.repeat(input.repeat, lang),
    bundle: ONCALL_OPTIONS.bundle(input.bundle, lang),
    resolvedNotify: ONCALL_OPTIONS.resolvedNotify(input.resolvedNotify, lang),
    maxOpen: ONCALL_OPTIONS.maxOpen(input.maxOpen, lang),
    keep: ONCALL_OPTIONS.keep(input.keep, lang),
  };
}

/**
 * What is wrong with one option (null when the runtime takes it). `handover` and `rotaStart`
 * depend on `rotate`, given in `others`.
 */
export function oncallOptionProblem(
  name: string,
  value: unknown,
  others: PlanInput = {},
  check: MobileCheck = "cn",
  lang: Lang = "en-US",
): OncallConfigError | null {
  try {
    if (name === "handover") parseHandover(value, choice(others.rotate, ROTATES, "none", "rotate", lang), lang);
    else if (name === "rotaStart") {
      const start = parseRotaStart(value, lang);
      const rotate = ROTATES.includes(others.rotate as Rotate) ? others.rotate : "none";
      if (rotate !== "none" && start === null) throw new OncallConfigError("noRotaStart", lang, {});
    } else if (name in ONCALL_OPTIONS) ONCALL_OPTIONS[name as keyof typeof ONCALL_OPTIONS](value, lang, check);
    return null;
  } catch (e) {
    if (e instanceof OncallConfigError) return e;
    throw e;
  }
}

/** The rota in time: who is on call at an instant, who is next, when the next handover is. */
export class Rota {
  private readonly period: number;
  /** a handover instant at or before the start (ms): periods are counted from it */
  private readonly origin: number;

  constructor(
    readonly numbers: readonly string[],
    readonly rotate: Rotate,
    handover: Handover,
    rotaStart: number | null,
    /** the account's UTC offset, minutes east */
    readonly offsetMinutes: number,
  ) {
    if (!numbers.length) throw new RangeError("a rota needs at least one number");
    this.period = rotate === "weekly" ? WEEK : DAY;
    // Local midnight of the start date, as an instant; then the handover on that day.
    const startDay = (rotaStart ?? 0) - offsetMinutes * MIN;
    let origin = startDay + handover.minute * MIN;
    if (rotate === "weekly" && handover.weekday !== null) {
      // 1970-01-01 was a Thursday (3 with Monday = 0): the start date's weekday, then back to
      // the handover's weekday (the start's own week, so rota[0] is on call from the start).
      const weekday = (Math.floor((rotaStart ?? 0) / DAY) + 3) % 7;
      const back = (weekday - handover.weekday + 7) % 7;
      origin -= back * DAY;
    }
    this.origin = origin;
  }

  static of(plan: Plan, offsetMinutes: number): Rota {
    return new Rota(plan.rota, plan.rotate, plan.handover, plan.rotaStart, offsetMinutes);
  }

  /** Position in the rota of whoever is on call at `ms`. */
  index(ms: number): number {
    if (this.rotate === "none") return 0;
    const n = this.numbers.length;
    const turns = Math.floor((ms - this.origin) / this.period);
    return ((turns % n) + n) % n;
  }

  onCall(ms: number): string {
    return this.numbers[this.index(ms)];
  }

  /** The one after whoever is on call at `ms` (the same number in a rota of one). */
  next(ms: number): string {
    return this.numbers[(this.index(ms) + 1) % this.numbers.length];
  }

  /** The numbers a step pages at `ms`, in rota order (for `all`) or as listed. */
  targets(to: Target, ms: number): string[] {
    if (to === "oncall") return [this.onCall(ms)];
    if (to === "next") return [this.next(ms)];
    if (to === "all") return [...this.numbers];
    return [...to];
  }

  /** The first handover after `ms` (ms), or null when the rota does not rotate. */
  nextHandover(ms: number): number | null {
    if (this.rotate === "none") return null;
    return this.origin + (Math.floor((ms - this.origin) / this.period) + 1) * this.period;
  }
}

/** A handover for display: `09:00` or `Mon 09:00`. */
export function formatHandover(h: Handover): string {
  const hm = `${String(Math.floor(h.minute / 60)).padStart(2, "0")}:${String(h.minute % 60).padStart(2, "0")}`;
  return h.weekday === null ? hm : `${WEEKDAYS[h.weekday]} ${hm}`;
}

/** Who is on call at `ms` and who is next, and until when (ISO in the offset; null: no rotation). */
export interface OnCallNow {
  onCall: string;
  next: string;
  until: string | null;
}

/**
 * The editor's "on call now / next" line, computed as the runtime computes it: the plan read from
 * the dialog's values (null when they cannot work; the validators say why).
 */
export function onCallNow(
  input: PlanInput,
  offsetMinutes: number,
  ms: number,
  check: MobileCheck = "cn",
): OnCallNow | null {
  let plan: Plan;
  try {
    plan = readPlan(input, check);
  } catch {
    return null;
  }
  const rota = Rota.of(plan, offsetMinutes);
  const handover = rota.nextHandover(ms);
  // "Next" is who takes over at the handover; without rotation, the `next` step's number.
  return {
    onCall: rota.onCall(ms),
    next: handover === null ? rota.next(ms) : rota.onCall(handover),
    until: handover === null ? null : formatInstant(handover, offsetMinutes),
  };
}
