// sms-guard across real Node-RED processes (the packed package, as users install it) on one real
// Redis (SPEC B6, B8): instances share decisions, and held alerts survive a restart. Alerts come
// in over HTTP (http in → sms-guard → sms-send), the simulator is the platform.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { formatInstant } from "../../src/lib/platform/time";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { startPackedNodeRed, type RunningNodeRed } from "../support/packed";
import { startRedis, type RedisServer } from "../support/redis";
import { sleep } from "../support/nr";
import { waitFor } from "../support/stub";

type Answer = { held?: true; allowed?: number; reasons?: Record<string, string>; error?: string };
const MOBILE = "13800138000";

/**
 * The flow both instances run (same ids: one cluster). POST /guard-<id> {topic, text} answers
 * with the guard's decision once it is made (a Complete node on the guard), so a test knows
 * what each instance decided without waiting for anything else.
 */
function guardFlow(opts: { id: string; sim: string; redis: string; hours?: string }): object[] {
  const z = `tab-${opts.id}`;
  const g = `guard-${opts.id}`;
  return [
    { id: z, type: "tab", label: opts.id },
    {
      id: `cfg-${opts.id}`,
      type: "sms-config",
      name: "sim",
      url: opts.sim,
      signature: "【朗宇信息】",
      rate: "10",
      tz: "+08:00",
      store: "redis",
      redisUrl: opts.redis,
      redisPrefix: "multi:",
      credentials: { account: "demo", password: "demo" },
    },
    { id: `in-${opts.id}`, type: "http in", z, url: `/${g}`, method: "post", wires: [[`body-${opts.id}`]] },
    {
      id: `body-${opts.id}`,
      type: "function",
      z,
      func: "msg.topic = msg.payload.topic; msg.payload = msg.payload.text; return msg;",
      outputs: 1,
      wires: [[g]],
    },
    {
      id: g,
      type: "sms-guard",
      z,
      config: `cfg-${opts.id}`,
      mobile: MOBILE,
      key: "topic",
      window: "30",
      dailyCap: "0",
      hours: opts.hours ?? "",
      outside: "hold",
      holdMax: "1000",
      wires: [[`send-${opts.id}`], []],
    },
    { id: `send-${opts.id}`, type: "sms-send", z, config: `cfg-${opts.id}`, mobile: "", wires: [[]] },
    { id: `done-${opts.id}`, type: "complete", z, scope: [g], wires: [[`answer-${opts.id}`]] },
    { id: `catch-${opts.id}`, type: "catch", z, scope: [g], wires: [[`answer-${opts.id}`]] },
    {
      id: `answer-${opts.id}`,
      type: "function",
      z,
      func: "msg.payload = msg.error ? { error: msg.error.message } : msg.guard ? { allowed: msg.guard.allowed, reasons: msg.guard.reasons } : { held: true };\nreturn msg;",
      outputs: 1,
      wires: [[`reply-${opts.id}`]],
    },
    { id: `reply-${opts.id}`, type: "http response", z, statusCode: "200", wires: [] },
  ];
}

async function deploy(nr: RunningNodeRed, flow: object[]): Promise<void> {
  const res = await fetch(`${nr.url}/flows`, {
    method: "POST",
    headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full", "Node-RED-API-Version": "v1" },
    body: JSON.stringify(flow),
  });
  assert.ok(res.ok, `deploy: HTTP ${res.status} ${await res.text()}`);
}

/** Posts an alert and returns the guard's decision; retries while the route is not there yet (a start). */
async function alert(nr: RunningNodeRed, id: string, topic: string, text: string): Promise<Answer> {
  const until = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${nr.url}/guard-${id}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topic, text }),
      signal: AbortSignal.timeout(15_000),
    });
    if (res.ok) return (await res.json()) as Answer;
    if (res.status !== 404 || Date.now() > until) throw new Error(`POST /guard-${id}: HTTP ${res.status}`);
    await sleep(100);
  }
}

/** "HH:MM" in +08:00, `minutes` from now. */
function localTime(minutes: number): string {
  return formatInstant(Date.now() + minutes * 60_000, 480).slice(11, 16);
}

