// sms-oncall across real Node-RED processes (the packed package, as users install it) on one real
// Redis (SPEC B6, B6a, B11): a reply taken by one instance acknowledges an alert opened on the
// other, a restart resumes the chain, and a Redis outage mid-chain. Alerts come in over HTTP
// (http in → sms-oncall → sms-send), the simulator is the platform and sends the replies.
// Waits are real: a step waits at least a minute (SPEC B11), so each test takes a little over one.
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { startPackedNodeRed, type RunningNodeRed } from "../support/packed";
import { startRedis, type RedisServer } from "../support/redis";
import { sleep } from "../support/nr";
import { waitFor } from "../support/stub";

const ONCALL = "13800138000";
const NEXT = "13900139000";
// The outage test's rota: numbers no earlier alert holds a code on.
const FIRST = "13700137000";
const SECOND = "13600136000";
const PREFIX = "oncall-multi:";
const STEP_MS = 60_000;

/** The flow (same ids on every instance that runs it). POST /alert-<id> {topic, text, status?} answers once decided. */
function oncallFlow(o: { id: string; sim: string; redis: string; rota?: string[] }): object[] {
  const z = `tab-${o.id}`;
  const cfg = `cfg-${o.id}`;
  const oc = `oncall-${o.id}`;
  return [
    { id: z, type: "tab", label: o.id },
    {
      id: cfg,
      type: "sms-config",
      name: "sim",
      url: o.sim,
      rate: "0",
      tz: "+08:00",
      store: "redis",
      redisUrl: o.redis,
      redisPrefix: PREFIX,
      credentials: { account: "demo", password: "demo" },
    },
    { id: `in-${o.id}`, type: "http in", z, url: `/alert-${o.id}`, method: "post", wires: [[`body-${o.id}`]] },
    {
      id: `body-${o.id}`,
      type: "function",
      z,
      func: "msg.topic = msg.payload.topic; if (msg.payload.status) msg.status = msg.payload.status; msg.payload = msg.payload.text; return msg;",
      outputs: 1,
      wires: [[oc]],
    },
    {
      id: oc,
      type: "sms-oncall",
      z,
      config: cfg,
      rota: o.rota ?? [ONCALL, NEXT],
      steps: '[{"to":"oncall","wait":1},{"to":"next","wait":1},{"to":"all","wait":1}]',
      wires: [[`send-${o.id}`], []],
    },
    { id: `send-${o.id}`, type: "sms-send", z, config: cfg, needstatus: false, wires: [[]] },
    { id: `done-${o.id}`, type: "complete", z, scope: [oc], wires: [[`reply-${o.id}`]] },
    { id: `catch-${o.id}`, type: "catch", z, scope: [oc], wires: [[`reply-${o.id}`]] },
    { id: `reply-${o.id}`, type: "http response", z, statusCode: "200", wires: [] },
    { id: `mo-${o.id}`, type: "sms-receive", z, config: cfg, path: `/mo-${o.id}`, wires: [[], []] },
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

/** Posts an alert (or a resolve); retries while the route is not there yet (a start). */
async function alert(nr: RunningNodeRed, id: string, topic: string, text: string, status?: string): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${nr.url}/alert-${id}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topic, text, status }),
      signal: AbortSignal.timeout(15_000),
    });
    if (res.ok) return;
    if (res.status !== 404 || Date.now() > until) throw new Error(`POST /alert-${id}: HTTP ${res.status}`);
    await sleep(100);
  }
}

