// Templates and personalised texts for a send (SPEC B9): one plan of platform requests, built and
// validated completely before the first request. No Node-only API here: the editor bundles it.
import { localError } from "../errors";
import type { Lang } from "../i18n";
import { chunk, MAX_NUMBERS_PER_REQUEST, normaliseMobile } from "../platform/numbers";
import { mobileEntry, prepareSend, type PrepareOptions } from "../platform/prepare";
import { typeName } from "../props";
import { DEFAULT_MAX_LENGTH, prepareText, segmentCount, textLength, type TextCheck } from "../platform/text";
import {
  compileTemplate,
  isTemplate,
  recipientLabel,
  templateProblemError,
  type RenderFailure,
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

function shown(items: readonly string[], max = 10): string {
  const list = items.slice(0, max).join(", ");
  return items.length > max ? `${list} … (+${items.length - max})` : list;
}

/**
 * Everything a send needs, checked before a single request is made (SPEC B2, B9): either the full
 * plan or one SmsError (TEMPLATE, INVALID_PAYLOAD, EMPTY_MESSAGE, MESSAGE_TOO_LONG, INVALID_MOBILE);
 * nothing partial. Without recipient objects this is prepareSend, with the template's text when
 * there is one. With them, each recipient's text is rendered with `recipient`, numbers normalised
 * and checked, equal texts grouped in order of first appearance.
 */
export function planSend(input: PlanInput, opts: PlanOptions = {}): SendPlan {
  const lang = opts.lang ?? "en-US";
  const template = resolveTemplate(input.template, lang);

  if (!isPersonalised(input.mobile)) {
    const text = template ? template.render(isRecord(input.msg) ? input.msg : {}, lang) : input.payload;
    const p = prepareSend(text, input.mobile, opts);
    return {
      personalised: false,
      requests: p.batches.map((mobiles) => ({ text: p.text, length: p.length, segments: p.segments, mobiles })),
      count: p.count,
      texts: 1,
      parts: p.count * p.segments,
      duplicates: 0,
    };
  }
  return planPersonalised(input.mobile, template, input, opts, lang);
}

function planPersonalised(
  list: unknown[],
  template: Template | null,
  input: PlanInput,
  opts: PlanOptions,
  lang: Lang,
): SendPlan {
  const mode = opts.mobileCheck ?? "cn";
  const batchSize = opts.batchSize ?? MAX_NUMBERS_PER_REQUEST;
  if (batchSize < 1) throw new RangeError("batchSize must be >= 1");
  // Without a template every recipient gets the payload: checked once, as a plain send checks it.
  const fixed = template ? null : payloadText(input.payload, lang);
  if (fixed !== null) checkText(fixed, opts, lang);
  const signature = (opts.signature ?? "").trim();
  const fixedSigned = fixed === null ? null : signature + fixed;

  const failures: RenderFailure[] = [];
  const invalid: string[] = [];
  const invalidAt: number[] = [];
  /** each recipient's number, normalised; null when invalid */
  const numbers: (string | null)[] = new Array(list.length);
  /** each recipient's text as sent before the checks (signature + text); undefined when it failed */
  const signedTexts: (string | undefined)[] = new Array(list.length);

  // Every recipient's number and text first, then the grouping: a loop that renders (much short-
  // lived garbage) while the groups grow (100,000 new long-lived texts and objects) keeps the young
  // generation's collector copying the groups; apart, planning 100,000 texts took ~170 ms instead of ~225.
  for (let i = 0; i < list.length; i++) {
    const recipient = recipientOf(list[i]);
    const given = recipient.mobile;
    // A clean valid number (the common case) is its own entry and its own normal form: the
    // general reading (mobileEntry splits its input into a list) is for the others.
    const clean = typeof given === "string" && normaliseMobile(given, mode) === given;
    const entry = clean ? given : mobileEntry(given);
    const mobile = clean ? given : entry === null ? null : normaliseMobile(entry, mode);
    numbers[i] = mobile;
    if (mobile === null) {
      invalid.push(entry === null ? "" : entry.trim());
      invalidAt.push(i);
    }
    if (!template) signedTexts[i] = fixedSigned!;
    else {
      // The signature goes in front while rendering: the text as sent is one flat string, and
      // grouping by it groups exactly as the rendered texts would (the same prefix for all).
      const r = template.tryRender(recipientView(input.msg, recipient), signature);
      if (r.ok) signedTexts[i] = r.text;
      else failures.push({ problems: r.problems, index: i, mobile: mobile ?? entry?.trim() ?? "" });
    }
  }

  const groups = new Map<string, Group | Refused>();
  const seen = new Map<Group, Set<string>>();
  const empty: number[] = [];
  const long: number[] = [];
  let longest = 0;
  let max = 0;
  let duplicates = 0;
  for (let i = 0; i < list.length; i++) {
    const signed = signedTexts[i];
    if (signed === undefined) continue;
    const mobile = numbers[i];
    let group = groups.get(signed);
    if (group === undefined) {
      const checked = checkSigned(signed, signature, opts.maxLength);
      // Most personalised texts have one recipient: its arrays made to size (a first push would
      // reserve room for 17), in a literal of its own (apart from the branch for an invalid number
      // the engine allocates the object and its arrays at once: 100,000 groups, alone: ~22 -> ~10 ms).
      if (!checked.ok) group = checked;
      else if (mobile === null) {
        group = { text: checked.text, length: checked.length, segments: checked.segments, mobiles: [], recipients: [] };
      } else {
        group = {
          text: checked.text,
          length: checked.length,
          segments: checked.segments,
          mobiles: [mobile],
          recipients: [i],
        };
      }
      groups.set(signed, group);
      if (checked.ok) continue;
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
  if (failures.length) throw templateProblemError(failures, lang);
  const labels = (indexes: number[]) => {
    // A recipient is named by its number, or by the entry as given when that is no number.
    const given = new Map(invalidAt.map((index, k) => [index, invalid[k]]));
    return shown(indexes.map((i) => recipientLabel(i, numbers[i] ?? (given.get(i) || undefined), lang)));
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
    throw localError(
      "MESSAGE_TOO_LONG",
      "recipientTooLong",
      lang,
      { count: long.length, list: labels(long), length: longest, max },
      { details: { recipients: long } },
    );
  }
  if (invalid.length) {
    const list = invalidAt.map((index, k) => recipientLabel(index, invalid[k] || undefined, lang));
    throw localError(
      "INVALID_MOBILE",
      "recipientInvalidMobile",
      lang,
      { count: invalid.length, list: shown(list) },
      { details: { invalid, recipients: invalidAt } },
    );
  }

  const requests: PlannedRequest[] = [];
  let count = 0;
  let parts = 0;
  let texts = 0;
  for (const group of groups.values()) {
    if ("reason" in group || !group.mobiles.length) continue;
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
    const text = template.render(view, lang);
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
  return { ok: false, code: String(err.code ?? "ERROR"), message: String(err.message ?? e), variables };
}
