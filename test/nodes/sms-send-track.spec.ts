// Delivery tracking in sms-send (SPEC B7), in a real Node-RED against the simulator: the simulator
// pushes its reports over HTTP to an sms-receive of the same account (Node-RED's HTTP node server
// on a real port), which feeds the account's tracker; sms-send emits the summaries on output 2.
// trackTimeout is in minutes and takes fractions: "0.1" is 6 s. Where the timeout is not what a
// test is about, it stays long and the test pushes the missing report itself.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import supertest from "supertest";
import { trackerFor, trackKind } from "../../src/lib/alerts/tracking";
import type { SmsConfigNode } from "../../src/nodes/common";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { reply, StubServer, waitFor } from "../support/stub";
import { captured, collect, creds, flowWith, helper, PASSWORD, sleep, type FlowNode } from "../support/nr";
import { loadWithCatalog, type Lang } from "./send-catalog";

const A = "13800138000";
const B = "13900139000";
const C = "13700137000";
const PATH = "/sms/track";
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/;

type Summary = {
  msgid: string;
  total: number;
  delivered: string[];
  failed: Array<{ mobile: string; status: string; description: string }>;
  pending: string[];
  complete: boolean;
  sentAt: string;
  doneAt: string;
  batch: { index: number; count: number };
};

const sendNode = (o: Record<string, unknown> = {}): FlowNode => ({
  id: "s",
  type: "sms-send",
  config: "cfg",
  mobile: `${A},${B}`,
  needstatus: true,
  track: true,
  trackTimeout: "1",
  wires: [["out"], ["out2"]],
  ...o,
});
const receiveNode: FlowNode = {
  id: "r",
  type: "sms-receive",
  config: "cfg",
  path: PATH,
  reassemble: true,
  partTimeout: 600,
  wires: [[], []],
};

