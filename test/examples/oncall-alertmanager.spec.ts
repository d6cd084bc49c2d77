// Example 14 end to end: a real Prometheus Alertmanager (Debian's prometheus-alertmanager) posts its
// webhooks to the flow (the test helper's Node-RED, its HTTP node server on a real port): alert
// guard → on-call → SMS at the simulator; the on-call number replies through the simulator's
// inbound SMS; Alertmanager's resolved webhook ends the alert and tells who was paged.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { closeAllStates } from "../../src/lib/state/registry";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { freePort } from "../support/packed";
import { captured, helper, sleep } from "../support/nr";
import { deployExample, readExample, sendsTo, type ExampleRun, type FlowNode, type Msg } from "../support/example";
import { waitFor } from "../support/stub";

const FILE = "14 - Alertmanager to on-call, acknowledged by reply · Alertmanager 值班告警，回复确认.json";
const ONCALL = "13800138000";
const PAGE = "【朗宇信息】[critical] DiskFull db-1: Disk / is 95% full Reply 1 to ack";

interface Alertmanager {
  url: string;
  stop(): Promise<void>;
}

/** A real Alertmanager on a free port, its one receiver the webhook `to`; stopped by its pid. */
async function startAlertmanager(to: string): Promise<Alertmanager> {
  const check = spawnSync("prometheus-alertmanager", ["--version"], { encoding: "utf8" });
  if (check.error || check.status !== 0) {
    throw new Error(
      "prometheus-alertmanager is not installed: `sudo apt-get install prometheus-alertmanager` (.ci/run does)",
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cnsms-am-"));
  const config = path.join(dir, "alertmanager.yml");
  fs.writeFileSync(
    config,
    [
      "route:",
      "  receiver: sms",
      "  group_by: [alertname, instance]",
      "  group_wait: 1s",
      "  group_interval: 1s",
      "  repeat_interval: 1h",
      "receivers:",
      "  - name: sms",
      "    webhook_configs:",
      `      - url: ${to}`,
      "        send_resolved: true",
      "",
    ].join("\n"),
  );
  const port = await freePort();
  const child: ChildProcess = spawn(
    "prometheus-alertmanager",
    [
      `--config.file=${config}`,
      `--storage.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--cluster.listen-address=",
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`alertmanager exited: ${log}`);
      return fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
    },
    15_000,
    "Alertmanager ready",
    50,
  );
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, sleep(5000)]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('examples: "14 - Alertmanager to on-call, acknowledged by reply" end to end', function () {
  this.timeout(60_000);
  let sim: Simulator;
  let server: http.Server;
  let base: string;
  let flow: FlowNode[];
  let run: ExampleRun;
  let am: Alertmanager | null = null;
  let events: Msg[];
  let failed: Msg[];

  beforeEach(async () => {
    sim = await startSimulator({ reportDelayMs: 10_000 });
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
    await am?.stop();
    am = null;
    await helper.unload();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await sim.close();
    await closeAllStates();
  });

  const named = (en: string) => flow.find((n) => String(n.name ?? "").split(" · ")[0] === en)!;
  const received = (en: string) => run.received(String(named(en).name));
  const texts = () => sendsTo(sim.requests).map((r) => `${r.params.mobile} ${r.params.msg}`);
  const eventNames = () => events.map((m) => (m.payload as { event: string }).event);
  async function reply(mobile: string, text: string): Promise<void> {
    const r = await fetch(`${sim.url}/sim/mo`, { method: "POST", body: JSON.stringify({ mobile, text }) });
    assert.equal(r.status, 200, await r.text());
  }
  /** An alert as Prometheus posts it to Alertmanager (API v2); `ended` resolves it. */
  async function alert(ended: boolean): Promise<void> {
    const now = Date.now();
    const body = [
      {
        labels: { alertname: "DiskFull", instance: "db-1", severity: "critical" },
        annotations: { summary: "Disk / is 95% full" },
        startsAt: new Date(now - 60_000).toISOString(),
        ...(ended ? { endsAt: new Date(now - 1000).toISOString() } : {}),
      },
    ];
    const r = await fetch(`${am!.url}/api/v2/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200, await r.text());
  }

  it("Alertmanager's alert pages the one on call; a reply acknowledges it (no later step); its resolve tells who was paged", async () => {
    am = await startAlertmanager(`${base}${String(named("Alertmanager webhook").url)}`);
    await alert(false);
    await waitFor(() => texts().length === 1, 15_000, "the page");
    assert.deepEqual(texts(), [`${ONCALL} ${PAGE}`]);
    // Alertmanager posting it again (a repeat, or the same alert from Prometheus) sends nothing new.
    await alert(false);
    await sleep(2500);
    assert.equal(texts().length, 1);

    await reply(ONCALL, "1");
    await waitFor(() => texts().length === 2, 8000, "the confirmation");
    assert.equal(texts()[1], `${ONCALL} 【朗宇信息】Acknowledged [critical] DiskFull db-1: Disk / is 95% full`);

    await alert(true);
    await waitFor(() => texts().length === 3, 15_000, "the resolved SMS");
    assert.equal(texts()[2], `${ONCALL} 【朗宇信息】Resolved [critical] DiskFull db-1: Disk / is 95% full`);
    assert.deepEqual(eventNames(), ["opened", "notified", "acknowledged", "resolved"]);
    assert.deepEqual(failed, []);
  });

  it("the comment's three curls (an alert, a reply through the simulator, the resolve) without Alertmanager", async () => {
    const info = String(flow.find((n) => n.type === "comment")!.info);
    const posts = [...info.matchAll(/`curl -H 'Content-Type: application\/json' -d '([^']+)' (http:\S+)`/g)];
    assert.equal(posts.length, 2, "a firing and a resolved webhook");
    const [, moBody] =
      /`curl -X POST http:\/\/127\.0\.0\.1:18080\/sim\/mo -H 'Content-Type: application\/json' -d '([^']+)'`/.exec(
        info,
      )!;
    const webhook = async (i: number) => {
      const url = new URL(posts[i][2]);
      assert.equal(url.pathname, named("Alertmanager webhook").url);
      const r = await fetch(`${base}${url.pathname}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: posts[i][1],
      });
      assert.equal(r.status, 200);
    };
    await webhook(0);
    await waitFor(() => texts().length === 1, 8000, "the page");
    assert.equal(texts()[0], `${ONCALL} ${PAGE}`);
    const mo = JSON.parse(moBody) as { moUrl: string };
    assert.equal(new URL(mo.moUrl).pathname, named("replies").path);
    const r = await fetch(`${sim.url}/sim/mo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...mo, moUrl: `${base}${new URL(mo.moUrl).pathname}` }),
    });
    assert.equal(r.status, 200, await r.text());
    await waitFor(() => texts().length === 2, 8000, "the confirmation");
    await webhook(1);
    await waitFor(() => texts().length === 3, 8000, "the resolved SMS");
    assert.match(texts()[2], /Resolved \[critical\] DiskFull db-1/);
    assert.ok(
      info.includes("`[critical] DiskFull db-1: Disk / is 95% full Reply 1 to ack`"),
      "the comment shows the page",
    );
  });
});
