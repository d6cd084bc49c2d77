import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Agent, request } from "undici";
import { segmentCount } from "../lib/text";
import { platformStamp } from "../lib/time";
import { makeAccount, platformCode, type SimAccount, type SimAccountConfig } from "./accounts";

export interface SimulatorOptions {
  host?: string;
  /** 0 = any free port */
  port?: number;
  /** accounts; default one account `demo`/`demo` with products 1001 (10000) and 1002 (500) */
  accounts?: SimAccountConfig[];
  /** where delivery reports are pushed (GET); none when empty */
  reportUrl?: string;
  /** where inbound SMS are pushed (GET); none when empty */
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
  kind: "report" | "mo";
  url: string;
  /** params with pswd masked */
  params: Record<string, string>;
  attempts: number;
  ok: boolean;
  error?: string;
}

export interface InjectMo {
  mobile: string;
  destcode?: string;
  text: string;
  moTime?: string;
  /** push long-SMS parts in random order */
  shuffle?: boolean;
  /** push these part numbers twice (true = every part) */
  duplicate?: boolean | number[];
  /** never push these part numbers */
  withhold?: number[];
  /** emshead id; generated when absent */
  id?: string;
  /** extra params added to every push */
  extra?: Record<string, string>;
}

interface PushJob {
  kind: "report" | "mo";
  url: string;
  params: Record<string, string>;
  attempts: number;
}

const MAX_NUMBERS = 50_000;
const CN_MOBILE = /^1[3-9]\d{9}$/;
const DIGITS = /^\d{5,20}$/;
export const PART_SIZE = 67;

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

function mask(params: Record<string, string>): Record<string, string> {
  return "pswd" in params ? { ...params, pswd: "***" } : params;
}

export class Simulator {
  readonly requests: RecordedRequest[] = [];
  readonly pushes: RecordedPush[] = [];
  readonly stats = { sends: 0, pushed: 0, pushOk: 0, pushFailed: 0, dropped: 0 };
  private accounts = new Map<string, SimAccount>();
  private readonly opts: Required<Omit<SimulatorOptions, "accounts" | "log">> & { log?: (l: string) => void };
  private readonly initial: SimAccountConfig[];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly agent: Agent;
  private queue: PushJob[] = [];
  private inFlight = 0;
  private timers = new Set<NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private seq = 0;
  private moSeq = 0;
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
    this.initial = opts.accounts ?? [{ account: "demo", password: "demo" }];
    this.reset();
    this.agent = new Agent({ connections: this.opts.pushConcurrency, headersTimeout: 10_000, bodyTimeout: 10_000 });
    this.server = http.createServer((req, res) => this.handle(req, res));
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

  /** Balances, counters, history and accounts back to how they started. */
  reset(): void {
    this.accounts = new Map(this.initial.map((c) => [c.account, makeAccount(structuredClone(c))]));
    this.requests.length = 0;
    this.pushes.length = 0;
    Object.assign(this.stats, { sends: 0, pushed: 0, pushOk: 0, pushFailed: 0, dropped: 0 });
  }

  /** Adds an account or changes some of its rules (balances kept unless given). */
  configure(c: Partial<SimAccountConfig> & { account: string }): SimAccount {
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
    this.queue = [];
    this.server.close();
    for (const s of this.sockets) s.destroy();
    await this.agent.close().catch(() => undefined);
    this.notifyIdle();
  }

  /** Pushes an inbound SMS to the MO URL: one push, or `emshead` parts for a long text. */
  injectMo(mo: InjectMo): { parts: number; pushed: number; id: string | null } {
    const base: Record<string, string> = {
      receiver: this.opts.receiver,
      pswd: this.opts.receiverPassword,
      moTime: mo.moTime ?? platformStamp(Date.now(), this.opts.offsetMinutes, "10"),
      destcode: mo.destcode ?? "1065751600001",
      mobile: mo.mobile,
      ...mo.extra,
    };
    if (mo.text.length <= 70) {
      this.enqueue({ kind: "mo", url: this.opts.moUrl, params: { ...base, msg: mo.text }, attempts: 0 });
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
      this.enqueue({
        kind: "mo",
        url: this.opts.moUrl,
        params: { ...base, msg: texts[n - 1], isems: "1", emshead: `${id},${texts.length},${n}` },
        attempts: 0,
      });
    }
    return { parts: texts.length, pushed: order.length, id };
  }

