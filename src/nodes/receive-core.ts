// The push endpoint of sms-receive without Node-RED: request → params → checks → messages.
// Kept apart so the node file stays a thin adapter and so this logic is testable on its own.
import { hash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { CodeTable } from "../lib/codes";
import { parsePush, type MoPush, type Params, type ReportPush } from "../lib/push";
import { Reassembler, type Assembled } from "../lib/reassembler";
import { RecentSet } from "../lib/recent";
import { formatInstant, parsePlatformTime } from "../lib/time";

export const MAX_BODY_BYTES = 64 * 1024;
export const DEFAULT_PATH = "/sms/push";

export function normalisePath(p: unknown): string {
  const s = typeof p === "string" && p.trim() ? p.trim() : DEFAULT_PATH;
  return s.startsWith("/") ? s : "/" + s;
}

export interface ReceiveOptions {
  codes: CodeTable;
  offsetMinutes: number;
  /** configured receiver credentials; checks are on when either is set */
  receiver: string;
  receiverPassword: string;
  reassemble: boolean;
  partTimeoutMs: number;
  maxPending?: number;
  dedupeMs?: number;
  dedupeMax?: number;
  emitReport: (msg: ReportMessage) => void;
  emitMo: (msg: MoMessage) => void;
}

export interface ReportMessage {
  topic: "report";
  msgid: string;
  payload: {
    msgid: string;
    mobile: string;
    status: string;
    delivered: boolean;
    description: string;
    reportTime: string | null;
    reportTimeRaw: string;
    receivedAt: string;
    extra: Record<string, string>;
  };
}

export interface MoMessage {
  topic: "mo";
  payload: {
    mobile: string;
    destcode: string;
    text: string;
    moTime: string | null;
    moTimeRaw: string;
    parts: number;
    complete: boolean;
    missing: number[];
    receivedAt: string;
    extra: Record<string, string>;
    /** only when reassembly is off and this is one part of a long SMS */
    emshead?: { id: string; total: number; number: number };
  };
}

export interface Answer {
  status: 200 | 400 | 401 | 413;
  body: string;
}

interface PartMeta {
  moTimeRaw: string;
  receivedAt: string;
  extra: Record<string, string>;
}

function digest(s: string): Buffer {
  return hash("sha256", s, "buffer");
}

// receiver and pswd are checked together, in constant time and without leaking their lengths:
// one digest per push against one computed at start.
const credentialKey = (receiver: string, pswd: string) => `${receiver.length}:${receiver}\u0000${pswd}`;

function first(v: unknown): string {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === "string" ? x : typeof x === "number" ? String(x) : "";
}

export class PushEndpoint {
  readonly stats = { reports: 0, mo: 0, duplicates: 0, rejected: 0, unauthorized: 0 };
  private readonly reports: RecentSet;
  private readonly reassembler: Reassembler<PartMeta>;
  private readonly auth: boolean;
  private readonly expected: Buffer;

  constructor(private readonly o: ReceiveOptions) {
    this.auth = o.receiver !== "" || o.receiverPassword !== "";
    this.expected = digest(credentialKey(o.receiver, o.receiverPassword));
    this.reports = new RecentSet(o.dedupeMs ?? 600_000, o.dedupeMax ?? 100_000);
    this.reassembler = new Reassembler<PartMeta>({
      timeoutMs: o.partTimeoutMs,
      maxPending: o.maxPending ?? 1000,
      dedupeMs: o.dedupeMs,
      dedupeMax: o.dedupeMax,
      onMessage: (m) => this.emitAssembled(m),
    });
  }

  get pending(): number {
    return this.reassembler.size;
  }

  // receivedAt has whole seconds: one formatted string per second serves a push storm.
  private stampSecond = -1;
  private stamp = "";
  private now(): string {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.stampSecond) {
      this.stampSecond = second;
      this.stamp = formatInstant(second * 1000, this.o.offsetMinutes);
    }
    return this.stamp;
  }

  /**
   * Handles one push's params. Returns the HTTP answer; messages are emitted through the
   * callbacks after the answer is decided (the caller writes the answer first).
   */
  handle(params: Params): { answer: Answer; emit?: () => void } {
    // Credentials first: a caller without them learns nothing about what a valid push looks like.
    if (this.auth) {
      const given = digest(credentialKey(first(params?.receiver), first(params?.pswd)));
      if (!timingSafeEqual(given, this.expected)) {
        this.stats.unauthorized++;
        return { answer: { status: 401, body: "Unauthorized" } };
      }
    }
    const parsed = parsePush(params);
    if (!parsed.ok) {
      this.stats.rejected++;
      return { answer: { status: 400, body: `Bad Request: ${parsed.reason}` } };
    }
    const push = parsed.push;
    const ok: Answer = { status: 200, body: "OK" };
    const receivedAt = this.now();
    if (push.kind === "report") {
      // join() builds a flat string; a template literal would keep a rope that the Map key pins
      // (about 18 MB more across a 100,000-key window).
      const key = [push.msgid, push.mobile, push.status, push.reportTimeRaw].join("\u0000");
      if (this.reports.checkAndAdd(key)) {
        this.stats.duplicates++;
        return { answer: ok };
      }
      return { answer: ok, emit: () => this.emitReport(push, receivedAt) };
    }
    if (!push.ems) return { answer: ok, emit: () => this.emitPlain(push, receivedAt) };
    if (!this.o.reassemble) {
      const key = ["part", push.mobile, push.destcode, push.ems.id, push.ems.total, push.ems.number].join("\u0000");
      if (this.reports.checkAndAdd(key)) {
        this.stats.duplicates++;
        return { answer: ok };
      }
      return { answer: ok, emit: () => this.emitPlain(push, receivedAt) };
    }
    const meta = { moTimeRaw: push.moTimeRaw, receivedAt, extra: push.extra };
    const part = { mobile: push.mobile, destcode: push.destcode, ...push.ems, text: push.text, meta };
    return {
      answer: ok,
      emit: () => {
        if (this.reassembler.add(part) === "duplicate") this.stats.duplicates++;
      },
    };
  }

  /** Stops the part timers; pending long messages are emitted as incomplete. */
  close(): void {
    this.reassembler.close(true);
    this.reports.clear();
  }

  private emitReport(p: ReportPush, receivedAt: string): void {
    this.stats.reports++;
    this.o.emitReport({
      topic: "report",
      msgid: p.msgid,
      payload: {
        msgid: p.msgid,
        mobile: p.mobile,
        status: p.status,
        delivered: p.status === "DELIVRD",
        description: this.o.codes.status(p.status),
        reportTime: parsePlatformTime(p.reportTimeRaw, this.o.offsetMinutes),
        reportTimeRaw: p.reportTimeRaw,
        receivedAt,
        extra: p.extra,
      },
    });
  }

  private emitPlain(p: MoPush, receivedAt: string): void {
    this.stats.mo++;
    const ems = p.ems;
    const missing = ems ? Array.from({ length: ems.total }, (_, i) => i + 1).filter((n) => n !== ems.number) : [];
    this.o.emitMo({
      topic: "mo",
      payload: {
        mobile: p.mobile,
        destcode: p.destcode,
        text: p.text,
        moTime: parsePlatformTime(p.moTimeRaw, this.o.offsetMinutes),
        moTimeRaw: p.moTimeRaw,
        parts: 1,
        complete: missing.length === 0,
        missing,
        receivedAt,
        extra: p.extra,
        ...(ems ? { emshead: { ...ems } } : {}),
      },
    });
  }

  private emitAssembled(m: Assembled<PartMeta>): void {
    this.stats.mo++;
    // The first part's time is when the sender's message began; the last part's receipt is when
    // it was complete here.
    const first = m.metas[0];
    const last = m.metas.reduce((a, b) => (b.receivedAt > a.receivedAt ? b : a), first);
    this.o.emitMo({
      topic: "mo",
      payload: {
        mobile: m.mobile,
        destcode: m.destcode,
        text: m.text,
        moTime: parsePlatformTime(first.moTimeRaw, this.o.offsetMinutes),
        moTimeRaw: first.moTimeRaw,
        parts: m.received.length,
        complete: m.complete,
        missing: m.missing,
        receivedAt: last.receivedAt,
        extra: first.extra,
      },
    });
  }
}