describe("nodes/sms-send delivery tracking (SPEC B7, against the simulator)", function () {
  this.timeout(30_000);
  let sim: Simulator;
  let server: http.Server;

  beforeEach(async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }], reportDelayMs: 20 });
  });
  afterEach(async () => {
    await helper.unload();
    server?.closeAllConnections();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await sim.close();
  });

  const flow = (send: Record<string, unknown> = {}, cfg: Record<string, unknown> = {}) =>
    flowWith({ url: sim.url, ...cfg }, [sendNode(send), receiveNode]);

  /** Loads the flow and points the simulator's reports at its sms-receive, over real HTTP. */
  async function start(send: Record<string, unknown> = {}, cfg: Record<string, unknown> = {}, lang: Lang = "en-US") {
    await loadWithCatalog(flow(send, cfg), lang);
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    sim.reportUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PATH}`;
    return { out: collect("out"), out2: collect("out2"), caught: collect("caught") };
  }

  const state = () => (helper.getNode("cfg") as unknown as SmsConfigNode).state;
  const tracker = () => trackerFor(state());
  /** A delivery report pushed to the flow's sms-receive, as the platform pushes it. */
  const push = (msgid: unknown, mobile: string, status = "DELIVRD", reportTime = "2501011200") =>
    supertest(captured.httpNode!)
      .get(PATH)
      .query({ msgid: String(msgid), mobile, status, reportTime })
      .expect(200, "OK");
  const logged = () =>
    (helper.log() as unknown as { args: Array<[{ msg: unknown }]> }).args.map(([e]) => String(e.msg));
  const statusTexts = () =>
    (helper.getNode("s").status as unknown as { args: Array<[{ text?: string }]> }).args.map((a) => a[0]?.text ?? "");

  it("all delivered: one summary, complete, before the timeout; the input msg's properties kept", async () => {
    const { out, out2 } = await start();
    const before = Date.now();
    helper
      .getNode("s")
      .receive({ payload: "boiler 1 over temperature", topic: "boiler-1", alert: { level: 3 } } as never);
    const [sent] = await out.next();
    // The flow changes the msg of output 1: the summary still has the input's properties.
    sent.topic = "changed downstream";
    const [m] = await out2.next(1, 15_000);
    const p = m.payload as Summary;
    assert.ok(Date.now() - before < 60_000, "before the 1-minute timeout");
    assert.equal(p.msgid, sent.msgid);
    assert.equal(m.msgid, sent.msgid);
    assert.deepEqual(
      { total: p.total, delivered: p.delivered, failed: p.failed, pending: p.pending, complete: p.complete },
      { total: 2, delivered: [A, B], failed: [], pending: [], complete: true },
    );
    assert.deepEqual(p.batch, { index: 1, count: 1 });
    assert.match(p.sentAt, ISO);
    assert.match(p.doneAt, ISO);
    assert.equal(m.topic, "boiler-1");
    assert.deepEqual(m.alert, { level: 3 });
    assert.equal(sim.requests[0].params.needstatus, "true");
    await sleep(300); // nothing more arrives
    assert.equal(out2.msgs.length, 1);
    assert.equal(out.msgs.length, 1);
  });

  it("a platform that gives no msgid to a tracked request: a summary at once, every number pending", async () => {
    const stub = new StubServer();
    await stub.start();
    try {
      // A reply with code 0 and no msgid line: the platform will never report on it.
      stub.script(reply("20240101120000,0"));
      await loadWithCatalog(flowWith({ url: stub.url }, [sendNode()]), "en-US");
      const out = collect("out");
      const out2 = collect("out2");
      helper.getNode("s").receive({ payload: "boiler alarm", topic: "boiler-1" } as never);
      await out.next();
      const [m] = await out2.next(1, 5000);
      const p = m.payload as Summary;
      assert.equal(p.msgid, null);
      assert.deepEqual(
        { total: p.total, delivered: p.delivered, failed: p.failed, pending: p.pending, complete: p.complete },
        { total: 2, delivered: [], failed: [], pending: [A, B], complete: false },
      );
      assert.equal(m.topic, "boiler-1");
    } finally {
      await helper.unload();
      await stub.close();
    }
  });

  it("the summaries of one send are separate messages: changing one changes no other", async () => {
    const { out2 } = await start({ template: "{{recipient.name}}: boiler alarm" });
    const mobile = [
      { mobile: A, name: "甲" },
      { mobile: B, name: "乙" },
    ];
    // Two texts: two requests, two summaries of one send.
    helper.getNode("s").receive({ payload: "x", mobile, oncall: ["A", "B"] } as never);
    const [first, second] = await out2.next(2, 15_000);
    (first.oncall as string[]).shift();
    assert.deepEqual(second.oncall, ["A", "B"]);
  });

  it("one MBBLACK and one never reporting: failed and pending, emitted at the timeout, not before", async () => {
    sim.configure({ account: "demo", reportStatus: { [B]: "MBBLACK" }, withholdReports: [C] });
    const { out, out2 } = await start({ mobile: [A, B, C].join(","), trackTimeout: "0.1" });
    const before = Date.now();
    helper.getNode("s").receive({ payload: "alarm" } as never);
    await out.next();
    const [m] = await out2.next(1, 20_000);
    assert.ok(Date.now() - before >= 6000, `at the timeout, not before (${Date.now() - before} ms)`);
    const p = m.payload as Summary;
    assert.equal(p.total, 3);
    assert.deepEqual(p.delivered, [A]);
    assert.deepEqual(p.failed, [{ mobile: B, status: "MBBLACK", description: "number blacklisted" }]);
    assert.deepEqual(p.pending, [C]);
    assert.equal(p.complete, false);
    await waitFor(() => tracker().tracking("s") === 0, 5000, "the record freed");
  });

  it("reports that arrive before the send reply are kept and applied", async () => {
    // The platform pushes both reports, then answers the send 300 ms later.
    sim.configure({ account: "demo", reportFirst: true, replyDelayMs: 300 });
    const { out, out2 } = await start();
    helper.getNode("s").receive({ payload: "alarm" } as never);
    const [sent] = await out.next();
    assert.equal(sim.pushes.filter((p) => p.kind === "report" && p.ok).length, 2, "both reports came first");
    const [m] = await out2.next(1, 15_000);
    const p = m.payload as Summary;
    assert.equal(p.msgid, sent.msgid);
    assert.deepEqual(p.delivered, [A, B]);
    assert.equal(p.complete, true);
  });

  it("duplicate and late reports change nothing: the first final status wins, one summary", async () => {
    sim.configure({ account: "demo", duplicateReports: 2, reportStatus: { [B]: "MBBLACK" }, withholdReports: [C] });
    const { out, out2 } = await start({ mobile: [A, B, C].join(",") });
    helper.getNode("s").receive({ payload: "alarm" } as never);
    const [sent] = await out.next();
    await sim.idle();
    assert.equal(sim.pushes.filter((p) => p.kind === "report").length, 6, "each report three times");
    // A later, contradicting report for A (another report time: not a duplicate push).
    await push(sent.msgid, A, "UNDELIV", "2501011201");
    await sleep(100);
    assert.equal(out2.msgs.length, 0);
    await push(sent.msgid, C, "DELIVRD", "2501011202");
    const [m] = await out2.next(1, 15_000);
    const p = m.payload as Summary;
    assert.deepEqual(p.delivered, [C, A], "sorted");
    assert.deepEqual(
      p.failed.map((f) => [f.mobile, f.status]),
      [[B, "MBBLACK"]],
    );
    assert.equal(p.complete, true);
    await push(sent.msgid, C, "UNDELIV", "2501011203");
    await sleep(300);
    assert.equal(out2.msgs.length, 1, "one summary");
  });

  it("50,001 numbers: two requests, two summaries, each with its own batch and numbers", async function () {
    this.timeout(60_000);
    const numbers = Array.from({ length: 50_001 }, (_, i) => `139${String(i).padStart(8, "0")}`);
    // Only the first two numbers and the last one report: batch 2 completes at once, batch 1 at the timeout.
    const reporting = new Set([numbers[0], numbers[1], numbers[50_000]]);
    sim.configure({
      account: "demo",
      products: { "1001": 1_000_000 },
      withholdReports: numbers.filter((n) => !reporting.has(n)),
    });
    const { out, out2 } = await start({ trackTimeout: "0.1" });
    helper.getNode("s").receive({ payload: "bulk", mobile: numbers, topic: "notice" } as never);
    const sent = await out.next(2, 20_000);
    const summaries = await out2.next(2, 30_000);
    const byBatch = summaries.map((m) => m.payload as Summary).sort((a, b) => a.batch.index - b.batch.index);
    assert.deepEqual(
      byBatch.map((p) => [p.batch, p.msgid, p.total, p.delivered.length, p.pending.length, p.complete]),
      [
        [{ index: 1, count: 2 }, sent[0].msgid, 50_000, 2, 49_998, false],
        [{ index: 2, count: 2 }, sent[1].msgid, 1, 1, 0, true],
      ],
    );
    assert.deepEqual(byBatch[0].delivered, [numbers[0], numbers[1]]);
    assert.deepEqual(byBatch[1].delivered, [numbers[50_000]]);
    assert.ok(summaries.every((m) => m.topic === "notice"));
    await sleep(200);
    assert.equal(out2.msgs.length, 2);
  });

  it("a redeploy mid-tracking: the tracked send goes on and the replacing node emits its summary", async () => {
    sim.configure({ account: "demo", withholdReports: [B] });
    const { out, out2 } = await start();
    const first = helper.getNode("s");
    helper.getNode("s").receive({ payload: "alarm", topic: "pump" } as never);
    const [sent] = await out.next();
    await sim.idle();
    await waitFor(() => tracker().tracking("s") === 1, 5000, "the open send");
    await helper.setFlows(flow() as never, "full", creds() as never);
    assert.notEqual(helper.getNode("s"), first, "a new instance of the node");
    const after = collect("out2");
    // B's report comes after the redeploy: it completes the send, and the new node emits it.
    await push(sent.msgid, B);
    const [m] = await after.next(1, 15_000);
    const p = m.payload as Summary;
    assert.equal(p.msgid, sent.msgid);
    assert.deepEqual([p.delivered, p.pending, p.complete], [[A, B], [], true]);
    assert.equal(m.topic, "pump");
    await sleep(200);
    assert.equal(out2.msgs.length + after.msgs.length, 1, "emitted once, by the new node");
  });

  it("needstatus false on the msg: sent untracked, nothing on output 2", async () => {
    const { out, out2 } = await start();
    helper.getNode("s").receive({ payload: "no reports please", needstatus: false } as never);
    const [sent] = await out.next();
    assert.equal(sim.requests[0].params.needstatus, "false");
    assert.equal(sent.msgid, null);
    assert.equal(tracker().tracking("s"), 0);
    assert.deepEqual(await state().drain(trackKind("s")), [], "no deadline: nothing will come");
    await sleep(300);
    assert.equal(out2.msgs.length, 0);
  });

  it("with tracking on, reports are asked for even when the node's needstatus is off", async () => {
    const { out, out2 } = await start({ needstatus: false });
    helper.getNode("s").receive({ payload: "alarm" } as never);
    await out.next();
    assert.equal(sim.requests[0].params.needstatus, "true");
    const [m] = await out2.next(1, 15_000);
    assert.equal((m.payload as Summary).complete, true);
  });

  it("status shows the tracked count while the summary is pending", async () => {
    sim.configure({ account: "demo", withholdReports: [B] });
    const { out, out2 } = await start();
    helper.getNode("s").receive({ payload: "alarm" } as never);
    const [sent] = await out.next();
    await waitFor(() => statusTexts().at(-1) === `${sent.msgid} · 1 tracked`, 5000, "the tracked count");
    await push(sent.msgid, B);
    await out2.next(1, 15_000);
    await waitFor(() => statusTexts().at(-1) === sent.msgid, 5000, "the count gone");
  });

  it("a node removed for good drops its tracked sends with one log line", async () => {
    sim.configure({ account: "demo", withholdReports: [B] });
    const { out } = await start();
    helper.getNode("s").receive({ payload: "alarm" } as never);
    const [sent] = await out.next();
    await waitFor(() => tracker().tracking("s") === 1, 5000, "the open send");
    const without = flow().filter((n) => n.id !== "s");
    await helper.setFlows(without as never, "full", creds() as never);
    assert.deepEqual(
      logged().filter((l) => /tracked send/.test(l)),
      ["Node removed: its 1 tracked send(s) were dropped; no delivery summary will come for them"],
    );
    assert.equal(tracker().tracking("s"), 0);
    // A node of that id added later has nothing to emit: no deadline, and the last report completes nothing.
    await helper.setFlows(flow() as never, "full", creds() as never);
    const out2 = collect("out2");
    await push(sent.msgid, B);
    await sleep(300);
    assert.equal(out2.msgs.length, 0);
    assert.deepEqual(await state().drain(trackKind("s")), []);
  });

  it("tracking turned off by a redeploy drops the node's tracked sends with one log line", async () => {
    sim.configure({ account: "demo", withholdReports: [B] });
    const { out } = await start();
    helper.getNode("s").receive({ payload: "alarm" } as never);
    const [sent] = await out.next();
    await waitFor(() => tracker().tracking("s") === 1, 5000, "the open send");
    await helper.setFlows(flow({ track: false, wires: [["out"]] }) as never, "full", creds() as never);
    await waitFor(() => logged().some((l) => /tracking turned off/.test(l)), 5000, "the log line");
    assert.deepEqual(
      logged().filter((l) => /tracked send/.test(l)),
      ["Delivery tracking turned off: 1 tracked send(s) dropped; no delivery summary will come for them"],
    );
    assert.equal(tracker().tracking("s"), 0);
    await helper.setFlows(flow() as never, "full", creds() as never);
    const out2 = collect("out2");
    await push(sent.msgid, B);
    await sleep(300);
    assert.equal(out2.msgs.length, 0);
    assert.deepEqual(await state().drain(trackKind("s")), []);
  });

  for (const [lang, text] of [
    ["en-US", 'Tracking timeout "3000" is not a number of minutes above 0 and at most 2880: 60 is used'],
    ["zh-CN", "跟踪超时“3000”不是大于 0 且不超过 2880 的分钟数：将使用 60"],
  ] as const) {
    it(`an unusable trackTimeout is said at start (${lang}) and 60 minutes are used`, async () => {
      await start({ trackTimeout: "3000" }, {}, lang);
      const warned = (helper.getNode("s").warn as unknown as { args: unknown[][] }).args.map((a) => String(a[0]));
      assert.deepEqual(
        warned.filter((w) => w.includes("3000")),
        [text],
      );
      const open = trackerFor((helper.getNode("cfg") as unknown as SmsConfigNode).state);
      assert.equal(open.tracking("s"), 0);
    });
  }
});
