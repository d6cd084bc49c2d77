// application/x-www-form-urlencoded values exactly as URLSearchParams writes them (WHATWG URL
// standard): the UTF-8 bytes (a lone surrogate as U+FFFD), `*-._` and ASCII letters and digits as
// they are, a space as `+`, every other byte as %XX in uppercase. A personalised send encodes a
// body per recipient (100,000 of them): URLSearchParams builds a list and an object per body, and
// encodeURIComponent needs a second pass for `!'()~` and the space; this is one pass over the bytes
// in buffers kept between calls (a long value, such as a 50,000-number list, takes the second way).
// Node.js only (the client's side; the editor never encodes bodies).

/** Values that encode to themselves: most account names and every normalised number list but one. */
const AS_IS = /^[A-Za-z0-9*\-._]*$/;
/** Per byte: what it is written as when kept (a space is `+`), 0 when it is written as %XX. */
const KEPT = new Uint8Array(256);
for (const c of "*-._0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
  KEPT[c.charCodeAt(0)] = c.charCodeAt(0);
KEPT[0x20] = 0x2b;
const HEX = Buffer.from("0123456789ABCDEF", "latin1");
/** The buffers below, kept between calls; UTF-8 takes at most 3 bytes per UTF-16 unit. */
const KEEP_BYTES = 64 * 1024;
const bytes = Buffer.allocUnsafe(KEEP_BYTES);
const out = Buffer.allocUnsafe(3 * KEEP_BYTES);
/** What encodeURIComponent writes differently from a form: `!'()~` and the space. */
const DIFFERENT = /%20|[!'()~]/g;
const FORM: Record<string, string> = { "%20": "+", "!": "%21", "'": "%27", "(": "%28", ")": "%29", "~": "%7E" };
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** One value of a form body, byte for byte as URLSearchParams encodes it. */
export function formEncode(value: string): string {
  if (AS_IS.test(value)) return value;
  // A value beyond the kept buffers (a 50,000-number list) goes through the engine's encoder.
  if (value.length * 3 > KEEP_BYTES) return throughEncodeURIComponent(value);
  const input = bytes;
  const output = out;
  const n = input.write(value, 0, "utf8");
  let j = 0;
  for (let i = 0; i < n; i++) {
    const b = input[i];
    const kept = KEPT[b];
    if (kept !== 0) output[j++] = kept;
    else {
      output[j++] = 0x25;
      output[j++] = HEX[b >> 4];
      output[j++] = HEX[b & 15];
    }
  }
  return output.toString("latin1", 0, j);
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
