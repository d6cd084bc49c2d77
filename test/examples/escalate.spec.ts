// Example 08 end to end: the flow as a user imports it (in the test helper's Node-RED), its account
// pointed at the simulator, which pushes its delivery reports over real HTTP to the flow's
// 'delivery reports' node. Where a test waits for the timeout, it is shortened (10 minutes → 3 s).
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { captured, helper, sleep } from "../support/nr";
import { deployExample, nodeNamed, readExample, sendsTo, type ExampleRun, type FlowNode } from "../support/example";
import { waitFor } from "../support/stub";

const FILE = "08 - Escalate an alert nobody received.json";
const [FIRST, SECOND, THIRD] = ["13800138000", "13900139000", "13700137000"];

type Summary = { delivered: string[]; failed: Array<{ mobile: string; status: string }>; pending: string[] };

describe('examples: "08 - Escalate an alert nobody received" end to end', function () {
  this.timeout(30_000);
  let sim: Simulator;
  let flow: FlowNode[];
  let run: ExampleRun;
  let server: http.Server | undefined;

  beforeEach(async () => {
    sim = await startSimulator({ reportDelayMs: 20 });
  });
  /** Deploys the example as imported; `trackTimeout` in minutes replaces the example's 10. */
  async function start(trackTimeout?: string) {
    flow = readExample(FILE);
    flow.find((n) => n.type === "sms-config")!.url = sim.url;
    if (trackTimeout) named("send alert (tracked)").trackTimeout = trackTimeout;
    run = await deployExample(flow);
    const listening = http.createServer(captured.httpNode!);
    server = listening;
    await new Promise<void>((r) => listening.listen(0, "127.0.0.1", r));
    sim.reportUrl = `http://127.0.0.1:${(listening.address() as AddressInfo).port}${named("delivery reports").path}`;
  }
  afterEach(async () => {
    await helper.unload();
    server?.closeAllConnections();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
    await sim.close();
  });

  const named = (name: string) => nodeNamed(flow, name);
  const received = (name: string) => run.received(name);
  const sends = () => sendsTo(sim.requests);
  const alarm = () => helper.getNode(named("boiler alarm").id).receive({} as never);

  it("the first number never reports (the comment's curl): after the timeout the second number gets the alert", async () => {
    await start("0.05");
    const comment = flow.find((n) => n.type === "comment")!;
    const [, simPath, body] =
      /`curl -X POST http:\/\/127\.0\.0\.1:18080(\S+) -H 'Content-Type: application\/json' -d '([^']+)'`/.exec(
        comment.info as string,
      )!;
    const res = await fetch(sim.url + simPath, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    assert.equal(res.status, 200, await res.text());
    assert.deepEqual(sim.account("demo")!.withholdReports, [FIRST]);
    const delivered = received("delivered");
    const nobody = received("nobody reached");
    const failed = received("failed");
    const started = Date.now();
    alarm();
    await waitFor(() => sends().length === 1, 5000, "the first SMS");
    assert.equal(sends()[0].params.mobile, FIRST);
    assert.equal(sends()[0].params.msg, "【朗宇信息】Boiler 1: temperature 95°C, check it now");
    await waitFor(() => sends().length === 2, 15_000, "the escalated SMS");
    assert.ok(Date.now() - started >= 3000, "not before the first number's timeout");
    assert.equal(sends()[1].params.mobile, SECOND);
    assert.equal(sends()[1].params.msg, "【朗宇信息】[escalated] Boiler 1: temperature 95°C, check it now");
    await waitFor(() => delivered.length === 1, 10_000, "the second number's summary");
    const s = delivered[0].payload as Summary;
    assert.deepEqual(s.delivered, [SECOND]);
    assert.equal(delivered[0].topic, "boiler-1");
    assert.equal(delivered[0].level, 1);
    await sleep(200); // nothing more: the third number is not texted
    assert.equal(sends().length, 2);
    assert.deepEqual([nobody.length, failed.length], [0, 0]);
  });

  it("a failed report (blacklisted number) escalates at once, without waiting for the timeout", async () => {
    // The example's own 10 minutes: whatever escalates within this test came from the report.
    await start();
    sim.configure({ account: "demo", reportStatus: { [FIRST]: "MBBLACK" } });
    const delivered = received("delivered");
    alarm();
    await waitFor(() => delivered.length === 1, 10_000, "the second number's summary");
    assert.deepEqual(
      sends().map((r) => r.params.mobile),
      [FIRST, SECOND],
    );
    assert.deepEqual((delivered[0].payload as Summary).delivered, [SECOND]);
  });

  it("nobody on the rota gets it: the last summary goes to 'nobody reached'", async function () {
    this.timeout(45_000);
    await start("0.05");
    sim.configure({ account: "demo", withholdReports: [FIRST, SECOND], reportStatus: { [THIRD]: "UNDELIV" } });
    const delivered = received("delivered");
    const nobody = received("nobody reached");
    alarm();
    await waitFor(() => nobody.length === 1, 30_000, "'nobody reached'");
    assert.deepEqual(
      sends().map((r) => r.params.mobile),
      [FIRST, SECOND, THIRD],
    );
    const s = nobody[0].payload as Summary;
    assert.deepEqual(
      s.failed.map((f) => [f.mobile, f.status]),
      [[THIRD, "UNDELIV"]],
    );
    assert.equal(delivered.length, 0);
  });
});
