// Example 10 end to end: Grafana alerting webhook bodies as Grafana posts them (the webhook
// notifier's JSON, version "1": receiver, status, orgId, alerts[] with values / valueString and the
// Grafana URLs, groupLabels ... title, state, message) posted to the flow over Node-RED's HTTP node
// server, the account pointed at the simulator, the SMS checked at the simulator.
import assert from "node:assert/strict";
import supertest from "supertest";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { captured, helper, sleep } from "../support/nr";
import {
  deployExample,
  nodeNamed,
  readExample,
  sendsTo,
  type ExampleRun,
  type FlowNode,
  type Msg,
} from "../support/example";
import { waitFor } from "../support/stub";

const FILE = "10 - Grafana alert webhook to SMS · Grafana 告警发短信.json";

const GRAFANA = "https://grafana.example.com/";
const NEVER = "0001-01-01T00:00:00Z";

/** One alert as Grafana 11/12 sends it: values, and a valueString giving each expression's type. */
function cpuAlert(status: "firing" | "resolved", value: number) {
  const labels = { alertname: "HighCPU", grafana_folder: "Servers", instance: "web-1:9100", job: "node" };
  const l = "labels={instance=web-1:9100, job=node}";
  return {
    status,
    labels,
    annotations: { summary: "CPU above 90% for 5 minutes", runbook_url: "https://wiki.example.com/cpu" },
    startsAt: "2025-01-15T02:00:00Z",
    endsAt: status === "resolved" ? "2025-01-15T02:20:00Z" : NEVER,
    generatorURL: `${GRAFANA}alerting/grafana/cpu-high/view?orgId=1`,
    fingerprint: "1a30ba71cca2921f",
    silenceURL: `${GRAFANA}alerting/silence/new?alertmanager=grafana&matcher=__alert_rule_uid__%3Dcpu-high&matcher=instance%3Dweb-1%3A9100&matcher=job%3Dnode&orgId=1`,
    dashboardURL: `${GRAFANA}d/node-exporter?from=1736902800000&orgId=1&to=1736907600000`,
    panelURL: `${GRAFANA}d/node-exporter?from=1736902800000&orgId=1&to=1736907600000&viewPanel=3`,
    values: { A: value, B: value, C: status === "firing" ? 1 : 0 },
    valueString:
      `[ var='A' ${l} type='query' value=${value} ], [ var='B' ${l} type='reduce' value=${value} ], ` +
      `[ var='C' ${l} type='threshold' value=${status === "firing" ? 1 : 0} ]`,
    orgId: 1,
  };
}

function diskAlert(status: "firing" | "resolved", value: number) {
  const l = "labels={device=/dev/sda1, instance=db-1:9100, mountpoint=/}";
  return {
    ...cpuAlert(status, 0),
    labels: { alertname: "DiskFull", grafana_folder: "Servers", instance: "db-1:9100", mountpoint: "/" },
    annotations: { summary: "Disk / is almost full" },
    fingerprint: "c6eadffa33fcdf37",
    dashboardURL: "",
    panelURL: "",
    values: { A: value, C: status === "firing" ? 1 : 0 },
    valueString: `[ var='A' ${l} type='query' value=${value} ], [ var='C' ${l} type='threshold' value=${status === "firing" ? 1 : 0} ]`,
  };
}

/** A whole webhook as Grafana's webhook notifier posts it for one alert group. */
function webhook(status: "firing" | "resolved", alerts: Msg[]) {
  const n = alerts.length;
  return {
    receiver: "SMS",
    status,
    orgId: 1,
    alerts,
    groupLabels: { grafana_folder: "Servers" },
    commonLabels: { grafana_folder: "Servers" },
    commonAnnotations: {},
    externalURL: GRAFANA,
    version: "1",
    groupKey: '{}/{__grafana_receiver__="SMS"}:{grafana_folder="Servers"}',
    truncatedAlerts: 0,
    title: `[${status.toUpperCase()}:${n}]  (Servers)`,
    state: status === "firing" ? "alerting" : "ok",
    message: `**${status === "firing" ? "Firing" : "Resolved"}**\n\nValue: A=...\nLabels:\n - alertname = HighCPU\n`,
  };
}

/** The example body of Grafana's webhook notifier documentation: values only (no types), no instance. */
const documented = {
  receiver: "My Super Webhook",
  status: "firing",
  orgId: 1,
  alerts: [
    {
      status: "firing",
      labels: { alertname: "High memory usage", team: "blue", zone: "us-1" },
      annotations: {
        description: "The system has high memory usage",
        runbook_url: "https://myrunbook.com/runbook/1234",
        summary: "This alert was triggered for zone us-1",
      },
      startsAt: "2021-10-12T09:51:03.157076+02:00",
      endsAt: NEVER,
      generatorURL: "https://play.grafana.org/alerting/1afz29v7z/edit",
      fingerprint: "c6eadffa33fcdf37",
      silenceURL:
        "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
      dashboardURL: "",
      panelURL: "",
      values: { B: 44.23943737541908, C: 1 },
    },
  ],
  groupLabels: {},
  commonLabels: { team: "blue" },
  commonAnnotations: {},
  externalURL: "https://play.grafana.org/",
  version: "1",
  groupKey: "{}:{}",
  truncatedAlerts: 0,
  title: "[FIRING:1]  (blue)",
  state: "alerting",
  message: "**Firing**\n\nLabels:\n - alertname = T2\n",
};

