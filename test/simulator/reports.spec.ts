// The simulator's report rules for delivery tracking (issue 13): numbers that never report,
// per-number report delays, and reports pushed before the send is answered.
import assert from "node:assert/strict";
import { request } from "undici";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { PushReceiver } from "../support/receiver";
import { waitFor } from "../support/stub";

async function post(sim: Simulator, mobile: string): Promise<{ body: string; at: number }> {
  const res = await request(sim.url + "/msg/HttpBatchSendSM", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: new URLSearchParams({
      account: "demo",
      pswd: "demo",
      mobile,
      msg: "【朗宇信息】hi",
      needstatus: "true",
    }).toString(),
  });
  const body = await res.body.text();
  return { body, at: Date.now() };
}

describe("simulator: report rules (never, delayed, before the reply)", () => {
  let sim: Simulator;
  let rx: PushReceiver;
  beforeEach(async () => {
    rx = await new PushReceiver().start();
  });
  afterEach(async () => {
    await sim?.close();
    await rx.close();
  });

  it("withholdReports: those numbers never report, the others do", async () => {
    sim = await startSimulator({
      reportUrl: rx.url(),
      reportDelayMs: 1,
      accounts: [{ account: "demo", password: "demo", withholdReports: ["13900139000"] }],
    });
    await post(sim, "13800138000,13900139000,13700137000");
    await sim.idle();
    assert.deepEqual(rx.pushes.map((p) => p.params.mobile).sort(), ["13700137000", "13800138000"]);
  });

  it("reportDelays: a number's report comes after its own delay, the others after reportDelayMs", async () => {
    sim = await startSimulator({
      reportUrl: rx.url(),
      reportDelayMs: 1,
      accounts: [{ account: "demo", password: "demo", reportDelays: { "13900139000": 400 } }],
    });
    const sent = Date.now();
    await post(sim, "13800138000,13900139000");
    await waitFor(() => rx.pushes.length === 1, 5000, "the first report");
    assert.equal(rx.pushes[0].params.mobile, "13800138000");
    await waitFor(() => rx.pushes.length === 2, 5000, "the delayed report");
    assert.equal(rx.pushes[1].params.mobile, "13900139000");
    assert.ok(Date.now() - sent >= 400, "not before its delay");
  });

  it("reportFirst: the reports reached the receiver before the send is answered", async () => {
    sim = await startSimulator({
      reportUrl: rx.url(),
      reportDelayMs: 10_000,
      accounts: [{ account: "demo", password: "demo", reportFirst: true }],
    });
    const r = await post(sim, "13800138000,13900139000");
    // When the reply is read, both reports were already answered OK by the receiver.
    assert.equal(rx.pushes.length, 2);
    const msgid = r.body.split("\n")[1];
    assert.ok(rx.pushes.every((p) => p.params.msgid === msgid));
  });

  it("reportFirst with a delayed number: the others first, that one after its delay", async () => {
    sim = await startSimulator({
      reportUrl: rx.url(),
      accounts: [{ account: "demo", password: "demo", reportFirst: true, reportDelays: { "13900139000": 300 } }],
    });
    await post(sim, "13800138000,13900139000");
    assert.deepEqual(
      rx.pushes.map((p) => p.params.mobile),
      ["13800138000"],
    );
    await waitFor(() => rx.pushes.length === 2, 5000, "the delayed report");
  });

  it("the rules are checked like every account setting (admin route)", async () => {
    sim = await startSimulator();
    for (const [setting, value] of [
      ["withholdReports", "13800138000"],
      ["reportDelays", { "13800138000": -1 }],
      ["reportFirst", "yes"],
    ] as const) {
      const res = await request(`${sim.url}/sim/accounts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ account: "demo", [setting]: value }),
      });
      assert.equal(res.statusCode, 400);
      assert.match(await res.body.text(), new RegExp(`account: ${setting} must be`));
    }
    sim.configure({ account: "demo", withholdReports: ["13800138000"], reportDelays: { "13900139000": 5 } });
    assert.deepEqual(sim.account("demo")!.withholdReports, ["13800138000"]);
  });
});
