// The account state across real Node-RED processes (the packed package, as users install it) on
// one real Redis (SPEC B6): what two instances behind a load balancer share, and what happens
// when Redis or one Node-RED goes away. Pushes come in over HTTP as the platform sends them, the
// simulator is the platform, and every message a node emits is posted by a core `http request`
// node to a collector here, so the test counts what each instance emitted.
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { startPackedNodeRed, type RunningNodeRed } from "../support/packed";
import { startRedis, type RedisServer } from "../support/redis";
import { startCollector } from "../support/collector";
import { waitFor } from "../support/stub";

const PREFIX = "mstate:";
const RECEIVER = "rcv";
const RECEIVER_PW = "multi-push-pw";
const MOBILE = "13900210021";
/** the receive path with the default wait for parts, and one with a 2 s wait */
const LONG_WAIT = "/sms/push";
const SHORT_WAIT = "/sms/short";

type Payload = Record<string, unknown>;
interface Emitted {
  /** the instance that emitted it: "a" or "b" */
  inst: string;
  /** report, mo, short-report, short-mo, send, balance, error */
  kind: string;
  payload: Payload;
  topic?: string;
  text?: string;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for a condition, at most `ms` (two processes and Redis: seconds, not milliseconds). */
const until = (cond: () => boolean | Promise<boolean>, what: string, ms = 20_000) => waitFor(cond, ms, what, 50);

/**
 * The flow both instances run: the same node ids (one cluster); only where they post what they
 * emit differs (`/<inst>/<kind>` at the collector).
 */
function flow(inst: string, o: { sim: string; redis: string; collector: string }): object[] {
  const z = "tab";
  // Every emitted message goes out as { payload, topic, text, error } to the collector.
  const post = (kind: string) => [
    {
      id: `wrap-${kind}`,
      type: "function",
      z,
      func: "msg.payload = { payload: msg.payload, topic: msg.topic, text: msg.text, error: msg.error ? msg.error.message : undefined };\ndelete msg.req; delete msg.res; delete msg.headers;\nreturn msg;",
      outputs: 1,
      wires: [[`post-${kind}`]],
    },
    {
      id: `post-${kind}`,
      type: "http request",
      z,
      method: "POST",
      ret: "txt",
      url: `${o.collector}/${inst}/${kind}`,
      wires: [],
    },
  ];
  return [
    { id: z, type: "tab", label: "multi state" },
    {
      id: "cfg",
      type: "sms-config",
      name: "sim",
      url: o.sim,
      signature: "【朗宇信息】",
      rate: "5",
      tz: "+08:00",
      store: "redis",
      redisUrl: o.redis,
      redisPrefix: PREFIX,
      credentials: { account: "demo", password: "demo", receiver: RECEIVER, receiverPassword: RECEIVER_PW },
    },
    {
      id: "rx",
      type: "sms-receive",
      z,
      config: "cfg",
      path: LONG_WAIT,
      partTimeout: "600",
      wires: [["wrap-report"], ["wrap-mo"]],
    },
    {
      id: "rx-short",
      type: "sms-receive",
      z,
      config: "cfg",
      path: SHORT_WAIT,
      partTimeout: "2",
      wires: [["wrap-short-report"], ["wrap-short-mo"]],
    },
    // POST /send {text} → sms-send (answered at once; what was sent goes to the collector)
    { id: "send-in", type: "http in", z, url: "/send", method: "post", wires: [["send-text"]] },
    {
      id: "send-text",
      type: "function",
      z,
      func: "msg.text = msg.payload.text; msg.payload = msg.text; return msg;",
      outputs: 1,
      wires: [["send-ack", "send"]],
    },
    { id: "send-ack", type: "http response", z, statusCode: "200", wires: [] },
    { id: "send", type: "sms-send", z, config: "cfg", mobile: MOBILE, wires: [["wrap-send"]] },
    // POST /balance → sms-balance
    { id: "bal-in", type: "http in", z, url: "/balance", method: "post", wires: [["bal-ack", "balance"]] },
    { id: "bal-ack", type: "http response", z, statusCode: "200", wires: [] },
    { id: "balance", type: "sms-balance", z, config: "cfg", wires: [["wrap-balance"]] },
    { id: "catcher", type: "catch", z, scope: ["rx", "rx-short", "send", "balance"], wires: [["wrap-error"]] },
    ...["report", "mo", "short-report", "short-mo", "send", "balance", "error"].flatMap(post),
  ];
}

async function deploy(nr: RunningNodeRed, nodes: object[]): Promise<void> {
  const res = await fetch(`${nr.url}/flows`, {
    method: "POST",
    headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full", "Node-RED-API-Version": "v1" },
    body: JSON.stringify(nodes),
  });
  assert.ok(res.ok, `deploy: HTTP ${res.status} ${await res.text()}`);
}

/** A request to an instance; retried while its routes are not there yet (a start, a deploy). */
async function request(nr: RunningNodeRed, path: string, init: RequestInit = {}): Promise<Response> {
  const end = Date.now() + 30_000;
  for (;;) {
    let res: Response | null = null;
    try {
      res = await fetch(`${nr.url}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
    } catch {
      /* restarting: connection refused */
    }
    if (res && res.status !== 404) return res;
    if (Date.now() > end) throw new Error(`${path}: ${res ? `HTTP ${res.status}` : "no answer"} for 30 s`);
    await sleep(100);
  }
}

/** Pushes as the platform does (GET with the params), and asserts the answer is 200 OK. */
async function push(nr: RunningNodeRed, path: string, params: Record<string, string>): Promise<void> {
  const q = new URLSearchParams({ receiver: RECEIVER, pswd: RECEIVER_PW, ...params });
  const res = await request(nr, `${path}?${q}`);
  assert.equal(`${res.status} ${await res.text()}`, "200 OK", `push to ${nr.url}${path}`);
}

const report = (msgid: string) => ({ msgid, reportTime: "1012241002", mobile: MOBILE, status: "DELIVRD" });
/** Part `n` of `total` of long SMS `id` from `mobile`. */
const part = (mobile: string, id: number, total: number, n: number, text: string) => ({
  mobile,
  destcode: "1065751600001",
  msg: text,
  isems: "1",
  emshead: `${id},${total},${n}`,
});
/** The parts' texts of long SMS `key` (numbered from 1). */
const partText = (key: string, n: number) => `<${key} part ${n}: 长短信第${n}段>`;

describe("multi: the account state in two Node-RED processes on one Redis", function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let sim: Simulator;
  let collector: Awaited<ReturnType<typeof startCollector<Emitted>>>;
  let a: RunningNodeRed;
  let b: RunningNodeRed;
  let probes = 0;
  let mobiles = 0;

  before(async function () {
    this.timeout(300_000);
    redis = await startRedis();
    sim = await startSimulator();
    collector = await startCollector<Emitted>();
    [a, b] = await Promise.all([
      startPackedNodeRed({ shareInstall: true }),
      startPackedNodeRed({ shareInstall: true }),
    ]);
    const o = { sim: sim.url, redis: redis.url, collector: collector.url };
    await Promise.all([deploy(a, flow("a", o)), deploy(b, flow("b", o))]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await collector?.close();
    await sim?.close();
    await redis?.stop();
  });
  afterEach(function () {
    // What the instances logged tells why a case failed (a state gone local, an error).
    if (this.currentTest?.state === "failed") {
      for (const [name, nr] of [
        ["a", a],
        ["b", b],
      ] as const) {
        const tail = nr?.log().split("\n").slice(-30).join("\n");
        process.stderr.write(`--- Node-RED ${name} log (tail) ---\n${tail}\n`);
      }
    }
  });

  const emitted = (kind: string, pred: (e: Emitted) => boolean = () => true) =>
    collector.got.filter((e) => e.kind === kind && pred(e));
  const reportsOf = (msgid: string) => emitted("report", (e) => e.payload.msgid === msgid);
  /** a fresh sender per long SMS, so no two cases share a message key */
  const nextMobile = () => `1380013${String(++mobiles).padStart(4, "0")}`;
  const errors = () => emitted("error");

  /**
   * Waits until both instances decide on Redis: a report pushed to `first` and then to `second`
   * is emitted once. A state still connecting (or reconnecting) decides locally (SPEC B6), so a
   * probe that came out twice is tried again with another report.
   */
  async function untilShared(first = a, second = b, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const id = `probe-${++probes}`;
      await push(first, LONG_WAIT, report(id));
      await until(() => reportsOf(id).length >= 1, `${id} emitted by the first instance`);
      await push(second, LONG_WAIT, report(id));
      // A later push to the same instance marks when the probe's decision has been made there.
      await push(second, LONG_WAIT, report(`${id}-end`));
      await until(() => reportsOf(`${id}-end`).length >= 1, `${id}-end emitted`);
      await sleep(200);
      if (reportsOf(id).length === 1) return;
      if (Date.now() > end) throw new Error(`the two instances did not share their state within ${ms} ms`);
      await sleep(200);
    }
  }

  it("the same report pushed to both instances is emitted once", async () => {
    await untilShared();
    const ids = Array.from({ length: 10 }, (_, i) => `same-${i}`);
    await Promise.all(ids.flatMap((id) => [push(a, LONG_WAIT, report(id)), push(b, LONG_WAIT, report(id))]));
    await until(() => ids.every((id) => reportsOf(id).length >= 1), "every report emitted");
    await sleep(500); // nothing more arrives
    for (const id of ids) {
      const got = reportsOf(id);
      assert.equal(got.length, 1, `${id}: emitted ${got.length} times`);
      assert.equal(got[0].topic, "report");
      assert.equal(got[0].payload.status, "DELIVRD");
      assert.equal(got[0].payload.mobile, MOBILE);
      assert.equal(got[0].payload.reportTime, "2010-12-24T10:02:00+08:00");
    }
    assert.deepEqual(errors(), []);
  });

  it("the parts of long SMS alternating between instances become one message each, emitted once", async () => {
    await untilShared();
    const messages = Array.from({ length: 6 }, (_, i) => ({ key: `alt${i}`, mobile: nextMobile(), id: 100 + i }));
    const total = 3;
    // Parts in turn to a, b, a (or b, a, b), the messages interleaved and concurrent.
    await Promise.all(
      messages.map(async (m, i) => {
        for (let n = 1; n <= total; n++) {
          await push((n + i) % 2 ? a : b, LONG_WAIT, part(m.mobile, m.id, total, n, partText(m.key, n)));
        }
      }),
    );
    // The same again with every part pushed to both at once: the "complete" claim races.
    const raced = Array.from({ length: 4 }, (_, i) => ({ key: `race${i}`, mobile: nextMobile(), id: 200 + i }));
    await Promise.all(
      raced.flatMap((m) =>
        [1, 2, 3].flatMap((n) => {
          const p = part(m.mobile, m.id, total, n, partText(m.key, n));
          return [push(a, LONG_WAIT, p), push(b, LONG_WAIT, p)];
        }),
      ),
    );
    const all = [...messages, ...raced];
    const mo = (mobile: string) => emitted("mo", (e) => e.payload.mobile === mobile);
    await until(() => all.every((m) => mo(m.mobile).length >= 1), "every long SMS emitted");
    await sleep(500);
    for (const m of all) {
      const got = mo(m.mobile);
      assert.equal(got.length, 1, `${m.key}: emitted ${got.length} times`);
      const p = got[0].payload;
      assert.equal(p.text, [1, 2, 3].map((n) => partText(m.key, n)).join(""), m.key);
      assert.equal(p.complete, true);
      assert.equal(p.parts, 3);
      assert.deepEqual(p.missing, []);
    }
    assert.deepEqual(errors(), []);
  });

  it("rate 5/s with both instances sending: at most 5 requests in any second at the simulator, every send sent", async () => {
    await untilShared();
    const texts = Array.from({ length: 20 }, (_, i) => `rate ${i}`);
    const send = (nr: RunningNodeRed, text: string) =>
      request(nr, "/send", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text }),
      }).then((r) => assert.equal(r.status, 200));
    // Ten to each, all at once.
    await Promise.all(texts.map((t, i) => send(i % 2 ? a : b, t)));
    const sent = () => emitted("send", (e) => String(e.text).startsWith("rate "));
    await until(() => sent().length + errors().length >= 20, "20 sends answered", 30_000);
    assert.deepEqual(errors(), []);
    assert.ok(
      sent().every((e) => e.payload.ok === true),
      JSON.stringify(sent().map((e) => e.payload)),
    );
    assert.deepEqual(
      sent()
        .map((e) => e.text)
        .sort(),
      [...texts].sort(),
    );
    assert.deepEqual([...new Set(sent().map((e) => e.inst))].sort(), ["a", "b"]);
    const at = sim.requests
      .filter((r) => r.path.endsWith("/HttpBatchSendSM") && r.params.msg?.includes("rate "))
      .map((r) => Date.parse(r.at))
      .sort((x, y) => x - y);
    assert.equal(at.length, 20);
    // Any 1-second window [t, t + 1 s) holds at most 5 of them: the 6th after any request comes
    // at least a second after it.
    const close = at
      .slice(5)
      .map((t, i) => t - at[i])
      .filter((gap) => gap < 1000);
    assert.deepEqual(close, [], `6 requests within a second; request times (ms): ${at.map((t) => t - at[0])}`);
  });

  it("one balance query per 10 s across both instances: one QueryBalance, every answer ok, the others cached", async () => {
    await untilShared();
    const queries = () => sim.requests.filter((r) => r.path.endsWith("/QueryBalance"));
    assert.equal(queries().length, 0);
    const ask = (nr: RunningNodeRed) => request(nr, "/balance", { method: "POST" }).then((r) => r.status);
    assert.deepEqual(await Promise.all([a, b, a, b, a, b].map(ask)), [200, 200, 200, 200, 200, 200]);
    await until(() => emitted("balance").length + errors().length >= 6, "6 balance answers");
    // And a few more a little later, still within the 10 s.
    await Promise.all([a, b].map(ask));
    await until(() => emitted("balance").length + errors().length >= 8, "8 balance answers");
    assert.deepEqual(errors(), []);
    const answers = emitted("balance").map((e) => e.payload);
    assert.ok(
      answers.every((p) => p.ok === true && typeof (p.balance as Payload)["1001"] === "number"),
      JSON.stringify(answers),
    );
    assert.equal(answers.filter((p) => p.cached === false).length, 1, JSON.stringify(answers));
    assert.equal(answers.filter((p) => p.cached === true).length, 7);
    assert.deepEqual([...new Set(emitted("balance").map((e) => e.inst))].sort(), ["a", "b"]);
    assert.equal(queries().length, 1, "one platform query: a second within 10 s would be answered 103");
    assert.equal(queries()[0].code, 0);
  });

  it("a part timeout fires once across both instances", async () => {
    await untilShared();
    // One part of two each, to a, b and a: the 2 s wait ends on whichever instance claims it.
    const messages = ["t0", "t1", "t2"].map((key, i) => ({ key, mobile: nextMobile(), nr: i === 1 ? b : a }));
    for (const m of messages) await push(m.nr, SHORT_WAIT, part(m.mobile, 7, 2, 1, partText(m.key, 1)));
    const mo = (mobile: string) => emitted("short-mo", (e) => e.payload.mobile === mobile);
    await until(() => messages.every((m) => mo(m.mobile).length >= 1), "every incomplete SMS emitted");
    await sleep(1500); // both instances poll for due deadlines every 250 ms
    for (const m of messages) {
      const got = mo(m.mobile);
      assert.equal(got.length, 1, `${m.key}: emitted ${got.length} times`);
      assert.equal(got[0].payload.complete, false);
      assert.deepEqual(got[0].payload.missing, [2]);
      assert.equal(got[0].payload.text, partText(m.key, 1));
    }
    assert.deepEqual(errors(), []);
  });

  it("Node-RED restarted with a part pending: the message completes after the restart", async () => {
    await untilShared();
    const mobile = nextMobile();
    await push(a, LONG_WAIT, part(mobile, 9, 2, 1, partText("restart", 1)));
    // The part is in Redis (the push is answered before the part is stored).
    await until(
      async () => (await redis.command("KEYS", `${PREFIX}*parts:m:*${mobile}*`)).includes(mobile),
      "the part stored in Redis",
    );
    await a.stop();
    a = await startPackedNodeRed({ userDir: a.userDir, port: a.port });
    // The restarted instance is on Redis again before part 2 reaches it.
    await untilShared(b, a);
    await push(a, LONG_WAIT, part(mobile, 9, 2, 2, partText("restart", 2)));
    const mo = () => emitted("mo", (e) => e.payload.mobile === mobile);
    await until(() => mo().length >= 1, "the long SMS emitted");
    await sleep(500);
    assert.equal(mo().length, 1, JSON.stringify(mo()));
    assert.equal(mo()[0].payload.text, partText("restart", 1) + partText("restart", 2));
    assert.equal(mo()[0].payload.complete, true);
    assert.equal(mo()[0].inst, "a");
  });

  it("Redis killed mid-run: pushes answered OK, nothing lost, sends go on; Redis back: shared again", async () => {
    await untilShared();
    const logFrom = { a: a.log().length, b: b.log().length };
    const loggedSince = (nr: RunningNodeRed, name: "a" | "b") => nr.log().slice(logFrom[name]);
    await redis.kill();

    // Reports: distinct ones to either instance, and some to both (may then come out twice).
    const single = Array.from({ length: 10 }, (_, i) => `down-${i}`);
    const both = Array.from({ length: 3 }, (_, i) => `down-both-${i}`);
    await Promise.all([
      ...single.map((id, i) => push(i % 2 ? a : b, LONG_WAIT, report(id))),
      ...both.flatMap((id) => [push(a, LONG_WAIT, report(id)), push(b, LONG_WAIT, report(id))]),
    ]);
    // Long SMS with every part on one instance: complete.
    const whole = [
      { key: "downA", mobile: nextMobile(), nr: a },
      { key: "downB", mobile: nextMobile(), nr: b },
    ];
    for (const m of whole) {
      for (const n of [2, 1, 3]) await push(m.nr, LONG_WAIT, part(m.mobile, 11, 3, n, partText(m.key, n)));
    }
    // One whose parts reach different instances (2 s wait): each instance emits what it has, so
    // no part is lost even though the message cannot be put together.
    const split = nextMobile();
    await push(a, SHORT_WAIT, part(split, 12, 2, 1, partText("split", 1)));
    await push(b, SHORT_WAIT, part(split, 12, 2, 2, partText("split", 2)));
    // Sends go on.
    const sendTexts = ["down send a", "down send b"];
    for (const [i, text] of sendTexts.entries()) {
      const res = await request(i ? b : a, "/send", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text }),
      });
      assert.equal(res.status, 200);
    }

    const mo = (kind: string, mobile: string) => emitted(kind, (e) => e.payload.mobile === mobile);
    await until(() => [...single, ...both].every((id) => reportsOf(id).length >= 1), "every report emitted");
    for (const id of single) assert.equal(reportsOf(id).length, 1, id);
    await until(() => whole.every((m) => mo("mo", m.mobile).length >= 1), "the whole long SMS emitted");
    for (const m of whole) {
      assert.equal(mo("mo", m.mobile).length, 1);
      assert.equal(mo("mo", m.mobile)[0].payload.text, [1, 2, 3].map((n) => partText(m.key, n)).join(""));
      assert.equal(mo("mo", m.mobile)[0].payload.complete, true);
    }
    await until(() => mo("short-mo", split).length >= 2, "both halves of the split long SMS");
    const halves = mo("short-mo", split).map((e) => `${e.inst}:${e.payload.text}:${e.payload.complete}`);
    assert.deepEqual(halves.sort(), [`a:${partText("split", 1)}:false`, `b:${partText("split", 2)}:false`]);
    await until(() => emitted("send", (e) => sendTexts.includes(String(e.text))).length >= 2, "both sends");
    assert.ok(emitted("send", (e) => sendTexts.includes(String(e.text))).every((e) => e.payload.ok === true));
    assert.deepEqual(errors(), []);
    // It was an outage for both (each said so once), not a test that ran before Redis went away.
    for (const [name, nr] of [
      ["a", a],
      ["b", b],
    ] as const) {
      assert.equal(
        loggedSince(nr, name).match(/The account state is local/g)?.length,
        1,
        `${name}: ${loggedSince(nr, name)}`,
      );
    }

    await redis.restart();
    // The clients reconnect with backoff (at most ~3 s between tries).
    await untilShared(a, b, 30_000);
    const again = Array.from({ length: 5 }, (_, i) => `back-${i}`);
    await Promise.all(again.flatMap((id) => [push(a, LONG_WAIT, report(id)), push(b, LONG_WAIT, report(id))]));
    const m = { key: "back", mobile: nextMobile() };
    for (const n of [1, 2, 3]) await push(n === 2 ? b : a, LONG_WAIT, part(m.mobile, 13, 3, n, partText(m.key, n)));
    await until(() => again.every((id) => reportsOf(id).length >= 1), "the reports after the restart");
    await until(() => mo("mo", m.mobile).length >= 1, "the long SMS after the restart");
    await sleep(500);
    for (const id of again) assert.equal(reportsOf(id).length, 1, `${id}: shared again, emitted once`);
    assert.equal(mo("mo", m.mobile).length, 1);
    assert.equal(mo("mo", m.mobile)[0].payload.text, [1, 2, 3].map((n) => partText(m.key, n)).join(""));
    assert.deepEqual(errors(), []);
    for (const [name, nr] of [
      ["a", a],
      ["b", b],
    ] as const)
      assert.match(loggedSince(nr, name), /shared through Redis again/);
  });
});
