// Templates and personalised texts for a send (SPEC B9, B9a): one plan of platform requests, built
// and validated completely before the first request. No Node-only API here: the editor bundles it.
import { isSmsError, localError, type LocalCode, type SmsError } from "../errors";
import type { Lang } from "../i18n";
import {
  chunk,
  MAX_LIST_LENGTH,
  MAX_NUMBERS_PER_REQUEST,
  normaliseMobile,
  runSteps,
  shownEntry,
  type Pacer,
  type Steps,
} from "../platform/numbers";
import { hasRecipientObjectsSteps, mobileEntry, prepareSendSteps, type PrepareOptions } from "../platform/prepare";
import { typeName } from "../props";
import { DEFAULT_MAX_LENGTH, prepareText, segmentCount, textLength, type TextCheck } from "../platform/text";
import {
  compileTemplate,
  errorReason,
  isTemplate,
  recipientLabel,
  TemplateFailures,
  type Template,
  type TemplateVariable,
} from "./template";

export interface PlanInput {
  /** the text when there is no template (a string or a number, as SPEC B2) */
  payload: unknown;
  /** recipients: a string or an array of numbers (plain), or an array holding recipient objects */
  mobile: unknown;
  /** a template source or a compiled Template; undefined, null or "" = no template */
  template?: unknown;
  /** what the template renders against: the msg */
  msg?: unknown;
}

export type PlanOptions = PrepareOptions;

export interface PlannedRequest {
  /** final text, signature applied */
  text: string;
  length: number;
  segments: number;
  /** normalised numbers, at most the batch size */
  mobiles: string[];
  /** personalised sends: each number's position in msg.mobile, in the order of `mobiles` */
  recipients?: number[];
}

