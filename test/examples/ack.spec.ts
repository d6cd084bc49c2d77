// Example 12 end to end, rebuilt on sms-oncall: the alert repeats until the on-call number texts
// back its code or ACK. The flow as a user imports it, its account pointed at the simulator, which
// pushes the replies over real HTTP to the flow's 'replies' node. The on-call node's waits pass on
// a fake clock (the account state is leased with it first, and the node's clock hook set to it).
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import oncallNode = require("../../src/nodes/sms-oncall");
import { systemClock } from "../../src/lib/clock";
import { closeAllStates, leaseState, type StateLease } from "../../src/lib/state/registry";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { captured, helper, sleep } from "../support/nr";
import { deployExample, readExample, sendsTo, type ExampleRun, type FlowNode, type Msg } from "../support/example";
import { FakeClock, waitFor } from "../support/stub";

const FILE = "12 - Acknowledge an alert by reply · 回复确认告警.json";
const ONCALL = "13800138000";
const MIN = 60_000;
const PAGE = "【朗宇信息】Alarm boiler-1: temperature 95°C Reply 1 to ack";

describe('examples: "12 - Acknowledge an alert by reply" end to end (sms-oncall)', function () {
  this.timeout(30_000);
  let sim: Simulator;
  let server: http.Server;
  let base: string;
  let flow: FlowNode[];
  let run: ExampleRun;
  let clock: FakeClock;
  let lease: StateLease;
  let pump: NodeJS.Timeout;
  let events: Msg[];
  let failed: Msg[];

  beforeEach(async () => {
    await closeAllStates();
    sim = await startSimulator({ reportDelayMs: 10_000 });
    clock = new FakeClock();
    oncallNode.clock = clock;
    lease = leaseState({ url: sim.url, account: "demo", store: "memory", clock });
    // Deadlines due now (a tracked send's summary, a reply's confirm) fire as the fake clock ticks.
    pump = setInterval(() => clock.advance(0), 10);
    flow = readExample(FILE);
    flow.find((n) => n.type === "sms-config")!.url = sim.url;
    run = await deployExample(flow);
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    sim.moUrl = `${base}${String(named("replies").path)}`;
    events = received("events");
    failed = received("failed");
  });
  afterEach(async () => {
    await helper.unload();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await sim.close();
    clearInterval(pump);
    lease.release();
    oncallNode.clock = systemClock;
    await closeAllStates();
  });

  // A node is named "English · 中文"; the tests name it by its English part.
  const named = (en: string) => flow.find((n) => String(n.name ?? "").split(" · ")[0] === en)!;
  const received = (en: string) => run.received(String(named(en).name));
  const texts = () => sendsTo(sim.requests).map((r) => `${r.params.mobile} ${r.params.msg}`);
  const press = (en: string) => helper.getNode(named(en).id).receive({} as never);
  const eventNames = () => events.map((m) => (m.payload as { event: string }).event);
  async function reply(mobile: string, text: string): Promise<void> {
    const r = await fetch(`${sim.url}/sim/mo`, { method: "POST", body: JSON.stringify({ mobile, text }) });
    assert.equal(r.status, 200, await r.text());
  }
  /** The clock passes `ms`; the pages that come due leave (and the confirm an outbox deadline holds). */
  async function pass(ms: number): Promise<void> {
    clock.advance(ms);
    await sleep(50);
  }

  it("pages the on-call number at once, again every 5 minutes, until a reply of its code acknowledges it", async () => {
    press("alert: boiler-1 95°C");
    await waitFor(() => texts().length === 1, 8000, "the page");
    assert.deepEqual(texts(), [`${ONCALL} ${PAGE}`]);
    await pass(5 * MIN - 1);
    assert.equal(texts().length, 1, "not before its 5 minutes");
    await pass(1);
    await waitFor(() => texts().length === 2, 8000, "the repeat");
    assert.deepEqual(texts()[1], `${ONCALL} ${PAGE}`, "the same code");
    await reply(ONCALL, "1");
    await waitFor(() => texts().length === 3, 8000, "the confirmation");
    assert.equal(texts()[2], `${ONCALL} 【朗宇信息】Acknowledged Alarm boiler-1: temperature 95°C`);
    await pass(60 * MIN);
    await sleep(100);
    assert.equal(texts().length, 3, "nothing after the acknowledgement");
    assert.deepEqual(eventNames(), ["opened", "notified", "escalated", "acknowledged"]);
    press("back to normal: boiler-1");
    await waitFor(() => texts().length === 4, 8000, "the resolved SMS");
    assert.equal(texts()[3], `${ONCALL} 【朗宇信息】Resolved Alarm boiler-1: temperature 95°C`);
    assert.deepEqual(failed, []);
  });

  it("other replies and a reply from another number change nothing; ＡＣＫ from the on-call number stops it", async () => {
    press("alert: boiler-1 95°C");
    press("alert: boiler-1 95°C");
    await waitFor(() => texts().length === 1, 8000, "the page");
    await reply(ONCALL, "hello");
    await reply("13900139000", "1");
    await reply(ONCALL, "ACK please");
    await waitFor(() => eventNames().length === 2, 8000, "opened, notified");
    await sleep(200);
    await pass(5 * MIN);
    await waitFor(() => texts().length === 2, 8000, "still open: the repeat");
    assert.equal((events.at(-1)!.payload as { count: number }).count, 2, "the second press counted, not sent");
    await reply("+8613800138000", " ＡＣＫ。");
    await waitFor(() => texts().length === 3, 8000, "the confirmation");
    assert.match(texts()[2], /Acknowledged/);
  });

  it("the comment's offline steps: its curl (with moUrl, as against the npm start demo) acknowledges the alert", async () => {
    const info = String(flow.find((n) => n.type === "comment")!.info);
    const [, body] =
      /`curl -X POST http:\/\/127\.0\.0\.1:18080\/sim\/mo -H 'Content-Type: application\/json' -d '([^']+)'`/.exec(
        info,
      )!;
    const parsed = JSON.parse(body) as { mobile: string; text: string; moUrl: string };
    assert.equal(new URL(parsed.moUrl).pathname, named("replies").path, "the curl names this example's path");
    // The demo's simulator pushes inbound SMS to the demo's own path: moUrl sends this one here.
    sim.moUrl = `${base}/sms/demo-elsewhere`;
    press("alert: boiler-1 95°C");
    await waitFor(() => texts().length === 1, 8000, "the page");
    const r = await fetch(`${sim.url}/sim/mo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...parsed, moUrl: `${base}${new URL(parsed.moUrl).pathname}` }),
    });
    assert.equal(r.status, 200, await r.text());
    await waitFor(() => texts().length === 2, 8000, "the confirmation");
    assert.match(texts()[1], /Acknowledged Alarm boiler-1/);
    assert.ok(info.includes("`Alarm boiler-1: temperature 95°C Reply 1 to ack`"), "the comment shows the page");
  });
});
