/** How recipient numbers are validated (SPEC B1 `mobileCheck`). */
export type MobileCheck = "cn" | "digits";

/** The platform takes at most this many numbers per request (SPEC A1). */
export const MAX_NUMBERS_PER_REQUEST = 50_000;

export interface ParsedMobiles {
  /** normalised, valid, de-duplicated, in first-seen order */
  valid: string[];
  /** every entry that failed validation, as given (trimmed; full-width folded, invisibles dropped) */
  invalid: string[];
  /** entries dropped because an earlier one normalised to the same number */
  duplicates: number;
}

// SPEC B2 separators plus the full-width semicolon and the ideographic comma, which Chinese
// input methods produce when a user types a list by hand.
const SEPARATORS = /[,，;；、\s]+/;
const CN_MOBILE = /^1[3-9]\d{9}$/;
const DIGITS = /^\d{5,20}$/;
const NON_ASCII = /[^\x00-\x7f]/;
// Zero-width space/non-joiner/joiner, word joiner and invisible operators, BOM, soft hyphen,
// Mongolian vowel separator, bidi marks, embeddings and isolates: copied along with numbers from
// web pages, spreadsheets and chat apps, invisible to the user who pastes them.
const INVISIBLE = /[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/**
 * Full-width digits, `＋` and punctuation become ASCII (NFKC) and invisible characters go, so a
 * number typed with a Chinese input method or pasted from a web page reads as the digits it shows.
 * ASCII input is returned as it is: the common case, and the hot path of a 50,000-number send.
 */
export function foldMobileText(s: string): string {
  return NON_ASCII.test(s) ? s.replace(INVISIBLE, "").normalize("NFKC") : s;
}

/** Splits recipient input into raw entries; returns null when the type is unusable. */
export function splitMobiles(input: unknown): string[] | null {
  if (input === undefined || input === null) return [];
  // Folded before splitting: a BOM counts as whitespace for \s and would cut a number in two.
  if (typeof input === "string")
    return foldMobileText(input)
      .split(SEPARATORS)
      .filter((s) => s !== "");
  if (typeof input === "number") return Number.isFinite(input) ? [String(input)] : null;
  if (Array.isArray(input)) {
    const out: string[] = [];
    for (const item of input) {
      // Each element is one number: spaces inside it ("+86 138 0013 8000") are formatting.
      if (typeof item === "string") {
        const folded = foldMobileText(item);
        if (folded.trim() !== "") out.push(folded);
      } else if (typeof item === "number" && Number.isSafeInteger(item) && item >= 0) {
        out.push(String(item));
      } else {
        out.push(String(item));
      }
    }
    return out;
  }
  return null;
}

/** Normalises one entry; returns null when it is not a valid number in that mode. */
export function normaliseMobile(entry: string, mode: MobileCheck): string | null {
  // Most numbers arrive clean: skip the rewriting (this is the hot loop of a 50,000-number send).
  if (mode === "cn" ? CN_MOBILE.test(entry) : DIGITS.test(entry)) return entry;
  // Dashes, dots, brackets and spaces are how people write numbers, not part of them.
  let s = foldMobileText(entry).replace(/[\s\-–—.()]/g, "");
  if (mode === "cn") {
    if (s.startsWith("+86")) s = s.slice(3);
    else if (s.startsWith("0086")) s = s.slice(4);
    else if (s.length === 13 && s.startsWith("86")) s = s.slice(2);
    return CN_MOBILE.test(s) ? s : null;
  }
  if (s.startsWith("+")) s = s.slice(1);
  return DIGITS.test(s) ? s : null;
}

/** Normalises, validates and de-duplicates entries, keeping the first occurrence's order. */
export function parseMobiles(entries: readonly string[], mode: MobileCheck): ParsedMobiles {
  const seen = new Set<string>();
  const valid: string[] = [];
  const invalid: string[] = [];
  let duplicates = 0;
  for (const raw of entries) {
    const n = normaliseMobile(raw, mode);
    if (n === null) invalid.push(raw.trim());
    else if (seen.has(n)) duplicates++;
    else {
      seen.add(n);
      valid.push(n);
    }
  }
  return { valid, invalid, duplicates };
}

/** Splits numbers into platform requests of at most `size` numbers. */
export function chunk<T>(items: readonly T[], size = MAX_NUMBERS_PER_REQUEST): T[][] {
  if (size < 1) throw new RangeError("chunk size must be >= 1");
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Names invalid entries in an error message without letting 50,000 of them flood a log line. */
export function listForMessage(items: readonly string[], max = 10): string {
  const shown = items.slice(0, max).map((s) => (s.length > 24 ? s.slice(0, 24) + "…" : s) || '""');
  return items.length > max ? `${shown.join(", ")} … (+${items.length - max})` : shown.join(", ");
}
