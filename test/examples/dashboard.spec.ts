// Example 13 without a browser: the flow's counting and its balance, in the test helper's Node-RED
// with Dashboard 2.0's own nodes loaded (they register there like any node module; the page itself
// is tested in the real browser by test/editor/dashboard.e2e.ts). Imported as is, except what a test
// may set on import: the account points at the simulator, and 'send alert (tracked)' has a timeout
// of 0.05 min (3 s) so the summaries of numbers that never report come within the test.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { ALL_NODES, captured, coreNode, helper, sleep } from "../support/nr";
import { waitFor } from "../support/stub";

const FILE = path.join(
  __dirname,
  "../../../examples/Needs Dashboard 2.0 · 需要 Dashboard 2.0",
  "13 - Delivery dashboard (needs Dashboard 2.0) · 送达仪表盘（需要 Dashboard 2.0）.json",
);
const CORE = [
  "common/20-inject.js",
  "common/21-debug.js",
  "common/90-comment.js",
  "common/60-link.js",
  // the module list that names the package the example needs (Dashboard 2.0)
  "common/91-global-config.js",
  "function/10-function.js",
  "function/15-change.js",
].map(coreNode);
/** The Dashboard 2.0 node types the example uses (a devDependency, see package.json). */
const DASHBOARD = [
  "config/ui_base.js",
  "config/ui_page.js",
  "config/ui_group.js",
  "config/ui_theme.js",
  "widgets/ui_chart.js",
  "widgets/ui_text.js",
  "widgets/ui_button.js",
  // eslint-disable-next-line @typescript-eslint/no-require-imports
].map((f) => require(`@flowfuse/node-red-dashboard/nodes/${f}`) as unknown);

type FlowNode = Record<string, unknown> & { id: string; type: string };
type Msg = Record<string, unknown>;
type Point = { hour: string; series: string; count: number };
type Summary = { total: number; delivered: string[]; failed: unknown[]; pending: string[]; sentAt: string };
type Counts = { sent: number; delivered: number; failed: number; pending: number };

const [OK1, OK2, FAILS, SILENT, OK3] = ["13800138000", "13900139000", "13700137000", "13600136000", "13500135000"];
const HOUR = 3600_000;

/** "14:00": the label of the hour (this process's clock) that `t` falls in. */
function hourLabel(t: number): string {
  return `${String(new Date(t).getHours()).padStart(2, "0")}:00`;
}

/** The chart's points as counts per hour label, in the order the chart gets them. */
function perHour(points: Point[]): Map<string, Counts> {
  const byHour = new Map<string, Counts>();
  for (const p of points) {
    const c = byHour.get(p.hour) ?? { sent: 0, delivered: 0, failed: 0, pending: 0 };
    c[p.series.split(" ")[0] as keyof Counts] = p.count;
    byHour.set(p.hour, c);
  }
  return byHour;
}

