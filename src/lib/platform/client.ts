import { setMaxListeners } from "node:events";
import { Pool, type Dispatcher } from "undici";
import type { Clock } from "../clock";
import { systemClock } from "../clock";
import { CodeTable, RETRY_SAFE_CODES, type CodeOverrides } from "./codes";
import { SmsError, localError } from "../errors";
import { FormHead, formBody } from "./form";
import type { Lang } from "../i18n";
import { t } from "../i18n";
import { excerpt, redactor } from "../redact";
import { parseBalanceReply, parseSendReply, ReplyFormatError, type BalanceReply } from "./replies";
import { accountBacklog, QueueFullError, Scheduler, SchedulerClosedError } from "./scheduler";

export const SEND_PATH = "/msg/HttpBatchSendSM";
export const BALANCE_PATH = "/msg/QueryBalance";

export interface ClientOptions {
  url: string;
  account: string;
  password: string;
  /** ms for one platform request (connect, and then the reply) */
  timeout?: number;
  /** send requests per second for the account; 0 = no limit */
  rate?: number;
  /** most sends waiting for their turn */
  queue?: number;
  /** retries of a send the platform surely did not take */
  retries?: number;
  /** first retry delay; doubles each time, ±jitter, capped at retryMaxMs */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** connections kept to the platform (and most requests under way at once) */
  connections?: number;
  /** most bytes read from a reply; a longer one is BAD_RESPONSE */
  maxReplyBytes?: number;
  /** certificates (PEM) trusted for an https url instead of Node's default roots: a private CA */
  ca?: string | Buffer | Array<string | Buffer>;
  lang?: Lang;
  codes?: CodeOverrides;
  clock?: Clock;
  /** the account's shared pacing (see SchedulerOptions.pace) */
  pace?: (intervalMs: number) => Promise<number>;
  random?: () => number;
}

export interface SendRequest {
  mobiles: readonly string[];
  text: string;
  needstatus: boolean;
  product?: string;
  extno?: string;
}

export interface SendOutcome {
  code: 0;
  description: string;
  msgid: string | null;
  resptime: string;
  /** platform requests made (1 + retries) */
  attempts: number;
}

export interface BalanceOutcome {
  code: 0;
  description: string;
  resptime: string;
  products: BalanceReply["products"];
}

// Connect-phase codes: the most telling code of an error chain (see errorCode).
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "ERR_INVALID_URL",
]);
const TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "ETIMEDOUT"]);
// Failures of a connection that may well work in a moment. Only those are retried (and only when
// the request was not written): anything else, a refused certificate first, fails the same way
// 500 ms later, so a retry would only delay the error.
const TRANSIENT_CODES = new Set([
  ...CONNECT_CODES,
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
]);
// Node's certificate checks (OpenSSL's X509_V_ERR_* names, ERR_TLS_CERT_ALTNAME_INVALID) and
// OpenSSL's handshake errors (ERR_SSL_*, e.g. an https URL on a plain HTTP port).
const TLS_CODE =
  /CERT|^ERR_TLS_|^ERR_SSL_|^UNABLE_TO_|^INVALID_CA$|^INVALID_PURPOSE$|^PATH_LENGTH_EXCEEDED$|^HOSTNAME_/;

/** An error carrying a code as undici's own errors do, so one classifier reads both. */
function codedError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/**
 * The most telling error code in an error, its causes and aggregated errors (undici wraps the
 * socket error in `cause`; dual-stack hosts fail with an AggregateError). A connect-phase code
 * anywhere wins; otherwise the outermost code. The walk is bounded.
 */
export function errorCode(err: unknown): string | undefined {
  const queue: unknown[] = [err];
  let first: string | undefined;
  for (let i = 0; i < queue.length && i < 32; i++) {
    const e = queue[i] as { code?: unknown; cause?: unknown; errors?: unknown } | null;
    if (!e || typeof e !== "object") continue;
    if (typeof e.code === "string") {
      if (CONNECT_CODES.has(e.code)) return e.code;
      first ??= e.code;
    }
    if (e.cause) queue.push(e.cause);
    if (Array.isArray(e.errors)) queue.push(...e.errors);
  }
  return first;
}

