import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { NodeAPI } from "node-red";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { ALL_NODES, collect, creds, flowWith, helper, load, PASSWORD, type FlowNode } from "../support/nr";
import balanceNode = require("../../src/nodes/sms-balance");

type Lang = "en-US" | "zh-CN";
type Catalog = Record<string, unknown>;

/** Node-RED's lookup in the node's real catalog (the helper's own RED._ returns keys). */
function translator(lang: Lang) {
  const file = path.join(__dirname, "../../../locales", lang, "sms-balance.json");
  const cat = JSON.parse(fs.readFileSync(file, "utf8")) as Catalog;
  return (key: string, params: Record<string, unknown> = {}): string => {
    const v = key.split(".").reduce<unknown>((o, k) => (o as Catalog | undefined)?.[k], cat);
    if (typeof v !== "string") return key;
    return v.replace(/__(\w+)__/g, (m, k: string) => (k in params ? String(params[k]) : m));
  };
}

/** Loads the flow with sms-balance reading its catalog in `lang`. */
async function loadIn(lang: Lang, flow: FlowNode[]): Promise<void> {
  const _ = translator(lang);
  const balance = (RED: NodeAPI) => balanceNode(Object.create(RED, { _: { value: _ } }) as NodeAPI);
  await helper.load(ALL_NODES.map((m) => (m === balanceNode ? balance : m)) as never, flow as never, creds() as never);
}

/** The node's own last status. */
function lastStatus(id: string): { fill?: string; text?: string } {
  const spy = helper.getNode(id).status as unknown as { args: unknown[][]; thisValues: Array<{ id: string }> };
  const own = spy.args.filter((_a, i) => spy.thisValues[i]?.id === id);
  return (own.at(-1)?.[0] ?? {}) as { fill?: string; text?: string };
}

const balance = (o: Record<string, unknown> = {}): FlowNode => ({
  id: "b",
  type: "sms-balance",
  config: "cfg",
  wires: [["out"]],
  ...o,
});
type Payload = Record<string, unknown>;

describe("nodes/sms-balance", () => {
  let sim: Simulator;
  beforeEach(async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }] });
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
  });

  it("outputs products, balance map, total and low products under the threshold", async () => {
    await load(flowWith({ url: sim.url }, [balance({ threshold: "1000" })]));
    const out = collect("out");
    helper.getNode("b").receive({ payload: "go", topic: "t" } as never);
    const [m] = await out.next();
    const p = m.payload as Payload;
    assert.equal(p.code, 0);
    assert.equal(p.ok, true);
    assert.deepEqual(p.products, [
      { product: "1001", balance: 10000 },
      { product: "1002", balance: 500 },
    ]);
    assert.deepEqual(p.balance, { "1001": 10000, "1002": 500 });
    assert.equal(p.total, 10500);
    assert.deepEqual(p.low, ["1002"]);
    assert.equal(p.cached, false);
    assert.match(p.resptime as string, /\+08:00$/);
    assert.equal(m.topic, "t");
  });

  it("the debug sidebar's one-line preview starts with the balance: total, low, balance come first", async () => {
    await load(flowWith({ url: sim.url }, [balance({ threshold: "1000" })]));
    const out = collect("out");
    helper.getNode("b").receive({} as never);
    const [m] = await out.next();
    assert.deepEqual(Object.keys(m.payload as Payload).slice(0, 4), ["total", "low", "balance", "products"]);
  });

  for (const [lang, one, two, fine] of [
    ["en-US", "low: product 1002 has 500", "2 low: 1001 has 30, 1002 has 500", "530 in all (2 products)"],
    ["zh-CN", "余额不足：产品 1002 剩 500", "2 个产品余额不足：1001 剩 30，1002 剩 500", "共 530（2 个产品）"],
  ] as const) {
    it(`${lang}: the status names the low product and its balance, not a total that hides it`, async () => {
      await loadIn(lang, flowWith({ url: sim.url }, [balance({ threshold: "1000" })]));
      const out = collect("out");
      helper.getNode("b").receive({} as never);
      await out.next();
      assert.deepEqual(lastStatus("b"), { fill: "yellow", shape: "dot", text: one });
    });

    it(`${lang}: several low products are each named; none low shows the total and the product count`, async () => {
      sim.configure({ account: "demo", products: { "1001": 30, "1002": 500 } });
      await loadIn(
        lang,
        flowWith({ url: sim.url }, [
          balance({ threshold: "1000" }),
          balance({ id: "b2", threshold: "0", wires: [["out2"]] }),
        ]),
      );
      const out = collect("out");
      const out2 = collect("out2");
      helper.getNode("b").receive({} as never);
      await out.next();
      assert.deepEqual(lastStatus("b"), { fill: "yellow", shape: "dot", text: two });
      // The same answer (the 10 s window) through a node without a threshold.
      helper.getNode("b2").receive({} as never);
      await out2.next();
      assert.deepEqual(lastStatus("b2"), { fill: "green", shape: "dot", text: fine });
    });
  }

  it("low is empty when the threshold is off", async () => {
    await load(flowWith({ url: sim.url }, [balance({ threshold: 0 })]));
    const out = collect("out");
    helper.getNode("b").receive({} as never);
    const [m] = await out.next();
    assert.deepEqual((m.payload as Payload).low, []);
  });

  it("at most one platform query per 10 s per account: later answers are cached", async () => {
    await load(
      flowWith({ url: sim.url }, [balance(), { id: "b2", type: "sms-balance", config: "cfg", wires: [["out2"]] }]),
    );
    const out = collect("out");
    const out2 = collect("out2");
    helper.getNode("b").receive({} as never);
    helper.getNode("b2").receive({} as never);
    await out.next();
    await out2.next();
    helper.getNode("b").receive({} as never);
    const msgs = await out.next(2);
    assert.equal(sim.requests.length, 1, "one platform query for three inputs on two nodes");
    assert.equal((msgs[1].payload as Payload).cached, true);
    assert.deepEqual((msgs[1].payload as Payload).products, (msgs[0].payload as Payload).products);
  });

  it("a platform error reaches a Catch node with its code", async () => {
    await load(flowWith({ url: sim.url }, [balance()]), { cfg: { account: "demo", password: "wrong-password" } });
    const caught = collect("caught");
    helper.getNode("b").receive({} as never);
    const [m] = await caught.next();
    assert.equal((m.payload as Payload).code, 102);
    assert.equal((m.payload as Payload).ok, false);
  });

  it("NO_CONFIG without an account", async () => {
    await load(flowWith({ url: sim.url }, [balance({ config: "" })]));
    const caught = collect("caught");
    helper.getNode("b").receive({} as never);
    const [m] = await caught.next();
    assert.equal((m.payload as Payload).code, "NO_CONFIG");
  });
});
