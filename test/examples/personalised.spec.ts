// Example 09 end to end: the flow as a user imports it (in the test helper's Node-RED), its account
// pointed at the simulator; what the platform receives is what the test looks at.
import assert from "node:assert/strict";
import { planSend } from "../../src/lib/alerts/personalise";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { helper, sleep } from "../support/nr";
import { deployExample, nodeNamed, readExample, sendsTo, type ExampleRun, type FlowNode } from "../support/example";
import { waitFor } from "../support/stub";

const FILE = "09 - Personalised bulk notice · 个性化群发通知.json";

describe('examples: "09 - Personalised bulk notice" end to end', function () {
  this.timeout(20_000);
  let sim: Simulator;
  let flow: FlowNode[];
  let run: ExampleRun;

  beforeEach(async () => {
    sim = await startSimulator({ reportDelayMs: 10_000 });
    flow = readExample(FILE);
    flow.find((n) => n.type === "sms-config")!.url = sim.url;
    run = await deployExample(flow);
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
  });

  // A node is named "English · 中文"; the tests name it by its English part.
  const full = (en: string) => String(flow.find((n) => String(n.name ?? "").split(" · ")[0] === en)?.name ?? en);
  const named = (name: string) => nodeNamed(flow, full(name));
  const received = (name: string) => run.received(full(name));
  const sends = () => sendsTo(sim.requests);

  it("'monthly bills': a text per recipient, equal texts in one request, one 'sent' message per request", async () => {
    const sent = received("sent");
    const failed = received("failed");
    helper.getNode(named("monthly bills").id).receive({} as never);
    await waitFor(() => sent.length === 2, 8000, "two outputs");
    assert.deepEqual(
      sends().map((r) => [r.params.mobile, r.params.msg]),
      [
        ["13800138000,13700137000", "【朗宇信息】王先生您好，您3月的电费为 128.5 元，请于4月15日前缴纳。"],
        ["13900139000", "【朗宇信息】李女士您好，您3月的电费为 96 元，请于4月15日前缴纳。"],
      ],
    );
    assert.deepEqual(
      sent.map((m) => [(m.payload as { batch: unknown }).batch, m.mobile, m.topic]),
      [
        [{ index: 1, count: 2 }, ["13800138000", "13700137000"], "electricity bill"],
        [{ index: 2, count: 2 }, ["13900139000"], "electricity bill"],
      ],
    );
    assert.ok(sent.every((m) => typeof m.msgid === "string"));
    assert.deepEqual(failed, []);
  });

  it("the template in the comment is the node's, and the runtime's plan for the flow's list is what was sent", async () => {
    const send = named("send notices");
    const comment = flow.find((n) => n.type === "comment")!;
    assert.ok(
      (comment.info as string).includes("`" + (send.template as string) + "`"),
      "the comment shows the template",
    );
    // The function's list, rendered by the runtime's planner: the same texts the platform got.
    const sent = received("sent");
    helper.getNode(named("monthly bills").id).receive({} as never);
    await waitFor(() => sent.length === 2, 8000, "two outputs");
    const plan = planSend(
      {
        payload: { month: "3月", due: "4月15日" },
        mobile: [
          { mobile: "13800138000", name: "王先生", amount: 128.5 },
          { mobile: "13900139000", name: "李女士", amount: 96 },
          { mobile: "13700137000", name: "王先生", amount: 128.5 },
        ],
        template: send.template,
        msg: { payload: { month: "3月", due: "4月15日" } },
      },
      { signature: "【朗宇信息】" },
    );
    assert.deepEqual(
      plan.requests.map((r) => r.text),
      sends().map((r) => r.params.msg),
    );
  });

  it("as the comment says: a recipient without a field the template uses stops the whole send, and 'failed' names it", async () => {
    const failed = received("failed");
    const sent = received("sent");
    helper.getNode(named("send notices").id).receive({
      payload: { month: "3月", due: "4月15日" },
      mobile: [
        { mobile: "13800138000", name: "王先生", amount: 128.5 },
        { mobile: "13900139000", name: "李女士" },
      ],
    } as never);
    await waitFor(() => failed.length === 1, 8000, "the error");
    const p = failed[0].payload as { code: string; variable: string };
    assert.equal(p.code, "TEMPLATE");
    assert.equal(p.variable, "recipient.amount");
    assert.match((failed[0].error as { message: string }).message, /msg\.mobile\[1\] \(13900139000\)/);
    const comment = flow.find((n) => n.type === "comment")!;
    assert.ok((comment.info as string).includes("`msg.mobile[1] (13900139000)`"), "the comment shows this error");
    await sleep(100);
    assert.equal(sends().length, 0);
    assert.equal(sent.length, 0);
  });
});
