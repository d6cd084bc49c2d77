import { toNumber, toStr } from "../lib/props";
import { DEFAULT_MAX_LENGTH } from "../lib/text";
import { parseOffset } from "../lib/time";
import type { SmsConfigDef, SmsSettings } from "./common";

export const DEFAULT_URL = "http://120.26.66.24";
/** The platform allows one balance query per 10 s per account (SPEC A2, B3). */
export const BALANCE_WINDOW_MS = 10_000;
/** The password field's placeholder the editor sends back for a saved, unchanged password. */
export const SAVED_PASSWORD = "__PWRD__";

export function readSettings(def: Partial<SmsConfigDef>): SmsSettings {
  const tz = toStr(def.tz) || "+08:00";
  return {
    url: toStr(def.url) || DEFAULT_URL,
    product: toStr(def.product),
    extno: toStr(def.extno),
    signature: typeof def.signature === "string" ? def.signature.trim() : "",
    timeout: toNumber(def.timeout, 10_000, { min: 1 }),
    rate: toNumber(def.rate, 10, { min: 0 }),
    queue: Math.floor(toNumber(def.queue, 10_000, { min: 0 })),
    retries: Math.floor(toNumber(def.retries, 3, { min: 0, max: 10 })),
    maxLength: Math.floor(toNumber(def.maxLength, DEFAULT_MAX_LENGTH, { min: 1 })),
    mobileCheck: def.mobileCheck === "digits" ? "digits" : "cn",
    tz,
    offsetMinutes: parseOffset(tz) ?? 480,
  };
}
