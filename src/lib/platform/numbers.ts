/** How recipient numbers are validated (SPEC B1 `mobileCheck`). */
export type MobileCheck = "cn" | "digits";

/** The platform takes at most this many numbers per request (SPEC A1). */
export const MAX_NUMBERS_PER_REQUEST = 50_000;

/**
 * The longest recipient list read: 200 platform requests, far beyond any send (a list of 10,000,000
 * is ¥500,000 of SMS). A list can be long without being large (an array made with a length and no
 * elements): reading 1,000,000,000 places would take minutes, for nothing.
 */
export const MAX_LIST_LENGTH = 10_000_000;

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

/**
 * Where a long piece of work may pause (a send of 100,000 numbers must not hold the event loop):
 * `due()` is true when it should pause now. Work run with no pacer runs in one piece.
 */
export interface Pacer {
  due(): boolean;
}

/** Work that may pause: a generator that yields where it may, and returns its result. */
export type Steps<T> = Generator<void, T, void>;

/** Runs `steps` to its end in one piece. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * The longest entry read as a possible number: the longest way of writing one ("+86 (138)
 * 0013-8000" with invisible characters between the digits) is far shorter. A longer entry is
 * invalid as it is, so no entry costs more than this to read, however often a list repeats it.
 */
export const MAX_ENTRY_LENGTH = 256;

/** An invalid entry as errors name it: trimmed, and cut when it is too long to be a number. */
export function shownEntry(entry: string): string {
  return entry.length > MAX_ENTRY_LENGTH ? entry.slice(0, MAX_ENTRY_LENGTH) + "…" : entry.trim();
}

/** Characters of a string of numbers split between two checks of the pacer. */
const SLICE = 32_768;
const SEPARATOR_RUN = /[,，;；、\s]+/g;

/**
 * One element of a recipient list as one entry; null when it is blank. A value that is neither a
 * string nor a number is an invalid entry named by its type: String() would run its own toString
 * (which may throw, or take any time) and would read a nested list ["13800138000"] as a number.
 */
export function elementEntry(item: unknown): string | null {
  // Each element is one number: spaces inside it ("+86 138 0013 8000") are formatting.
  if (typeof item === "string") {
    if (item.length > MAX_ENTRY_LENGTH) return item;
    const folded = foldMobileText(item);
    return folded.trim() !== "" ? folded : null;
  }
  if (typeof item === "number") return String(item);
  if (typeof item === "object" && item !== null) return Array.isArray(item) ? "[array]" : "[object]";
  if (typeof item === "function") return "[function]";
  // undefined, null, booleans, bigints and symbols: String() gives their name and cannot throw.
  return String(item);
}

/** Splits recipient input into raw entries; returns null when the type is unusable. */
export function splitMobiles(input: unknown): string[] | null {
  return runSteps(splitMobilesSteps(input, null));
}

/** splitMobiles, pausing where `pacer` says (a long string or list is read a slice at a time). */
export function* splitMobilesSteps(input: unknown, pacer: Pacer | null): Steps<string[] | null> {
  if (input === undefined || input === null) return [];
  if (typeof input === "string") {
    // Folded before splitting: a BOM counts as whitespace for \s and would cut a number in two.
    const s = foldMobileText(input);
    const out: string[] = [];
    for (let start = 0; start < s.length;) {
      // A slice ends where a separator starts: no number is cut in two.
      let end = start + SLICE;
      if (end >= s.length) end = s.length;
      else {
        SEPARATOR_RUN.lastIndex = end;
        end = SEPARATOR_RUN.exec(s)?.index ?? s.length;
      }
      for (const part of s.slice(start, end).split(SEPARATORS)) if (part !== "") out.push(part);
      start = end;
      if (pacer?.due()) yield;
    }
    return out;
  }
  if (typeof input === "number") return Number.isFinite(input) ? [String(input)] : null;
  if (Array.isArray(input)) {
    const out: string[] = [];
    for (let i = 0; i < input.length; i++) {
      const entry = elementEntry(input[i]);
      if (entry !== null) out.push(entry);
      if ((i & 1023) === 1023 && pacer?.due()) yield;
    }
    return out;
  }
  return null;
}

/** Normalises one entry; returns null when it is not a valid number in that mode. */
export function normaliseMobile(entry: string, mode: MobileCheck): string | null {
  // Most numbers arrive clean: skip the rewriting (this is the hot loop of a 50,000-number send).
  if (mode === "cn" ? CN_MOBILE.test(entry) : DIGITS.test(entry)) return entry;
  if (entry.length > MAX_ENTRY_LENGTH) return null;
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
  return runSteps(parseMobilesSteps(entries, mode, null));
}

/** parseMobiles, pausing where `pacer` says. */
export function* parseMobilesSteps(
  entries: readonly string[],
  mode: MobileCheck,
  pacer: Pacer | null,
): Steps<ParsedMobiles> {
  const seen = new Set<string>();
  const valid: string[] = [];
  const invalid: string[] = [];
  let duplicates = 0;
  for (let i = 0; i < entries.length; i++) {
    const raw = entries[i];
    const n = normaliseMobile(raw, mode);
    if (n === null) invalid.push(shownEntry(raw));
    else if (seen.has(n)) duplicates++;
    else {
      seen.add(n);
      valid.push(n);
    }
    if ((i & 1023) === 1023 && pacer?.due()) yield;
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
