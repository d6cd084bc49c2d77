// The HTTP side of sms-receive: its routes on Node-RED's HTTP node server, who may reach them, and
// how answers are written. No node state here: the node file wires these to its PushEndpoint.
import type { NextFunction, Request, RequestHandler, Response } from "express";
import {
  MAX_TRUST_PROXY,
  parseAllow,
  printableSource,
  readTrustProxy,
  sourceOf,
  type AllowList,
} from "../lib/push/allow";
import { readParams, type Answer, type ParamsResult, type PushEndpoint } from "../lib/push/endpoint";

// Paths in use by sms-receive nodes of this runtime: a second node on the same path would never
// see a push (Express serves the first route), so it is refused with a clear error instead.
// Express matches routes ignoring case and a trailing slash, so the key does too.
const inUse = new Map<string, string>();
export const routeKey = (path: string) => path.toLowerCase().replace(/\/+$/, "") || "/";

/** Takes `path` for node `id`; false when another node has it. */
export function claimPath(path: string, id: string): boolean {
  const key = routeKey(path);
  const holder = inUse.get(key);
  if (holder !== undefined && holder !== id) return false;
  inUse.set(key, id);
  return true;
}

export function releasePath(path: string, id: string): void {
  const key = routeKey(path);
  if (inUse.get(key) === id) inUse.delete(key);
}

/**
 * Node's own response calls: Express's res.send would hash every "OK" for an ETag, and this is the
 * hot path under a push storm. A string body (not a Buffer) lets Node join it to the head in one
 * chunk; a Buffer would be queued as a chunk of its own.
 */
export function answer(res: Response, status: number, body: string): void {
  if (res.headersSent) return;
  // A flat header list goes straight to the head (no header map); headers a middleware set are
  // still merged by Node.
  res.writeHead(status, [
    "content-type",
    "text/plain; charset=utf-8",
    "content-length",
    body === "OK" ? "2" : String(Buffer.byteLength(body)),
  ]);
  res.end(body);
}

const reply = (res: Response, a: Answer) => answer(res, a.status, a.body);

function emitAfter(emit: () => void, res: Response, failed: (res: Response, err: unknown) => void): void {
  try {
    emit();
  } catch (e) {
    // a throw in a tick callback would end Node-RED
    failed(res, e);
  }
}

/**
 * Reads a push and hands it to the endpoint; the answer is written before anything is emitted, so
 * the platform never waits for (or retries because of) the flow. Nothing a push does may throw out
 * of here: in a promise callback that would be an unhandled rejection, and Node-RED exits on those.
 */
export function pushHandler(endpoint: PushEndpoint, onFailure: (err: unknown) => void): RequestHandler {
  const failed = (res: Response, err: unknown) => {
    try {
      onFailure(err);
      answer(res, 500, "Internal Server Error");
    } catch {
      // the node is gone and the connection with it: nothing left to tell
    }
  };
  const respond = (req: Request, res: Response, params: ParamsResult) => {
    if ("answer" in params) {
      // Answered before its body was read to the end (too large): the connection goes with the
      // answer, so the rest is not read (Node's server closes it once the answer is out).
      if (params.answer.status === 413 && !req.complete) res.setHeader("connection", "close");
      return reply(res, params.answer);
    }
    const result = endpoint.handle(params.params);
    reply(res, result.answer);
    // After the answer has left: res.end() writes on the next tick, and a report on the memory
    // state is emitted at once, so emitting here would hold every answer for its flow's work.
    if (result.emit) process.nextTick(emitAfter, result.emit, res, failed);
  };
  return (req: Request, res: Response) => {
    try {
      const params = readParams(req);
      if (params instanceof Promise) params.then((p) => respond(req, res, p)).catch((e: unknown) => failed(res, e));
      else respond(req, res, params);
    } catch (e) {
      failed(res, e);
    }
  };
}