describe("multi: sms-oncall in two Node-RED processes on one Redis", function () {
  this.timeout(300_000);
  let redis: RedisServer;
  let sim: Simulator;
  let a: RunningNodeRed;
  let b: RunningNodeRed;

  before(async function () {
    this.timeout(300_000);
    redis = await startRedis();
    sim = await startSimulator({ reportDelayMs: 600_000 });
    // The reply path is the package's own: sms-receive hands each inbound SMS to the account's inbox.
    [a, b] = await Promise.all([
      startPackedNodeRed({ shareInstall: true }),
      startPackedNodeRed({ shareInstall: true }),
    ]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sim?.close();
    await redis?.stop();
  });

  /** The SMS the platform took, as "<numbers> <text>", that contain `text`. */
  const sent = (text: string) =>
    sim.requests
      .filter((r) => r.path.endsWith("/HttpBatchSendSM"))
      .map((r) => `${r.params.mobile} ${r.params.msg}`)
      .filter((s) => s.includes(text));
  async function smsCount(text: string, n: number, ms = 20_000): Promise<void> {
    await waitFor(() => sent(text).length >= n, ms, `${n} SMS with "${text}" (got ${JSON.stringify(sent(text))})`, 50);
  }
  /** Both instances' account state is on Redis: each holds a connection to it (and this probe one more). */
  async function shared(): Promise<void> {
    const clients = async () => (await redis.command("CLIENT", "LIST")).split("\n").filter((l) => /id=/.test(l)).length;
    await waitFor(async () => (await clients()) >= 3, 20_000, "both instances connected to Redis", 100);
  }
  /** The instance whose sms-receive takes the platform's inbound SMS. */
  const moTo = (nr: RunningNodeRed, id: string) => (sim.moUrl = `${nr.url}/mo-${id}`);
  async function reply(mobile: string, text: string): Promise<void> {
    const r = await fetch(`${sim.url}/sim/mo`, { method: "POST", body: JSON.stringify({ mobile, text }) });
    assert.equal(r.status, 200, await r.text());
  }

  it("a reply to B acknowledges an alert opened on A; a restart of A during another's wait: its next step once", async () => {
    const both = oncallFlow({ id: "ab", sim: sim.url, redis: redis.url });
    const onlyA = oncallFlow({ id: "ra", sim: sim.url, redis: redis.url });
    await Promise.all([deploy(a, [...both, ...onlyA]), deploy(b, both)]);
    await shared();
    // Two alerts opened on A: one to acknowledge through B, one whose wait A is restarted in.
    const t0 = Date.now();
    await alert(a, "ab", "disk", "ALERT-AB disk full");
    await alert(a, "ra", "cpu", "ALERT-RA cpu high");
    await smsCount("ALERT-AB", 1);
    await smsCount("ALERT-RA", 1);
    assert.deepEqual(sent("ALERT-AB"), [`${ONCALL} ALERT-AB disk full Reply 1 to ack`]);
    assert.deepEqual(
      sent("ALERT-RA"),
      [`${ONCALL} ALERT-RA cpu high Reply 2 to ack`],
      "codes per number, account-wide",
    );

    moTo(b, "ab");
    await reply(ONCALL, "1");
    await smsCount("Acknowledged ALERT-AB", 1);

    await a.stop();
    a = await startPackedNodeRed({ userDir: a.userDir, port: a.port });

    // Past the first wait: the acknowledged alert pages nobody on either instance; the other's next
    // step came once (from whichever instance runs its node: only A, restarted).
    await smsCount(`${NEXT} ALERT-RA`, 1, STEP_MS + 30_000);
    await sleep(Math.max(0, t0 + STEP_MS + 5_000 - Date.now()));
    assert.deepEqual(sent("ALERT-AB"), [
      `${ONCALL} ALERT-AB disk full Reply 1 to ack`,
      `${ONCALL} Acknowledged ALERT-AB disk full`,
    ]);
    assert.deepEqual(sent("ALERT-RA"), [
      `${ONCALL} ALERT-RA cpu high Reply 2 to ack`,
      `${NEXT} ALERT-RA cpu high Reply 1 to ack`,
    ]);
    await alert(a, "ra", "cpu", "", "resolved");
    await smsCount("Resolved ALERT-RA", 1);
    assert.deepEqual(sent("Resolved ALERT-RA"), [`${ONCALL},${NEXT} Resolved ALERT-RA cpu high`]);
  });

  it("Redis stopped mid-chain: the steps go on locally, and nothing is sent twice once it is back", async () => {
    const flow = oncallFlow({ id: "down", sim: sim.url, redis: redis.url, rota: [FIRST, SECOND] });
    await Promise.all([deploy(a, flow), deploy(b, flow)]);
    await shared();
    const t0 = Date.now();
    await alert(a, "down", "net", "ALERT-DOWN link lost");
    await smsCount("ALERT-DOWN", 1);
    await redis.kill();
    // Step 2 is due a minute after the open, while Redis is down.
    await smsCount(`${SECOND} ALERT-DOWN`, 1, STEP_MS + 30_000);
    await redis.restart();
    // Step 3 (the whole rota) a minute later; then nothing more: each step once.
    await smsCount(`${FIRST},${SECOND} ALERT-DOWN`, 1, Math.max(30_000, 2 * STEP_MS + 30_000 - (Date.now() - t0)));
    await sleep(5_000);
    assert.deepEqual(sent("ALERT-DOWN"), [
      `${FIRST} ALERT-DOWN link lost Reply 1 to ack`,
      `${SECOND} ALERT-DOWN link lost Reply 1 to ack`,
      `${FIRST},${SECOND} ALERT-DOWN link lost Reply 1 to ack`,
    ]);
  });
});
