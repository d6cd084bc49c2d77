// Example 08 end to end, rebuilt on sms-oncall: an alert nobody received goes on to the next
// on-call number at once (the tracked send's delivery summary is wired back into 'on-call rota'),
// and one nobody answers goes on after its wait. The flow as a user imports it, its account at the
// simulator, which pushes its reports over real HTTP to the flow's 'delivery reports'. The on-call
// node's waits pass on a fake clock (the account state is leased with it first).
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import oncallNode = require("../../src/nodes/sms-oncall");
import { systemClock } from "../../src/lib/clock";
import { closeAllStates, leaseState, type StateLease } from "../../src/lib/state/registry";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { captured, helper, sleep } from "../support/nr";
import { deployExample, readExample, sendsTo, type ExampleRun, type FlowNode, type Msg } from "../support/example";
import type { Clock } from "../../src/lib/clock";
import { waitFor } from "../support/stub";

const FILE = "08 - Escalate an alert nobody received · 无人收到的告警升级.json";
const [FIRST, SECOND, THIRD] = ["13800138000", "13900139000", "13700137000"];
const MIN = 60_000;
const PAGE = "【朗宇信息】Boiler-1 pressure high Reply 1 to ack";

/**
 * Real time plus a skew the test moves forward: delivery tracking keeps real time (its summaries
 * are due at real instants) while the on-call waits pass at once. Timers fire by a 10 ms pump.
 */
class SkewClock implements Clock {
  private skew = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private readonly pump = setInterval(() => this.fire(), 10);
  now = () => Date.now() + this.skew;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now() + Math.max(0, ms), fn });
    return id;
  };
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);
  advance(ms: number): void {
    this.skew += ms;
    this.fire();
  }
  stop(): void {
    clearInterval(this.pump);
  }
  private fire(): void {
    const now = this.now();
    for (const [id, t] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at > now) break;
      this.timers.delete(id);
      t.fn();
    }
  }
}

describe('examples: "08 - Escalate an alert nobody received" end to end (sms-oncall)', function () {
  this.timeout(30_000);
  let sim: Simulator;
  let server: http.Server;
  let flow: FlowNode[];
  let run: ExampleRun;
  let clock: SkewClock;
  let lease: StateLease;
  let events: Msg[];
  let delivery: Msg[];

  beforeEach(async () => {
    await closeAllStates();
    sim = await startSimulator({ reportDelayMs: 20 });
    clock = new SkewClock();
    oncallNode.clock = clock;
    lease = leaseState({ url: sim.url, account: "demo", store: "memory", clock });
    flow = readExample(FILE);
    flow.find((n) => n.type === "sms-config")!.url = sim.url;
    // Tracking keeps real time while the on-call clock jumps 10 minutes ahead: with the example's
    // 10-minute tracking wait, the next page's summary would time out the moment it is sent and
    // escalate at once, racing the reply pushed over HTTP.
    flow.find((n) => n.type === "sms-send")!.trackTimeout = "60";
    run = await deployExample(flow);
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    sim.reportUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${String(named("delivery reports").path)}`;
    events = received("events");
    delivery = received("delivery");
  });
  afterEach(async () => {
    await helper.unload();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await sim.close();
    clock.stop();
    lease.release();
    oncallNode.clock = systemClock;
    await closeAllStates();
  });

  const named = (en: string) => flow.find((n) => String(n.name ?? "").split(" · ")[0] === en)!;
  const received = (en: string) => run.received(String(named(en).name));
  const texts = () => sendsTo(sim.requests).map((r) => `${r.params.mobile} ${r.params.msg}`);
  const alarm = () => helper.getNode(named("boiler alarm").id).receive({} as never);
  const eventNames = () => events.map((m) => (m.payload as { event: string }).event);

  it("the first number's SMS fails (the comment's curl): the second number gets the alert at once, without the wait", async () => {
    const info = String(flow.find((n) => n.type === "comment")!.info);
    const [, simPath, body] =
      /`curl -X POST http:\/\/127\.0\.0\.1:18080(\S+) -H 'Content-Type: application\/json' -d '([^']+)'`/.exec(info)!;
    const res = await fetch(sim.url + simPath, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    assert.equal(res.status, 200, await res.text());
    alarm();
    await waitFor(() => texts().length === 2, 10_000, `the escalation (got ${JSON.stringify(texts())})`);
    assert.deepEqual(texts(), [`${FIRST} ${PAGE}`, `${SECOND} ${PAGE}`]);
    assert.deepEqual((delivery[0].payload as { failed: Array<{ status: string }> }).failed[0].status, "UNDELIV");
    assert.deepEqual(eventNames(), ["opened", "notified", "escalated"]);
    // The second one got it: the chain waits its 10 minutes for an answer, then pages the whole rota.
    await waitFor(() => delivery.length === 2, 8000, "the second summary");
    await sleep(100);
    assert.equal(texts().length, 2);
    clock.advance(10 * MIN);
    await waitFor(() => texts().length === 3, 8000, "the last step");
    assert.deepEqual(texts()[2], `${FIRST},${SECOND},${THIRD} ${PAGE}`);
  });

  it("delivered but nobody answers: the next number after 10 minutes; a reply from it stops the chain", async () => {
    alarm();
    await waitFor(() => delivery.length === 1, 10_000, "the delivery summary");
    assert.deepEqual((delivery[0].payload as { delivered: string[] }).delivered, [FIRST]);
    // Real time passes too (this clock is real time plus a skew): 10 s short of the wait, then past it.
    clock.advance(10 * MIN - 10_000);
    await sleep(100);
    assert.equal(texts().length, 1, "delivered: no escalation before the wait");
    clock.advance(10_000);
    await waitFor(() => texts().length === 2, 8000, "the next number");
    assert.equal(texts()[1], `${SECOND} ${PAGE}`);
    // The reply as the platform pushes it (A4), to the flow's own receive node: it reaches the
    // on-call node through the account's inbox (nothing is wired from its second output).
    const port = (server.address() as AddressInfo).port;
    const mo = new URLSearchParams({ mobile: SECOND, destcode: "1069", moTime: "2612071000", msg: "1" });
    const r = await fetch(`http://127.0.0.1:${port}${String(named("delivery reports").path)}?${mo}`);
    assert.equal(r.status, 200);
    clock.advance(0);
    await waitFor(() => texts().length === 3, 8000, "the confirmation");
    assert.equal(texts()[2], `${SECOND} 【朗宇信息】Acknowledged Boiler-1 pressure high`);
    clock.advance(60 * MIN);
    await sleep(100);
    assert.equal(texts().length, 3);
    assert.deepEqual(eventNames(), ["opened", "notified", "escalated", "acknowledged"]);
  });
});
