import { localError } from "../errors";
import type { Lang } from "../i18n";
import {
  chunk,
  elementEntry,
  listForMessage,
  MAX_LIST_LENGTH,
  MAX_NUMBERS_PER_REQUEST,
  normaliseMobile,
  parseMobilesSteps,
  runSteps,
  splitMobilesSteps,
  type MobileCheck,
  type Pacer,
  type Steps,
} from "./numbers";
import { typeName } from "../props";
import { prepareText } from "./text";

export interface PrepareOptions {
  signature?: string;
  maxLength?: number;
  mobileCheck?: MobileCheck;
  lang?: Lang;
  batchSize?: number;
}

export interface PreparedSend {
  /** final text, signature applied */
  text: string;
  length: number;
  segments: number;
  /** normalised numbers, one array per platform request */
  batches: string[][];
  /** how many distinct valid numbers in all */
  count: number;
}

/**
 * Everything checked before a single request is made (SPEC B2): text type, emptiness and length;
 * numbers split, normalised, validated and de-duplicated; batches of at most 50,000.
 * Throws an SmsError with a local code; nothing has been sent then.
 */
export function prepareSend(payload: unknown, mobiles: unknown, opts: PrepareOptions = {}): PreparedSend {
  return runSteps(prepareSendSteps(payload, mobiles, opts, null));
}

/** prepareSend, pausing where `pacer` says (a list of 100,000 numbers is read in slices). */
export function* prepareSendSteps(
  payload: unknown,
  mobiles: unknown,
  opts: PrepareOptions,
  pacer: Pacer | null,
): Steps<PreparedSend> {
  const lang = opts.lang ?? "en-US";
  const checked = prepareTextOf(payload, opts, lang);
  const valid = yield* prepareMobilesSteps(mobiles, opts.mobileCheck ?? "cn", lang, pacer);
  return {
    text: checked.text,
    length: checked.length,
    segments: checked.segments,
    batches: chunk(valid, opts.batchSize ?? MAX_NUMBERS_PER_REQUEST),
    count: valid.length,
  };
}

/** The text of a send: a string, or a number turned into text; signed and checked (SPEC B2). */
export function prepareTextOf(
  payload: unknown,
  opts: { signature?: string; maxLength?: number },
  lang: Lang,
): { text: string; length: number; segments: number } {
  let raw: string;
  if (typeof payload === "string") raw = payload;
  else if (typeof payload === "number" && Number.isFinite(payload)) raw = String(payload);
  else throw localError("INVALID_PAYLOAD", "invalidPayload", lang, { type: typeName(payload) });
  const checked = prepareText(raw, { signature: opts.signature, maxLength: opts.maxLength });
  if (!checked.ok) {
    if (checked.reason === "EMPTY_MESSAGE") throw localError("EMPTY_MESSAGE", "emptyMessage", lang);
    throw localError("MESSAGE_TOO_LONG", "messageTooLong", lang, { length: checked.length, max: checked.max });
  }
  return checked;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** One recipient's number as one entry (folded as splitMobiles folds array elements); null when none. */
export function mobileEntry(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return elementEntry(value);
}

/**
 * One element of a personalised list as one number entry: an object's `mobile`, or the element;
 * "" (invalid) when there is none, or when reading it throws (a getter).
 */
function recipientEntry(element: unknown): string {
  let value: unknown;
  try {
    value = isRecord(element) ? element.mobile : element;
  } catch {
    return "";
  }
  return mobileEntry(value) ?? "";
}

/**
 * The numbers of a send (SPEC B2): split, normalised, validated and de-duplicated in order. An
 * array holding recipient objects (`{ mobile, ...fields }`, SPEC B9) gives each one's `mobile`.
 * Throws an INVALID_MOBILE SmsError naming every invalid entry (`details.invalid`), or saying
 * there is none. sms-send, personalised sends and sms-guard read recipients through this.
 */
export function prepareMobiles(mobiles: unknown, check: MobileCheck = "cn", lang: Lang = "en-US"): string[] {
  return runSteps(prepareMobilesSteps(mobiles, check, lang, null));
}

/** prepareMobiles, pausing where `pacer` says. */
export function* prepareMobilesSteps(
  mobiles: unknown,
  check: MobileCheck,
  lang: Lang,
  pacer: Pacer | null,
): Steps<string[]> {
  if (Array.isArray(mobiles) && mobiles.length > MAX_LIST_LENGTH) {
    throw localError(
      "INVALID_MOBILE",
      "tooManyRecipients",
      lang,
      { count: mobiles.length, max: MAX_LIST_LENGTH },
      { details: { invalid: [] } },
    );
  }
  const personalised = yield* hasRecipientObjectsSteps(mobiles, pacer);
  // Array.from, not map: a hole (a list built by index in a function node) is an entry too, "".
  const entries = personalised
    ? Array.from(mobiles as unknown[], (el) => recipientEntry(el))
    : yield* splitMobilesSteps(mobiles, pacer);
  if (entries === null) {
    throw localError(
      "INVALID_MOBILE",
      "invalidMobileType",
      lang,
      { type: typeName(mobiles) },
      { details: { invalid: [] } },
    );
  }
  const parsed = yield* parseMobilesSteps(entries, check, pacer);
  if (parsed.invalid.length) {
    throw localError(
      "INVALID_MOBILE",
      "invalidMobile",
      lang,
      { count: parsed.invalid.length, list: listForMessage(parsed.invalid) },
      { details: { invalid: parsed.invalid } },
    );
  }
  if (!parsed.valid.length) throw localError("INVALID_MOBILE", "noMobile", lang, {}, { details: { invalid: [] } });
  return parsed.valid;
}

/**
 * The elements of a personalised list whose number (normalised) is one of `numbers`, in list
 * order: what goes on with a guard's decision, so the send still has each recipient's fields.
 */
export function pickRecipients(list: readonly unknown[], numbers: readonly string[], check: MobileCheck): unknown[] {
  const wanted = new Set(numbers);
  return list.filter((element) => {
    const n = normaliseMobile(recipientEntry(element), check);
    return n !== null && wanted.has(n);
  });
}

/** hasRecipientObjects, pausing where `pacer` says (a list of 10,000,000 is read in slices). */
export function* hasRecipientObjectsSteps(mobile: unknown, pacer: Pacer | null): Steps<boolean> {
  if (!Array.isArray(mobile)) return false;
  for (let i = 0; i < mobile.length; i++) {
    if (isRecord(mobile[i])) return true;
    if ((i & 1023) === 1023 && pacer?.due()) yield;
  }
  return false;
}

/** True when `mobile` is a personalised list (an array holding at least one recipient object). */
export function hasRecipientObjects(mobile: unknown): mobile is unknown[] {
  return Array.isArray(mobile) && mobile.some(isRecord);
}
