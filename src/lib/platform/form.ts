// application/x-www-form-urlencoded bodies exactly as URLSearchParams writes them (WHATWG URL
// standard): the UTF-8 bytes (a lone surrogate as U+FFFD), `*-._` and ASCII letters and digits as
// they are, a space as `+`, every other byte as %XX in uppercase. A personalised send encodes a
// body per recipient (100,000 of them): URLSearchParams builds a list and an object per body, and
// encodeURIComponent needs a second pass for `!'()~` and the space. Here a body is written in one
// pass, from the UTF-16 code units straight to the encoded bytes, into a buffer kept between calls,
// and read out as one flat string; the fields every body of a client starts with are encoded once
// (FormHead). A body too long for the buffer (a 50,000-number list) is built from values that go
// through the engine's encoder and a fix-up instead. Node.js only (the client's side; the editor
// never encodes bodies).

/** Per ASCII code: what it is written as when kept (a space is `+`), 0 when it is written as %XX. */
const KEPT = new Uint8Array(128);
for (const c of "*-._0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
  KEPT[c.charCodeAt(0)] = c.charCodeAt(0);
KEPT[0x20] = 0x2b;
/**
 * Per byte: `%XX` as the low three bytes of a little-endian 32-bit word, so that one store writes
 * it (the fourth byte is overwritten by the next write, or lies past the end). Encoding the bodies
 * of a 100,000-recipient send: ~38 ms with byte stores, ~33 ms with these.
 */
const PERCENT = new Uint32Array(256);
{
  const digits = "0123456789ABCDEF";
  for (let b = 0; b < 256; b++) {
    PERCENT[b] = 0x25 | (digits.charCodeAt(b >> 4) << 8) | (digits.charCodeAt(b & 15) << 16);
  }
}
/** A UTF-16 code unit takes at most 9 encoded bytes (3 UTF-8 bytes as %XX each). */
const MAX_BYTES_PER_UNIT = 9;
/** A body up to this many bytes is written in the kept buffer (a personalised body is < 8 KiB). */
const KEEP_BYTES = 192 * 1024;
// One spare byte: the last %XX's word store reaches one byte past it.
const out = Buffer.allocUnsafe(KEEP_BYTES + 1);
const words = new DataView(out.buffer, out.byteOffset, out.length);
/** What encodeURIComponent writes differently from a form: `!'()~` and the space. */
const DIFFERENT = /%20|[!'()~]/g;
const FORM: Record<string, string> = { "%20": "+", "!": "%21", "'": "%27", "(": "%28", ")": "%29", "~": "%7E" };
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function percent(pos: number, byte: number): number {
  words.setUint32(pos, PERCENT[byte], true);
  return pos + 3;
}

/** Writes `value` encoded at `pos` (the caller made sure MAX_BYTES_PER_UNIT per code unit fit). */
function writeValue(value: string, pos: number): number {
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80) {
      const kept = KEPT[c];
      if (kept !== 0) out[pos++] = kept;
      else pos = percent(pos, c);
    } else if (c < 0x800) {
      pos = percent(percent(pos, 0xc0 | (c >> 6)), 0x80 | (c & 0x3f));
    } else if (c < 0xd800 || c > 0xdfff) {
      pos = percent(percent(percent(pos, 0xe0 | (c >> 12)), 0x80 | ((c >> 6) & 0x3f)), 0x80 | (c & 0x3f));
    } else {
      const low = c < 0xdc00 && i + 1 < n ? value.charCodeAt(i + 1) : 0;
      if (low >= 0xdc00 && low <= 0xdfff) {
        i++;
        const cp = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        pos = percent(percent(pos, 0xf0 | (cp >> 18)), 0x80 | ((cp >> 12) & 0x3f));
        pos = percent(percent(pos, 0x80 | ((cp >> 6) & 0x3f)), 0x80 | (cp & 0x3f));
      } else {
        pos = percent(percent(percent(pos, 0xef), 0xbf), 0xbd); // a lone surrogate is U+FFFD
      }
    }
  }
  return pos;
}

/** Writes plain ASCII (names, `&`, `=`) as it is. */
function writeAscii(s: string, pos: number): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

function throughEncodeURIComponent(value: string): string {
  let encoded: string;
  try {
    encoded = encodeURIComponent(value);
  } catch {
    // encodeURIComponent refuses a lone surrogate; a form writes it as U+FFFD (EF BF BD).
    encoded = encodeURIComponent(value.replace(LONE_SURROGATE, "\ufffd"));
  }
  return encoded.replace(DIFFERENT, (c) => FORM[c]);
}

/** One value of a form body, byte for byte as URLSearchParams encodes it. */
export function formEncode(value: string): string {
  if (value.length * MAX_BYTES_PER_UNIT > KEEP_BYTES) return throughEncodeURIComponent(value);
  return out.toString("latin1", 0, writeValue(value, 0));
}

/** A field's value: a list stands for its items joined with "," (sent as one value). */
export type FormValue = string | readonly string[];

/** Fields encoded once and written at the start of many bodies (a client's account and password). */
export class FormHead {
  /** the encoded `name=value&name=value`, as bytes and as text */
  readonly bytes: Buffer;
  readonly text: string;

  constructor(fields: readonly (readonly [name: string, value: string])[]) {
    this.text = fields.map(([name, value]) => `${name}=${formEncode(value)}`).join("&");
    this.bytes = Buffer.from(this.text, "latin1");
  }
}

/**
 * `head`, then `&name=value` for each name whose value is not undefined, in order. Names are plain
 * ASCII and written as they are; values are encoded.
 */
export function formBody(head: FormHead, names: readonly string[], values: readonly (FormValue | undefined)[]): string {
  if (head.bytes.length > KEEP_BYTES) return longFormBody(head, names, values);
  out.set(head.bytes, 0);
  let pos = head.bytes.length;
  for (let f = 0; f < names.length; f++) {
    const value = values[f];
    if (value === undefined) continue;
    const name = names[f];
    // Room for the worst case, checked before each field: else the whole body takes the long way.
    let units = 0;
    if (typeof value === "string") units = value.length;
    else for (let i = 0; i < value.length; i++) units += value[i].length + 1;
    if (pos + name.length + 2 + units * MAX_BYTES_PER_UNIT > KEEP_BYTES) return longFormBody(head, names, values);

    if (pos > 0) out[pos++] = 0x26; // &
    pos = writeAscii(name, pos);
    out[pos++] = 0x3d; // =
    if (typeof value === "string") pos = writeValue(value, pos);
    else {
      for (let i = 0; i < value.length; i++) {
        if (i > 0) pos = writeAscii("%2C", pos);
        pos = writeValue(value[i], pos);
      }
    }
  }
  return out.toString("latin1", 0, pos);
}

/** formBody for a body beyond the kept buffer: value by value, long ones through encodeURIComponent. */
function longFormBody(head: FormHead, names: readonly string[], values: readonly (FormValue | undefined)[]): string {
  let body = head.text;
  for (let f = 0; f < names.length; f++) {
    const value = values[f];
    if (value === undefined) continue;
    if (body) body += "&";
    body += `${names[f]}=${formEncode(typeof value === "string" ? value : value.join(","))}`;
  }
  return body;
}
