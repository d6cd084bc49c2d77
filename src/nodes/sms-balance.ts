import type { Node, NodeAPI, NodeDef } from "node-red";
import { checkNumber, describeProblem, THRESHOLD_RULE, type Translate } from "../lib/props";
import { parsePlatformTime } from "../lib/platform/time";
import {
  asSmsError,
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

export interface SmsBalanceDef extends NodeDef {
  config: string;
  threshold: string | number;
}

export = function (RED: NodeAPI): void {
  function SmsBalance(this: Node, def: SmsBalanceDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const lang = runtimeLang(RED, "sms-balance.lang");
    const checked = checkNumber(def.threshold, THRESHOLD_RULE);
    const threshold = checked.value;
    // Interval 0: every status shows at once; the throttle only keeps the account state's ring in front.
    const status = new StatusThrottle(node, 0);
    if (checked.problem) {
      const tr: Translate = (key, params) => RED._(`sms-balance.${key}`, params);
      const label = tr("label.threshold");
      node.warn(describeProblem(checked.problem, label, tr));
      status.set({ fill: "yellow", shape: "ring", text: tr("status.adjusted", { names: label }) });
    }
    /**
     * Names what it is about: the low products and their balances (a total is no warning: 10,496
     * in all can hide a product at 500), else the balance of the one product or the total.
     */
    function statusText(balance: Record<string, number>, low: string[], total: number): string {
      const _ = (key: string, params?: Record<string, string | number>) => RED._(`sms-balance.status.${key}`, params);
      if (low.length === 1) return _("lowOne", { product: low[0], balance: balance[low[0]] });
      if (low.length > 1) {
        const shown = low.slice(0, 2).map((p) => _("item", { product: p, balance: balance[p] }));
        const more = low.length > 2 ? _("more", { count: low.length - 2 }) : "";
        return _("lowMany", { count: low.length, list: shown.join(_("separator")) + more });
      }
      const products = Object.keys(balance).length;
      return products > 1 ? _("totalMany", { total, count: products }) : _("total", { total });
    }
    const offState = showStateMode(getConfig(RED, def.config), status);
    node.on("close", () => offState());

    async function handle(msg: Msg, send: Send, done: Done): Promise<void> {
      const config = getConfig(RED, def.config);
      try {
        if (!config) throw noConfigError(lang);
        const { outcome, cached } = await config.queryBalance();
        const balance: Record<string, number> = {};
        let total = 0;
        for (const p of outcome.products) {
          balance[p.product] = p.balance;
          total += p.balance;
        }
        const low = threshold > 0 ? outcome.products.filter((p) => p.balance < threshold).map((p) => p.product) : [];
        // What matters first: the debug sidebar's one-line preview shows the leading properties.
        msg.payload = {
          total,
          low,
          balance,
          products: outcome.products.map((p) => ({ ...p })),
          cached,
          code: 0,
          ok: true,
          description: outcome.description,
          resptime: parsePlatformTime(outcome.resptime, config.settings.offsetMinutes),
          resptimeRaw: outcome.resptime,
        };
        status.set({ fill: low.length ? "yellow" : "green", shape: "dot", text: statusText(balance, low, total) });
        send(msg);
        done();
      } catch (e) {
        const err = asSmsError(e);
        msg.payload = failurePayload(err);
        status.set({ fill: "red", shape: "ring", text: String(err.code) });
        done(nodeError(err));
      }
    }

    node.on("input", (msg: Msg, send: Send, done: Done) => {
      handle(msg, send, done).catch((e: unknown) => done(e as Error));
    });
  }

  RED.nodes.registerType("sms-balance", SmsBalance);
};
