import { excerpt } from "../redact";

export interface SendReply {
  resptime: string;
  code: number;
  /** null when the platform gave none (needstatus=false, or a failure code) */
  msgid: string | null;
}

export interface BalanceReply {
  resptime: string;
  code: number;
  products: Array<{ product: string; balance: number }>;
}

/**
 * Thrown by the parsers with the whole reply; the caller turns it into a BAD_RESPONSE error with an
 * excerpt, after masking secrets in the whole reply (an excerpt may cut a password in two).
 */
export class ReplyFormatError extends Error {
  constructor(readonly body: string) {
    super(`unreadable reply: ${excerpt(body)}`);
    this.name = "ReplyFormatError";
  }
}

const STATUS_LINE = /^(\d{1,20})\s*,\s*(\d{1,6})$/;
const MSGID = /^[A-Za-z0-9_\-:.]{1,100}$/;
const PRODUCT_LINE = /^([^,\s]{1,64})\s*,\s*(-?\d+(?:\.\d+)?)$/;

// Field variants: LF or CRLF, a blank line between the lines, trailing whitespace, a BOM.
function lines(body: string): string[] {
  return body
    .replace(/^\uFEFF/, "")
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function statusLine(all: string[], body: string): { resptime: string; code: number } {
  const m = all.length ? STATUS_LINE.exec(all[0]) : null;
  if (!m) throw new ReplyFormatError(body);
  return { resptime: m[1], code: Number(m[2]) };
}

export function parseSendReply(body: string): SendReply {
  const all = lines(body);
  const { resptime, code } = statusLine(all, body);
  if (all.length > 2) throw new ReplyFormatError(body);
  let msgid: string | null = null;
  if (all.length === 2) {
    if (!MSGID.test(all[1])) throw new ReplyFormatError(body);
    msgid = all[1];
  }
  return { resptime, code, msgid };
}

export function parseBalanceReply(body: string): BalanceReply {
  const all = lines(body);
  const { resptime, code } = statusLine(all, body);
  const products: BalanceReply["products"] = [];
  for (const line of all.slice(1)) {
    const m = PRODUCT_LINE.exec(line);
    if (!m) throw new ReplyFormatError(body);
    products.push({ product: m[1], balance: Number(m[2]) });
  }
  return { resptime, code, products };
}
