import type { Node, NodeAPI, NodeDef } from "node-red";
import type { Request, Response, NextFunction, RequestHandler } from "express";
import { CodeTable } from "../lib/codes";
import { toBool, toNumber } from "../lib/props";
import { getConfig, runtimeLang, StatusThrottle, type SmsCredentials } from "./common";
import { normalisePath, PushEndpoint, readParams, type ParamsResult } from "./receive-core";

export interface SmsReceiveDef extends NodeDef {
  config: string;
  path: string;
  reassemble: boolean | string;
  partTimeout: string | number;
}

// Paths in use by sms-receive nodes of this runtime: a second node on the same path would never
// see a push (Express serves the first route), so it is refused with a clear error instead.
const inUse = new Map<string, string>();

interface Layer {
  route?: { stack: Array<{ handle: unknown }> };
}

export = function (RED: NodeAPI): void {
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
    if (inUse.has(path) && inUse.get(path) !== node.id) {
      node.error(RED._("sms-receive.errors.pathInUse", { path }));
      node.status({ fill: "red", shape: "ring", text: "sms-receive.status.pathInUse" });
      return;
    }
    inUse.set(path, node.id);

    const config = getConfig(RED, def.config);
    const creds = (config?.credentials ?? {}) as SmsCredentials;
    const lang = config?.lang ?? runtimeLang(RED, "sms-receive.lang");
    const endpoint = new PushEndpoint({
      codes: config?.codes ?? new CodeTable(lang),
      offsetMinutes: config?.settings.offsetMinutes ?? 480,
      receiver: creds.receiver ?? "",
      receiverPassword: creds.receiverPassword ?? "",
      reassemble: toBool(def.reassemble, true),
      partTimeoutMs: toNumber(def.partTimeout, 600, { min: 0.01 }) * 1000,
      emitReport: (msg) => {
        node.send([msg as never, null]);
        showCounts();
      },
      emitMo: (msg) => {
        node.send([null, msg as never]);
        showCounts();
      },
    });
    const counts = () => ({
      fill: "green" as const,
      shape: "dot" as const,
      text: RED._("sms-receive.status.counts", { reports: endpoint.stats.reports, mo: endpoint.stats.mo }),
    });
    const showCounts = () => status.set(counts);
    node.status({ fill: "grey", shape: "dot", text: "sms-receive.status.listening" });

    // Node's own response calls: Express's res.send would hash every "OK" for an ETag, and this
    // is the hot path under a push storm. A string body (not a Buffer) lets Node join it to the head in
    // one chunk; a Buffer would be queued as a chunk of its own.
    const answer = (res: Response, status: number, body: string) => {
      res.statusCode = status;
      res.setHeader("content-type", "text/plain; charset=utf-8");
      res.setHeader("content-length", body === "OK" ? 2 : Buffer.byteLength(body));
      res.end(body);
    };
    const respond = (res: Response, params: ParamsResult) => {
      if (params === "too-large") return answer(res, 413, "Payload Too Large");
      if (params === "bad-body") return answer(res, 400, "Bad Request: unreadable body");
      const result = endpoint.handle(params);
      // Answer first: the platform must not wait for (or retry because of) the flow.
      answer(res, result.answer.status, result.answer.body);
      if (result.emit) result.emit();
    };
    const handler: RequestHandler = (req: Request, res: Response) => {
      const params = readParams(req);
      if (params instanceof Promise)
        params.then(
          (p) => respond(res, p),
          () => answer(res, 400, "Bad Request"),
        );
      else respond(res, params);
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

    node.on("close", (_removed: boolean, done: () => void) => {
      // Remove exactly our own routes (Express 4 keeps them in _router.stack), as core http-in does.
      const router = (RED.httpNode as unknown as { _router?: { stack: Layer[] } })._router;
      if (router) router.stack = router.stack.filter((l) => !l.route?.stack.some((s) => s.handle === handler));
      if (inUse.get(path) === node.id) inUse.delete(path);
      endpoint.close();
      status.stop();
      done();
    });
  }

  RED.nodes.registerType("sms-receive", SmsReceive);
};
