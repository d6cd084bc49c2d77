import type { Node, NodeAPI, NodeDef, NodeStatus } from "node-red";
import type { Request, Response, NextFunction, RequestHandler } from "express";
import { CodeTable } from "../lib/codes";
import { toBool } from "../lib/props";
import { trackerFor } from "../lib/alerts/tracking";
import { leaseState } from "../lib/state/registry";
import { getConfig, runtimeLang, showStateMode, StatusThrottle, type SmsCredentials } from "./common";
import { afterStart, flowsStopping, watchRuntime } from "./lifecycle";
import {
  normalisePath,
  PushEndpoint,
  readParams,
  readPartTimeout,
  type Answer,
  type ParamsResult,
} from "./receive-core";

export interface SmsReceiveDef extends NodeDef {
  config: string;
  path: string;
  reassemble: boolean | string;
  partTimeout: string | number;
}

// Paths in use by sms-receive nodes of this runtime: a second node on the same path would never
// see a push (Express serves the first route), so it is refused with a clear error instead.
// Express matches routes ignoring case and a trailing slash, so the key does too.
const inUse = new Map<string, string>();
const routeKey = (path: string) => path.toLowerCase().replace(/\/+$/, "") || "/";
// The state scope each node last ran with: a node redeployed with another path takes over the
// long SMS still pending under its old one (nobody else would ever emit them).
const lastScope = new Map<string, string>();

interface Layer {
  route?: { stack: Array<{ handle: unknown }> };
}