export interface SendPlan {
  /** true when msg.mobile held recipient objects */
  personalised: boolean;
  /** platform requests in send order: texts in order of first appearance, ≤ batch size numbers each */
  requests: PlannedRequest[];
  /** numbers over all requests (a number given two different texts counts twice) */
  count: number;
  /** distinct texts */
  texts: number;
  /** SMS the platform bills: Σ segments × numbers */
  parts: number;
  /** personalised sends: recipients dropped because their number already gets the same text (0 for a plain send) */
  duplicates: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A personalised send: msg.mobile is an array holding at least one recipient object. */
export function isPersonalised(mobile: unknown): mobile is unknown[] {
  return Array.isArray(mobile) && mobile.some(isRecord);
}

/** The recipient object of one msg.mobile element: a plain number is a recipient with no other field. */
export function recipientOf(element: unknown): Record<string, unknown> {
  return isRecord(element) ? element : { mobile: element };
}

/** The view one recipient's text renders against: the msg, with `recipient` shadowing any msg.recipient. */
export function recipientView(msg: unknown, recipient: Record<string, unknown>): object {
  // The msg is the prototype, not copied: O(1) per recipient, and Mustache's lookup (`in`) sees both.
  const view = Object.create(isRecord(msg) ? msg : null) as Record<string, unknown>;
  view.recipient = recipient;
  return view;
}

function resolveTemplate(template: unknown, lang: Lang): Template | null {
  if (template === undefined || template === null || template === "") return null;
  return isTemplate(template) ? template : compileTemplate(template, lang);
}

function payloadText(payload: unknown, lang: Lang): string {
  if (typeof payload === "string") return payload;
  if (typeof payload === "number" && Number.isFinite(payload)) return String(payload);
  throw localError("INVALID_PAYLOAD", "invalidPayload", lang, { type: typeName(payload) });
}

/** The checks prepareSend makes on its text, with its errors. */
function checkText(text: string, opts: PlanOptions, lang: Lang): void {
  const checked = prepareText(text, { signature: opts.signature, maxLength: opts.maxLength });
  if (checked.ok) return;
  if (checked.reason === "EMPTY_MESSAGE") throw localError("EMPTY_MESSAGE", "emptyMessage", lang);
  throw localError("MESSAGE_TOO_LONG", "messageTooLong", lang, { length: checked.length, max: checked.max });
}

/** The recipients of one text; it is itself the request when they fit in one. */
interface Group extends PlannedRequest {
  recipients: number[];
}

/** A rendered text that cannot be sent: every recipient of it is named in the error. */
type Refused = TextCheck & { ok: false };

/**
 * prepareText for a text rendered after its signature (`signed` is the trimmed signature followed
 * by the text): the same result, the same checks in the same order, but when the text does not
 * hold the signature already the text as sent is `signed` itself, not a second string.
 * @internal exported for the test that holds it to prepareText
 */
export function checkSigned(signed: string, signature: string, maxLength = DEFAULT_MAX_LENGTH): TextCheck {
  if (signed.slice(signature.length).trim() === "") return { ok: false, reason: "EMPTY_MESSAGE" };
  // applySignature: a text that already holds the signature is sent as it is.
  const text =
    signature && signed.indexOf(signature, signature.length) !== -1 ? signed.slice(signature.length) : signed;
  const length = textLength(text);
  if (length > maxLength) return { ok: false, reason: "MESSAGE_TOO_LONG", length, max: maxLength };
  return { ok: true, text, length, segments: segmentCount(length) };
}

/**
 * The first 10 of `count` items, labelled by `label(k)`, then how many more: only those shown are
 * labelled (an error for 50,000 recipients makes 10 labels, not 50,000).
 */
function shown(count: number, label: (k: number) => string, max = 10): string {
  const list = Array.from({ length: Math.min(count, max) }, (_, k) => label(k)).join(", ");
  return count > max ? `${list} … (+${count - max})` : list;
}

/**
 * What the planning is reading, for an error thrown by a value of the msg rather than by a check
 * (a getter that throws, a proxy): its code and what to name (SPEC B9a: such an error is found
 * before any request, and is never "may have been sent").
 */
interface Reading {
  code: LocalCode;
  what: string;
  /** the recipient being read (msg.mobile[index]), -1 for none */
  index: number;
}

function unreadable(e: unknown, reading: Reading, lang: Lang): SmsError {
  if (isSmsError(e)) return e;
  const what = reading.index >= 0 ? `${reading.what}[${reading.index}]` : reading.what;
  return localError(reading.code, "unreadable", lang, { what, reason: errorReason(e) });
}

function reads(reading: Reading, code: LocalCode, what: string): void {
  reading.code = code;
  reading.what = what;
  reading.index = -1;
}

/**
 * Everything a send needs, checked before a single request is made (SPEC B2, B9, B9a): either the
 * full plan or one SmsError (TEMPLATE, INVALID_PAYLOAD, EMPTY_MESSAGE, MESSAGE_TOO_LONG,
 * INVALID_MOBILE); nothing partial. Without recipient objects this is prepareSend, with the
 * template's text when there is one. With them, each recipient's text is rendered with
 * `recipient`, numbers normalised and checked, equal final texts grouped in order of first
 * appearance. Runs in one piece: a node uses planSendAsync.
 */
export function planSend(input: PlanInput, opts: PlanOptions = {}): SendPlan {
  const reading: Reading = { code: "TEMPLATE", what: "msg.template", index: -1 };
  try {
    return runSteps(planSteps(input, opts, null, reading));
  } catch (e) {
    throw unreadable(e, reading, opts.lang ?? "en-US");
  }
}

/** How planSendAsync lets the event loop run between slices of a long planning. */
export interface PlanPause {
  /** resolves once other work has had its turn (in Node.js: setImmediate) */
  pause: () => Promise<void>;
  /** the longest slice of planning between two pauses, in ms (default 10) */
  sliceMs?: number;
  now?: () => number;
}

/**
 * planSend in slices of about `sliceMs` with a pause between them: a send of 100,000 recipients
 * takes a few hundred ms to plan, and must not hold the event loop that long (SPEC B9a). The
 * same result as planSend.
 */
export async function planSendAsync(input: PlanInput, opts: PlanOptions, pause: PlanPause): Promise<SendPlan> {
  const now = pause.now ?? Date.now;
  const sliceMs = pause.sliceMs ?? 10;
  let start = now();
  const pacer: Pacer = { due: () => now() - start >= sliceMs };
  const reading: Reading = { code: "TEMPLATE", what: "msg.template", index: -1 };
  try {
    const steps = planSteps(input, opts, pacer, reading);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      await pause.pause();
      start = now();
    }
  } catch (e) {
    throw unreadable(e, reading, opts.lang ?? "en-US");
  }
}

