// `sms-guard` (SPEC B8): the alert-storm guard in front of `sms-send`. The decisions, counters and
// held alerts are the core's (src/lib/alerts/guard.ts, in the account state); this adapter reads
// the recipients, wires the two outputs, the status and the node's lifecycle.
import type { Node, NodeAPI, NodeDef, NodeStatus } from "node-red";
import { Guard, messagesFor, type GuardOptions, type Msg as GuardMsg, type Released } from "../lib/alerts/guard";
import { GuardConfigError } from "../lib/alerts/hours";
import { systemClock, type Clock } from "../lib/clock";
import { SmsError } from "../lib/errors";
import { hasRecipientObjects, pickRecipients, prepareMobiles } from "../lib/platform/prepare";
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

/** The options as the editor saves them (strings); the core checks them. */
type Options = Pick<GuardOptions, "key" | "window" | "dailyCap" | "hours" | "outside" | "holdMax">;

export interface SmsGuardDef extends NodeDef, Options {
  config: string;
  mobile: string;
}

function setup(RED: NodeAPI): void {
  function SmsGuard(this: Node, def: SmsGuardDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const lang = runtimeLang(RED, "sms-guard.lang");
    const _ = (key: string, params?: Record<string, string | number>) => RED._(`sms-guard.${key}`, params);
    const status = new StatusThrottle(node);
    const config = getConfig(RED, def.config);
    const offState = showStateMode(config, status);
    const inputs = new Set<Promise<void>>();
    let guard: Guard | null = null;
    let broken: SmsError | null = config ? null : noConfigError(lang);
    try {
      const { key, window, dailyCap, hours, outside, holdMax } = def;
      const options: Options = { key, window, dailyCap, hours, outside, holdMax };
      const at = { scope: node.id, clock: setup.clock, lang, offsetMinutes: config?.settings.offsetMinutes };
      if (config) guard = new Guard({ ...options, ...at, state: config.state });
    } catch (e) {
      // In the catalog's words: the option's label as the editor shows it, as its validator says it.
      if (!(e instanceof GuardConfigError)) throw e;
      const message = _(`errors.${e.key}`, { ...e.params, name: _(`label.${String(e.params.name)}`) } as never);
      broken = new SmsError({ code: "NO_CONFIG", message });
    }
    if (broken) {
      node.error(broken.message);
      status.set({ fill: "red", shape: "ring", text: _(config ? "status.badConfig" : "status.noConfig") });
    }

    // The held count and the last decision: evaluated only when shown (at most every 100 ms).
    const current = (): NodeStatus => {
      const { held, last: d } = guard!;
      const sep = lang === "zh-CN" ? "、" : ", ";
      const parts = held ? [_("status.held", { held })] : [];
      const what: string[] = [];
      if (d && d.kind !== "held" && (d.allowed || !d.suppressed)) what.push(_("status.sent", { allowed: d.allowed }));
      if (d?.suppressed) {
        const reasons = d.reasons.map((r) => _(`reason.${r}`)).join(sep);
        what.push(_("status.suppressed", { suppressed: d.suppressed, reasons }));
      }
      if (what.length) parts.push((d?.kind === "released" ? _("status.released") : "") + what.join(sep));
      const fill = d?.suppressed ? "yellow" : d?.kind === "held" ? "blue" : "green";
      return { fill, shape: "dot", text: parts.join(" · ") };
    };
    const show = () => {
      if (guard && (guard.held || guard.last)) status.set(current);
    };
    const clone = (m: GuardMsg) => RED.util.cloneMessage(m as Msg) as GuardMsg;
    // A personalised send (SPEC B9) goes on with its recipient objects, not bare numbers.
    const personalised = (r: Released): Released => {
      const list = r.msg.mobile;
      if (!hasRecipientObjects(list)) return r;
      const check = config!.settings.mobileCheck;
      const pick = <T extends { mobile: unknown }>(o: T | undefined) =>
        o && { ...o, mobile: pickRecipients(list, o.mobile as string[], check) };
      return { ...r, send: pick(r.send), suppressed: pick(r.suppressed) } as Released;
    };
    const emit = (send: Send, r: Released) => {
      const [first, second] = messagesFor(r.msg, personalised(r), clone);
      send([first as Msg | null, second as Msg | null]);
    };
    const release = (r: Released) => {
      emit((m) => node.send(m), r);
      show();
    };
    // Also shows the held count kept in the state (after a redeploy, a restart, another instance's holds).
    const failed = (e: unknown) => node.error(String((e as Error)?.message ?? e));
    const stopListening = guard ? guard.listen(release, failed, show) : () => undefined;

    async function handle(msg: Msg, send: Send, done: Done): Promise<void> {
      try {
        if (!guard) throw broken;
        // Read exactly as sms-send reads them (SPEC B2), recipient objects of a personalised send too.
        const mobiles = prepareMobiles(msg.mobile ?? def.mobile, config!.settings.mobileCheck, lang);
        const d = await guard.decide({ msg: msg as GuardMsg, mobiles });
        // Older held alerts pushed out by holdMax leave first, to output 2; a held alert emits nothing now.
        for (const o of d.overflow) emit(send, o);
        if (!d.held) emit(send, { ...d, msg: msg as GuardMsg });
        show();
        done();
      } catch (e) {
        // The state failed (not a send): nothing was passed on, so nothing may have gone out.
        const err =
          e instanceof SmsError ? e : new SmsError({ code: "NETWORK", message: String((e as Error)?.message ?? e) });
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

    // A redeploy keeps the held alerts for the replacing node (same id); removed for good, they go,
    // unless other instances share them through Redis (they release them, or they expire).
    node.on("close", (removed: boolean, done: () => void) => {
      stopListening();
      offState();
      const shared = config?.settings.store === "redis" && config.state.mode === "shared";
      Promise.allSettled([...inputs])
        .then(async () => {
          if (!removed || !guard || shared) return;
          const count = await guard.discard();
          if (count) node.log(_("log.discarded", { count }));
        })
        .catch((e: unknown) => node.warn(String((e as Error)?.message ?? e)))
        .finally(() => {
          status.stop();
          done();
        });
    });
  }

  RED.nodes.registerType("sms-guard", SmsGuard);
}

/**
 * The clock of guard nodes created from now on. Tests set it to the fake clock their account
 * state uses, to cross midnight and the start of sending hours without waiting.
 */
setup.clock = systemClock as Clock;

export = setup;