export type ParamsResult = Params | "too-large" | "bad-body";

/**
 * A push's params: the query for GET (answered without waiting: the platform pushes by GET),
 * else the body, read here (bounded) unless Node-RED's own middleware already parsed it.
 */
export function readParams(
  req: IncomingMessage & { body?: unknown; _body?: boolean; query?: unknown },
): ParamsResult | Promise<ParamsResult> {
  const query = (req.query && typeof req.query === "object" ? req.query : {}) as Params;
  if (req.method !== "POST") return query;
  if (req._body || (req.body !== undefined && req.readableEnded)) {
    const b = req.body;
    if (b && typeof b === "object" && !Buffer.isBuffer(b)) return { ...query, ...(b as Params) };
    if (typeof b === "string" || Buffer.isBuffer(b)) return parseBody(String(b), req.headers["content-type"], query);
    return query;
  }
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) return "too-large";
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) over = true;
      else chunks.push(c);
    });
    req.on("end", () =>
      resolve(
        over ? "too-large" : parseBody(Buffer.concat(chunks).toString("utf8"), req.headers["content-type"], query),
      ),
    );
    req.on("error", () => resolve("bad-body"));
  });
}

function parseBody(text: string, type: string | undefined, query: Params): Params | "bad-body" {
  if (/json/i.test(type ?? "") || /^\s*\{/.test(text)) {
    try {
      const v = JSON.parse(text) as unknown;
      if (!v || typeof v !== "object" || Array.isArray(v)) return "bad-body";
      return { ...query, ...(v as Params) };
    } catch {
      return "bad-body";
    }
  }
  // Body params win over query params; a repeated param keeps its first value.
  const body: Params = {};
  for (const [k, v] of new URLSearchParams(text)) if (!(k in body)) body[k] = v;
  return { ...query, ...body };
}