export type SourceRule =
  | { list: AllowList | null; trustProxy: number }
  | { problem: { key: "allow" | "trustProxy"; params: Record<string, string | number> } };

/** The node's `allow` and `trustProxy`; a problem names the catalog key (errors.* and status.*). */
export function readSourceRule(allow: unknown, trustProxy: unknown): SourceRule {
  const parsed = parseAllow(allow);
  if (parsed.bad.length) {
    const shown = parsed.bad.slice(0, 5).map((e) => JSON.stringify(e.length > 60 ? e.slice(0, 60) + "…" : e));
    if (parsed.bad.length > 5) shown.push(`… (+${parsed.bad.length - 5})`);
    return { problem: { key: "allow", params: { entries: shown.join(", ") } } };
  }
  const hops = readTrustProxy(trustProxy);
  if (hops === null) {
    return { problem: { key: "trustProxy", params: { value: String(trustProxy).slice(0, 20), max: MAX_TRUST_PROXY } } };
  }
  return { list: parsed.list, trustProxy: hops };
}

/** Counts pushes refused for their source; `log` is called for the first and then at most once per `everyMs`. */
export class Refusals {
  total = 0;
  private unlogged = 0;
  private loggedAt = -Infinity;

  constructor(
    private readonly log: (count: number, source: string | null) => void,
    private readonly everyMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  add(source: string | null): void {
    this.total++;
    this.unlogged++;
    const now = this.now();
    if (now - this.loggedAt < this.everyMs) return;
    this.loggedAt = now;
    // Only an address as parsed reaches the log: a forwarded entry is whatever the caller wrote.
    this.log(this.unlogged, printableSource(source));
    this.unlogged = 0;
  }
}

/**
 * Lets only sources on the allow-list through (SPEC B4). It runs first on the route: a refused
 * request costs no body read, no credential check and no middleware. The answer says nothing
 * about why (no list, no address), and the connection is closed, so an unread body is not read
 * for a caller who may not push.
 */
export function sourceGate(
  list: AllowList,
  trustProxy: number,
  onRefused: (source: string | null) => void,
): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const source = sourceOf(req.socket.remoteAddress, req.headers["x-forwarded-for"], trustProxy);
    if (source !== null && list.allows(source)) return next();
    res.setHeader("connection", "close");
    answer(res, 403, "Forbidden");
    onRefused(source);
  };
}

interface Layer {
  route?: { stack: Array<{ handle: unknown }> };
}

export interface Routes {
  /** the source check, when there is an allow-list: first, before httpNodeMiddleware */
  gate: RequestHandler | null;
  /** Node-RED's httpNodeMiddleware setting (a function or a list of them), as core http-in applies it */
  middleware: unknown;
  handler: RequestHandler;
  /** an error a middleware passed on */
  onError: (err: unknown) => void;
}

/**
 * Serves GET and POST on `path`; returns what removes exactly these routes again (Express 4 keeps
 * them in _router.stack), as core http-in does.
 */
export function mountRoutes(httpNode: unknown, path: string, routes: Routes): () => void {
  const app = httpNode as {
    get: (p: string, ...h: unknown[]) => void;
    post: (p: string, ...h: unknown[]) => void;
    _router?: { stack: Layer[] };
  };
  const middleware = ([] as unknown[]).concat(routes.middleware ?? []).filter((m) => typeof m === "function");
  const errorHandler = (err: Error, _req: Request, res: Response, _next: NextFunction) => {
    routes.onError(err);
    answer(res, 500, "Internal Server Error");
  };
  const handlers = [...(routes.gate ? [routes.gate] : []), ...middleware, routes.handler, errorHandler];
  app.get(path, ...handlers);
  app.post(path, ...handlers);
  const own = routes.handler;
  return () => {
    const router = app._router;
    if (router) router.stack = router.stack.filter((l) => !l.route?.stack.some((s) => s.handle === own));
  };
}
