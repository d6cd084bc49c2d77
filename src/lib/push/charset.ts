// Text of pushes: form and JSON bytes in the declared charset, or UTF-8, or, for the older
// platforms that percent-encode GBK (SPEC A5), GB18030 when the bytes are not UTF-8.
import { isUtf8 } from "node:buffer";
import type { Params } from "./parse";

const UTF8 = new TextDecoder("utf-8", { fatal: true });
// GB18030 is a superset of GBK and GB2312: one decoder serves all three labels.
const GB18030 = new TextDecoder("gb18030");
const declared = new Map<string, TextDecoder | null>();

/**
 * The decoder for a declared charset: null for UTF-8 (bytes are then read as UTF-8, else GB18030),
 * undefined when the label is not a charset this runtime can decode.
 */
export function decoderFor(label: string): TextDecoder | null | undefined {
  const key = label.trim().toLowerCase();
  if (declared.has(key)) return declared.get(key);
  let d: TextDecoder;
  try {
    d = new TextDecoder(key);
  } catch {
    return undefined;
  }
  const out = d.encoding === "utf-8" ? null : d.encoding === "gbk" || d.encoding === "gb18030" ? GB18030 : d;
  // Only labels TextDecoder knows are cached, so the map stays small whatever is pushed.
  declared.set(key, out);
  return out;
}

/** The `charset` parameter of a Content-Type header, or "" when there is none. */
export function charsetOf(contentType: string | undefined): string {
  const m = /;\s*charset\s*=\s*("?)([^";\s]+)\1/i.exec(contentType ?? "");
  return m ? m[2] : "";
}

/** Bytes as text: in the declared charset, else UTF-8, else (not valid UTF-8) GB18030. */
export function decodeText(bytes: Uint8Array, charset: TextDecoder | null = null): string {
  if (charset) return charset.decode(bytes);
  // Checked, not tried: a fatal decoder's exception costs tens of microseconds, and a hostile form
  // can hold a thousand components that are not UTF-8 (SPEC B4a).
  return isUtf8(bytes) ? UTF8.decode(bytes) : GB18030.decode(bytes);
}

const hex = (b: number) =>
  b >= 0x30 && b <= 0x39 ? b - 0x30 : (b | 0x20) >= 0x61 && (b | 0x20) <= 0x66 ? (b | 0x20) - 0x57 : -1;

/** One form component: `+` is a space, `%XX` a byte, the bytes decoded as {@link decodeText}. */
export function decodeComponent(bytes: Uint8Array, charset: TextDecoder | null = null, plus = true): string {
  let plain = true;
  for (const b of bytes) if (b === 0x25 || (plus && b === 0x2b) || b > 0x7f) plain = false;
  // ASCII bytes are the same text in UTF-8 and GB18030; a declared charset that writes its text
  // in ASCII bytes (ISO-2022-JP's escapes) decodes them too.
  if (plain && (charset === null || charset === GB18030)) {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
  }
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x25 && i + 2 < bytes.length && hex(bytes[i + 1]) >= 0 && hex(bytes[i + 2]) >= 0) {
      out[n++] = hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]);
      i += 2;
    } else out[n++] = plus && b === 0x2b ? 0x20 : b;
  }
  return decodeText(out.subarray(0, n), charset);
}

/** Most params one push may carry (SPEC B4a): a form or query with more is refused (400). */
export const MAX_PARAMS = 1000;

/** A form or query with more than {@link MAX_PARAMS} params. */
export class TooManyParams extends Error {
  constructor() {
    super(`more than ${MAX_PARAMS} parameters`);
  }
}

/**
 * Parses `application/x-www-form-urlencoded` bytes (a body, or a query string) in time linear in
 * their length (SPEC B4a): a name given twice keeps its first value (a later one is not even
 * decoded), and more than `max` params throw {@link TooManyParams}. Splitting happens on bytes,
 * which is safe for GBK and GB18030: none of their multi-byte sequences contains `&`, `=`, `+` or
 * `%`. Every search stays inside its own param, so no byte is scanned twice.
 */
export function parseForm(bytes: Uint8Array, charset: TextDecoder | null = null, max = MAX_PARAMS): Params {
  // A name like "__proto__" must stay a plain key: no prototype to set.
  const out = Object.create(null) as Params;
  // Counted before anything is decoded: a form over the limit costs one scan for '&'.
  let count = 0;
  for (let start = 0; start < bytes.length;) {
    let end = bytes.indexOf(0x26, start);
    if (end < 0) end = bytes.length;
    if (end > start && ++count > max) throw new TooManyParams();
    start = end + 1;
  }
  for (let start = 0; start < bytes.length;) {
    let end = bytes.indexOf(0x26, start);
    if (end < 0) end = bytes.length;
    if (end > start) {
      const param = bytes.subarray(start, end);
      let eq = param.indexOf(0x3d);
      if (eq < 0) eq = param.length;
      const name = decodeComponent(param.subarray(0, eq), charset);
      if (out[name] === undefined) {
        out[name] = eq < param.length ? decodeComponent(param.subarray(eq + 1), charset) : "";
      }
    }
    start = end + 1;
  }
  return out;
}

/**
 * Params another parser read (Express's query, Node-RED's form body parser give an array for a
 * repeated name): each name keeps its first value, as {@link parseForm} does. Only for form and
 * query params; a JSON body's arrays are values as sent.
 */
export function firstValues(params: Params): Params {
  let out: Params | null = null;
  for (const k in params) {
    const v = params[k];
    if (Array.isArray(v)) (out ??= { ...params })[k] = v[0];
  }
  return out ?? params;
}

/**
 * A value that Express's query parser or Node-RED's own body parser could not percent-decode (they
 * keep it as it came, `+` already turned into spaces): each run of escapes read as
 * {@link decodeText}, the text around them left as it is. Anything else is returned unchanged.
 */
export function repairUndecoded(v: string): string {
  if (!v.includes("%")) return v;
  try {
    decodeURIComponent(v);
    return v;
  } catch {
    return v.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => decodeComponent(Buffer.from(run, "latin1"), null, false));
  }
}
