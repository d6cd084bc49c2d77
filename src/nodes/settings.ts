import {
  checkChoice,
  checkNumber,
  checkOffset,
  CONFIG_RULES,
  DEFAULT_REDIS_PREFIX,
  DEFAULT_REDIS_URL,
  MOBILE_CHECKS,
  STORES,
  toStr,
  type ConfigNumberSetting,
  type SettingProblem,
} from "../lib/props";
import type { SmsConfigDef, SmsSettings } from "./common";

export const DEFAULT_URL = "http://120.26.66.24";
/** How the account reaches Redis (SPEC B6a): one server, through sentinels, or a cluster. */
export const REDIS_MODES = ["single", "sentinel", "cluster"] as const;
export const DEFAULT_REDIS_MASTER = "mymaster";
/** The password field's placeholder the editor sends back for a saved, unchanged password. */
export const SAVED_PASSWORD = "__PWRD__";

/** A setting that was out of range or unreadable, by its property name (its label key). */
export interface NamedProblem {
  name: ConfigNumberSetting | "tz" | "mobileCheck" | "store" | "redisMode";
  problem: SettingProblem;
}

/** The config node's settings by the shared rules (src/lib/props.ts), with what had to change. */
export function checkSettings(def: Partial<SmsConfigDef>): { settings: SmsSettings; problems: NamedProblem[] } {
  const problems: NamedProblem[] = [];
  const number = (name: ConfigNumberSetting): number => {
    const c = checkNumber(def[name], CONFIG_RULES[name]);
    if (c.problem) problems.push({ name, problem: c.problem });
    return c.value;
  };
  const timeout = number("timeout");
  const rate = number("rate");
  const queue = number("queue");
  const retries = number("retries");
  const maxLength = number("maxLength");
  const mobileCheck = checkChoice(def.mobileCheck, MOBILE_CHECKS, "cn");
  if (mobileCheck.problem) problems.push({ name: "mobileCheck", problem: mobileCheck.problem });
  const tz = checkOffset(def.tz);
  if (tz.problem) problems.push({ name: "tz", problem: tz.problem });
  const store = checkChoice(def.store, STORES, "memory");
  if (store.problem) problems.push({ name: "store", problem: store.problem });
  const redisMode = checkChoice(def.redisMode, REDIS_MODES, "single");
  if (redisMode.problem) problems.push({ name: "redisMode", problem: redisMode.problem });
  const settings: SmsSettings = {
    url: toStr(def.url) || DEFAULT_URL,
    product: toStr(def.product),
    extno: toStr(def.extno),
    signature: typeof def.signature === "string" ? def.signature.trim() : "",
    timeout,
    rate,
    queue,
    retries,
    maxLength,
    mobileCheck: mobileCheck.value,
    tz: tz.value,
    offsetMinutes: tz.minutes,
    store: store.value,
    redisUrl: toStr(def.redisUrl) || DEFAULT_REDIS_URL,
    // A prefix is the user's namespace in a shared Redis: kept as typed (an empty one is allowed).
    redisPrefix: typeof def.redisPrefix === "string" ? def.redisPrefix.trim() : DEFAULT_REDIS_PREFIX,
    redisMode: redisMode.value,
    redisMaster: toStr(def.redisMaster) || DEFAULT_REDIS_MASTER,
  };
  return { settings, problems };
}

export function readSettings(def: Partial<SmsConfigDef>): SmsSettings {
  return checkSettings(def).settings;
}
