import { check, checkSettings, type Check } from "./rules";
import { PUSH_RULES, type PushVariant } from "./variants";

/**
 * One platform account as the simulator models it. Every rule here can trigger a send code; the
 * push variant fields (see PushVariant) shape this account's delivery reports.
 */
export interface SimAccountConfig extends PushVariant {
  account: string;
  password: string;
  /** product id → balance (SMS parts); the first one is the default product */
  products?: Record<string, number>;
  /** 116 when the text carries no 【…】 */
  signatureRequired?: boolean;
  /** 117 when set and the caller's IP is not listed */
  allowedIps?: string[];
  /** 110 outside [start, end) hours of platform time */
  sendingHours?: [number, number];
  /** 111 when parts sent this month would exceed it */
  monthlyLimit?: number;
  /** 119 */
  expired?: boolean;
  /** 118 when false */
  canSend?: boolean;
  /** 105 */
  sensitiveWords?: string[];
  /** 115 (automatic review rejected) */
  reviewWords?: string[];
  /** 120 when set and the text contains none of them */
  whitelist?: string[];
  /** 113 when extno is not digits or longer than this */
  extnoMaxLength?: number;
  /** 103 when more send requests than this arrive within one second (0 = no limit) */
  rateLimit?: number;
  /** balance 103 when queried again within this many ms (the platform's 10 s) */
  balanceIntervalMs?: number;
  /** 104 */
  busy?: boolean;
  /** 106 above this length */
  maxLength?: number;
  /** "cn": mainland mobiles only (else 107); "digits": 5-20 digits */
  mobileRule?: "cn" | "digits";
  /** answer every send with this code (any code, for flows that must handle it) */
  forceCode?: number;
  /** the older numbering: 114 review, 115 signature, 116 IP, 117 permission, 118 expired */
  oldCodes?: boolean;
  /** reply line ending variant seen in the field */
  lineEnding?: "lf" | "crlf" | "blank";
  /** ms before answering a send (to exercise timeouts) */
  replyDelayMs?: number;
  /** report status per number; others get defaultStatus */
  reportStatus?: Record<string, string>;
  defaultStatus?: string;
  /** push every report this many extra times (duplicates on purpose) */
  duplicateReports?: number;
  /** numbers whose delivery reports are never pushed (a phone that never reports) */
  withholdReports?: string[];
  /** ms after the send before a number's report is pushed, per number (others: the simulator's reportDelayMs) */
  reportDelays?: Record<string, number>;
  /** push a send's reports (those without a delay of their own) before answering the send */
  reportFirst?: boolean;
}

type OptionalRule = "allowedIps" | "sendingHours" | "whitelist" | "forceCode" | keyof PushVariant;

export interface SimAccount extends Required<Omit<SimAccountConfig, OptionalRule>>, PushVariant {
  allowedIps?: string[];
  sendingHours?: [number, number];
  whitelist?: string[];
  forceCode?: number;
  /** parts sent per month key (YYYYMM) */
  monthly: Map<string, number>;
  lastBalanceQuery: number;
  /** send request times within the last second */
  recent: number[];
}

const hours: Check = (v) =>
  Array.isArray(v) && v.length === 2 && v.every((h) => Number.isInteger(h) && h >= 0 && h <= 24)
    ? null
    : "must be [from, to], whole hours 0-24";

/** Every account setting and what it takes; a key not listed here is refused, never ignored. */
export const ACCOUNT_RULES: Record<keyof Required<SimAccountConfig>, Check> = {
  account: check.string,
  password: check.string,
  products: check.numbers,
  signatureRequired: check.boolean,
  allowedIps: check.optional(check.strings),
  sendingHours: check.optional(hours),
  monthlyLimit: check.count,
  expired: check.boolean,
  canSend: check.boolean,
  sensitiveWords: check.strings,
  reviewWords: check.strings,
  whitelist: check.optional(check.strings),
  extnoMaxLength: check.count,
  rateLimit: check.count,
  balanceIntervalMs: check.count,
  busy: check.boolean,
  maxLength: check.count,
  mobileRule: check.oneOf(["cn", "digits"]),
  forceCode: check.optional(check.count),
  oldCodes: check.boolean,
  lineEnding: check.oneOf(["lf", "crlf", "blank"]),
  replyDelayMs: check.count,
  reportStatus: check.texts,
  defaultStatus: check.string,
  duplicateReports: check.count,
  withholdReports: check.strings,
  reportDelays: (v) =>
    check.numbers(v) ??
    (Object.values(v as Record<string, number>).every((n) => Number.isInteger(n) && n >= 0)
      ? null
      : "must be an object of whole numbers >= 0 (ms)"),
  reportFirst: check.boolean,
  ...PUSH_RULES,
};

/** Throws a clear error naming the first unknown or ill-typed setting. */
export function checkAccountConfig(c: unknown): void {
  checkSettings(c, ACCOUNT_RULES, "account");
}

export function makeAccount(c: SimAccountConfig): SimAccount {
  return {
    products: { "1001": 10000, "1002": 500 },
    signatureRequired: false,
    monthlyLimit: 0,
    expired: false,
    canSend: true,
    sensitiveWords: [],
    reviewWords: [],
    extnoMaxLength: 6,
    rateLimit: 0,
    balanceIntervalMs: 10_000,
    busy: false,
    maxLength: 536,
    mobileRule: "cn",
    oldCodes: false,
    lineEnding: "lf",
    replyDelayMs: 0,
    reportStatus: {},
    defaultStatus: "DELIVRD",
    duplicateReports: 0,
    withholdReports: [],
    reportDelays: {},
    reportFirst: false,
    ...c,
    monthly: new Map(),
    lastBalanceQuery: -Infinity,
    recent: [],
  };
}

// Current numbering → older numbering (SPEC A1: older versions number some codes one lower).
const OLD: Record<number, number> = { 115: 114, 116: 115, 117: 116, 118: 117, 119: 118 };

export function platformCode(a: SimAccount, code: number): number {
  return a.oldCodes ? (OLD[code] ?? code) : code;
}