describe("multi: sms-guard in two Node-RED processes on one Redis", function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let sim: Simulator;
  let a: RunningNodeRed;
  let b: RunningNodeRed;

  before(async function () {
    this.timeout(300_000);
    redis = await startRedis();
    sim = await startSimulator({ reportDelayMs: 600_000 });
    a = await startPackedNodeRed({ shareInstall: true });
    b = await startPackedNodeRed({ shareInstall: true });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sim?.close();
    await redis?.stop();
  });

  /** Waits for a condition, at most `ms`. */
  const until = (cond: () => Promise<boolean>, ms = 15_000) => waitFor(cond, ms, cond.toString(), 50);
  /** The Redis keys (of this test's prefix) whose name ends with `suffix`. */
  async function keys(suffix: string): Promise<string[]> {
    return (await redis.command("KEYS", "multi:*")).split("\r\n").filter((l) => l.endsWith(suffix));
  }

  const sent = (prefix: string) =>
    sim.requests.filter((r) => r.path.endsWith("/HttpBatchSendSM") && r.params.msg?.includes(prefix));
  async function smsCount(prefix: string, n: number, ms = 15_000): Promise<void> {
    const until = Date.now() + ms;
    while (sent(prefix).length < n) {
      if (Date.now() > until) throw new Error(`expected ${n} SMS "${prefix}…", got ${sent(prefix).length}`);
      await sleep(50);
    }
  }

  it("the same alert reaching both instances at once passes once: one SMS at the simulator", async () => {
    const flow = guardFlow({ id: "shared", sim: sim.url, redis: redis.url });
    await Promise.all([deploy(a, flow), deploy(b, flow)]);
    // Both account states on Redis: an alert decided on A is a repeat on B. Until then (a state
    // still connecting decides locally, SPEC B6) probe again with another alert.
    for (let i = 0; ; i++) {
      assert.ok(i < 100, "the two instances never shared a decision");
      const first = await alert(a, "shared", `probe-${i}`, `probe ${i}`);
      const second = await alert(b, "shared", `probe-${i}`, `probe ${i}`);
      if (first.allowed === 1 && second.reasons?.[MOBILE] === "window") break;
      await sleep(100);
    }
    for (let i = 0; i < 5; i++) {
      const answers = await Promise.all([
        alert(a, "shared", `disk-${i}`, `ALERT disk ${i} full`),
        alert(b, "shared", `disk-${i}`, `ALERT disk ${i} full`),
      ]);
      const allowed = answers.filter((x) => x.allowed === 1);
      const suppressed = answers.filter((x) => x.reasons?.[MOBILE] === "window");
      assert.equal(allowed.length, 1, JSON.stringify(answers));
      assert.equal(suppressed.length, 1, JSON.stringify(answers));
    }
    await smsCount("ALERT disk", 5);
    await sleep(300); // nothing more arrives (every decision is known already)
    assert.deepEqual(
      sent("ALERT disk")
        .map((r) => r.params.msg)
        .sort(),
      [0, 1, 2, 3, 4].map((i) => `【朗宇信息】ALERT disk ${i} full`),
    );
  });

  it("held alerts survive a restart and are released after it, in order", async () => {
    // Hours that begin in six hours: the alerts are held now.
    const later = `${localTime(360)}-${localTime(420)}`;
    await deploy(a, guardFlow({ id: "night", sim: sim.url, redis: redis.url, hours: later }));
    // The node's start has reached Redis (its release deadline is there), so the holds go to Redis
    // and not to a state still connecting, which would keep them in this process (SPEC B6).
    await until(async () => {
      const [due] = await keys(":due:guard:guard-night");
      return !!due && (await redis.command("ZRANGE", due, "0", "-1")).includes("release");
    });
    for (const i of [0, 1, 2]) assert.deepEqual(await alert(a, "night", `held-${i}`, `HELD ${i}`), { held: true });
    const held = await keys("guard:guard-night:held");
    assert.equal(held.length, 1);
    assert.equal(await redis.command("LLEN", held[0]), ":3\r\n", "held in Redis");
    assert.equal(sent("HELD").length, 0);

    await a.stop();
    // While it is down, the sending hours are changed to have begun a minute ago (in the flow file,
    // as a deploy would save them): the restarted node finds held alerts whose hours are here.
    const file = path.join(a.userDir, "flows.json");
    const flows = JSON.parse(fs.readFileSync(file, "utf8")) as Array<Record<string, unknown>>;
    const guard = flows.find((n) => n.type === "sms-guard")!;
    guard.hours = `${localTime(-1)}-${localTime(360)}`;
    fs.writeFileSync(file, JSON.stringify(flows));
    a = await startPackedNodeRed({ userDir: a.userDir, port: a.port });

    await smsCount("HELD", 3, 30_000);
    assert.deepEqual(
      sent("HELD").map((r) => r.params.msg),
      ["【朗宇信息】HELD 0", "【朗宇信息】HELD 1", "【朗宇信息】HELD 2"],
    );
    await sleep(300); // released once
    assert.equal(sent("HELD").length, 3);
  });
});
