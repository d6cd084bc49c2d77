import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { performance, PerformanceObserver } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";

export interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  form: URLSearchParams;
  at: number;
}

export type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, rec: Recorded) => void;

/**
 * A real HTTP server on 127.0.0.1 whose answers the test scripts: one behaviour per request in
 * order (the last one repeats), every request recorded.
 */
export class StubServer {
  readonly requests: Recorded[] = [];
  private behaviours: Behaviour[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const url = new URL(req.url ?? "/", "http://x");
        const form = new URLSearchParams(req.method === "POST" ? body : url.search);
        const rec: Recorded = {
          method: req.method ?? "",
          path: url.pathname,
          headers: req.headers,
          body,
          form,
          at: Date.now(),
        };
        this.requests.push(rec);
        const b = this.behaviours.length > 1 ? this.behaviours.shift()! : this.behaviours[0];
        if (b) b(req, res, rec);
        else reply("20110725160412,0\n1234567890100")(req, res, rec);
      });
    });
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return this.url;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  /** The answers for the next requests, in order; the last one repeats. */
  script(...b: Behaviour[]): this {
    this.behaviours = b;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export const reply =
  (body: string, status = 200, delayMs = 0): Behaviour =>
  (_req, res) => {
    const go = () => {
      if (res.destroyed) return;
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
      res.end(body);
    };
    if (delayMs) setTimeout(go, delayMs);
    else go();
  };

/** Drops the connection after the request was read: the platform may have taken it. */
export const reset: Behaviour = (req) => {
  req.socket.destroy();
};

/** Sends headers and part of the body, then drops the connection. */
export const resetMidReply: Behaviour = (_req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.write("20110725");
  setTimeout(() => res.socket?.destroy(), 20);
};

/** Never answers (until the server closes). */
export const hang: Behaviour = () => undefined;

/** A closed port on 127.0.0.1: connecting there is refused at once. */
export async function refusedUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/**
 * Waits for a condition (checked every `everyMs`), at most `ms`; `what` names it in the failure.
 * The condition may be async (an HTTP or Redis probe): the next check starts after it settles.
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  ms = 5000,
  what = "condition",
  everyMs = 5,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A clock the test advances by hand; timers fire in deadline order. */
export class FakeClock {
  private t = 1_700_000_000_000;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.timers.delete(h as number);
  };
  get pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/**
 * Watches the event loop for stalls (a timer that fires late) and the garbage collector's pauses,
 * so a test can tell a stall of its code from a pause of the collector (one a whole test suite's
 * garbage can cause). `stop()` gives the stalls longer than `overMs`, each with the collector's
 * pauses that overlapped it.
 */
export function watchStalls(
  overMs = 100,
  everyMs = 10,
): {
  stop(): Array<{ at: number; ms: number; gcMs: number }>;
} {
  const gcs: Array<{ start: number; end: number }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration });
  });
  obs.observe({ entryTypes: ["gc"] });
  const stalls: Array<{ at: number; ms: number }> = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - everyMs;
    if (late > overMs) stalls.push({ at: last, ms: late });
    last = now;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      obs.disconnect();
      return stalls.map((s) => {
        const end = s.at + everyMs + s.ms;
        const gcMs = gcs.reduce((n, g) => n + Math.max(0, Math.min(end, g.end) - Math.max(s.at, g.start)), 0);
        return { at: s.at, ms: Math.round(s.ms), gcMs: Math.round(gcMs) };
      });
    },
  };
}

/** A full garbage collection now (without --expose-gc): a measurement starts from a clean heap. */
export function collectGarbage(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g();
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
}
