// sms-send in the test helper with its real catalog: the helper's own RED._ returns the keys, so
// tests that read a text (status, warnings, log lines) load the node through this.
import fs from "node:fs";
import path from "node:path";
import type { NodeAPI } from "node-red";
import { ALL_NODES, creds, helper, spiesSeen, type FlowNode } from "../support/nr";
import sendNode = require("../../src/nodes/sms-send");

export type Lang = "en-US" | "zh-CN";
type Catalog = Record<string, unknown>;

const ROOT = path.join(__dirname, "../../..");

export function catalog(lang: Lang): Catalog {
  return JSON.parse(fs.readFileSync(path.join(ROOT, "locales", lang, "sms-send.json"), "utf8")) as Catalog;
}

/** Node-RED's lookup: dotted key, `__name__` placeholders, no escaping. */
export function translator(cat: Catalog) {
  return (key: string, params: Record<string, unknown> = {}): string => {
    const v = key.split(".").reduce<unknown>((o, k) => (o as Catalog | undefined)?.[k], cat);
    if (typeof v !== "string") return key;
    return v.replace(/__(\w+)__/g, (m, k: string) => (k in params ? String(params[k]) : m));
  };
}

/** Every node module, sms-send reading its catalog in `lang`. */
export function modules(lang: Lang, extra: unknown[] = []): unknown[] {
  const _ = translator(catalog(lang));
  const send = (RED: NodeAPI) => sendNode(Object.create(RED, { _: { value: _ } }) as NodeAPI);
  return [...ALL_NODES.map((m) => (m === sendNode ? send : m)), ...extra];
}

export async function loadWithCatalog(
  flow: FlowNode[],
  lang: Lang = "en-US",
  credentials: Record<string, unknown> = creds(),
  extra: unknown[] = [],
): Promise<void> {
  await helper.load(modules(lang, extra) as never, flow as never, credentials as never);
  spiesSeen.push(helper.log() as unknown as { args: unknown[][] });
  const s = helper.getNode("s") as unknown as Record<string, { args: unknown[][] }> | null;
  for (const m of ["status", "error", "warn", "log", "send"]) if (s?.[m]?.args) spiesSeen.push(s[m]);
}
