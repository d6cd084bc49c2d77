// sms-guard in front of a personalised send (SPEC B8 + B9): the guard reads the numbers of the
// recipient objects as sms-send does, and passes on (and holds back) the objects themselves, so
// the send still renders each recipient's text.
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { waitFor } from "../support/stub";
import { collect, flowWith, helper, load, PASSWORD, sleep, type FlowNode } from "../support/nr";

const A = "13800138000";
const B = "13900139000";

describe("nodes/sms-guard → sms-send with recipient objects (personalised)", () => {
  let sim: Simulator;
  beforeEach(async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }] });
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
  });

  const flow = (): FlowNode[] =>
    flowWith({ url: sim.url, signature: "【朗宇信息】" }, [
      { id: "g", type: "sms-guard", config: "cfg", key: "topic", window: "30", wires: [["gout", "s"], ["out2"]] },
      { id: "gout", type: "helper" },
      {
        id: "s",
        type: "sms-send",
        config: "cfg",
        template: "{{recipient.name}}：{{payload}}",
        wires: [["out"]],
      },
    ]);

  it("the guard passes the allowed recipient objects on; the send renders each one's text", async () => {
    await load(flow());
    const passed = collect("gout");
    const held = collect("out2");
    const sent = collect("out");
    const recipients = [
      { mobile: `+86 ${A}`, name: "王先生" },
      { mobile: B, name: "李女士" },
    ];
    helper.getNode("g").receive({ topic: "boiler", payload: "锅炉温度过高", mobile: recipients } as never);
    const [m] = await passed.next();
    assert.deepEqual(m.mobile, recipients);
    await sent.next(2);
    assert.deepEqual(
      sim.requests.map((r) => [r.params.mobile, r.params.msg]),
      [
        [A, "【朗宇信息】王先生：锅炉温度过高"],
        [B, "【朗宇信息】李女士：锅炉温度过高"],
      ],
    );

    // The same alert again, with a new recipient: A and B are within the window, C passes.
    const C = "13700137000";
    helper.getNode("g").receive({
      topic: "boiler",
      payload: "锅炉温度过高",
      mobile: [...recipients, { mobile: C, name: "赵先生" }],
    } as never);
    const [again] = await passed.next(2);
    const [suppressed] = await held.next();
    assert.deepEqual(passed.msgs[1].mobile, [{ mobile: C, name: "赵先生" }]);
    assert.deepEqual(suppressed.mobile, recipients);
    assert.deepEqual((suppressed.guard as { reasons: unknown }).reasons, { [A]: "window", [B]: "window" });
    await waitFor(() => sim.requests.length === 3, 5000, "the third SMS");
    assert.deepEqual(sim.requests[2].params.msg, "【朗宇信息】赵先生：锅炉温度过高");
    assert.ok(again);
    await sleep(100);
    assert.equal(sim.requests.length, 3);
  });

  it("an invalid number among the recipient objects refuses the alert, naming it", async () => {
    await load(flow());
    const caught = collect("caught");
    helper.getNode("g").receive({ topic: "x", payload: "hi", mobile: [{ mobile: A }, { mobile: "123" }] } as never);
    const [m] = await caught.next();
    assert.equal((m.payload as { code: string }).code, "INVALID_MOBILE");
    assert.deepEqual((m.payload as { invalid: string[] }).invalid, ["123"]);
    assert.equal(sim.requests.length, 0);
  });
});