  // --- HTTP ---------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://sim");
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > this.opts.maxBodyBytes) tooBig = true;
      else chunks.push(c);
    });
    req.on("end", () => {
      if (tooBig) return this.text(res, 413, "request body too large");
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        this.route(req, res, url, body);
      } catch (e) {
        this.text(res, 400, (e as Error).message);
      }
    });
    req.on("error", () => res.destroy());
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: string): void {
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const form = () => {
      const p: Record<string, string> = Object.fromEntries(url.searchParams);
      if (method === "POST" && !/json/i.test(req.headers["content-type"] ?? "")) {
        Object.assign(p, Object.fromEntries(new URLSearchParams(body)));
      }
      return p;
    };
    const json = () => (body.trim() ? (JSON.parse(body) as Record<string, unknown>) : {});
    const ip = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");

    if (path.endsWith("/msg/HttpBatchSendSM") && (method === "GET" || method === "POST")) {
      return this.onSend(res, method, path, form(), ip);
    }
    if (path.endsWith("/msg/QueryBalance") && (method === "GET" || method === "POST")) {
      return this.onBalance(res, method, path, form(), ip);
    }
    if (path === "/sim/requests" && method === "GET") return this.json(res, 200, this.requests);
    if (path === "/sim/pushes" && method === "GET") return this.json(res, 200, this.pushes);
    if (path === "/sim/stats" && method === "GET")
      return this.json(res, 200, { ...this.stats, queued: this.queue.length });
    if (path === "/sim/accounts" && method === "GET") return this.json(res, 200, this.accountSummary());
    if (path === "/sim/accounts" && method === "POST") {
      const c = json() as Partial<SimAccountConfig> & { account?: string };
      if (typeof c.account !== "string" || !c.account) return this.text(res, 400, "account required");
      this.configure(c as SimAccountConfig);
      return this.json(res, 200, this.accountSummary());
    }
    if (path === "/sim/reset" && method === "POST") {
      this.reset();
      return this.json(res, 200, { ok: true });
    }
    if (path === "/sim/mo" && method === "POST") {
      const mo = json() as unknown as InjectMo;
      if (typeof mo.mobile !== "string" || typeof mo.text !== "string")
        return this.text(res, 400, "mobile and text required");
      if (!this.opts.moUrl) return this.text(res, 409, "no MO URL configured (--mo-url)");
      return this.json(res, 200, this.injectMo(mo));
    }
    if (path === "/sim/config" && method === "POST") {
      const c = json() as { reportUrl?: string; moUrl?: string };
      if (typeof c.reportUrl === "string") this.opts.reportUrl = c.reportUrl;
      if (typeof c.moUrl === "string") this.opts.moUrl = c.moUrl;
      return this.json(res, 200, { reportUrl: this.opts.reportUrl, moUrl: this.opts.moUrl });
    }
    return this.text(res, 404, "not found");
  }

  private accountSummary() {
    return [...this.accounts.values()].map((a) => ({ account: a.account, products: a.products }));
  }

  private onSend(res: http.ServerResponse, method: string, path: string, p: Record<string, string>, ip: string): void {
    this.stats.sends++;
    const now = Date.now();
    const { code, msgid, account, mobiles } = this.evaluateSend(p, ip, now);
    this.record({ at: new Date(now).toISOString(), method, path, ip, params: mask(p), code, msgid });
    const a = account;
    const nl = a?.lineEnding === "crlf" ? "\r\n" : a?.lineEnding === "blank" ? "\n\n" : "\n";
    const out = `${platformStamp(now, this.opts.offsetMinutes)},${code}` + (msgid ? nl + msgid : "");
    const answer = () => this.text(res, 200, out);
    if (a?.replyDelayMs) this.later(answer, a.replyDelayMs);
    else answer();
    if (code === 0 && msgid && a && this.opts.reportUrl) {
      this.later(() => this.queueReports(a, msgid, mobiles), this.opts.reportDelayMs);
    }
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

  private onBalance(
    res: http.ServerResponse,
    method: string,
    path: string,
    p: Record<string, string>,
    ip: string,
  ): void {
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
    this.text(res, 200, out);
  }

  // --- pushes -------------------------------------------------------------------------------

  private queueReports(a: SimAccount, msgid: string, mobiles: string[]): void {
    const reportTime = platformStamp(Date.now(), this.opts.offsetMinutes, "10");
    for (const mobile of mobiles) {
      const params = {
        receiver: this.opts.receiver,
        pswd: this.opts.receiverPassword,
        msgid,
        reportTime,
        mobile,
        status: a.reportStatus[mobile] ?? a.defaultStatus,
      };
      for (let i = 0; i <= a.duplicateReports; i++) {
        this.enqueue({ kind: "report", url: this.opts.reportUrl, params, attempts: 0 });
      }
    }
  }

  private enqueue(job: PushJob): void {
    if (this.closed || !job.url) return;
    if (this.queue.length >= this.opts.maxPushQueue) {
      this.stats.dropped++;
      return;
    }
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.opts.pushConcurrency && this.queue.length) {
      const job = this.queue.shift()!;
      this.inFlight++;
      void this.push(job).finally(() => {
        this.inFlight--;
        this.pump();
        this.notifyIdle();
      });
    }
  }

  private async push(job: PushJob): Promise<void> {
    job.attempts++;
    let error: string | undefined;
    try {
      const u = new URL(job.url);
      for (const [k, v] of Object.entries(job.params)) u.searchParams.set(k, v);
      const res = await request(u, { method: "GET", dispatcher: this.agent });
      const body = (await res.body.text()).trim();
      if (res.statusCode !== 200 || body.toUpperCase() !== "OK") error = `HTTP ${res.statusCode} ${body.slice(0, 40)}`;
    } catch (e) {
      error = (e as { code?: string }).code ?? (e as Error).message;
    }
    if (this.closed) return;
    this.stats.pushed++;
    if (error && job.attempts <= this.opts.pushRetries) {
      this.later(() => this.enqueue(job), this.opts.pushRetryDelayMs);
      return;
    }
    if (error) this.stats.pushFailed++;
    else this.stats.pushOk++;
    this.keep(this.pushes, {
      at: new Date().toISOString(),
      kind: job.kind,
      url: job.url,
      params: mask(job.params),
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

  private text(res: http.ServerResponse, status: number, body: string): void {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
    res.end(body);
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  }
}

/** Starts a simulator (port 0 = any free port) and resolves once it listens. */
export function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  return new Simulator({ port: 0, ...opts }).listen();
}
