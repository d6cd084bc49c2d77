// Example 07 end to end: real Alertmanager v4 webhook bodies posted to the flow (in the test
// helper's Node-RED, over its HTTP node server), the account pointed at the simulator.
import assert from "node:assert/strict";
import supertest from "supertest";
import { closeAllStates } from "../../src/lib/state/registry";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { captured, helper, sleep } from "../support/nr";
import { deployExample, nodeNamed, readExample, sendsTo, type ExampleRun, type FlowNode } from "../support/example";
import { waitFor } from "../support/stub";

const FILE = "07 - Alertmanager webhook to guard to SMS · Alertmanager 告警经收敛发短信.json";

const startsAt = "2025-01-15T02:00:00.000Z";
const alerts = [
  {
    status: "firing",
    labels: { alertname: "HighCPU", instance: "web-1:9100", job: "node", severity: "critical" },
    annotations: { summary: "CPU above 90% for 5 minutes", description: "web-1:9100 CPU is 97%" },
    startsAt,
    endsAt: "0001-01-01T00:00:00Z",
    generatorURL: "http://prometheus:9090/graph?g0.expr=cpu_busy+%3E+0.9&g0.tab=1",
    fingerprint: "1a30ba71cca2921f",
  },
  {
    status: "firing",
    labels: { alertname: "DiskFull", instance: "db-1:9100", job: "node", severity: "warning", mountpoint: "/" },
    annotations: { summary: "Disk / is 95% full" },
    startsAt,
    endsAt: "0001-01-01T00:00:00Z",
    generatorURL: "http://prometheus:9090/graph?g0.expr=disk_used+%3E+0.95&g0.tab=1",
    fingerprint: "c6eadffa33fcdf37",
  },
];

/** A webhook body as Alertmanager (webhook_config, version 4) posts it for one group. */
function webhook(status: "firing" | "resolved") {
  const endsAt = status === "resolved" ? "2025-01-15T02:20:00.000Z" : "0001-01-01T00:00:00Z";
  return {
    receiver: "sms",
    status,
    alerts: alerts.map((a) => ({ ...a, status, endsAt })),
    groupLabels: { job: "node" },
    commonLabels: { job: "node" },
    commonAnnotations: {},
    externalURL: "http://alertmanager:9093",
    version: "4",
    groupKey: '{}:{job="node"}',
    truncatedAlerts: 0,
  };
}

describe('examples: "07 - Alertmanager webhook to guard to SMS" end to end', function () {
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
    await closeAllStates();
  });

  // A node is named "English · 中文"; the tests name it by its English part.
  const full = (en: string) => String(flow.find((n) => String(n.name ?? "").split(" · ")[0] === en)?.name ?? en);
  const named = (name: string) => nodeNamed(flow, full(name));
  const received = (name: string) => run.received(full(name));
  const sends = () => sendsTo(sim.requests);
  const post = (body: unknown) =>
    supertest(captured.httpNode!)
      .post(named("Alertmanager webhook").url as string)
      .set("content-type", "application/json")
      .send(JSON.stringify(body))
      .expect(200, "OK");

  it("one SMS per firing alert; the same webhook again is suppressed; resolved sends nothing", async () => {
    const suppressed = received("suppressed");
    const failed = received("failed");
    await post(webhook("firing"));
    await waitFor(() => sends().length === 2, 8000, "two SMS");
    assert.deepEqual(
      sends()
        .map((r) => r.params.msg)
        .sort(),
      [
        "【朗宇信息】[critical] HighCPU web-1:9100: CPU above 90% for 5 minutes",
        "【朗宇信息】[warning] DiskFull db-1:9100: Disk / is 95% full",
      ],
    );
    for (const r of sends()) assert.equal(r.params.mobile, "13800138000");

    // Alertmanager sends the whole group again (an alert joined, or repeat_interval).
    await post(webhook("firing"));
    await waitFor(() => suppressed.length === 2, 5000, "two suppressed");
    assert.deepEqual(suppressed.map((m) => [m.topic, (m.guard as { reasons: unknown }).reasons]).sort(), [
      ["DiskFull db-1:9100", { "13800138000": "window" }],
      ["HighCPU web-1:9100", { "13800138000": "window" }],
    ]);

    await post(webhook("resolved"));
    await sleep(200); // nothing more arrives
    assert.equal(sends().length, 2, "repeats and resolved alerts cost no SMS");
    assert.equal(suppressed.length, 2);
    assert.deepEqual(failed, []);
  });

  it("the comment's curl body sends one SMS, and the second run is suppressed", async () => {
    const comment = flow.find((n) => n.type === "comment")!;
    const [, body, url] = /`curl -H 'Content-Type: application\/json' -d '([^']+)' (http:\S+)`/.exec(
      comment.info as string,
    )!;
    assert.equal(new URL(url).pathname, named("Alertmanager webhook").url);
    const suppressed = received("suppressed");
    await post(JSON.parse(body));
    await waitFor(() => sends().length === 1, 8000, "the SMS");
    assert.equal(sends()[0].params.msg, "【朗宇信息】[firing] HighCPU web-1: CPU above 90%");
    assert.ok((comment.info as string).includes("`[firing] HighCPU web-1: CPU above 90%`"), "the comment shows it");
    await post(JSON.parse(body));
    await waitFor(() => suppressed.length === 1, 5000, "suppressed");
    await sleep(100);
    assert.equal(sends().length, 1);
  });
});