describe('examples: "13 - Delivery dashboard" (the flow, without a browser)', function () {
  this.timeout(30_000);
  let sim: Simulator;
  let server: http.Server | undefined;
  let flow: FlowNode[];

  async function start(products?: Record<string, number>): Promise<void> {
    sim = await startSimulator({
      reportDelayMs: 20,
      accounts: [{ account: "demo", password: "demo", ...(products ? { products } : {}) }],
    });
    flow = JSON.parse(fs.readFileSync(FILE, "utf8")) as FlowNode[];
    const cfg = flow.find((n) => n.type === "sms-config")!;
    cfg.url = sim.url;
    named("send alert (tracked)").trackTimeout = "0.05";
    // Loaded empty, then deployed as a user's import would be (see test/examples.spec.ts).
    await helper.load([...ALL_NODES, ...CORE, ...DASHBOARD] as never, [{ id: "empty", type: "tab" }] as never);
    await helper.setFlows(flow as never, "full", { [cfg.id]: { account: "demo", password: "demo" } } as never);
    const listening = http.createServer(captured.httpNode!);
    server = listening;
    await new Promise<void>((r) => listening.listen(0, "127.0.0.1", r));
    sim.reportUrl = `http://127.0.0.1:${(listening.address() as AddressInfo).port}${named("delivery reports").path as string}`;
  }
  afterEach(async () => {
    await helper.unload();
    server?.closeAllConnections();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
    await sim?.close();
  });

  const named = (name: string) => {
    // A node is named "English · 中文"; the tests name it by its English part.
    const n = flow.find((x) => String(x.name ?? "").split(" · ")[0] === name);
    assert.ok(n, `a node named '${name}'`);
    return n;
  };
  const received = (name: string) => {
    const msgs: Msg[] = [];
    helper.getNode(named(name).id).on("input", (m: Msg) => msgs.push(m));
    return msgs;
  };
  const last = (msgs: Msg[]) => msgs[msgs.length - 1];
  const sends = () => sim.requests.filter((r) => r.path.endsWith("/HttpBatchSendSM"));

  it("a tracked send counts at once as sent and pending; its summaries move the numbers to delivered and failed in the hour they were sent", async () => {
    await start();
    // The simulator set up as the comment's curl says: one number fails, one never reports.
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
    assert.deepEqual(sim.account("demo")!.reportStatus, { [FAILS]: "UNDELIV" });
    assert.deepEqual(sim.account("demo")!.withholdReports, [SILENT]);

    const counted = received("count per hour");
    const chart = received("SMS per hour");
    const totals = received("totals");
    const failed = received("failed");
    helper.getNode(named("test alert").id).receive({} as never);
    await waitFor(() => chart.length === 1, 8000, "the chart's first update");
    assert.equal(sends().length, 1);
    assert.equal(sends()[0].params.mobile, [OK1, OK2, FAILS, SILENT, OK3].join(","));
    // Output 1: sent, and nothing reported yet, so all five are pending.
    assert.deepEqual(
      [...perHour(last(chart).payload as Point[]).values()],
      [{ sent: 5, delivered: 0, failed: 0, pending: 5 }],
    );
    assert.equal(last(totals).payload, "5 sent 已发送 · 0 delivered 已送达 · 0 failed 失败 · 5 pending 待回执");

    // The summary comes when the silent number's 3 s are over.
    await waitFor(() => chart.length === 2, 15_000, "the chart after the delivery summary");
    const summary = counted.map((m) => m.payload as Summary).find((p) => Array.isArray(p.delivered))!;
    assert.deepEqual(summary.delivered, [OK3, OK1, OK2].sort());
    assert.deepEqual(summary.pending, [SILENT]);
    const byHour = perHour(last(chart).payload as Point[]);
    // Delivered and failed count beside their send, in the hour of the summary's sentAt.
    assert.deepEqual([...byHour.keys()], [hourLabel(Date.parse(summary.sentAt))]);
    assert.deepEqual([...byHour.values()][0], { sent: 5, delivered: 3, failed: 1, pending: 1 });
    assert.equal(last(totals).payload, "5 sent 已发送 · 3 delivered 已送达 · 1 failed 失败 · 1 pending 待回执");

    // A second send adds to the same hour.
    helper.getNode(named("test alert").id).receive({} as never);
    await waitFor(() => chart.length === 4, 15_000, "the second send and its summary");
    assert.equal(last(totals).payload, "10 sent 已发送 · 6 delivered 已送达 · 2 failed 失败 · 2 pending 待回执");
    assert.deepEqual(failed, []);
  });

  it("hours: a summary counts in the hour of its sentAt, hours older than 24 are dropped, other messages are not counted", async () => {
    await start();
    const chart = received("SMS per hour");
    const count = helper.getNode(named("count per hour").id);
    const now = Date.now();
    const iso = (t: number) => new Date(t).toISOString();
    const summary = (t: number, delivered: string[], failed: string[], pending: string[]) => ({
      payload: {
        msgid: "m",
        total: delivered.length + failed.length + pending.length,
        delivered,
        failed: failed.map((mobile) => ({ mobile, status: "UNDELIV", description: "" })),
        pending,
        complete: pending.length === 0,
        sentAt: iso(t),
        doneAt: iso(now),
        batch: { index: 1, count: 1 },
      },
    });
    // Sent two hours ago (counted then: only its summary reaches this flow now), and 25 hours ago.
    count.receive(summary(now - 2 * HOUR, [OK1, OK2], [FAILS], []) as never);
    count.receive(summary(now - 25 * HOUR, [OK1], [], []) as never);
    // Output 1 of a send now, and its summary.
    count.receive({ payload: { code: 0, ok: true, msgid: "n", mobiles: 3, segments: 1 } } as never);
    count.receive(summary(now, [OK1], [], [SILENT, OK3]) as never);
    // Not from a tracked sms-send: a failure payload and a plain string change nothing.
    count.receive({ payload: { code: 107, ok: false, mobiles: 2 } } as never);
    count.receive({ payload: "hello" } as never);
    await waitFor(() => chart.length === 4, 5000, "four chart updates");
    await sleep(100); // nothing more: the last two were not counted
    assert.equal(chart.length, 4);
    const byHour = perHour(last(chart).payload as Point[]);
    assert.deepEqual(
      [...byHour.entries()],
      [
        [hourLabel(now - 2 * HOUR), { sent: 0, delivered: 2, failed: 1, pending: 0 }],
        [hourLabel(now), { sent: 3, delivered: 1, failed: 0, pending: 2 }],
      ],
    );
  });

  it("'count these sends' counts a tracked send of another flow", async () => {
    await start();
    const totals = received("totals");
    helper
      .getNode(named("count these sends").id)
      .receive({ payload: { code: 0, ok: true, msgid: "x", mobiles: 7, segments: 1 } } as never);
    await waitFor(() => totals.length === 1, 5000, "the totals");
    assert.equal(totals[0].payload, "7 sent 已发送 · 0 delivered 已送达 · 0 failed 失败 · 7 pending 待回执");
  });

  it("'balance' shows the simulator's balance, in all and per product, a second after the deploy", async () => {
    await start({ "1001": 8765, "1002": 432 });
    const balance = received("balance");
    await waitFor(() => balance.length === 1, 8000, "the balance");
    assert.equal(balance[0].payload, "9197 (1001: 8765, 1002: 432)");
    const queries = sim.requests.filter((r) => r.path.endsWith("/QueryBalance"));
    assert.equal(queries.length, 1);
    // 'refresh balance' asks again (the dashboard's button; its click is tested in the browser).
    const button = named("refresh balance");
    assert.deepEqual(button.wires, [[named("balance query").id]]);
  });
});
