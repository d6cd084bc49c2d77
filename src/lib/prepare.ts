import { localError } from "./errors";
import type { Lang } from "./i18n";
import {
  chunk,
  listForMessage,
  MAX_NUMBERS_PER_REQUEST,
  parseMobiles,
  splitMobiles,
  type MobileCheck,
} from "./numbers";
import { typeName } from "./props";
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
  const lang = opts.lang ?? "en-US";
  let raw: string;
  if (typeof payload === "string") raw = payload;
  else if (typeof payload === "number" && Number.isFinite(payload)) raw = String(payload);
  else throw localError("INVALID_PAYLOAD", "invalidPayload", lang, { type: typeName(payload) });

  const checked = prepareText(raw, { signature: opts.signature, maxLength: opts.maxLength });
  if (!checked.ok) {
    if (checked.reason === "EMPTY_MESSAGE") throw localError("EMPTY_MESSAGE", "emptyMessage", lang);
    throw localError("MESSAGE_TOO_LONG", "messageTooLong", lang, { length: checked.length, max: checked.max });
  }

  const entries = splitMobiles(mobiles);
  if (entries === null) {
    throw localError(
      "INVALID_MOBILE",
      "invalidMobileType",
      lang,
      { type: typeName(mobiles) },
      { details: { invalid: [] } },
    );
  }
  const parsed = parseMobiles(entries, opts.mobileCheck ?? "cn");
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

  return {
    text: checked.text,
    length: checked.length,
    segments: checked.segments,
    batches: chunk(parsed.valid, opts.batchSize ?? MAX_NUMBERS_PER_REQUEST),
    count: parsed.valid.length,
  };
}