function* planSteps(input: PlanInput, opts: PlanOptions, pacer: Pacer | null, reading: Reading): Steps<SendPlan> {
  const lang = opts.lang ?? "en-US";
  const template = resolveTemplate(input.template, lang);
  reads(reading, "INVALID_MOBILE", "msg.mobile");
  const mobile = input.mobile;
  if (Array.isArray(mobile) && mobile.length > MAX_LIST_LENGTH) {
    const params = { count: mobile.length, max: MAX_LIST_LENGTH };
    throw localError("INVALID_MOBILE", "tooManyRecipients", lang, params, { details: { invalid: [] } });
  }
  if (yield* hasRecipientObjectsSteps(mobile, pacer)) {
    return yield* planPersonalised(mobile as unknown[], template, input, opts, pacer, reading);
  }

  let text = input.payload;
  if (template) {
    reads(reading, "TEMPLATE", "msg");
    // Rendering stops past maxLength: the text with its signature is at least that long (B9a).
    const max = opts.maxLength ?? DEFAULT_MAX_LENGTH;
    text = template.renderWithin(isRecord(input.msg) ? input.msg : {}, max, lang);
    if (text === null) throw localError("MESSAGE_TOO_LONG", "messageOverLimit", lang, { max });
  }
  reads(reading, "INVALID_MOBILE", "msg.mobile");
  const p = yield* prepareSendSteps(text, input.mobile, opts, pacer);
  return {
    personalised: false,
    requests: p.batches.map((mobiles) => ({ text: p.text, length: p.length, segments: p.segments, mobiles })),
    count: p.count,
    texts: 1,
    parts: p.count * p.segments,
    duplicates: 0,
  };
}

