// An example flow run the way a user imports it: the file as is, its account pointed at the
// simulator (what a user sets), loaded into an empty runtime and deployed as an import is.
import fs from "node:fs";
import path from "node:path";
import type { RecordedRequest } from "../../src/simulator/simulator";
import { ALL_NODES, coreNode, helper } from "./nr";

export type FlowNode = Record<string, unknown> & { id: string; type: string };
export type Msg = Record<string, unknown>;

/** The core nodes the examples use (each registered once per load). */
export const EXAMPLE_CORE = [
  "common/20-inject.js",
  "common/21-debug.js",
  "common/90-comment.js",
  "function/10-function.js",
  "function/10-switch.js",
  "function/15-change.js",
];

export function readExample(name: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(__dirname, "../../../examples", name), "utf8")) as FlowNode[];
}

/** The example's node of that name. */
export function nodeNamed(flow: FlowNode[], name: string): FlowNode {
  const n = flow.find((x) => x.name === name);
  if (!n) throw new Error(`no node named "${name}" in the example`);
  return n;
}

export interface ExampleRun {
  /** what the node of that name receives from now on */
  received(name: string): Msg[];
}

/**
 * Deploys `flow` (already read and edited as the test needs: at least the account's url) with the
 * account's credentials. `core` are further core node modules the example needs.
 */
export async function deployExample(
  flow: FlowNode[],
  opts: { credentials?: Record<string, string>; core?: string[] } = {},
): Promise<ExampleRun> {
  const cfg = flow.find((n) => n.type === "sms-config")!;
  const modules = [...EXAMPLE_CORE, ...(opts.core ?? [])].map(coreNode);
  // Loaded empty, then deployed as a user's import would be (see test/examples.spec.ts).
  await helper.load([...ALL_NODES, ...modules] as never, [{ id: "empty", type: "tab" }] as never);
  const credentials = { account: "demo", password: "demo", ...opts.credentials };
  await helper.setFlows(flow as never, "full", { [cfg.id]: credentials } as never);
  return {
    received: (name) => {
      const msgs: Msg[] = [];
      helper.getNode(nodeNamed(flow, name).id).on("input", (m: Msg) => msgs.push(m));
      return msgs;
    },
  };
}

/** The sends the simulator received. */
export function sendsTo(requests: RecordedRequest[]): RecordedRequest[] {
  return requests.filter((r) => r.path.endsWith("/HttpBatchSendSM"));
}
