import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Agent, request } from "undici";
import { segmentCount } from "../lib/platform/text";
import { platformStamp } from "../lib/platform/time";
import { checkAccountConfig, makeAccount, platformCode, type SimAccount, type SimAccountConfig } from "./accounts";
import { declaredCharset, decodeBytes, formEncode, parseForm } from "./charset";
import { check, checkSettings, type Check } from "./rules";
import { formatMobile, formatPushTime, PUSH_RULES, variantOf, type PushStyle, type PushVariant } from "./variants";

/** The push variant fields here are the defaults for every push (see PushVariant). */
export interface SimulatorOptions extends PushVariant {
  host?: string;
  /** 0 = any free port */
  port?: number;
  /** accounts; default one account `demo`/`demo` with products 1001 (10000) and 1002 (500) */
  accounts?: SimAccountConfig[];
  /** where delivery reports are pushed; none when empty */
  reportUrl?: string;
  /** where inbound SMS are pushed; none when empty */
  moUrl?: string;
  /** `receiver` / `pswd` sent in pushes */
  receiver?: string;
  receiverPassword?: string;
  /** delay before a send's reports are pushed */
  reportDelayMs?: number;
  /** retries of a push not answered `OK` */
  pushRetries?: number;
  pushRetryDelayMs?: number;
  /** pushes under way at once */
  pushConcurrency?: number;
  /** most pushes waiting; beyond it new ones are counted as dropped */
  maxPushQueue?: number;
  /** most requests and pushes kept for /sim/requests and /sim/pushes */
  historySize?: number;
  /** largest request body accepted (413 beyond) */
  maxBodyBytes?: number;
  /** platform UTC offset in minutes (UTC+8) */
  offsetMinutes?: number;
  /** a log function for the CLI; silent by default */
  log?: (line: string) => void;
}

export interface RecordedRequest {
  at: string;
  method: string;
  path: string;
  ip: string;
  /** params with pswd masked */
  params: Record<string, string>;
  code: number;
  msgid: string | null;
}

export interface RecordedPush {
  at: string;
  /** `check`: a GET or HEAD with no params, as a platform checks a callback URL */
  kind: "report" | "mo" | "check";
  url: string;
  method: "GET" | "HEAD" | "POST";
  /** how it was sent; `json-array` for several reports in one POST */
  style: PushStyle | "json-array";
  /** params with pswd masked (values as pushed: JSON pushes may hold numbers and objects); `{}` for an array */
  params: Record<string, unknown>;
  /** the reports of a `json-array` push, pswd masked */
  batch?: Array<Record<string, unknown>>;
  attempts: number;
  ok: boolean;
  error?: string;
}

/** An inbound SMS to push. Its push variant fields replace the simulator's for this SMS. */
export interface InjectMo extends Omit<PushVariant, "reportExtras" | "batchReports" | "msgidAsNumber"> {
  mobile: string;
  destcode?: string;
  text: string;
  /** pushed as given; otherwise the push time in `timeFormat` */
  moTime?: string;
  /** push long-SMS parts in random order */
  shuffle?: boolean;
  /** push these part numbers twice (true = every part) */
  duplicate?: boolean | number[];
  /** never push these part numbers */
  withhold?: number[];
  /** emshead id; generated when absent */
  id?: string;
  /**
   * Where to push this one inbound SMS instead of the MO URL: a flow listening on another path can
   * be tried against a running simulator (the `npm start` demo's pushes to its own path).
   */
  moUrl?: string;
}

const INJECT_RULES: Record<keyof Required<InjectMo>, Check> = {
  mobile: check.string,
  destcode: check.optional(check.string),
  text: check.string,
  moTime: check.optional(check.string),
  shuffle: check.optional(check.boolean),
  duplicate: check.optional((v) =>
    typeof v === "boolean" || (Array.isArray(v) && v.every(Number.isInteger))
      ? null
      : "must be true, false or an array of part numbers",
  ),
  withhold: check.optional((v) =>
    Array.isArray(v) && v.every(Number.isInteger) ? null : "must be an array of part numbers",
  ),
  id: check.optional(check.string),
  moUrl: check.optional((v) =>
    typeof v === "string" && /^https?:\/\/\S+$/.test(v) ? null : "must be an http:// or https:// URL",
  ),
  pushStyle: PUSH_RULES.pushStyle,
  timeFormat: PUSH_RULES.timeFormat,
  mobileFormat: PUSH_RULES.mobileFormat,
  pushCharset: PUSH_RULES.pushCharset,
  declareCharset: PUSH_RULES.declareCharset,
  extra: PUSH_RULES.extra,
};

