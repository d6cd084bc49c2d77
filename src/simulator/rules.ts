/**
 * Checks for settings that arrive as JSON (admin routes) or from JavaScript callers, so that a
 * typo or a wrong type is a clear error naming the setting instead of a rule silently not applied.
 */
export type Check = (v: unknown) => string | null;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export const check = {
  string: ((v) => (typeof v === "string" ? null : "must be a string")) as Check,
  boolean: ((v) => (typeof v === "boolean" ? null : "must be true or false")) as Check,
  count: ((v) => (Number.isInteger(v) && (v as number) >= 0 ? null : "must be a whole number >= 0")) as Check,
  strings: ((v) =>
    Array.isArray(v) && v.every((s) => typeof s === "string") ? null : "must be an array of strings") as Check,
  object: ((v) => (isObject(v) ? null : "must be an object")) as Check,
  numbers: ((v) =>
    isObject(v) && Object.values(v).every((n) => typeof n === "number" && Number.isFinite(n))
      ? null
      : "must be an object of numbers") as Check,
  texts: ((v) =>
    isObject(v) && Object.values(v).every((s) => typeof s === "string")
      ? null
      : "must be an object of strings") as Check,
  oneOf:
    (values: readonly string[]): Check =>
    (v) =>
      typeof v === "string" && values.includes(v) ? null : `must be one of ${values.join(", ")}`,
  /** `undefined`/`null` clear an optional setting */
  optional:
    (c: Check): Check =>
    (v) =>
      v === undefined || v === null ? null : c(v),
};

/**
 * Throws `Error("<what>: unknown setting x (known: ...)")` or `Error("<what>: x must be ...")`
 * for the first bad key of `value`. `undefined` values pass, as in an object spread.
 */
export function checkSettings(value: unknown, rules: Record<string, Check>, what: string): void {
  if (!isObject(value)) throw new Error(`${what} must be a JSON object`);
  for (const [k, v] of Object.entries(value)) {
    if (!Object.prototype.hasOwnProperty.call(rules, k)) {
      throw new Error(`${what}: unknown setting ${k} (known: ${Object.keys(rules).join(", ")})`);
    }
    if (v === undefined) continue;
    const problem = rules[k](v);
    if (problem) throw new Error(`${what}: ${k} ${problem}`);
  }
}
