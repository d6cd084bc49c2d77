// JSON push bodies: a msgid sent as a JSON number must keep every digit (msgids are 17+ digits,
// beyond what a double holds), and Node 20's JSON.parse gives no access to a number's source text.

/**
 * Where the closing quote of the JSON string starting at `i` is, or -1 when it is unterminated.
 * One pass over the string's own characters: a search for the next backslash across the rest of
 * the text would make a body of many short strings quadratic (SPEC B4a).
 */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x5c) j++;
    else if (c === 0x22) return j;
  }
  return -1;
}

const NUMBER_CHAR = /[-+0-9.eE]/;

/**
 * Rewrites the JSON text so that a `msgid` given as an integer a double cannot hold exactly becomes
 * a string of the same digits. Only the `msgid` members of the push itself count (the top-level
 * object, or each object of a top-level array); strings are skipped whole, so digits inside them
 * cannot be mistaken for a msgid. Text that is not valid JSON is returned for JSON.parse to refuse.
 */
export function quoteBigMsgids(text: string): string {
  const stack: string[] = [];
  let key: string | null = null;
  let expectKey = false;
  let out = "";
  let copied = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return text;
      if (expectKey) {
        const raw = text.slice(i, end + 1);
        try {
          key = raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        } catch {
          return text;
        }
        expectKey = false;
      }
      i = end;
    } else if (c === "{") {
      stack.push(c);
      expectKey = true;
      key = null;
    } else if (c === "[") {
      stack.push(c);
      key = null;
    } else if (c === "}" || c === "]") {
      stack.pop();
      key = null;
    } else if (c === ",") {
      expectKey = stack[stack.length - 1] === "{";
      key = null;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i + 1;
      while (j < text.length && NUMBER_CHAR.test(text[j])) j++;
      const token = text.slice(i, j);
      const pushLevel =
        stack.length === 1 ? stack[0] === "{" : stack.length === 2 && stack[0] === "[" && stack[1] === "{";
      if (key === "msgid" && pushLevel && /^-?\d+$/.test(token) && !Number.isSafeInteger(Number(token))) {
        out += text.slice(copied, i) + '"' + token + '"';
        copied = j;
      }
      i = j - 1;
    }
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** Parses a JSON push body; a big integer msgid comes out as a string with all its digits. */
export function parseJson(text: string): unknown {
  // Integers of up to 15 digits are exact in a double: only a longer run of digits needs the scan.
  return JSON.parse(/\d{16}/.test(text) ? quoteBigMsgids(text) : text);
}