const CONFIG_RULES: Record<string, Check> = {
  reportUrl: check.string,
  moUrl: check.string,
  ...PUSH_RULES,
};

const CHECK_RULES: Record<string, Check> = {
  to: check.optional(check.oneOf(["report", "mo"])),
  method: check.optional(check.oneOf(["GET", "HEAD"])),
};

type Fields = Record<string, unknown>;

interface PushJob {
  kind: RecordedPush["kind"];
  /** the configured URL */
  url: string;
  /** the URL requested (with the query for GET) */
  target: string;
  method: RecordedPush["method"];
  style: RecordedPush["style"];
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  params: Fields;
  batch?: Fields[];
  attempts: number;
  /** called once when the push is done with: answered, given up, dropped or the simulator closed */
  settled?: () => void;
}

/** A request as the routes see it, from Node's HTTP server or read leniently off the socket. */
interface SimRequest {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  ip: string;
}

type Reply = (status: number, body: string, contentType: string) => void;

const TEXT = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json; charset=utf-8";
const MAX_NUMBERS = 50_000;
const CN_MOBILE = /^1[3-9]\d{9}$/;
const DIGITS = /^\d{5,20}$/;
export const PART_SIZE = 67;
/** price per part in reports with `reportExtras` */
const PRICE = 0.05;
/** the largest request head read off a socket when Node's parser refused it */
const MAX_LENIENT_HEAD = 16 * 1024;
// Marks a msgid that a JSON push writes as a bare number (see `msgidAsNumber`).
const NUMBER_MARK = "\u0001";

/** Splits text into parts of at most `size` UTF-16 units without cutting a surrogate pair. */
export function splitParts(text: string, size = PART_SIZE): string[] {
  const parts: string[] = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(text.length, i + size);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    parts.push(text.slice(i, end));
    i = end;
  }
  return parts;
}

function mask<T extends Fields>(params: T): T {
  return "pswd" in params ? { ...params, pswd: "***" } : params;
}

/** A param value in a query or form: text as it is, anything else as its JSON text. */
function asText(v: unknown): string {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : JSON.stringify(v);
}

/** Adds the extra params without replacing a standard one. */
function addExtra(fields: Fields, extra: Record<string, unknown> | undefined): Fields {
  if (extra) for (const [k, v] of Object.entries(extra)) if (!Object.hasOwn(fields, k)) fields[k] = v;
  return fields;
}

export class Simulator {
  readonly requests: RecordedRequest[] = [];
  readonly pushes: RecordedPush[] = [];
  readonly stats = { sends: 0, pushed: 0, pushOk: 0, pushFailed: 0, dropped: 0 };
  private accounts = new Map<string, SimAccount>();
  private readonly opts: Required<Omit<SimulatorOptions, "accounts" | "log" | keyof PushVariant>> & {
    log?: (l: string) => void;
  };
  /** push variant defaults, changed by POST /sim/config */
  private push: PushVariant;
  private readonly initial: SimAccountConfig[];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  /** sockets whose request is being answered outside Node's parser (see onClientError) */
  private readonly lenient = new WeakSet<Socket>();
  private readonly agent: Agent;
  private queue: PushJob[] = [];
  private inFlight = 0;
  private timers = new Set<NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private seq = 0;
  private moSeq = 0;
  private batchSeq = 0;
  private closed = false;