function* planPersonalised(
  list: unknown[],
  template: Template | null,
  input: PlanInput,
  opts: PlanOptions,
  pacer: Pacer | null,
  reading: Reading,
): Steps<SendPlan> {
  const lang = opts.lang ?? "en-US";
  const mode = opts.mobileCheck ?? "cn";
  const batchSize = opts.batchSize ?? MAX_NUMBERS_PER_REQUEST;
  if (batchSize < 1) throw new RangeError("batchSize must be >= 1");
  // Without a template every recipient gets the payload: checked once, as a plain send checks it.
  const fixed = template ? null : payloadText(input.payload, lang);
  if (fixed !== null) checkText(fixed, opts, lang);
  const signature = (opts.signature ?? "").trim();
  const fixedSigned = fixed === null ? null : signature + fixed;
  // Past this the text is too long whatever the signature rule makes of it (see below).
  const limit = (opts.maxLength ?? DEFAULT_MAX_LENGTH) + signature.length;

  const failures = new TemplateFailures(lang);
  const invalid: string[] = [];
  const invalidAt: number[] = [];
  /** each recipient's number, normalised; null when invalid */
  const numbers: (string | null)[] = new Array(list.length);
  /**
   * each recipient's text as sent before the checks (signature + text); undefined when it failed
   * to render, null when it was longer than `limit` (its rendering stopped there)
   */
  const signedTexts: (string | null | undefined)[] = new Array(list.length);

  // Every recipient's number and text first, then the grouping: a loop that renders (much short-
  // lived garbage) while the groups grow (100,000 new long-lived texts and objects) keeps the young
  // generation's collector copying the groups; apart, planning 100,000 texts took ~170 ms instead of ~225.
  for (let i = 0; i < list.length; i++) {
    if (pacer?.due()) yield;
    reading.code = "INVALID_MOBILE";
    reading.index = i;
    const recipient = recipientOf(list[i]);
    let given: unknown;
    try {
      given = recipient.mobile;
    } catch {
      // A getter that throws: the recipient has no number we can read (named as invalid below).
      given = undefined;
    }
    // A clean valid number (the common case) is its own entry and its own normal form: the
    // general reading (mobileEntry splits its input into a list) is for the others.
    let entry: string | null;
    let mobile: string | null;
    if (typeof given === "string" && normaliseMobile(given, mode) === given) entry = mobile = given;
    else {
      entry = mobileEntry(given);
      mobile = entry === null ? null : normaliseMobile(entry, mode);
    }
    numbers[i] = mobile;
    if (mobile === null) {
      invalid.push(entry === null ? "" : shownEntry(entry));
      invalidAt.push(i);
    }
    if (!template) signedTexts[i] = fixedSigned!;
    else {
      reading.code = "TEMPLATE";
      // The signature goes in front while rendering: the text as sent is one flat string, and
      // grouping by it groups exactly as the rendered texts would (the same prefix for all).
      const r = template.tryRender(recipientView(input.msg, recipient), signature, limit);
      if (r.ok) signedTexts[i] = r.text;
      else if (r.problems) failures.add({ problems: r.problems, index: i, mobile: mobile ?? shownEntry(entry ?? "") });
      // Only whitespace, however long, is an empty text: the signature alone says so to the checks.
      else signedTexts[i] = r.blank ? signature : null;
    }
  }

  reads(reading, "INVALID_MOBILE", "msg.mobile");
  /** each distinct text as rendered (signature in front), checked once: its group, or why it is refused */
  const checks = new Map<string, Group | Refused>();
  /**
   * the groups by final text, in order of first appearance: a text that holds the signature and
   * the same text without it are one SMS (B9a), so one number gets it once
   */
  const finals = new Map<string, Group>();
  const seen = new Map<Group, Set<string>>();
  const empty: number[] = [];
  const long: number[] = [];
  let cut = false;
  let longest = 0;
  let max = 0;
  let duplicates = 0;
  for (let i = 0; i < list.length; i++) {
    if ((i & 1023) === 1023 && pacer?.due()) yield;
    const signed = signedTexts[i];
    if (signed === undefined) continue;
    if (signed === null) {
      long.push(i);
      cut = true;
      continue;
    }
    const mobile = numbers[i];
    let group = checks.get(signed);
    if (group === undefined) {
      const checked = checkSigned(signed, signature, opts.maxLength);
      if (!checked.ok) group = checked;
      else {
        group = finals.get(checked.text);
        if (group === undefined) {
          // Most personalised texts have one recipient: its arrays made to size (a first push would
          // reserve room for 17), in a literal of its own (apart from the branch for an invalid number
          // the engine allocates the object and its arrays at once: 100,000 groups, alone: ~22 -> ~10 ms).
          if (mobile === null) {
            group = {
              text: checked.text,
              length: checked.length,
              segments: checked.segments,
              mobiles: [],
              recipients: [],
            };
          } else {
            group = {
              text: checked.text,
              length: checked.length,
              segments: checked.segments,
              mobiles: [mobile],
              recipients: [i],
            };
          }
          finals.set(checked.text, group);
          checks.set(signed, group);
          continue;
        }
      }
      checks.set(signed, group);
    }
    if ("reason" in group) {
      if (group.reason === "EMPTY_MESSAGE") empty.push(i);
      else {
        long.push(i);
        longest = Math.max(longest, group.length);
        max = group.max;
      }
      continue;
    }
    if (mobile === null) continue;
    if (!group.mobiles.length) {
      group.mobiles = [mobile];
      group.recipients = [i];
      continue;
    }
    // A number is sent a given text once; the set exists only for texts with several recipients.
    let sent = seen.get(group);
    if (!sent) seen.set(group, (sent = new Set(group.mobiles)));
    if (sent.has(mobile)) {
      duplicates++;
      continue;
    }
    sent.add(mobile);
    group.mobiles.push(mobile);
    group.recipients.push(i);
  }

  // The author's mistake first (the template), then the texts, then the numbers.
  if (failures.count) throw failures.error();
  const labels = (indexes: number[]) => {
    // A recipient is named by its number, or by the entry as given when that is no number.
    const given = new Map(invalidAt.map((index, k) => [index, invalid[k]]));
    return shown(indexes.length, (k) => {
      const i = indexes[k];
      return recipientLabel(i, numbers[i] ?? (given.get(i) || undefined), lang);
    });
  };
  if (empty.length) {
    throw localError(
      "EMPTY_MESSAGE",
      "recipientEmpty",
      lang,
      { count: empty.length, list: labels(empty) },
      { details: { recipients: empty } },
    );
  }
  if (long.length) {
    // A rendering stopped at the limit has no length to give: only "longer than max".
    const maxLength = opts.maxLength ?? DEFAULT_MAX_LENGTH;
    throw localError(
      "MESSAGE_TOO_LONG",
      cut ? "recipientTooLongCut" : "recipientTooLong",
      lang,
      { count: long.length, list: labels(long), length: longest, max: cut ? maxLength : max },
      { details: { recipients: long } },
    );
  }
  if (invalid.length) {
    const list = shown(invalid.length, (k) => recipientLabel(invalidAt[k], invalid[k] || undefined, lang));
    throw localError(
      "INVALID_MOBILE",
      "recipientInvalidMobile",
      lang,
      { count: invalid.length, list },
      { details: { invalid, recipients: invalidAt } },
    );
  }

  const requests: PlannedRequest[] = [];
  let count = 0;
  let parts = 0;
  let texts = 0;
  for (const group of finals.values()) {
    if (!group.mobiles.length) continue;
    texts++;
    count += group.mobiles.length;
    parts += group.mobiles.length * group.segments;
    if (group.mobiles.length <= batchSize) {
      requests.push(group);
      continue;
    }
    const recipients = chunk(group.recipients, batchSize);
    chunk(group.mobiles, batchSize).forEach((mobiles, k) =>
      requests.push({
        text: group.text,
        length: group.length,
        segments: group.segments,
        mobiles,
        recipients: recipients[k],
      }),
    );
  }
  if (!count) throw localError("INVALID_MOBILE", "noMobile", lang, {}, { details: { invalid: [] } });
  return { personalised: true, requests, count, texts, parts, duplicates };
}

