import { setMaxListeners } from "node:events";
import type { NodeAPI, NodeDef, NodeStatus } from "node-red";
import type { Node } from "node-red";
import { t } from "../lib/i18n";
import { prepareSend, type PreparedSend } from "../lib/prepare";
import { toBool, toStr } from "../lib/props";
import { parsePlatformTime } from "../lib/time";
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

export interface SmsSendDef extends NodeDef {
  config: string;
  mobile: string;
  needstatus: boolean | string;
  product: string;
  extno: string;
}

export = function (RED: NodeAPI): void {
  function SmsSend(this: Node, def: SmsSendDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const lang = runtimeLang(RED, "sms-send.lang");
    const status = new StatusThrottle(node);
    const offState = showStateMode(getConfig(RED, def.config), status);
    // Aborted on close: this node's sends still waiting for their turn end as "not sent".
    const stop = new AbortController();
    // Every send waiting for its turn listens on this signal: thousands are normal, not a leak.
    setMaxListeners(0, stop.signal);
    let active = 0;
    let closing = false;
    const inputs = new Set<Promise<void>>();

    // Evaluated only when shown (at most every 100 ms): the translated text is costly per message.
    const queued = (): NodeStatus => ({
      fill: "blue",
      shape: "dot",
      text: RED._("sms-send.status.queued", { count: active }),
    });
    const showQueued = () => {
      if (active > 0) status.set(queued);
    };

    async function handle(msg: Msg, send: Send, done: Done): Promise<void> {
      const config = getConfig(RED, def.config);
      const base = { msgid: null, mobiles: 0, segments: 0, batch: { index: 0, count: 0 } };
      let prepared: PreparedSend;
      let client;
      try {
        if (!config) throw noConfigError(lang);
        const s = config.settings;
        prepared = prepareSend(msg.payload, msg.mobile ?? def.mobile, {
          signature: s.signature,
          maxLength: s.maxLength,
          mobileCheck: s.mobileCheck,
          lang,
        });
        client = config.client();
      } catch (e) {
        const err = asSmsError(e);
        msg.payload = failurePayload(err, base);
        status.set({ fill: "red", shape: "ring", text: String(err.code) });
        done(nodeError(err));
        return;
      }

      const s = config.settings;
      const needstatus = toBool(msg.needstatus, toBool(def.needstatus, true));
      const product = toStr(msg.product) || toStr(def.product) || s.product;
      const extno = toStr(msg.extno) || toStr(def.extno) || s.extno;
      const count = prepared.batches.length;
      const original = count > 1 ? RED.util.cloneMessage(msg) : msg;

      active++;
      showQueued();
      try {
        for (let i = 0; i < count; i++) {
          const mobiles = prepared.batches[i];
          const batch = { index: i + 1, count };
          // Every output but the last is a copy, so each keeps the input's other properties.
          const out = i === count - 1 ? msg : RED.util.cloneMessage(original);
          try {
            const r = await client.send({ mobiles, text: prepared.text, needstatus, product, extno }, stop.signal);
            out.payload = {
              code: 0,
              ok: true,
              description: r.description,
              msgid: r.msgid,
              resptime: parsePlatformTime(r.resptime, s.offsetMinutes),
              resptimeRaw: r.resptime,
              mobiles: mobiles.length,
              segments: prepared.segments,
              batch,
            };
            out.msgid = r.msgid;
            out.mobile = mobiles;
            // After a redeploy the wires lead nowhere: the log keeps the msgid of what was sent.
            if (closing)
              node.log(RED._("sms-send.log.sentWhileClosing", { msgid: String(r.msgid), count: mobiles.length }));
            send(out);
            if (active === 1) {
              const msgid = r.msgid;
              status.set(() => ({ fill: "green", shape: "dot", text: msgid ?? RED._("sms-send.status.sent") }));
            }
          } catch (e) {
            const err = asSmsError(e);
            // Numbers a flow may resend as msg.mobile: never one that may have received the SMS.
            const unsent = (err.outcomeUnknown ? [] : mobiles).concat(...prepared.batches.slice(i + 1));
            const resptime = typeof err.details.resptime === "string" ? err.details.resptime : null;
            msg.payload = failurePayload(err, {
              msgid: null,
              mobiles: mobiles.length,
              segments: prepared.segments,
              batch,
              unsent,
              resptime: resptime && parsePlatformTime(resptime, s.offsetMinutes),
              resptimeRaw: resptime,
            });
            msg.mobile = mobiles;
            status.set({ fill: "red", shape: "ring", text: String(err.code) });
            const message =
              count > 1
                ? t("batchFailed", lang, { index: i + 1, count, reason: err.message, unsent: unsent.length })
                : err.message;
            done(nodeError(err, message));
            return;
          }
        }
        done();
      } finally {
        active--;
        showQueued();
      }
    }

    node.on("input", (msg: Msg, send: Send, done: Done) => {
      const p = handle(msg, send, done).catch((e: unknown) => done(e as Error));
      inputs.add(p);
      void p.finally(() => inputs.delete(p));
    });

    // Queued sends of this node fail as not sent; a request under way finishes (bounded by the
    // config's timeout) so its outcome is reported, not lost.
    node.on("close", (_removed: boolean, done: () => void) => {
      closing = true;
      offState();
      stop.abort();
      Promise.allSettled([...inputs]).then(() => {
        status.stop();
        done();
      });
    });
  }

  RED.nodes.registerType("sms-send", SmsSend);
};