  constructor(opts: SimulatorOptions = {}) {
    this.opts = {
      host: opts.host ?? "127.0.0.1",
      port: opts.port ?? 18080,
      reportUrl: opts.reportUrl ?? "",
      moUrl: opts.moUrl ?? "",
      receiver: opts.receiver ?? "",
      receiverPassword: opts.receiverPassword ?? "",
      reportDelayMs: opts.reportDelayMs ?? 100,
      pushRetries: opts.pushRetries ?? 3,
      pushRetryDelayMs: opts.pushRetryDelayMs ?? 500,
      pushConcurrency: opts.pushConcurrency ?? 8,
      maxPushQueue: opts.maxPushQueue ?? 200_000,
      historySize: opts.historySize ?? 1000,
      maxBodyBytes: opts.maxBodyBytes ?? 2 * 1024 * 1024,
      offsetMinutes: opts.offsetMinutes ?? 480,
      log: opts.log,
    };
    this.push = variantOf(opts);
    checkSettings(this.push, PUSH_RULES, "push");
    this.initial = opts.accounts ?? [{ account: "demo", password: "demo" }];
    for (const c of this.initial) checkAccountConfig(c);
    this.reset();
    this.agent = new Agent({ connections: this.opts.pushConcurrency, headersTimeout: 10_000, bodyTimeout: 10_000 });
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on("clientError", (err: ParserError, socket: Socket) => this.onClientError(err, socket));
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return this;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  set reportUrl(u: string) {
    this.opts.reportUrl = u;
  }

  set moUrl(u: string) {
    this.opts.moUrl = u;
  }

  /** The push URLs and the push variant defaults (what GET /sim/config shows). */
  get config(): { reportUrl: string; moUrl: string } & PushVariant {
    return { reportUrl: this.opts.reportUrl, moUrl: this.opts.moUrl, ...this.push };
  }

  /**
   * Changes the push URLs and push variant defaults; a variant field set to null or undefined
   * goes back to the platform's default. Throws on an unknown or ill-typed setting.
   */
  setConfig(c: Partial<{ reportUrl: string; moUrl: string }> & PushVariant): void {
    checkSettings(c, CONFIG_RULES, "config");
    if (typeof c.reportUrl === "string") this.opts.reportUrl = c.reportUrl;
    if (typeof c.moUrl === "string") this.opts.moUrl = c.moUrl;
    const next: Record<string, unknown> = { ...this.push };
    for (const k of Object.keys(PUSH_RULES)) if (k in c) next[k] = (c as Fields)[k];
    this.push = variantOf(next as PushVariant);
  }

  /** Balances, counters, history and accounts back to how they started. */
  reset(): void {
    this.accounts = new Map(this.initial.map((c) => [c.account, makeAccount(structuredClone(c))]));
    this.requests.length = 0;
    this.pushes.length = 0;
    Object.assign(this.stats, { sends: 0, pushed: 0, pushOk: 0, pushFailed: 0, dropped: 0 });
  }

  /**
   * Adds an account or changes some of its rules (balances kept unless given). Throws on a
   * setting that is not a SimAccountConfig field or has the wrong type, naming it.
   */
  configure(c: Partial<SimAccountConfig> & { account: string }): SimAccount {
    checkAccountConfig(c);
    const existing = this.accounts.get(c.account);
    if (existing) {
      Object.assign(existing, c);
      return existing;
    }
    const a = makeAccount({ password: "", ...c });
    this.accounts.set(c.account, a);
    return a;
  }

  account(name: string): SimAccount | undefined {
    return this.accounts.get(name);
  }

  /** Resolves when no push is waiting, scheduled or under way. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const job of this.queue.splice(0)) job.settled?.();
    this.server.close();
    for (const s of this.sockets) s.destroy();
    await this.agent.close().catch(() => undefined);
    this.notifyIdle();
  }

  /** Pushes an inbound SMS to the MO URL (or its own `moUrl`): one push, or `emshead` parts for a long text. */
  injectMo(mo: InjectMo): { parts: number; pushed: number; id: string | null } {
    checkSettings(mo, INJECT_RULES, "inbound SMS");
    const v: PushVariant = { ...this.push, ...variantOf(mo) };
    const base: Fields = {
      receiver: this.opts.receiver,
      pswd: this.opts.receiverPassword,
      moTime: mo.moTime ?? formatPushTime(Date.now(), this.opts.offsetMinutes, v.timeFormat ?? "YYMMDDhhmm"),
      destcode: mo.destcode ?? "1065751600001",
      mobile: formatMobile(mo.mobile, v.mobileFormat),
    };
    const url = mo.moUrl ?? this.opts.moUrl;
    if (mo.text.length <= 70) {
      this.enqueue(this.wire("mo", url, [addExtra({ ...base, msg: mo.text }, v.extra)], v, false));
      return { parts: 1, pushed: 1, id: null };
    }
    const texts = splitParts(mo.text);
    const id = mo.id ?? String((++this.moSeq % 255) + 1);
    let order = texts.map((_, i) => i + 1).filter((n) => !(mo.withhold ?? []).includes(n));
    const dup = mo.duplicate === true ? order : (mo.duplicate || []).filter((n) => order.includes(n));
    order = order.concat(dup);
    if (mo.shuffle) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    for (const n of order) {
      const part = { ...base, msg: texts[n - 1], isems: "1", emshead: `${id},${texts.length},${n}` };
      this.enqueue(this.wire("mo", url, [addExtra(part, v.extra)], v, false));
    }
    return { parts: texts.length, pushed: order.length, id };
  }

  /**
   * Checks a push URL the way some platforms do before using it: a GET or HEAD with no params
   * at all. Recorded in /sim/pushes with kind `check`.
   */
  checkUrl(which: "report" | "mo" = "report", method: "GET" | "HEAD" = "GET"): void {
    const url = which === "mo" ? this.opts.moUrl : this.opts.reportUrl;
    this.enqueue({ kind: "check", url, target: url, method, style: "get", params: {}, attempts: 0 });
  }

  // --- HTTP ---------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > this.opts.maxBodyBytes) tooBig = true;
      else chunks.push(c);
    });
    const reply: Reply = (status, body, contentType) => {
      if (res.writableEnded || res.destroyed) return;
      res.writeHead(status, { "content-type": contentType });
      res.end(body);
    };
    req.on("end", () => {
      if (tooBig) return reply(413, "request body too large", TEXT);
      this.dispatch(
        {
          method: req.method ?? "GET",
          url: new URL(req.url ?? "/", "http://sim"),
          headers: req.headers,
          body: Buffer.concat(chunks),
          ip: req.socket.remoteAddress ?? "",
        },
        reply,
      );
    });
    req.on("error", () => res.destroy());
  }

  private dispatch(r: SimRequest, reply: Reply): void {
    try {
      this.route(r, reply);
    } catch (e) {
      reply(400, (e as Error).message, TEXT);
    }
  }

  /**
   * Node's HTTP parser refuses a request line with raw bytes >= 0x80 (llhttp: "Invalid char in
   * url query/path", also with `insecureHTTPParser`) before any handler runs. A lenient Java
   * server reads such bytes as UTF-8, and clients that forget to encode `msg` exist, so the
   * simulator does the same: it reads the request from the packet the parser refused, answers it
   * with `Connection: close`, and leaves the socket's further parser errors alone. This needs the
   * request line and headers in that one packet, as every ordinary client sends them; otherwise
   * the answer is 400 as from Node.
   */
  private onClientError(err: ParserError, socket: Socket): void {
    if (this.lenient.has(socket)) return;
    if (err.code === "HPE_INVALID_URL" && err.rawPacket && this.readLenient(err.rawPacket, socket)) return;
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    // What Node answers when nobody listens for clientError.
    const status =
      err.code === "HPE_HEADER_OVERFLOW"
        ? 431
        : err.code === "HPE_CHUNK_EXTENSIONS_OVERFLOW"
          ? 413
          : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
            ? 408
            : 400;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
  }

  /** Reads a request whose line Node refused; false when the packet does not start one. */
  private readLenient(packet: Buffer, socket: Socket): boolean {
    const raw = packet.toString("latin1");
    const line = /^([A-Z]+) ([^ \r\n]+) HTTP\/1\.[01]\r?\n/.exec(raw);
    if (!line) return false;
    const headEnd = /\r?\n\r?\n/.exec(raw);
    if (!headEnd || headEnd.index > MAX_LENIENT_HEAD) return false;
    const headers: http.IncomingHttpHeaders = {};
    for (const h of raw.slice(line[0].length, headEnd.index).split(/\r?\n/)) {
      const colon = h.indexOf(":");
      if (colon > 0) headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    }
    this.lenient.add(socket);
    const reply: Reply = (status, body, contentType) => {
      if (socket.destroyed || !socket.writable) return;
      const b = Buffer.from(line[1] === "HEAD" ? "" : body);
      const head =
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\ncontent-type: ${contentType}\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
      socket.end(Buffer.concat([Buffer.from(head, "latin1"), b]));
    };
    if (headers["transfer-encoding"]) {
      reply(400, "chunked body with a raw (unencoded) request line is not supported", TEXT);
      return true;
    }
    const length = Number(headers["content-length"] ?? 0);
    if (!Number.isInteger(length) || length < 0) {
      reply(400, "bad content-length", TEXT);
      return true;
    }
    if (length > this.opts.maxBodyBytes) {
      reply(413, "request body too large", TEXT);
      return true;
    }
    // Bytes >= 0x80 become %XX of the same byte: the UTF-8 the client sent, percent-encoded.
    const target = line[2].replace(/[\x80-\xff]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
    const bodyStart = headEnd.index + headEnd[0].length;
    let body = packet.subarray(bodyStart);
    const go = () =>
      this.dispatch(
        {
          method: line[1],
          url: new URL(target, "http://sim"),
          headers,
          body: body.subarray(0, length),
          ip: socket.remoteAddress ?? "",
        },
        reply,
      );
    if (body.length >= length) {
      go();
      return true;
    }
    // The body may follow in later packets (clients often write head and body separately).
    const more = (c: Buffer) => {
      body = Buffer.concat([body, c]);
      if (body.length < length) return;
      socket.off("data", more);
      go();
    };
    socket.on("data", more);
    return true;
  }

  private route(r: SimRequest, reply: Reply): void {
    const { method, url } = r;
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const text = (status: number, body: string) => reply(status, body, TEXT);
    const json = (status: number, body: unknown) => reply(status, JSON.stringify(body), JSON_TYPE);
    // The body is read in the charset its content-type declares (a Java servlet's
    // setCharacterEncoding); percent-encoded bytes too. The query string stays UTF-8.
    const form = () => {
      const p: Record<string, string> = Object.fromEntries(url.searchParams);
      const type = r.headers["content-type"];
      if (method === "POST" && !/json/i.test(type ?? "")) Object.assign(p, parseForm(r.body, declaredCharset(type)));
      return p;
    };
    const body = (): unknown => {
      const s = decodeBytes(r.body, declaredCharset(r.headers["content-type"]));
      return s.trim() ? JSON.parse(s) : {};
    };
    const ip = r.ip.replace(/^::ffff:/, "");

    if (path.endsWith("/msg/HttpBatchSendSM") && (method === "GET" || method === "POST")) {
      return this.onSend(reply, method, path, form(), ip);
    }
    if (path.endsWith("/msg/QueryBalance") && (method === "GET" || method === "POST")) {
      return this.onBalance(reply, method, path, form(), ip);
    }
    if (path === "/sim/requests" && method === "GET") return json(200, this.requests);
    if (path === "/sim/pushes" && method === "GET") return json(200, this.pushes);
    if (path === "/sim/stats" && method === "GET") return json(200, { ...this.stats, queued: this.queue.length });
    if (path === "/sim/accounts" && method === "GET") return json(200, this.accountSummary());
    if (path === "/sim/accounts" && method === "POST") {
      const c = body() as Partial<SimAccountConfig>;
      if (typeof c?.account !== "string" || !c.account) return text(400, "account required");
      this.configure(c as SimAccountConfig);
      return json(200, this.accountSummary());
    }
    if (path === "/sim/reset" && method === "POST") {
      this.reset();
      return json(200, { ok: true });
    }
    if (path === "/sim/mo" && method === "POST") {
      const mo = body() as InjectMo;
      if (typeof mo?.mobile !== "string" || typeof mo.text !== "string") return text(400, "mobile and text required");
      if (!this.opts.moUrl && mo.moUrl === undefined) return text(409, "no MO URL configured (--mo-url or moUrl)");
      return json(200, this.injectMo(mo));
    }
    if (path === "/sim/check" && method === "POST") {
      const c = body() as { to?: unknown; method?: unknown };
      checkSettings(c, CHECK_RULES, "check");
      const to = (c.to ?? "report") as "report" | "mo";
      if (!(to === "mo" ? this.opts.moUrl : this.opts.reportUrl)) return text(409, `no ${to} URL configured`);
      this.checkUrl(to, (c.method ?? "GET") as "GET" | "HEAD");
      return json(200, { ok: true });
    }
    if (path === "/sim/config" && method === "GET") return json(200, this.config);
    if (path === "/sim/config" && method === "POST") {
      this.setConfig(body() as PushVariant);
      return json(200, this.config);
    }
    return text(404, "not found");
  }

  private accountSummary() {
    return [...this.accounts.values()].map((a) => ({ account: a.account, products: a.products }));
  }

  private onSend(reply: Reply, method: string, path: string, p: Record<string, string>, ip: string): void {
    this.stats.sends++;
    const now = Date.now();
    const { code, msgid, account, mobiles } = this.evaluateSend(p, ip, now);
    this.record({ at: new Date(now).toISOString(), method, path, ip, params: mask(p), code, msgid });
    const a = account;
    const nl = a?.lineEnding === "crlf" ? "\r\n" : a?.lineEnding === "blank" ? "\n\n" : "\n";
    const out = `${platformStamp(now, this.opts.offsetMinutes)},${code}` + (msgid ? nl + msgid : "");
    const answer = () =>
      a?.replyDelayMs ? this.later(() => reply(200, out, TEXT), a.replyDelayMs) : reply(200, out, TEXT);
    const first = code === 0 && msgid && a && this.opts.reportUrl ? this.scheduleReports(a, msgid, mobiles, p) : null;
    // "Report first": the platform's report reached the receiver before the sender read the reply.
    if (first) void first.then(answer);
    else answer();
  }

  /**
   * Schedules a send's reports by the account's rules: withheld numbers never report, numbers
   * with a delay of their own report then, the rest after reportDelayMs, or at once when the
   * account reports first. Returns, for reportFirst, when those first reports were pushed.
   */
  private scheduleReports(
    a: SimAccount,
    msgid: string,
    mobiles: string[],
    p: Record<string, string>,
  ): Promise<void> | null {
    const parts = segmentCount((p.msg ?? "").length);
    const withheld = new Set(a.withholdReports);
    const byDelay = new Map<number, string[]>();
    const FIRST = -1;
    for (const mobile of mobiles) {
      if (withheld.has(mobile)) continue;
      const own = Object.hasOwn(a.reportDelays, mobile) ? a.reportDelays[mobile] : undefined;
      const delay = own ?? (a.reportFirst ? FIRST : this.opts.reportDelayMs);
      let list = byDelay.get(delay);
      if (!list) byDelay.set(delay, (list = []));
      list.push(mobile);
    }
    let first: Promise<void> | null = a.reportFirst ? Promise.resolve() : null;
    for (const [delay, list] of byDelay) {
      if (delay === FIRST) first = this.queueReports(a, msgid, list, p.uid ?? "", parts);
      else this.later(() => void this.queueReports(a, msgid, list, p.uid ?? "", parts), delay);
    }
    return first;
  }

  private evaluateSend(
    p: Record<string, string>,
    ip: string,
    now: number,
  ): { code: number; msgid: string | null; account?: SimAccount; mobiles: string[] } {
    const a = this.accounts.get(p.account ?? "");
    const fail = (code: number) => ({ code: a ? platformCode(a, code) : code, msgid: null, account: a, mobiles: [] });
    if (!a) return fail(101);
    if (a.password !== (p.pswd ?? "")) return fail(102);
    if (a.forceCode !== undefined && a.forceCode !== null) {
      return a.forceCode === 0 ? this.accept(a, p, now, this.numbers(p)) : fail(a.forceCode);
    }
    if (a.allowedIps && !a.allowedIps.includes(ip)) return fail(117);
    if (a.expired) return fail(119);
    if (!a.canSend) return fail(118);
    if (a.rateLimit > 0) {
      a.recent = a.recent.filter((t) => now - t < 1000);
      if (a.recent.length >= a.rateLimit) return fail(103);
      a.recent.push(now);
    }
    if (a.busy) return fail(104);
    const mobiles = this.numbers(p);
    if (mobiles.length === 0 || mobiles.length > MAX_NUMBERS) return fail(108);
    const rule = a.mobileRule === "digits" ? DIGITS : CN_MOBILE;
    if (mobiles.some((m) => !rule.test(m))) return fail(107);
    const text = p.msg ?? "";
    if (text.length === 0 || text.length > a.maxLength) return fail(106);
    if (a.signatureRequired && !/【[^【】]+】/.test(text)) return fail(116);
    if (a.sensitiveWords.some((w) => text.includes(w))) return fail(105);
    if (a.whitelist && !a.whitelist.some((w) => text.includes(w))) return fail(120);
    if (a.reviewWords.some((w) => text.includes(w))) return fail(115);
    const extno = p.extno ?? "";
    if (extno && (!/^\d+$/.test(extno) || extno.length > a.extnoMaxLength)) return fail(113);
    const product = p.product || Object.keys(a.products)[0];
    if (!(product in a.products)) return fail(112);
    if (a.sendingHours) {
      const hour = new Date(now + this.opts.offsetMinutes * 60_000).getUTCHours();
      const [from, to] = a.sendingHours;
      const inside = from <= to ? hour >= from && hour < to : hour >= from || hour < to;
      if (!inside) return fail(110);
    }
    const cost = segmentCount(text.length) * mobiles.length;
    const month = platformStamp(now, this.opts.offsetMinutes).slice(0, 6);
    if (a.monthlyLimit > 0 && (a.monthly.get(month) ?? 0) + cost > a.monthlyLimit) return fail(111);
    if (a.products[product] < cost) return fail(109);
    a.products[product] -= cost;
    a.monthly.set(month, (a.monthly.get(month) ?? 0) + cost);
    return this.accept(a, p, now, mobiles);
  }

  private accept(a: SimAccount, p: Record<string, string>, now: number, mobiles: string[]) {
    const msgid =
      p.needstatus === "true"
        ? platformStamp(now, this.opts.offsetMinutes) + String(++this.seq).padStart(6, "0")
        : null;
    return { code: 0, msgid, account: a, mobiles };
  }

  private numbers(p: Record<string, string>): string[] {
    return (p.mobile ?? "").split(",").filter((s) => s !== "");
  }

  private onBalance(reply: Reply, method: string, path: string, p: Record<string, string>, ip: string): void {
    const now = Date.now();
    const a = this.accounts.get(p.account ?? "");
    let code = 0;
    if (!a) code = 101;
    else if (a.password !== (p.pswd ?? "")) code = 102;
    else if (now - a.lastBalanceQuery < a.balanceIntervalMs) code = 103;
    else a.lastBalanceQuery = now;
    this.record({ at: new Date(now).toISOString(), method, path, ip, params: mask(p), code, msgid: null });
    const nl = a?.lineEnding === "crlf" ? "\r\n" : "\n";
    let out = `${platformStamp(now, this.opts.offsetMinutes)},${code}`;
    if (code === 0 && a) for (const [id, bal] of Object.entries(a.products)) out += `${nl}${id},${bal}`;
    reply(200, out, TEXT);
  }

  // --- pushes -------------------------------------------------------------------------------

  /** Queues the reports of these numbers; resolves when each was pushed (or given up). */
  private queueReports(a: SimAccount, msgid: string, mobiles: string[], uid: string, parts: number): Promise<void> {
    const v: PushVariant = { ...this.push, ...variantOf(a) };
    const now = Date.now();
    const reportTime = formatPushTime(now, this.opts.offsetMinutes, v.timeFormat ?? "YYMMDDhhmm");
    const batchSeq = ++this.batchSeq;
    const reports = mobiles.map((mobile) => {
      const r: Fields = {
        receiver: this.opts.receiver,
        pswd: this.opts.receiverPassword,
        msgid,
        reportTime,
        mobile: formatMobile(mobile, v.mobileFormat),
        status: a.reportStatus[mobile] ?? a.defaultStatus,
      };
      if (v.reportExtras) {
        r.notifyTime = formatPushTime(now, this.opts.offsetMinutes, "YYMMDDhhmmss");
        Object.assign(r, { batchSeq, uid, price: PRICE, chargeCount: parts });
      }
      return addExtra(r, v.extra);
    });
    const size = v.batchReports ?? 0;
    const groups = size > 0 ? chunk(reports, size) : reports.map((r) => [r]);
    const settled: Array<Promise<void>> = [];
    for (const group of groups) {
      const job = () => this.wire("report", this.opts.reportUrl, group, v, size > 0);
      for (let i = 0; i <= a.duplicateReports; i++) {
        const j = job();
        settled.push(new Promise<void>((r) => (j.settled = r)));
        this.enqueue(j);
      }
    }
    return Promise.all(settled).then(() => undefined);
  }

  /** One push as it goes on the wire, in the variant's style and charset. */
  private wire(kind: "report" | "mo", url: string, items: Fields[], v: PushVariant, asArray: boolean): PushJob {
    const record = { kind, url, attempts: 0, params: asArray ? {} : mask(items[0]) };
    const declare = (type: string, charset: string) => (v.declareCharset ? `${type}; charset=${charset}` : type);
    if (asArray || v.pushStyle === "json") {
      const numbered = v.msgidAsNumber && kind === "report";
      const body = jsonText(asArray ? items : items[0], items, numbered);
      return {
        ...record,
        target: url,
        method: "POST",
        style: asArray ? "json-array" : "json",
        headers: { "content-type": declare("application/json", "utf-8") },
        body,
        ...(asArray ? { batch: items.map(mask) } : {}),
      };
    }
    const charset = v.pushCharset ?? "utf-8";
    const encoded = formEncode(
      Object.fromEntries(Object.entries(items[0]).map(([k, val]) => [k, asText(val)])),
      charset,
    );
    if (v.pushStyle === "form") {
      return {
        ...record,
        target: url,
        method: "POST",
        style: "form",
        headers: { "content-type": declare("application/x-www-form-urlencoded", charset) },
        body: encoded,
      };
    }
    const u = new URL(url);
    u.search = u.search ? `${u.search}&${encoded}` : encoded;
    return { ...record, target: u.toString(), method: "GET", style: "get" };
  }

  private enqueue(job: PushJob): void {
    if (this.closed || !job.url) return job.settled?.();
    if (this.queue.length >= this.opts.maxPushQueue) {
      this.stats.dropped++;
      return job.settled?.();
    }
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.opts.pushConcurrency && this.queue.length) {
      const job = this.queue.shift()!;
      this.inFlight++;
      void this.send(job).finally(() => {
        this.inFlight--;
        this.pump();
        this.notifyIdle();
      });
    }
  }

  private async send(job: PushJob): Promise<void> {
    job.attempts++;
    let error: string | undefined;
    try {
      const res = await request(job.target, {
        method: job.method,
        headers: job.headers,
        body: job.body,
        dispatcher: this.agent,
      });
      const body = (await res.body.text()).trim();
      // A HEAD answer has no body: its status is the whole answer.
      const ok = res.statusCode === 200 && (job.method === "HEAD" || body.toUpperCase() === "OK");
      if (!ok) error = `HTTP ${res.statusCode} ${body.slice(0, 40)}`;
    } catch (e) {
      error = (e as { code?: string }).code ?? (e as Error).message;
    }
    if (this.closed) return job.settled?.();
    this.stats.pushed++;
    if (error && job.attempts <= this.opts.pushRetries) {
      this.later(() => this.enqueue(job), this.opts.pushRetryDelayMs);
      return;
    }
    job.settled?.();
    if (error) this.stats.pushFailed++;
    else this.stats.pushOk++;
    this.keep(this.pushes, {
      at: new Date().toISOString(),
      kind: job.kind,
      url: job.url,
      method: job.method,
      style: job.style,
      params: job.params,
      ...(job.batch ? { batch: job.batch } : {}),
      attempts: job.attempts,
      ok: !error,
      ...(error ? { error } : {}),
    });
    if (error) this.opts.log?.(`push to ${job.url} failed after ${job.attempts} attempt(s): ${error}`);
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
      this.notifyIdle();
    }, ms);
    this.timers.add(t);
  }

  private isIdle(): boolean {
    return this.closed || (this.queue.length === 0 && this.inFlight === 0 && this.timers.size === 0);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    const w = this.idleWaiters.splice(0);
    for (const fn of w) fn();
  }

  private record(r: RecordedRequest): void {
    this.keep(this.requests, r);
  }

  private keep<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > this.opts.historySize) list.splice(0, list.length - this.opts.historySize);
  }
}

type ParserError = Error & { code?: string; rawPacket?: Buffer };

/** JSON text of a push; with `numbered`, each item's own digit msgid is written as a bare number. */
function jsonText(payload: unknown, items: Fields[], numbered: boolean | undefined): string {
  if (!numbered) return JSON.stringify(payload);
  // A marked string survives JSON.stringify as "\u0001<digits>" and is then unquoted, so a msgid
  // beyond 2^53 keeps every digit (a JS number could not hold it).
  const marked = JSON.stringify(payload, function (this: unknown, k: string, v: unknown) {
    const own = k === "msgid" && items.includes(this as Fields);
    return own && typeof v === "string" && /^\d+$/.test(v) ? NUMBER_MARK + v : v;
  });
  return marked.replace(/"\\u0001(\d+)"/g, "$1");
}

function chunk<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/** Starts a simulator (port 0 = any free port) and resolves once it listens. */
export function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  return new Simulator({ port: 0, ...opts }).listen();
}
