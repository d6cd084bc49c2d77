// `sms-oncall` (SPEC B11): on-call escalation between an alert source (or sms-guard) and sms-send.
// The chain, codes and replies are the core's (src/lib/alerts/oncall.ts, in the account state);
// this adapter reads the input, wires the two outputs, the status and the node's lifecycle.
import type { Node, NodeAPI, NodeDef, NodeStatus } from "node-red";
import { OnCall, OncallError, type Out, type Sink } from "../lib/alerts/oncall";
import { OncallConfigError, type PlanInput } from "../lib/alerts/rota";
import { systemClock, type Clock } from "../lib/clock";
import { SmsError, type ErrorCode } from "../lib/errors";
import {
  failurePayload,
  getConfig,
  nodeError,
  noConfigError,
  runtimeLang,
  showStateMode,
  StatusThrottle,
  type Done,
  type Msg,
  type Send,
} from "./common";

export interface SmsOncallDef extends NodeDef, PlanInput {
  config: string;
}

const OPTIONS = [
  "rota",
  "rotate",
  "handover",
  "rotaStart",
  "steps",
  "repeat",
  "bundle",
  "resolvedNotify",
  "maxOpen",
  "keep",
];

function setup(RED: NodeAPI): void {
  function SmsOncall(this: Node, def: SmsOncallDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const lang = runtimeLang(RED, "sms-oncall.lang");
    const _ = (key: string, params?: Record<string, string | number>) => RED._(`sms-oncall.${key}`, params);
    const status = new StatusThrottle(node);
    const config = getConfig(RED, def.config);
    const offState = showStateMode(config, status);
    const inputs = new Set<Promise<void>>();
    let oncall: OnCall | null = null;
    let broken: SmsError | null = config ? null : noConfigError(lang);
    try {
      const options = Object.fromEntries(OPTIONS.map((k) => [k, (def as unknown as Record<string, unknown>)[k]]));
      if (config) {
        const s = config.settings;
        oncall = new OnCall({
          ...options,
          state: config.state,
          scope: node.id,
          clock: setup.clock,
          lang,
          offsetMinutes: s.offsetMinutes,
          mobileCheck: s.mobileCheck,
          signature: s.signature,
        });
      }
    } catch (e) {
      // The lib says what is wrong in the runtime's language (the editor shows the same words).
      if (!(e instanceof OncallConfigError)) throw e;
      broken = new SmsError({ code: "NO_CONFIG", message: e.message });
    }
    if (broken) {
      node.error(broken.message);
      status.set({ fill: "red", shape: "ring", text: _(config ? "status.badConfig" : "status.noConfig") });
    }

    // Open alerts and the last event: evaluated only when shown (at most every 100 ms).
    const current = (): NodeStatus => {
      const { open, last } = oncall!;
      const parts = [_("status.open", { count: open })];
      if (last)
        parts.push(`${_(`event.${last.event}`)} ${last.key.length > 16 ? last.key.slice(0, 15) + "…" : last.key}`);
      const fill = last?.event === "exhausted" ? "red" : open ? "yellow" : "green";
      return { fill, shape: "dot", text: parts.join(" · ") };
    };
    const show = () => {
      if (oncall && (oncall.open || oncall.last)) status.set(current);
    };
    /** Each SMS to output 1, each event to output 2, in the order they were decided. */
    const emitter =
      (send: Send): Sink =>
      (outs: Out[]) => {
        for (const o of outs) send((o.port === 0 ? [o.msg, null] : [null, o.msg]) as unknown as Msg[]);
        show();
      };
    const failed = (e: unknown) => node.error(String((e as Error)?.message ?? e));
    const stopListening = oncall
      ? oncall.listen({ emit: emitter((m) => node.send(m)), error: failed, changed: show })
      : () => undefined;

    async function handle(msg: Msg, send: Send, done: Done): Promise<void> {
      try {
        if (!oncall) throw broken;
        const sink = emitter(send);
        const info = msg.oncall as Record<string, unknown> | undefined;
        const summary = msg.payload as { delivered?: unknown } | undefined;
        if (info && typeof info === "object" && summary && Array.isArray(summary.delivered)) {
          // A delivery summary of sms-send (B7) wired back: only pages and bundles move a chain.
          if (info.kind === "page" || info.kind === "bundle") {
            await oncall.summary(info, summary.delivered.length > 0, sink);
          }
        } else if (msg.status === "resolved" || msg.resolved === true) await oncall.resolve(msg.topic, sink);
        else if (msg.ack === true) await oncall.acknowledge(msg.topic, msg.ackBy, sink);
        else await oncall.fire(msg.topic, msg.payload, sink);
        show();
        done();
      } catch (e) {
        const err =
          e instanceof SmsError
            ? e
            : e instanceof OncallError
              ? new SmsError({ code: e.code as ErrorCode, message: e.message })
              : new SmsError({ code: "NETWORK", message: String((e as Error)?.message ?? e) });
        msg.payload = failurePayload(err);
        if (!broken) status.set({ fill: "red", shape: "ring", text: String(err.code) });
        done(nodeError(err));
      }
    }

    node.on("input", (msg: Msg, send: Send, done: Done) => {
      const p = handle(msg, send, done);
      inputs.add(p);
      void p.finally(() => inputs.delete(p));
    });

    // A redeploy keeps the alerts for the replacing node (same id); removed for good, they go,
    // unless other instances share them through Redis (they go on with them, or they expire).
    node.on("close", (removed: boolean, done: () => void) => {
      stopListening();
      offState();
      const shared = config?.settings.store === "redis" && config.state.mode === "shared";
      Promise.allSettled([...inputs])
        .then(async () => {
          if (!removed || !oncall || shared) return;
          const count = await oncall.discard();
          if (count) node.log(_("log.discarded", { count }));
        })
        .catch((e: unknown) => node.warn(String((e as Error)?.message ?? e)))
        .finally(() => {
          status.stop();
          done();
        });
    });
  }

  RED.nodes.registerType("sms-oncall", SmsOncall);
}

/** The clock of on-call nodes created from now on (tests set their account state's fake clock). */
setup.clock = systemClock as Clock;

export = setup;
