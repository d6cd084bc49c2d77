import { DEFAULT_MAX_LENGTH } from "../props";

export { DEFAULT_MAX_LENGTH };

/** SPEC A1: one SMS up to 70 units; a long SMS is billed per 67 units. */
export const SINGLE_LIMIT = 70;
export const PART_SIZE = 67;

/** Platform length: UTF-16 code units (an emoji counts 2), as Java's String.length() counts. */
export function textLength(text: string): number {
  return text.length;
}

export function segmentCount(length: number): number {
  if (length <= 0) return 0;
  return length <= SINGLE_LIMIT ? 1 : Math.ceil(length / PART_SIZE);
}

export function applySignature(text: string, signature: string): string {
  const sig = signature.trim();
  if (!sig || text.includes(sig)) return text;
  return sig + text;
}

export type TextCheck =
  | { ok: true; text: string; length: number; segments: number }
  | { ok: false; reason: "EMPTY_MESSAGE" }
  | { ok: false; reason: "MESSAGE_TOO_LONG"; length: number; max: number };

/** Builds the final text (signature applied) and checks it against the client-side guard. */
export function prepareText(text: string, opts: { signature?: string; maxLength?: number } = {}): TextCheck {
  if (text.trim() === "") return { ok: false, reason: "EMPTY_MESSAGE" };
  const final = applySignature(text, opts.signature ?? "");
  const length = textLength(final);
  const max = opts.maxLength ?? DEFAULT_MAX_LENGTH;
  if (length > max) return { ok: false, reason: "MESSAGE_TOO_LONG", length, max };
  return { ok: true, text: final, length, segments: segmentCount(length) };
}
