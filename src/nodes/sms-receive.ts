import type { Node, NodeAPI, NodeDef, NodeStatus } from "node-red";
import { CodeTable } from "../lib/platform/codes";
import { toBool } from "../lib/props";
import { trackerFor } from "../lib/alerts/tracking";
import { inboxFor } from "../lib/alerts/inbox";
import { leaseState } from "../lib/state/registry";
import { getConfig, runtimeLang, showStateMode, StatusThrottle, type SmsCredentials } from "./common";
import { afterStart, flowsStopping, watchRuntime } from "./lifecycle";
import { normalisePath, PushEndpoint, readPartTimeout } from "../lib/push/endpoint";
import {
  claimPath,
  mountRoutes,
  pushHandler,
  readSourceRule,
  Refusals,
  releasePath,
  routeKey,
  sourceGate,
} from "./receive-http";

export interface SmsReceiveDef extends NodeDef {
  config: string;
  path: string;
  reassemble: boolean | string;
  partTimeout: string | number;
  /** who may push (SPEC B4): IPv4/IPv6 addresses and CIDR ranges; empty is any source */
  allow?: string;
  /** proxies in front of Node-RED: the source is this entry from the right of X-Forwarded-For */
  trustProxy?: string | number;
}

// The state scope each node last ran with: a node redeployed with another path takes over the
// long SMS still pending under its old one (nobody else would ever emit them).
const lastScope = new Map<string, string>();

