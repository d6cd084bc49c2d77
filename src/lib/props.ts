// The editor saves numbers and booleans as strings ("500", "true"); flows and msg overrides may
// carry either form, so every property goes through these. This module also runs in the editor
// (bundled into resources/ by scripts/resources.js): no Node.js API at load time.
import { parseOffset } from "./offset";

/** `maxLength`'s default (SPEC B1): the platform document's 700 characters. */
export const DEFAULT_MAX_LENGTH = 700;

export function toNumber(value: unknown, fallback: number, opts: { min?: number; max?: number } = {}): number {
  let n: number;
  if (typeof value === "number") n = value;
  else if (typeof value === "string" && value.trim() !== "") n = Number(value.trim());
  else return fallback;
  if (!Number.isFinite(n)) return fallback;
  if (opts.min !== undefined && n < opts.min) return fallback;
  if (opts.max !== undefined && n > opts.max) return fallback;
  return n;
}

export function toBool(value: unknown, fallback: boolean): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    if (v === "true") return true;
    if (v === "false") return false;
  }
  return fallback;
}

export function toStr(value: unknown, fallback = ""): string {
  if (typeof value === "string") return value.trim();
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return fallback;
}

export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  // The editor has no Buffer (this module is bundled for it).
  if (typeof Buffer !== "undefined" && Buffer.isBuffer(value)) return "buffer";
  return typeof value;
}

/**
 * What a numeric setting accepts. A value out of range is either clamped to the bound it crossed
 * (the user's intent is clear: "more retries", "a longer timeout") or refused, keeping the
 * default (a negative rate or timeout says nothing usable; clamping -5 ms to the minimum would
 * make every send time out).
 */
export interface NumberRule {
  default: number;
  min: number;
  max?: number;
  integer?: boolean;
  /** for settings where 0 means "off": a positive value below this is raised to it */
  minPositive?: number;
  below: "clamp" | "default";
  above?: "clamp" | "default";
}

/**
 * The config node's numeric settings (SPEC B1). The upper bounds keep values usable: a timer
 * over 2^31 ms fires at once, and a million waiting sends is already far past any real queue.
 */
export const CONFIG_RULES = {
  timeout: { default: 10_000, min: 100, max: 600_000, below: "default", above: "clamp" },
  // One request per 1,000 s is the slowest pace whose wait a timer can hold.
  rate: { default: 10, min: 0, minPositive: 0.001, below: "default" },
  queue: { default: 10_000, min: 0, max: 1_000_000, integer: true, below: "default", above: "clamp" },
  retries: { default: 3, min: 0, max: 10, integer: true, below: "default", above: "clamp" },
  maxLength: { default: DEFAULT_MAX_LENGTH, min: 1, integer: true, below: "default" },
} as const satisfies Record<string, NumberRule>;

export type ConfigNumberSetting = keyof typeof CONFIG_RULES;

/** sms-balance's `threshold` (SPEC B3): 0 = off. */
export const THRESHOLD_RULE: NumberRule = { default: 0, min: 0, below: "default" };

export const DEFAULT_TZ = "+08:00";
export const MOBILE_CHECKS = ["cn", "digits"] as const;
/** Where the account's state lives (SPEC B6). */
export const STORES = ["memory", "redis"] as const;
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0";
export const DEFAULT_REDIS_PREFIX = "cnsms:";

export type SettingReason = "notNumber" | "notInteger" | "belowMin" | "aboveMax" | "notOffset" | "notOneOf";

export interface SettingProblem {
  reason: SettingReason;
  /** the value as given, shortened for a log line */
  given: string;
  /** what is used instead */
  used: number | string;
  /** true when the value was refused and the default is used; false when it was clamped */
  isDefault: boolean;
  /** the bound crossed, or the allowed values */
  limit?: number | string;
}

export interface Checked<T> {
  value: T;
  problem: SettingProblem | null;
}

function shown(value: unknown): string {
  const s = typeof value === "string" ? value.trim() : String(value);
  return s.length > 40 ? s.slice(0, 40) + "…" : s;
}

