/**
 * Charsets on the simulator's wire: reading form bodies in the charset a request declares, and
 * percent-encoding pushes in GBK/GB18030 as some older platforms do (SPEC A5).
 *
 * Node has no GB18030 encoder (`TextEncoder` is UTF-8 only, whatever label it is given) but its
 * `TextDecoder("gb18030")` is complete, so the encoder below is derived from the decoder instead of
 * shipping a table: a reverse map of the BMP built once, on first use, and arithmetic outside the
 * BMP. Every encoded character is decoded back and compared, so the result is exactly what a
 * receiver decoding GB18030 reads.
 */

/** Charsets the simulator can push in. `gbk` has no four-byte codes: characters outside it become `?`. */
export const PUSH_CHARSETS = ["utf-8", "gb18030", "gbk"] as const;
export type PushCharset = (typeof PUSH_CHARSETS)[number];

const gbDecoder = new TextDecoder("gb18030");
let bmpCodes: Map<string, number[]> | undefined;

function fourBytes(pointer: number): number[] {
  return [
    0x81 + Math.floor(pointer / 12600),
    0x30 + Math.floor((pointer % 12600) / 1260),
    0x81 + Math.floor((pointer % 1260) / 10),
    0x30 + (pointer % 10),
  ];
}

/** Last four-byte pointer of the BMP part (0x8431A439 = U+FFFF). */
const BMP_POINTERS = 39419;

/**
 * BMP character → its GB18030 bytes, from decoding every two-byte code and then every four-byte
 * BMP code once (about 63,000 decodes, tens of ms, on the first non-UTF-8 push only). Where the
 * decoder gives one character for two codes, the first code wins, as in the WHATWG encoder.
 */
function bmpMap(): Map<string, number[]> {
  if (bmpCodes) return bmpCodes;
  const map = new Map<string, number[]>();
  const add = (bytes: number[]) => {
    const ch = gbDecoder.decode(Uint8Array.from(bytes));
    if (ch.length === 1 && !map.has(ch)) map.set(ch, bytes);
  };
  for (let lead = 0x81; lead <= 0xfe; lead++) {
    for (let trail = 0x40; trail <= 0xfe; trail++) if (trail !== 0x7f) add([lead, trail]);
  }
  for (let p = 0; p <= BMP_POINTERS; p++) add(fourBytes(p));
  bmpCodes = map;
  return map;
}

function gbBytes(ch: string, fourByteAllowed: boolean): number[] {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x80) return [cp];
  // Outside the BMP the mapping is arithmetic: pointer 189000 is U+10000.
  const bytes = cp >= 0x10000 ? fourBytes(189000 + cp - 0x10000) : bmpMap().get(ch);
  if (bytes && (bytes.length === 2 || fourByteAllowed) && gbDecoder.decode(Uint8Array.from(bytes)) === ch) {
    return bytes;
  }
  return [0x3f]; // "?", as a platform writes a character its charset lacks
}

/** Encodes text in a push charset. */
export function encodeText(text: string, charset: PushCharset): Uint8Array {
  if (charset === "utf-8") return new TextEncoder().encode(text);
  const out: number[] = [];
  for (const ch of text) out.push(...gbBytes(ch, charset === "gb18030"));
  return Uint8Array.from(out);
}

// The application/x-www-form-urlencoded byte serializer of the WHATWG URL standard (what
// URLSearchParams does for UTF-8): these bytes stay as they are, space becomes "+", anything else %XX.
function keepByte(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    b === 0x2a ||
    b === 0x2d ||
    b === 0x2e ||
    b === 0x5f
  );
}

function percentEncode(text: string, charset: PushCharset): string {
  let out = "";
  for (const b of encodeText(text, charset)) {
    if (keepByte(b)) out += String.fromCharCode(b);
    else if (b === 0x20) out += "+";
    else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** `k=v&k=v`, keys and values percent-encoded in the charset. */
export function formEncode(params: Record<string, string>, charset: PushCharset): string {
  if (charset === "utf-8") return new URLSearchParams(params).toString();
  return Object.entries(params)
    .map(([k, v]) => `${percentEncode(k, charset)}=${percentEncode(v, charset)}`)
    .join("&");
}

/**
 * The charset a `content-type` declares, lower-cased, or `utf-8` when none. Throws a clear error
 * for one Node cannot decode (the request is then answered 400, not read as UTF-8 by guess).
 */
export function declaredCharset(contentType: string | undefined): string {
  const m = /;\s*charset\s*=\s*("?)([^";,\s]+)\1/i.exec(contentType ?? "");
  if (!m) return "utf-8";
  const label = m[2].toLowerCase();
  try {
    new TextDecoder(label);
  } catch {
    throw new Error(`unsupported charset ${m[2]}`);
  }
  return label;
}

export function decodeBytes(bytes: Uint8Array, charset: string): string {
  return new TextDecoder(charset).decode(bytes);
}

/**
 * Parses a form body (or query) whose percent-encoded and raw bytes are in `charset`, as
 * URLSearchParams does for UTF-8: pairs split on `&`, the first `=` splits a pair, `+` is a
 * space, a `%` not followed by two hex digits stays literal. Splitting bytes before decoding is
 * safe for GBK/GB18030: their trailing bytes are never `&`, `=`, `+` or `%`.
 */
export function parseForm(bytes: Uint8Array, charset: string): Record<string, string> {
  const decoder = new TextDecoder(charset);
  const out: Record<string, string> = {};
  const field = (from: number, to: number): string => {
    const buf: number[] = [];
    for (let i = from; i < to; i++) {
      const b = bytes[i];
      if (b === 0x2b) buf.push(0x20);
      else if (b === 0x25 && i + 2 < to && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
        buf.push(parseInt(String.fromCharCode(bytes[i + 1], bytes[i + 2]), 16));
        i += 2;
      } else buf.push(b);
    }
    return decoder.decode(Uint8Array.from(buf));
  };
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x26, start);
    if (end < 0) end = bytes.length;
    if (end > start) {
      let eq = bytes.indexOf(0x3d, start);
      if (eq < 0 || eq > end) eq = end;
      out[field(start, eq)] = eq < end ? field(eq + 1, end) : "";
    }
    start = end + 1;
  }
  return out;
}

function isHex(b: number | undefined): boolean {
  return b !== undefined && ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66));
}
