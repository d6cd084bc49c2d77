// Delivery tracking across real Node-RED processes (the packed package) on one real Redis (SPEC
// B6, B7): the send goes out from instance A, the platform pushes its reports to instance B, and
// the summary comes out exactly once, from whichever instance running the send node gets it.
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { startPackedNodeRed, type RunningNodeRed } from "../support/packed";
import { startRedis, type RedisServer } from "../support/redis";
import { sleep } from "../support/nr";

const A = "13800138000";
const B = "13900139000";
const PATH = "/sms/multi-track";
const PREFIX = "multitrack:";
/** minutes: 6 s */
const TIMEOUT = "0.1";

type Summary = { msgid: string; total: number; delivered: string[]; pending: string[]; complete: boolean };
type Kept = { topic: string; payload: Summary };

/**
 * The flow both instances run (same ids: one cluster). POST /track-send {text, topic} sends to A
 * and B with tracking and answers with output 1's msgid; output 2's summaries are kept in the
 * instance's global context, which GET /track-summaries returns.
 */
function trackFlow(sim: string, redis: string): object[] {
  const z = "tab-track";
  return [
    { id: z, type: "tab", label: "tracking" },
    {
      id: "cfg-track",
      type: "sms-config",
      name: "sim",
      url: sim,
      signature: "【朗宇信息】",
      rate: "0",
      tz: "+08:00",
      store: "redis",
      redisUrl: redis,
      redisPrefix: PREFIX,
      credentials: { account: "demo", password: "demo" },
    },
    { id: "in-send", type: "http in", z, url: "/track-send", method: "post", wires: [["body"]] },
    {
      id: "body",
      type: "function",
      z,
      func: "msg.topic = msg.payload.topic; msg.payload = msg.payload.text; return msg;",
      outputs: 1,
      wires: [["send-track"]],
    },
    {
      id: "send-track",
      type: "sms-send",
      z,
      config: "cfg-track",
      mobile: `${A},${B}`,
      needstatus: true,
      track: true,
      trackTimeout: TIMEOUT,
      outputs: 2,
      wires: [["answer"], ["keep"]],
    },
    {
      id: "answer",
      type: "function",
      z,
      func: "msg.payload = { msgid: msg.msgid }; return msg;",
      outputs: 1,
      wires: [["reply"]],
    },
    { id: "reply", type: "http response", z, statusCode: "200", wires: [] },
    {
      id: "keep",
      type: "function",
      z,
      func: "const all = global.get('summaries') || [];\nall.push({ topic: msg.topic, payload: msg.payload });\nglobal.set('summaries', all);\nreturn null;",
      outputs: 1,
      wires: [[]],
    },
    { id: "in-list", type: "http in", z, url: "/track-summaries", method: "get", wires: [["list"]] },
    {
      id: "list",
      type: "function",
      z,
      func: "msg.payload = global.get('summaries') || []; return msg;",
      outputs: 1,
      wires: [["reply"]],
    },
    { id: "receive-track", type: "sms-receive", z, config: "cfg-track", path: PATH, wires: [[], []] },
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

/** Sends through an instance's flow; retries while its route is not there yet (a start). */
async function send(nr: RunningNodeRed, topic: string, text: string): Promise<string> {
  const until = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${nr.url}/track-send`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topic, text }),
      signal: AbortSignal.timeout(15_000),
    });
    if (res.ok) return ((await res.json()) as { msgid: string }).msgid;
    if (res.status !== 404 || Date.now() > until) throw new Error(`POST /track-send: HTTP ${res.status}`);
    await sleep(100);
  }
}

async function summaries(nr: RunningNodeRed): Promise<Kept[]> {
  const res = await fetch(`${nr.url}/track-summaries`, { signal: AbortSignal.timeout(15_000) });
  return res.ok ? ((await res.json()) as Kept[]) : [];
}

describe("multi: delivery tracking in two Node-RED processes on one Redis", function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let sim: Simulator;
  let a: RunningNodeRed;
  let b: RunningNodeRed;

  before(async function () {
    this.timeout(300_000);
    redis = await startRedis();
    sim = await startSimulator({ reportDelayMs: 50 });
    a = await startPackedNodeRed({ shareInstall: true });
    b = await startPackedNodeRed({ shareInstall: true });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sim?.close();
    await redis?.stop();
  });

  /** Every summary of `topic`, from both instances, once `ms` passed or `n` arrived. */
  async function summariesOf(topic: string, n: number, ms: number): Promise<Array<Kept & { from: string }>> {
    const end = Date.now() + ms;
    for (;;) {
      const all = [
        ...(await summaries(a)).map((s) => ({ ...s, from: "A" })),
        ...(await summaries(b)).map((s) => ({ ...s, from: "B" })),
      ].filter((s) => s.topic === topic);
      if (all.length >= n || Date.now() > end) return all;
      await sleep(100);
    }
  }

  it("sent on A, reports pushed to B: one summary, complete, from one instance", async () => {
    const flow = trackFlow(sim.url, redis.url);
    await Promise.all([deploy(a, flow), deploy(b, flow)]);
    sim.reportUrl = `${b.url}${PATH}`;
    // Until both account states are on Redis (a state still connecting runs locally, SPEC B6),
    // B's reports cannot reach A's send: probe until one summary comes back complete.
    for (let i = 0; ; i++) {
      assert.ok(i < 10, "the two instances never shared a tracked send");
      await send(a, `probe-${i}`, `probe ${i}`);
      const [s] = await summariesOf(`probe-${i}`, 1, 20_000);
      if (s?.payload.complete) break;
    }

    const msgid = await send(a, "boiler-1", "ALERT boiler 1 over temperature");
    const [first] = await summariesOf("boiler-1", 1, 20_000);
    assert.ok(first, "a summary");
    assert.equal(first.payload.msgid, msgid);
    assert.deepEqual(
      [first.payload.total, first.payload.delivered, first.payload.pending, first.payload.complete],
      [2, [A, B], [], true],
    );
    // Past the timeout: no second summary from either instance.
    await sleep(7000);
    const all = await summariesOf("boiler-1", 2, 0);
    assert.equal(all.length, 1, JSON.stringify(all));
    // Nothing of the send stays in Redis: its tally, record, msg and early reports are gone.
    const keys = (await redis.command("KEYS", `${PREFIX}*`)).split("\r\n");
    assert.deepEqual(
      keys.filter((k) => k.includes(`:track:`) && k.endsWith(msgid)),
      [],
    );
  });
});