function isAbsent(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "string" && value.trim() === "");
}

/** Reads a numeric setting by its rule; an absent or empty value is the default, silently. */
export function checkNumber(value: unknown, rule: NumberRule): Checked<number> {
  if (isAbsent(value)) return { value: rule.default, problem: null };
  const refuse = (reason: SettingReason, limit?: number): Checked<number> => ({
    value: rule.default,
    problem: { reason, given: shown(value), used: rule.default, isDefault: true, limit },
  });
  const clamp = (reason: SettingReason, limit: number): Checked<number> => ({
    value: limit,
    problem: { reason, given: shown(value), used: limit, isDefault: false, limit },
  });
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n)) return refuse("notNumber");
  if (rule.integer && !Number.isInteger(n)) return refuse("notInteger");
  if (n < rule.min) return rule.below === "clamp" ? clamp("belowMin", rule.min) : refuse("belowMin", rule.min);
  if (rule.max !== undefined && n > rule.max) {
    return rule.above === "default" ? refuse("aboveMax", rule.max) : clamp("aboveMax", rule.max);
  }
  if (rule.minPositive !== undefined && n > 0 && n < rule.minPositive) return clamp("belowMin", rule.minPositive);
  return { value: n, problem: null };
}

/** Reads a UTC offset (`+08:00`, `+0800`, `+8`, `Z`, at most ±14:00); anything else keeps the default. */
export function checkOffset(value: unknown, fallback = DEFAULT_TZ): Checked<string> & { minutes: number } {
  const ok = (tz: string) => ({ value: tz, minutes: parseOffset(tz)!, problem: null });
  if (isAbsent(value)) return ok(fallback);
  const tz = typeof value === "string" ? value.trim() : "";
  if (tz && parseOffset(tz) !== null) return ok(tz);
  return {
    ...ok(fallback),
    problem: { reason: "notOffset", given: shown(value), used: fallback, isDefault: true },
  };
}

/** Reads one of a fixed set of values; anything else keeps the default. */
export function checkChoice<T extends string>(value: unknown, allowed: readonly T[], fallback: T): Checked<T> {
  if (isAbsent(value)) return { value: fallback, problem: null };
  if (typeof value === "string" && (allowed as readonly string[]).includes(value))
    return { value: value as T, problem: null };
  return {
    value: fallback,
    problem: { reason: "notOneOf", given: shown(value), used: fallback, isDefault: true, limit: allowed.join(", ") },
  };
}

/** Looks a message up in the caller's catalog (Node-RED's RED._ or the editor's node._). */
export type Translate = (key: string, params?: Record<string, string | number>) => string;

/**
 * One sentence naming the setting, the value given, what is wrong and what is used instead; the
 * runtime logs it and the editor's validator shows it, so both say the same. Keys live under
 * `errors.` of the caller's catalog (`t` adds the catalog's prefix).
 */
export function describeProblem(p: SettingProblem, label: string, t: Translate): string {
  const limit = p.limit ?? "";
  const problem = t(`errors.${p.reason}`, { min: limit, max: limit, allowed: limit });
  const outcome = t(p.isDefault ? "errors.useDefault" : "errors.useBound", { used: p.used });
  return t("errors.setting", { label, value: p.given, problem, outcome });
}

/** sms-send's `trackTimeout` (SPEC B7): at most 48 h, 60 minutes when empty. */
export const MAX_TRACK_TIMEOUT_MS = 48 * 3_600_000;
export const DEFAULT_TRACK_TIMEOUT_MS = 60 * 60_000;

/** Reads `trackTimeout` (minutes, a number or a numeric string; empty = 60): ms, or null when invalid. */
export function parseTrackTimeout(value: unknown): number | null {
  if (value === undefined || value === null || (typeof value === "string" && value.trim() === "")) {
    return DEFAULT_TRACK_TIMEOUT_MS;
  }
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n) || n <= 0 || n * 60_000 > MAX_TRACK_TIMEOUT_MS) return null;
  return Math.round(n * 60_000);
}
