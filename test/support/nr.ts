import helper from "node-red-node-test-helper";
import type { NodeAPI } from "node-red";
import configNode = require("../../src/nodes/sms-config");
import sendNode = require("../../src/nodes/sms-send");
import balanceNode = require("../../src/nodes/sms-balance");
import receiveNode = require("../../src/nodes/sms-receive");
import guardNode = require("../../src/nodes/sms-guard");
import oncallNode = require("../../src/nodes/sms-oncall");

// NODE_RED_PATH runs the same tests against another Node-RED (the Node-RED 5 check).
helper.init(process.env.NODE_RED_PATH || require.resolve("node-red"));

/** A core node module (e.g. "common/25-catch.js") of the Node-RED under test. */
export function coreNode(rel: string): unknown {
  const p = process.env.NODE_RED_PATH;
  const base = p ? p.replace(/\/node_modules\/node-red\/.*$/, "/node_modules/node-red") : require.resolve("node-red");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(require.resolve(`@node-red/nodes/core/${rel}`, { paths: [base] }));
}

const catchNode = coreNode("common/25-catch.js");
// http in / http response: example 07 receives Alertmanager's webhook with them.
const httpInNode = coreNode("network/21-httpin.js");

export { helper };

/** Captures RED.httpNode (which the helper mounts nowhere) so tests can reach httpNode routes. */
export const captured: { httpNode?: import("express").Express; RED?: NodeAPI } = {};
const capture = (RED: NodeAPI) => {
  captured.httpNode = RED.httpNode as unknown as import("express").Express;
  captured.RED = RED;
};

export const ALL_NODES = [
  configNode,
  sendNode,
  balanceNode,
  receiveNode,
  guardNode,
  oncallNode,
  catchNode,
  httpInNode,
  capture,
] as unknown[];

export const PASSWORD = "Secr3t-Acc0unt-Pw!";
export const RECEIVER_PASSWORD = "Rcv-Pa55-Zq9";

export type FlowNode = Record<string, unknown> & { id: string; type: string };

/** A flow on one tab with a config node `cfg` (credentials included) and a catch-all `catch` → `caught`. */
export function flowWith(configProps: Record<string, unknown>, nodes: FlowNode[]): FlowNode[] {
  return [
    { id: "f1", type: "tab", label: "t" },
    { id: "cfg", type: "sms-config", name: "acct", timeout: 2000, rate: 0, ...configProps },
    ...nodes.map((n) => ({ z: "f1", x: 100, y: 100, ...n })),
    // Ids differ from types: the runtime would take a node whose id equals a type for a config node.
    { id: "catcher", type: "catch", z: "f1", x: 100, y: 200, scope: null, wires: [["caught"]] },
    { id: "caught", type: "helper", z: "f1", x: 300, y: 200 },
    { id: "out", type: "helper", z: "f1", x: 300, y: 100 },
    { id: "out2", type: "helper", z: "f1", x: 300, y: 150 },
  ];
}

export function creds(extra: Record<string, string> = {}) {
  return { cfg: { account: "demo", password: PASSWORD, ...extra } };
}

/** The helper's per-load spies (log, status, error, warn, send), read by the secrets audit. */
export const spiesSeen: Array<{ args: unknown[][] }> = [];

export async function load(flow: FlowNode[], credentials: Record<string, unknown> = creds()): Promise<void> {
  await helper.load(ALL_NODES as never, flow as never, credentials as never);
  spiesSeen.push(helper.log() as unknown as { args: unknown[][] });
  const any = flow.find((n) => n.type !== "tab" && helper.getNode(n.id));
  if (any) {
    const n = helper.getNode(any.id) as unknown as Record<string, { args: unknown[][] }>;
    for (const m of ["status", "error", "warn", "log", "send", "debug", "trace"]) if (n[m]?.args) spiesSeen.push(n[m]);
  }
}

type Collector = {
  msgs: Record<string, unknown>[];
  next: (n?: number, ms?: number) => Promise<Record<string, unknown>[]>;
};

/** Collects what a helper node receives; `next(n)` waits until n messages arrived in all. */
export function collect(id: string): Collector {
  const msgs: Record<string, unknown>[] = [];
  const node = helper.getNode(id);
  node.on("input", (m: Record<string, unknown>) => msgs.push(m));
  return {
    msgs,
    next: (n = 1, ms = 8000) =>
      new Promise((resolve, reject) => {
        const until = Date.now() + ms;
        const tick = () => {
          if (msgs.length >= n) return resolve(msgs);
          if (Date.now() > until) return reject(new Error(`${id}: expected ${n} message(s), got ${msgs.length}`));
          setTimeout(tick, 5);
        };
        tick();
      }),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