export = function (RED: NodeAPI): void {
  watchRuntime(RED);

  function SmsReceive(this: Node, def: SmsReceiveDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const path = normalisePath(def.path);
    const status = new StatusThrottle(node, 250);
    const settings = RED.settings as unknown as { httpNodeRoot?: string | false; httpNodeMiddleware?: unknown };
    const stop = (error: string, text: string) => {
      node.error(error);
      node.status({ fill: "red", shape: "ring", text });
    };

    if (settings.httpNodeRoot === false) {
      node.warn(RED._("sms-receive.errors.noHttp"));
      node.status({ fill: "red", shape: "ring", text: "sms-receive.status.disabled" });
      return;
    }
    // A list that cannot be read is never "allow all": the node takes no pushes until it is fixed.
    const source = readSourceRule(def.allow, def.trustProxy);
    if ("problem" in source) {
      const { key, params } = source.problem;
      return stop(RED._(`sms-receive.errors.${key}`, params), `sms-receive.status.${key}`);
    }
    if (!claimPath(path, node.id)) {
      return stop(RED._("sms-receive.errors.pathInUse", { path }), "sms-receive.status.pathInUse");
    }

    const config = getConfig(RED, def.config);
    const creds = (config?.credentials ?? {}) as SmsCredentials;
    const lang = config?.lang ?? runtimeLang(RED, "sms-receive.lang");
    const receiver = creds.receiver ?? "";
    const receiverPassword = creds.receiverPassword ?? "";
    if (!source.list && receiver === "" && receiverPassword === "") {
      node.warn(RED._("sms-receive.errors.open", { path }));
    }
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
    const scope = `r:${routeKey(path)}`;
    const reportError = (e: unknown) => node.error(RED._("sms-receive.errors.internal", { error: String(e) }));
    // Reports feed the account's delivery tracking (SPEC B7), whichever send node tracks them.
    const tracker = config ? trackerFor(config.state) : null;
    // Inbound SMS reach the account's inbox (replies to sms-oncall, SPEC B11) the same way: after
    // the answer is written, once each; a listener's failure is logged, never thrown.
    const inbox = config ? inboxFor(config.state) : null;
    // Pushes with wrong receiver credentials (401): a platform set up with another password loses
    // every report, so they are counted on the status and logged (bounded) like refused sources.
    const unauthorized = new Refusals((count) => node.warn(RED._("sms-receive.errors.unauthorized", { count })));
    // Elements of a JSON array refused while the rest were taken (answered OK, SPEC B4a): counted
    // on the status; index and reason logged at most once a minute, and to Catch nodes.
    let badElements = 0;
    let badUnlogged = 0;
    let badLoggedAt = -Infinity;
    const badLog = (bad: string[]) => {
      badUnlogged += bad.length;
      if (Date.now() - badLoggedAt < 60_000) return;
      badLoggedAt = Date.now();
      const list = bad.slice(0, 10).join("; ") + (bad.length > 10 ? ` … (+${bad.length - 10})` : "");
      const count = badUnlogged;
      badUnlogged = 0;
      node.error(RED._("sms-receive.errors.badElements", { count, list }), {
        topic: "rejected",
        payload: { count, rejected: bad.slice(0, 10) },
      } as never);
    };
    const endpoint = new PushEndpoint({
      state,
      open: !source.list && receiver === "" && receiverPassword === "",
      onBadElements: (bad) => {
        badElements += bad.length;
        badLog(bad);
        showCounts();
      },
      onUnauthorized: () => {
        unauthorized.add(null);
        showCounts();
      },
      scope,
      onError: reportError,
      onReport: tracker
        ? (msgid, mobile, status) => void tracker.report(msgid, mobile, status).catch(reportError)
        : undefined,
      onMo: inbox
        ? (mo) => {
            if (inbox.size === 0) return;
            inbox.deliver(mo).then((errors) => errors.forEach(reportError), reportError);
          }
        : undefined,
      codes: config?.codes ?? new CodeTable(lang),
      offsetMinutes: config?.settings.offsetMinutes ?? 480,
      mobileCheck: config?.settings.mobileCheck ?? "cn",
      receiver,
      receiverPassword,
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
    // Pushes refused for their source: counted on the status; logged (bounded) with the latest source.
    const refused = new Refusals((count, from) => {
      const latest = from ?? RED._("sms-receive.status.unknownSource");
      node.warn(RED._("sms-receive.errors.refused", { count, source: latest }));
    });
    const counts = (): NodeStatus => {
      const { reports, mo } = endpoint.stats;
      let text = RED._("sms-receive.status.counts", { reports, mo });
      if (refused.total === 0 && unauthorized.total === 0 && badElements === 0) {
        return show(text, { fill: "green", shape: "dot" });
      }
      if (refused.total) text = RED._("sms-receive.status.countsRefused", { reports, mo, refused: refused.total });
      if (unauthorized.total) text += RED._("sms-receive.status.unauthorized", { count: unauthorized.total });
      if (badElements) text += RED._("sms-receive.status.badElements", { count: badElements });
      return show(text, { fill: "yellow", shape: "dot" });
    };
    const showCounts = () => status.set(counts);
    status.set(show(RED._("sms-receive.status.listening"), { fill: "grey", shape: "dot" }));
    const offState = showStateMode(config, status);
    const previous = lastScope.get(node.id);
    lastScope.set(node.id, scope);
    if (previous && previous !== scope) {
      // Once every node of the deploy exists: what is emitted now has somewhere to go.
      afterStart(RED, () => endpoint.adopt(previous).catch(reportError));
    }

    // The source check comes first on the route: before httpNodeMiddleware, credentials and the body.
    const unmount = mountRoutes(RED.httpNode, path, {
      gate:
        source.list &&
        sourceGate(source.list, source.trustProxy, (from) => {
          refused.add(from);
          showCounts();
        }),
      middleware: settings.httpNodeMiddleware,
      handler: pushHandler(endpoint, (err) =>
        node.error(RED._("sms-receive.errors.internal", { error: String((err as Error)?.message ?? err) })),
      ),
      onError: (err) => node.warn(String((err as Error)?.message ?? err)),
    });

    node.on("close", (removed: boolean, done: () => void) => {
      unmount();
      releasePath(path, node.id);
      offState();
      // Pending long SMS stay for the replacing node (a redeploy), and with Redis across a
      // restart; a node removed for good, or Node-RED stopping with memory state, emits them now.
      // With Redis (while it is shared) other instances carry on with them, or they expire.
      const kept = config?.settings.store === "redis" && config.state.mode === "shared";
      const flush = (removed || flowsStopping()) && !kept;
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