/** The fields of a send body after the account and password, in the order the platform documents. */
const SEND_FIELDS = ["mobile", "msg", "needstatus", "product", "extno"];

function sendHead(account: string, password: string): FormHead {
  return new FormHead([
    ["account", account],
    ["pswd", password],
  ]);
}

function sendForm(head: FormHead, req: SendRequest): string {
  return formBody(head, SEND_FIELDS, [
    req.mobiles,
    req.text,
    req.needstatus ? "true" : "false",
    req.product || undefined,
    req.extno || undefined,
  ]);
}

export class SmsClient {
  readonly scheduler: Scheduler;
  private readonly backlog: ReturnType<typeof accountBacklog>;
  readonly codes: CodeTable;
  private readonly pool: Pool;
  private readonly base: string;
  private readonly timeout: number;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly maxReplyBytes: number;
  private readonly lang: Lang;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly redact: (s: string) => string;
  private readonly abort = new AbortController();
  private closed = false;
  private readonly head: FormHead;

  constructor(private readonly opts: ClientOptions) {
    const url = new URL(opts.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError("url must be http(s)");
    this.base = url.pathname.replace(/\/+$/, "");
    this.timeout = opts.timeout ?? 10_000;
    this.retries = Math.max(0, Math.floor(opts.retries ?? 3));
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 8_000;
    this.maxReplyBytes = opts.maxReplyBytes ?? 64 * 1024;
    this.lang = opts.lang ?? "en-US";
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.codes = new CodeTable(this.lang, opts.codes);
    this.redact = redactor([opts.password]);
    this.head = sendHead(opts.account, opts.password);
    // Each send waiting to retry listens for close(): many at once is expected.
    setMaxListeners(0, this.abort.signal);
    const connections = Math.max(1, opts.connections ?? 8);
    this.pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      connect: opts.ca === undefined ? { timeout: this.timeout } : { timeout: this.timeout, ca: opts.ca },
      headersTimeout: this.timeout,
      bodyTimeout: this.timeout,
      keepAliveTimeout: 30_000,
    });
    // Queue is per account (SPEC B1): clients of one account in this process share the bound.
    this.backlog = accountBacklog(`${url.origin}\n${opts.account}`);
    this.scheduler = new Scheduler({
      rate: Math.max(0, opts.rate ?? 10),
      queue: Math.max(0, opts.queue ?? 10_000),
      concurrency: connections,
      clock: this.clock,
      pace: opts.pace,
      backlog: this.backlog.backlog,
    });
  }

  /** The form body of a send, as bytes leave for the platform (what URLSearchParams would write). */
  static sendBody(account: string, password: string, req: SendRequest): string {
    return sendForm(sendHead(account, password), req);
  }

  /** SmsClient.sendBody with this client's account and password, encoded once for all its sends. */
  body(req: SendRequest): string {
    return sendForm(this.head, req);
  }

  /**
   * Sends one platform request (retrying only what surely was not taken). An aborted `signal`
   * cancels the send while it waits for its turn or for a retry; a request under way finishes.
   * `starting` runs when the request has its turn, just before it goes out (it must not fail).
   */
  async send(req: SendRequest, signal?: AbortSignal, starting?: () => Promise<void> | void): Promise<SendOutcome> {
    const body = this.body(req);
    for (let attempt = 0; ; attempt++) {
      let release: () => void;
      try {
        release = await this.scheduler.acquire(attempt > 0, signal);
      } catch (e) {
        if (e instanceof QueueFullError) throw localError("QUEUE_FULL", "queueFull", this.lang, { max: e.max });
        if (e instanceof SchedulerClosedError) throw this.cancelled();
        throw e;
      }
      let err: SmsError;
      try {
        // Its turn has come: whoever waits for this request's reports hears of it first.
        if (starting) await starting();
        const text = await this.request("POST", SEND_PATH, body, true);
        const reply = this.parse(() => parseSendReply(text), true);
        if (reply.code === 0) {
          return {
            code: 0,
            description: this.codes.send(0),
            msgid: reply.msgid,
            resptime: reply.resptime,
            attempts: attempt + 1,
          };
        }
        err = this.platformError(reply.code, this.codes.send(reply.code), RETRY_SAFE_CODES.has(reply.code), {
          resptime: reply.resptime,
        });
      } catch (e) {
        err = e as SmsError;
      } finally {
        release();
      }
      if (!err.retryable || err.outcomeUnknown || attempt >= this.retries) throw err;
      await this.backoff(attempt, signal);
      if (this.closed || signal?.aborted) throw this.cancelled();
    }
  }

  async balance(): Promise<BalanceOutcome> {
    const q = new URLSearchParams({ account: this.opts.account, pswd: this.opts.password });
    for (let attempt = 0; ; attempt++) {
      try {
        const text = await this.request("GET", `${BALANCE_PATH}?${q}`, undefined, false);
        const reply = this.parse(() => parseBalanceReply(text), false);
        if (reply.code !== 0) {
          throw this.platformError(reply.code, this.codes.balance(reply.code), false, { resptime: reply.resptime });
        }
        return { code: 0, description: this.codes.balance(0), resptime: reply.resptime, products: reply.products };
      } catch (e) {
        const err = e as SmsError;
        // Only connection failures are retried: a 103 means "wait 10 s", not "try again now".
        if (!err.retryable || attempt >= this.retries || this.closed) throw err;
        await this.backoff(attempt);
      }
    }
  }

  /** Waiting sends fail (not sent); requests under way finish or fail; then connections close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.scheduler.close();
    this.backlog.release();
    await this.pool.close().catch(() => undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private cancelled(): SmsError {
    return localError("NETWORK", "cancelled", this.lang, {}, { details: { cancelled: true } });
  }

  private platformError(code: number, text: string, retryable: boolean, details: Record<string, unknown>): SmsError {
    return new SmsError({
      code,
      message: t("platformCode", this.lang, { code, text }),
      retryable,
      details: { ...details, description: text },
    });
  }

  private parse<T>(fn: () => T, isSend: boolean): T {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof ReplyFormatError)) throw e;
      throw this.badResponse(e.body, isSend);
    }
  }

  /** A reply we cannot read: a send may still have been taken. Secrets are masked before the cut. */
  private badResponse(body: string, isSend: boolean): SmsError {
    return new SmsError({
      code: "BAD_RESPONSE",
      message: t(isSend ? "badResponseUnknown" : "badResponse", this.lang, { excerpt: excerpt(this.redact(body)) }),
      outcomeUnknown: isSend,
    });
  }

  /**
   * One platform request under a deadline of `timeout` ms, connection included. undici's own
   * timeouts run on a coarse clock (they can fire up to a second late), so the deadline is ours.
   * Whether the deadline caught the request before or after it went on the wire decides what the
   * caller may do next: before, nothing reached the platform and a retry is safe; after, the
   * platform may have taken it.
   */
  private request(method: "GET" | "POST", path: string, body: string | undefined, isSend: boolean): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let status = 0;
      let size = 0;
      let settled = false;
      const chunks: Buffer[] = [];
      const finish = (err: SmsError | undefined, text = "") => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (err) reject(err);
        else resolve(text);
      };
      // A native timer on purpose: the injectable clock paces retries, not sockets.
      const deadline = setTimeout(() => {
        if (!controller) return finish(this.transportError(codedError("UND_ERR_CONNECT_TIMEOUT"), isSend, false));
        const e = codedError(status ? "UND_ERR_BODY_TIMEOUT" : "UND_ERR_HEADERS_TIMEOUT");
        controller.abort(e);
        finish(this.transportError(e, isSend, true));
      }, this.timeout);
      const headers: Record<string, string> =
        method === "POST"
          ? { "content-type": "application/x-www-form-urlencoded; charset=utf-8", accept: "text/plain" }
          : { accept: "text/plain" };
      this.pool.dispatch(
        { method, path: this.base + path, body, headers },
        {
          // Called once the connection is up (TLS handshake and certificate check done), just
          // before the request is written: see transportError.
          onRequestStart: (c) => {
            // The deadline passed while connecting: abort before a single byte is written.
            if (settled) return c.abort(codedError("UND_ERR_CONNECT_TIMEOUT"));
            controller = c;
          },
          onResponseStart: (_c, statusCode) => {
            if (statusCode >= 200) status = statusCode;
          },
          onResponseData: (c, chunk) => {
            if (settled) return;
            size += chunk.length;
            if (size > this.maxReplyBytes) {
              const head = Buffer.concat(chunks).toString("utf8");
              finish(this.badResponse(head || chunk.toString("utf8"), isSend));
              return c.abort(codedError("REPLY_TOO_LARGE"));
            }
            chunks.push(chunk);
          },
          onResponseEnd: () => {
            const text = Buffer.concat(chunks).toString("utf8");
            if (status >= 200 && status <= 299) return finish(undefined, text);
            const unknown = isSend && status >= 500;
            finish(
              new SmsError({
                code: "HTTP_STATUS",
                message: t(unknown ? "httpStatusUnknown" : "httpStatus", this.lang, { status }),
                outcomeUnknown: unknown,
              }),
            );
          },
          onResponseError: (_c, e) => finish(this.transportError(e, isSend, controller !== undefined)),
        },
      );
    });
  }

  /**
   * What a transport error means hangs on whether the request was written, not on its code.
   * undici 7 calls onRequestStart (Request.onConnect, from writeH1 in dispatcher/client-h1.js)
   * only on a connected socket (for https the connector calls back on 'secureConnect', after the
   * handshake and the certificate check) and writes the request right after it in the same tick.
   * So an error before onRequestStart reached no platform, whatever its code: refused, DNS, a
   * reset or a refused certificate during the handshake. After it, the platform may have read
   * the request, and a send's outcome is unknown.
   */
  private transportError(e: unknown, isSend: boolean, written: boolean): SmsError {
    const code = errorCode(e) ?? "UNKNOWN";
    const reason = this.redact(code);
    if (!written) {
      const tls = TLS_CODE.test(code);
      const key = tls ? (isSend ? "tlsFailed" : "tlsFailedQuery") : isSend ? "connectFailed" : "connectFailedQuery";
      return new SmsError({
        code: "NETWORK",
        message: t(key, this.lang, { reason }),
        retryable: TRANSIENT_CODES.has(code),
        cause: e,
        details: { reason },
      });
    }
    if (TIMEOUT_CODES.has(code)) {
      return new SmsError({
        code: "TIMEOUT",
        message: t(isSend ? "timeoutUnknown" : "timeout", this.lang, { timeout: this.timeout }),
        outcomeUnknown: isSend,
        cause: e,
        details: { reason },
      });
    }
    return new SmsError({
      code: "NETWORK",
      message: t(isSend ? "networkUnknown" : "networkQuery", this.lang, { reason }),
      outcomeUnknown: isSend,
      cause: e,
      details: { reason },
    });
  }

  /** Waits before a retry; close() cuts the wait short (the retry then fails as cancelled). */
  private backoff(attempt: number, caller?: AbortSignal): Promise<void> {
    const base = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
    const ms = Math.min(this.retryMaxMs, base * (0.8 + 0.4 * this.random()));
    const signals = caller ? [this.abort.signal, caller] : [this.abort.signal];
    return new Promise((resolve) => {
      if (signals.some((s) => s.aborted)) return resolve();
      const finish = () => {
        this.clock.clearTimeout(handle);
        for (const s of signals) s.removeEventListener("abort", finish);
        resolve();
      };
      const handle = this.clock.setTimeout(finish, ms);
      for (const s of signals) s.addEventListener("abort", finish, { once: true });
    });
  }
}