export = function (RED: NodeAPI): void {
  watchRuntime(RED);

  function SmsReceive(this: Node, def: SmsReceiveDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const path = normalisePath(def.path);
    const status = new StatusThrottle(node, 250);
    const settings = RED.settings as unknown as { httpNodeRoot?: string | false; httpNodeMiddleware?: unknown };

    if (settings.httpNodeRoot === false) {
      node.warn(RED._("sms-receive.errors.noHttp"));
      node.status({ fill: "red", shape: "ring", text: "sms-receive.status.disabled" });
      return;
    }
    const key = routeKey(path);
    if (inUse.has(key) && inUse.get(key) !== node.id) {
      node.error(RED._("sms-receive.errors.pathInUse", { path }));
      node.status({ fill: "red", shape: "ring", text: "sms-receive.status.pathInUse" });
      return;
    }
    inUse.set(key, node.id);

    const config = getConfig(RED, def.config);
    const creds = (config?.credentials ?? {}) as SmsCredentials;
    const lang = config?.lang ?? runtimeLang(RED, "sms-receive.lang");
    // What could not be used as configured: one log line each now, and said on the status for as
    // long as the node runs.
    const notes: string[] = [];
    if (!config && typeof def.config === "string" && def.config !== "") {
      node.warn(RED._("sms-receive.errors.noConfig", { id: def.config }));
      notes.push(RED._("sms-receive.status.noConfig"));
    }
    const partTimeout = readPartTimeout(def.partTimeout);
    if (partTimeout.problem) {
      node.warn(RED._(`sms-receive.errors.${partTimeout.problem.key}`, partTimeout.problem.params));
      notes.push(RED._("sms-receive.status.partTimeout", { used: partTimeout.seconds }));
    }
    const show = (text: string, ok: NodeStatus): NodeStatus =>
      notes.length ? { fill: "yellow", shape: "ring", text: [text, ...notes].join(" · ") } : { ...ok, text };

    // Without a (resolvable) account the node still keeps its parts and duplicates outside itself.
    const lease = config ? null : leaseState({ url: "", account: "", store: "memory" });
    const state = config?.state ?? lease!.state;
    const scope = `r:${key}`;
    const reportError = (e: unknown) => node.error(RED._("sms-receive.errors.internal", { error: String(e) }));
    // Reports feed the account's delivery tracking (SPEC B7), whichever send node tracks them.
    const tracker = config ? trackerFor(config.state) : null;
    const endpoint = new PushEndpoint({
      state,
      scope,
      onError: reportError,
      onReport: tracker
        ? (msgid, mobile, status) => void tracker.report(msgid, mobile, status).catch(reportError)
        : undefined,
      codes: config?.codes ?? new CodeTable(lang),
      offsetMinutes: config?.settings.offsetMinutes ?? 480,
      mobileCheck: config?.settings.mobileCheck ?? "cn",
      receiver: creds.receiver ?? "",
      receiverPassword: creds.receiverPassword ?? "",
      reassemble: toBool(def.reassemble, true),
      partTimeoutMs: partTimeout.seconds * 1000,
      emitReport: (msg) => {
        node.send([msg as never, null]);
        showCounts();
      },
      emitMo: (msg) => {
        node.send([null, msg as never]);
        showCounts();
      },
    });
    const counts = () =>
      show(RED._("sms-receive.status.counts", { reports: endpoint.stats.reports, mo: endpoint.stats.mo }), {
        fill: "green",
        shape: "dot",
      });
    const showCounts = () => status.set(counts);
    status.set(show(RED._("sms-receive.status.listening"), { fill: "grey", shape: "dot" }));
    const offState = showStateMode(config, status);
    const previous = lastScope.get(node.id);
    lastScope.set(node.id, scope);
    if (previous && previous !== scope) {
      // Once every node of the deploy exists: what is emitted now has somewhere to go.
      afterStart(RED, () => endpoint.adopt(previous).catch(reportError));
    }

    // Node's own response calls: Express's res.send would hash every "OK" for an ETag, and this
    // is the hot path under a push storm. A string body (not a Buffer) lets Node join it to the head in
    // one chunk; a Buffer would be queued as a chunk of its own.
    const answer = (res: Response, status: number, body: string) => {
      if (res.headersSent) return;
      res.statusCode = status;
      res.setHeader("content-type", "text/plain; charset=utf-8");
      res.setHeader("content-length", body === "OK" ? 2 : Buffer.byteLength(body));
      res.end(body);
    };
    // Nothing a push does may throw out of the node: in a promise callback that would be an
    // unhandled rejection, and Node-RED exits on those.
    const failed = (res: Response, err: unknown) => {
      try {
        node.error(RED._("sms-receive.errors.internal", { error: String((err as Error)?.message ?? err) }));
        answer(res, 500, "Internal Server Error");
      } catch {
        // the node is gone and the connection with it: nothing left to tell
      }
    };
    const respond = (res: Response, params: ParamsResult) => {
      if ("answer" in params) return reply(res, params.answer);
      const result = endpoint.handle(params.params);
      // Answer first: the platform must not wait for (or retry because of) the flow.
      reply(res, result.answer);
      if (result.emit) result.emit();
    };
    const reply = (res: Response, a: Answer) => answer(res, a.status, a.body);
    const handler: RequestHandler = (req: Request, res: Response) => {
      try {
        const params = readParams(req);
        if (params instanceof Promise) params.then((p) => respond(res, p)).catch((e: unknown) => failed(res, e));
        else respond(res, params);
      } catch (e) {
        failed(res, e);
      }
    };
    const errorHandler = (err: Error, _req: Request, res: Response, _next: NextFunction) => {
      node.warn(String(err?.message ?? err));
      res.status(500).type("text/plain").send("Internal Server Error");
    };
    const middleware = ([] as unknown[])
      .concat(settings.httpNodeMiddleware ?? [])
      .filter((m) => typeof m === "function") as RequestHandler[];
    RED.httpNode.get(path, ...middleware, handler, errorHandler);
    RED.httpNode.post(path, ...middleware, handler, errorHandler);

    node.on("close", (removed: boolean, done: () => void) => {
      // Remove exactly our own routes (Express 4 keeps them in _router.stack), as core http-in does.
      const router = (RED.httpNode as unknown as { _router?: { stack: Layer[] } })._router;
      if (router) router.stack = router.stack.filter((l) => !l.route?.stack.some((s) => s.handle === handler));
      if (inUse.get(key) === node.id) inUse.delete(key);
      offState();
      // Pending long SMS stay for the replacing node (a redeploy), and with Redis across a
      // restart; a node removed for good, or Node-RED stopping with memory state, emits them now.
      const flush = removed || (flowsStopping() && (config?.settings.store ?? "memory") === "memory");
      if (removed) lastScope.delete(node.id);
      endpoint
        .close(flush)
        .catch(reportError)
        .finally(() => {
          lease?.release();
          status.stop();
          done();
        });
    });
  }

  RED.nodes.registerType("sms-receive", SmsReceive);
};
