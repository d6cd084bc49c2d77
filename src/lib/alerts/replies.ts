// Reading an inbound SMS as an answer to on-call pages (SPEC B11). People answer from a phone:
// full-width characters from a Chinese input method, capitals, a space or a full stop around the
// word. All of that is ignored; what is left must be one of the answers below exactly, anything
// else is not an answer (and changes nothing).

/**
 * `code`: `<code>` or `<code>a` acknowledges that alert, `<code>c` closes (resolves) it;
 * `latest`: `a`, `ack`, `ok`, `收到`, `确认` acknowledge the latest unacknowledged alert paged to
 * the sender; `all`: `aa`, `全部确认` acknowledge every one of them.
 */
export type Reply = { kind: "code"; code: number; action: "ack" | "close" } | { kind: "latest" } | { kind: "all" };

const LATEST = new Set(["a", "ack", "ok", "收到", "确认"]);
const ALL = new Set(["aa", "全部确认"]);
// Spaces, punctuation and symbols around the answer (ASCII and CJK alike, after NFKC).
const EDGES = /^[\s\p{P}\p{S}]+|[\s\p{P}\p{S}]+$/gu;
const CODE = /^(\d{1,9})\s*([ac])?$/;
/** Longer texts are not answers: no need to fold a whole paragraph. */
const MAX_TEXT = 200;

/** The answer an inbound SMS gives, or null when it is not one. */
export function parseReply(text: unknown): Reply | null {
  if (typeof text !== "string" || text.length > MAX_TEXT) return null;
  const s = text.normalize("NFKC").toLowerCase().replace(EDGES, "");
  if (LATEST.has(s)) return { kind: "latest" };
  if (ALL.has(s)) return { kind: "all" };
  const m = CODE.exec(s);
  if (!m) return null;
  const code = Number(m[1]);
  if (!Number.isSafeInteger(code) || code < 1) return null;
  return { kind: "code", code, action: m[2] === "c" ? "close" : "ack" };
}
