import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { collect, flowWith, helper, load, PASSWORD, type FlowNode } from "../support/nr";

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
