// Whether the flows are stopping for good (Node-RED shutting down, or "stop flows" in the editor)
// rather than being redeployed: a node's close handler cannot tell (`removed` is false in both),
// and with memory state the difference decides whether pending long SMS are flushed now (a stop:
// the process is about to lose them) or kept for the replacing node (a redeploy).
//
// How: a deploy installs the new active configuration before it stops the old flows, so its
// "flows:stopping" event carries another config object than the last "flows:started" did; a stop
// carries the same one.
import type { EventEmitter } from "node:events";
import type { NodeAPI } from "node-red";

interface FlowsEvent {
  config?: unknown;
}

let startedConfig: unknown = undefined;
let stopping = false;
const watched = new WeakSet<object>();

export function watchRuntime(RED: NodeAPI): void {
  const events = (RED as unknown as { events?: EventEmitter }).events;
  if (!events || watched.has(events)) return;
  watched.add(events);
  events.on("flows:started", (e: FlowsEvent) => {
    startedConfig = e?.config;
    stopping = false;
  });
  events.on("flows:stopping", (e: FlowsEvent) => {
    stopping = startedConfig !== undefined && e?.config === startedConfig;
  });
}

/** True while the flows stop without a deploy behind it (read it in a close handler). */
export function flowsStopping(): boolean {
  return stopping;
}

/** Runs `fn` once the flows being started now have started (every node of the deploy exists). */
export function afterStart(RED: NodeAPI, fn: () => void): void {
  const events = (RED as unknown as { events?: EventEmitter }).events;
  if (!events) return void setImmediate(fn);
  events.once("flows:started", () => fn());
}