export type Preview =
  | { ok: true; text: string; length: number; segments: number; variables: readonly TemplateVariable[] }
  | {
      ok: false;
      code: string;
      message: string;
      variables: readonly TemplateVariable[];
      length?: number;
      segments?: number;
    };

export interface PreviewOptions {
  signature?: string;
  maxLength?: number;
  lang?: Lang;
}

/**
 * The editor's sample rendering: the variables, and the final text with its length and parts, for
 * a sample msg (its first recipient when its msg.mobile holds recipient objects). Never throws.
 */
export function previewTemplate(source: unknown, msg: unknown, opts: PreviewOptions = {}): Preview {
  const lang = opts.lang ?? "en-US";
  let template: Template;
  try {
    template = compileTemplate(source, lang);
  } catch (e) {
    return failed(e, []);
  }
  const variables = template.variables;
  const mobile = isRecord(msg) ? msg.mobile : undefined;
  const view = isPersonalised(mobile) ? recipientView(msg, recipientOf(mobile[0])) : isRecord(msg) ? msg : {};
  try {
    // Bounded as a send is (B9a: the sample may hold a long list), but further than maxLength:
    // the editor shows how long an over-long text is, which helps to shorten it.
    const max = opts.maxLength ?? DEFAULT_MAX_LENGTH;
    const text = template.renderWithin(view, Math.max(10 * max, 10_000), lang);
    if (text === null) return failed(localError("MESSAGE_TOO_LONG", "messageOverLimit", lang, { max }), variables);
    const checked = prepareText(text, { signature: opts.signature, maxLength: opts.maxLength });
    if (checked.ok)
      return { ok: true, text: checked.text, length: checked.length, segments: checked.segments, variables };
    if (checked.reason === "EMPTY_MESSAGE") return failed(localError("EMPTY_MESSAGE", "emptyMessage", lang), variables);
    return {
      ...failed(
        localError("MESSAGE_TOO_LONG", "messageTooLong", lang, { length: checked.length, max: checked.max }),
        variables,
      ),
      length: checked.length,
      segments: segmentCount(checked.length),
    };
  } catch (e) {
    return failed(e, variables);
  }
}

function failed(e: unknown, variables: readonly TemplateVariable[]): Preview & { ok: false } {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === "string" ? err.message : errorReason(e);
  return { ok: false, code: typeof err?.code === "string" ? err.code : "ERROR", message, variables };
}