/** What the contact point's *Test* button posts: Grafana's test alert (valueString without var or type). */
const testNotification = webhook("firing", [
  {
    status: "firing",
    labels: { alertname: "TestAlert", instance: "Grafana" },
    annotations: { summary: "Notification test" },
    startsAt: "2025-01-15T02:00:00Z",
    endsAt: NEVER,
    generatorURL: "",
    fingerprint: "57c6d9296de2ad39",
    silenceURL: `${GRAFANA}alerting/silence/new?alertmanager=grafana&matcher=alertname%3DTestAlert&matcher=instance%3DGrafana`,
    dashboardURL: "",
    panelURL: "",
    values: null,
    valueString: "[ metric='foo' labels={instance=bar} value=10 ]",
  },
]);

describe('examples: "10 - Grafana alert webhook to SMS" end to end', function () {
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
  const texts = () => sends().map((r) => r.params.msg);
  const post = (body: unknown) =>
    supertest(captured.httpNode!)
      .post(named("Grafana webhook").url as string)
      .set("content-type", "application/json")
      .send(JSON.stringify(body))
      .expect(200, "OK");

  it("a firing webhook: one SMS per alert with its state, name and the value its threshold compared", async () => {
    const failed = received("failed");
    await post(webhook("firing", [cpuAlert("firing", 97.31234), diskAlert("firing", 95.5)]));
    await waitFor(() => sends().length === 2, 8000, "two SMS");
    assert.deepEqual(texts().sort(), [
      "【朗宇信息】[FIRING] DiskFull db-1:9100, value 95.5: Disk / is almost full",
      "【朗宇信息】[FIRING] HighCPU web-1:9100, value 97.31: CPU above 90% for 5 minutes",
    ]);
    for (const r of sends()) assert.equal(r.params.mobile, "13800138000");
    await sleep(100); // nothing more arrives
    assert.equal(sends().length, 2);
    assert.deepEqual(failed, []);
  });

  it("the resolved webhook of the same alerts: one SMS each, [RESOLVED] with the value at the end", async () => {
    await post(webhook("firing", [cpuAlert("firing", 97.3), diskAlert("firing", 95.5)]));
    await waitFor(() => sends().length === 2, 8000, "the firing SMS");
    await post(webhook("resolved", [cpuAlert("resolved", 41.2), diskAlert("resolved", 70)]));
    await waitFor(() => sends().length === 4, 8000, "the resolved SMS");
    assert.deepEqual(texts().slice(2).sort(), [
      "【朗宇信息】[RESOLVED] DiskFull db-1:9100, value 70: Disk / is almost full",
      "【朗宇信息】[RESOLVED] HighCPU web-1:9100, value 41.2: CPU above 90% for 5 minutes",
    ]);
  });

  it("a mixed group (one alert firing, one resolved): each SMS says its own alert's state", async () => {
    await post({ ...webhook("firing", [cpuAlert("firing", 93), diskAlert("resolved", 60)]) });
    await waitFor(() => sends().length === 2, 8000, "two SMS");
    assert.deepEqual(texts().sort(), [
      "【朗宇信息】[FIRING] HighCPU web-1:9100, value 93: CPU above 90% for 5 minutes",
      "【朗宇信息】[RESOLVED] DiskFull db-1:9100, value 60: Disk / is almost full",
    ]);
  });

  it("Grafana's documented body (values without types): every value shows, rounded", async () => {
    await post(documented);
    await waitFor(() => sends().length === 1, 8000, "the SMS");
    assert.equal(
      texts()[0],
      "【朗宇信息】[FIRING] High memory usage, value B=44.24 C=1: This alert was triggered for zone us-1",
    );
  });

  it("the contact point's Test button (Grafana's test alert): one SMS with its value", async () => {
    await post(testNotification);
    await waitFor(() => sends().length === 1, 8000, "the SMS");
    assert.equal(texts()[0], "【朗宇信息】[FIRING] TestAlert Grafana, value 10: Notification test");
  });

  it("a webhook with no alerts is answered 200 and sends nothing", async () => {
    await post({ ...webhook("firing", []), alerts: [] });
    await sleep(200); // nothing arrives
    assert.equal(sends().length, 0);
  });

  it("the comment's curl body sends the SMS the comment shows", async () => {
    const comment = flow.find((n) => n.type === "comment")!;
    const info = comment.info as string;
    const [, body, url] = /`curl -H 'Content-Type: application\/json' -d '([^']+)' (http:\S+)`/.exec(info)!;
    assert.equal(new URL(url).pathname, named("Grafana webhook").url);
    await post(JSON.parse(body));
    await waitFor(() => sends().length === 1, 8000, "the SMS");
    assert.equal(texts()[0], "【朗宇信息】[FIRING] HighCPU web-1, value 97.3: CPU above 90%");
    assert.ok(info.includes("`[FIRING] HighCPU web-1, value 97.3: CPU above 90%`"), "the comment shows it");
  });
});
