// `sms-send` (SPEC B2, B7): the adapter. What it does with a message is send-core's.
import type { NodeAPI, NodeDef } from "node-red";
import type { Node } from "node-red";
import { SendCore, type SendDef } from "./send-core";
import { getConfig, runtimeLang, showStateMode, type Done, type Msg, type Send } from "./common";

export interface SmsSendDef extends NodeDef, SendDef {
  config: string;
}

export = function (RED: NodeAPI): void {
  function SmsSend(this: Node, def: SmsSendDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const core = new SendCore(
      {
        node,
        lang: runtimeLang(RED, "sms-send.lang"),
        _: (key, params) => RED._(`sms-send.${key}`, params),
        clone: (msg) => RED.util.cloneMessage(msg) as Msg,
        config: () => getConfig(RED, def.config),
      },
      def,
    );
    const offState = showStateMode(getConfig(RED, def.config), core.status);

    node.on("input", (msg: Msg, send: Send, done: Done) => core.input(msg, send, done));

    node.on("close", (removed: boolean, done: () => void) => {
      offState();
      core.close(removed).finally(done);
    });
  }

  RED.nodes.registerType("sms-send", SmsSend);
};
