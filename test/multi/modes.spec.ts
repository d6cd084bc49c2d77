// Two real Node-RED processes (the packed package, as users install it) sharing the account
// state on a Redis Cluster and on Redis Sentinel (SPEC B6a), configured as a user would: the
// account's `redisMode`, `redisUrl` (seed nodes, or the sentinels), `redisMaster` and the
// `redisPassword` / `redisSentinelPassword` credentials. Pushes come in over HTTP as the platform
// sends them; every message a node emits is posted to a collector here, which counts them.
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { startPackedNodeRed, type RunningNodeRed } from "../support/packed";
import { startRedisCluster, type RedisCluster } from "../support/redis-cluster";
import { startRedisSentinel, type RedisSentinelSetup } from "../support/redis-sentinel";
import { startCollector } from "../support/collector";
import { waitFor } from "../support/stub";

const RECEIVER = "rcv";
const RECEIVER_PW = "modes-push-pw";
const DATA_PW = "modes-redis-pw";
const SENTINEL_PW = "modes-sentinel-pw";
const MOBILE = "13900210021";
const PATH = "/sms/push";
/** a receive path whose long SMS wait 3 s for missing parts (the failover case) */
const SHORT = "/sms/short";

interface Emitted {
  inst: string;
  kind: string;
  payload: Record<string, unknown>;
  topic?: string;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = (cond: () => boolean | Promise<boolean>, what: string, ms = 20_000) => waitFor(cond, ms, what, 50);

/** What the account says about Redis, per mode (credentials as the editor stores them). */
interface RedisConfig {
  redisMode: string;
  redisUrl: string;
  redisMaster?: string;
  credentials: Record<string, string>;
}

/** The flow both instances run (same node ids); only where they post what they emit differs. */
function flow(inst: string, o: { sim: string; collector: string; redis: RedisConfig; prefix: string }): object[] {
  const z = "tab";
  const post = (kind: string) => [
    {
      id: `wrap-${kind}`,
      type: "function",
      z,
      func: "msg.payload = { payload: msg.payload, topic: msg.topic, error: msg.error ? msg.error.message : undefined };\ndelete msg.req; delete msg.res; delete msg.headers;\nreturn msg;",
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
  const { credentials, ...redis } = o.redis;
  return [
    { id: z, type: "tab", label: "multi modes" },
    {
      id: "cfg",
      type: "sms-config",
      name: "sim",
      url: o.sim,
      tz: "+08:00",
      rate: "0",
      store: "redis",
      redisPrefix: o.prefix,
      ...redis,
      credentials: {
        account: "demo",
        password: "demo",
        receiver: RECEIVER,
        receiverPassword: RECEIVER_PW,
        ...credentials,
      },
    },
    {
      id: "rx",
      type: "sms-receive",
      z,
      config: "cfg",
      path: PATH,
      partTimeout: "600",
      wires: [["wrap-report"], ["wrap-mo"]],
    },
    {
      id: "rx-short",
      type: "sms-receive",
      z,
      config: "cfg",
      path: SHORT,
      partTimeout: "3",
      wires: [["wrap-report"], ["wrap-mo"]],
    },
    // POST /send {text, topic}: a tracked send to two numbers (its summary at 6 s at the latest);
    // POST /guard {topic}: an alert through a 30 s window. Both answered at once.
    { id: "in-send", type: "http in", z, url: "/send", method: "post", wires: [["send-body", "ok"]] },
    {
      id: "send-body",
      type: "function",
      z,
      func: "msg.topic = msg.payload.topic; msg.payload = msg.payload.text; delete msg.req; delete msg.res; return msg;",
      outputs: 1,
      wires: [["send"]],
    },
    {
      id: "send",
      type: "sms-send",
      z,
      config: "cfg",
      mobile: "13800000001,13800000002",
      needstatus: true,
      track: true,
      trackTimeout: "0.1",
      outputs: 2,
      wires: [["wrap-sent"], ["wrap-summary"]],
    },
    { id: "in-guard", type: "http in", z, url: "/guard", method: "post", wires: [["guard-body", "ok"]] },
    {
      id: "guard-body",
      type: "function",
      z,
      func: "msg.topic = msg.payload.topic; msg.payload = 'alert ' + msg.topic; delete msg.req; delete msg.res; return msg;",
      outputs: 1,
      wires: [["guard"]],
    },
    {
      id: "guard",
      type: "sms-guard",
      z,
      config: "cfg",
      mobile: MOBILE,
      key: "topic",
      window: "30",
      dailyCap: "0",
      hours: "",
      wires: [["wrap-passed"], []],
    },
    { id: "ok", type: "http response", z, statusCode: "200", headers: {}, wires: [] },
    { id: "catcher", type: "catch", z, scope: ["rx", "rx-short", "send", "guard"], wires: [["wrap-error"]] },
    ...["report", "mo", "error", "sent", "summary", "passed"].flatMap(post),
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

async function push(nr: RunningNodeRed, params: Record<string, string>, path = PATH): Promise<void> {
  const q = new URLSearchParams({ receiver: RECEIVER, pswd: RECEIVER_PW, ...params });
  const end = Date.now() + 30_000;
  for (;;) {
    let res: Response | null = null;
    try {
      res = await fetch(`${nr.url}${path}?${q}`, { signal: AbortSignal.timeout(15_000) });
    } catch {
      /* starting */
    }
    if (res && res.status !== 404) {
      assert.equal(`${res.status} ${await res.text()}`, "200 OK", `push to ${nr.url}`);
      return;
    }
    if (Date.now() > end) throw new Error(`${PATH}: no route for 30 s`);
    await sleep(100);
  }
}

const report = (msgid: string) => ({ msgid, reportTime: "1012241002", mobile: MOBILE, status: "DELIVRD" });
const part = (mobile: string, id: number, total: number, n: number, text: string) => ({
  mobile,
  destcode: "1065751600001",
  msg: text,
  isems: "1",
  emshead: `${id},${total},${n}`,
});
const partText = (key: string, n: number) => `<${key} part ${n}: 长短信第${n}段>`;

/** The multi-instance cases of test/multi/state.spec.ts, on one Redis setup. */
function sameCases(
  name: string,
  backend: () => Promise<{
    redis: RedisConfig;
    stop(): Promise<void>;
    secrets: string[];
    /** the account's keys in this Redis, and those without a TTL */
    keys(prefix: string): Promise<{ all: number; noTtl: string[] }>;
    /** a failover of this Redis (resolves once the new master is there), where it has one */
    failover?: () => Promise<void>;
    /** a failover asked for (SENTINEL FAILOVER: the old master takes writes a moment longer, then drops them) */
    askFailover?: () => Promise<void>;
  }>,
  failover = false,
): void {
  describe(`multi: two Node-RED processes on ${name}`, function () {
    this.timeout(120_000);
    let stopBackend: () => Promise<void> = async () => undefined;
    let secrets: string[] = [];
    let keys: (prefix: string) => Promise<{ all: number; noTtl: string[] }>;
    let failOver: (() => Promise<void>) | undefined;
    let askFailover: (() => Promise<void>) | undefined;
    let prefix = "";
    let sim: Simulator;
    let collector: Awaited<ReturnType<typeof startCollector<Emitted>>>;
    let a: RunningNodeRed;
    let b: RunningNodeRed;
    let probes = 0;
    let mobiles = 0;

    before(async function () {
      this.timeout(300_000);
      const be = await backend();
      stopBackend = be.stop;
      secrets = be.secrets;
      keys = be.keys;
      failOver = be.failover;
      askFailover = be.askFailover;
      sim = await startSimulator({ receiver: RECEIVER, receiverPassword: RECEIVER_PW });
      collector = await startCollector<Emitted>();
      [a, b] = await Promise.all([
        startPackedNodeRed({ shareInstall: true }),
        startPackedNodeRed({ shareInstall: true }),
      ]);
      prefix = `m${name.length}:`;
      const o = { sim: sim.url, collector: collector.url, redis: be.redis, prefix };
      await Promise.all([deploy(a, flow("a", o)), deploy(b, flow("b", o))]);
      // The platform pushes delivery reports to b (tracked sends go out from both).
      sim.reportUrl = `${b.url}${SHORT}`;
    });
    after(async () => {
      // Neither instance logged a Redis password.
      const logs = [a?.log() ?? "", b?.log() ?? ""].join("\n");
      await Promise.all([a?.stop(), b?.stop()]);
      await collector?.close();
      await sim?.close();
      await stopBackend();
      for (const s of secrets) assert.ok(!logs.includes(s), "a Redis password in a Node-RED log");
    });
    afterEach(function () {
      if (this.currentTest?.state === "failed") {
        for (const [n, nr] of [
          ["a", a],
          ["b", b],
        ] as const) {
          process.stderr.write(`--- Node-RED ${n} log (tail) ---\n${nr?.log().split("\n").slice(-30).join("\n")}\n`);
        }
      }
    });

    const emitted = (kind: string, pred: (e: Emitted) => boolean = () => true) =>
      collector.got.filter((e) => e.kind === kind && pred(e));
    const reportsOf = (msgid: string) => emitted("report", (e) => e.payload.msgid === msgid);
    const nextMobile = () => `1380014${String(++mobiles).padStart(4, "0")}`;

    /** Until both instances decide on Redis: a report pushed to a, then to b, is emitted once. */
    async function untilShared(ms = 45_000): Promise<void> {
      const end = Date.now() + ms;
      for (;;) {
        const id = `probe-${++probes}`;
        await push(a, report(id));
        await until(() => reportsOf(id).length >= 1, `${id} emitted by a`);
        await push(b, report(id));
        await push(b, report(`${id}-end`));
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
      await Promise.all(ids.flatMap((id) => [push(a, report(id)), push(b, report(id))]));
      await until(() => ids.every((id) => reportsOf(id).length >= 1), "every report emitted");
      await sleep(500);
      for (const id of ids) {
        const got = reportsOf(id);
        assert.equal(got.length, 1, `${id}: emitted ${got.length} times`);
        assert.equal(got[0].payload.status, "DELIVRD");
      }
      assert.deepEqual(emitted("error"), []);
      // Shared through this Redis (not some fallback): the account's keys are there, each with a TTL.
      const k = await keys(prefix);
      assert.ok(k.all > 0, "the account's keys are in this Redis");
      assert.deepEqual(k.noTtl, []);
    });

    it("the parts of long SMS split between the instances become one message each, emitted once", async () => {
      await untilShared();
      const total = 3;
      const messages = Array.from({ length: 6 }, (_, i) => ({ key: `alt${i}`, mobile: nextMobile(), id: 100 + i }));
      await Promise.all(
        messages.map(async (m, i) => {
          for (let n = 1; n <= total; n++)
            await push((n + i) % 2 ? a : b, part(m.mobile, m.id, total, n, partText(m.key, n)));
        }),
      );
      // Every part to both at once: the "complete" claim races across the instances.
      const raced = Array.from({ length: 4 }, (_, i) => ({ key: `race${i}`, mobile: nextMobile(), id: 200 + i }));
      await Promise.all(
        raced.flatMap((m) =>
          [1, 2, 3].flatMap((n) => {
            const p = part(m.mobile, m.id, total, n, partText(m.key, n));
            return [push(a, p), push(b, p)];
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
        assert.equal(got[0].payload.text, [1, 2, 3].map((n) => partText(m.key, n)).join(""), m.key);
        assert.equal(got[0].payload.complete, true);
      }
      assert.deepEqual(emitted("error"), []);
    });

    const post = async (nr: RunningNodeRed, path: string, body: object) => {
      const res = await fetch(`${nr.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      assert.equal(res.status, 200, `${path} on ${nr.url}`);
      await res.text();
    };

    /**
     * Reports, long SMS, tracked sends and guard decisions through both instances while `fail`
     * fails Redis over: shared again within 30 s; nothing dropped; twice only during the failover.
     */
    async function traffic(fail: () => Promise<void>): Promise<void> {
      await untilShared();
      const ids: string[] = [];
      const longs: Array<{ key: string; mobile: string }> = [];
      const sends: string[] = [];
      const alerts: string[] = [];
      const run = `r${Date.now().toString(36)}`;
      let stop = false;
      let before = 0;
      let after = 0;
      const marks = { sends: [0, 0], alerts: [0, 0] };
      const traffic = (async () => {
        for (let i = 0; !stop; i++) {
          const id = `fo-${run}-${i}`;
          ids.push(id);
          const sent = [push(a, report(id), SHORT), push(b, report(id), SHORT)];
          if (i % 3 === 0) {
            // A long SMS, one part to each instance.
            const m = { key: `fo${i}`, mobile: nextMobile() };
            longs.push(m);
            sent.push(
              push(a, part(m.mobile, 300 + i, 2, 1, partText(m.key, 1)), SHORT),
              push(b, part(m.mobile, 300 + i, 2, 2, partText(m.key, 2)), SHORT),
            );
          }
          if (i % 4 === 0) {
            // A tracked send, from each instance in turn; its reports come to b.
            const topic = `ts-${run}-${i}`;
            sends.push(topic);
            sent.push(post(i % 8 ? b : a, "/send", { text: `tracked ${i}`, topic }));
          }
          if (i % 2 === 0) {
            // An alert, then its repeat on the other instance: the window holds the repeat.
            const topic = `g-${run}-${i}`;
            alerts.push(topic);
            const [first, second] = i % 4 ? [b, a] : [a, b];
            sent.push(post(first, "/guard", { topic }).then(() => post(second, "/guard", { topic })));
          }
          await Promise.all(sent);
          await sleep(50);
        }
      })();
      try {
        await until(() => ids.length > 20, "traffic before the failover");
        // What is in flight when the master fails is counted as during the failover.
        before = ids.length - 1;
        marks.sends[0] = sends.length - 1;
        marks.alerts[0] = alerts.length - 1;
        const t0 = Date.now();
        await fail();
        // Shared again: a report pushed to a, then b, emitted once (tried until it is).
        await untilShared(30_000);
        const back = Date.now() - t0;
        assert.ok(back < 30_000, `shared again after ${back} ms`);
        after = ids.length;
        marks.sends[1] = sends.length;
        marks.alerts[1] = alerts.length;
        await until(() => ids.length > after + 20, "traffic after the failover");
      } finally {
        stop = true;
        await traffic;
      }
      await until(() => ids.every((id) => reportsOf(id).length >= 1), "every report emitted", 30_000);
      const mo = (mobile: string) => emitted("mo", (e) => e.payload.mobile === mobile);
      // Parts kept apart during the failover come out after their 3 s wait, whole or in pieces.
      const whole = (m: { key: string; mobile: string }) => {
        const text = mo(m.mobile)
          .map((e) => String(e.payload.text))
          .join("");
        return text.includes(partText(m.key, 1)) && text.includes(partText(m.key, 2));
      };
      await until(() => longs.every(whole), "every part of every long SMS emitted", 30_000);
      // Every tracked send sent once and summed up (within its 6 s timeout, or at it).
      const summaries = (topic: string) => emitted("summary", (e) => e.topic === topic);
      await until(
        () => sends.every((t) => summaries(t).length >= 1),
        `every tracked send summed up (missing: ${sends.filter((t) => !summaries(t).length)})`,
        45_000,
      );
      const outside = <T>(all: T[], [from, to]: number[]) => [...all.slice(0, from), ...all.slice(to)];
      for (const t of sends) {
        assert.equal(emitted("sent", (e) => e.topic === t).length, 1, `${t} sent once`);
        for (const e of summaries(t)) assert.equal(e.payload.total, 2);
      }
      for (const t of outside(sends, marks.sends))
        assert.equal(summaries(t).length, 1, `${t} summed up ${summaries(t).length} times outside the failover`);
      // Every alert through once; its repeat held, but during the failover.
      const passed = (topic: string) => emitted("passed", (e) => e.topic === topic).length;
      for (const t of alerts) assert.ok(passed(t) >= 1, `${t} never let through`);
      for (const t of outside(alerts, marks.alerts))
        assert.equal(passed(t), 1, `${t}'s repeat let through outside the failover`);
      const twice = ids.filter((id) => reportsOf(id).length > 1).length;
      // Twice only during the failover (SPEC B6a): before it and once shared again, once each.
      for (const id of [...ids.slice(0, before), ...ids.slice(after)])
        assert.equal(reportsOf(id).length, 1, `${id} emitted ${reportsOf(id).length} times outside the failover`);
      process.stdout.write(
        `      (${ids.length} reports, ${longs.length} long SMS, ${sends.length} tracked sends, ${alerts.length} alerts; ` +
          `twice: ${twice} reports, ${sends.filter((t) => summaries(t).length > 1).length} summaries, ` +
          `${alerts.filter((t) => passed(t) > 1).length} alert repeats)\n`,
      );
      assert.deepEqual(emitted("error"), []);
    }

    if (failover) {
      // Asked for first: it needs the replica the SIGKILL case leaves dead.
      it("SENTINEL FAILOVER while reports, long SMS, tracked sends and guard decisions flow through both: shared again within 30 s, nothing dropped", async () => {
        await traffic(askFailover!);
      });
      it("the master SIGKILLed while reports, long SMS, tracked sends and guard decisions flow through both: shared again within 30 s, nothing dropped", async () => {
        await traffic(failOver!);
      });
    }
  });
}

sameCases("a 3-master Redis Cluster", async () => {
  const cluster: RedisCluster = await startRedisCluster({ password: DATA_PW });
  return {
    // Two seed nodes of three, the password as the credential.
    redis: {
      redisMode: "cluster",
      redisUrl: `redis://127.0.0.1:${cluster.nodes[0].port},127.0.0.1:${cluster.nodes[1].port}`,
      credentials: { redisPassword: DATA_PW },
    },
    secrets: [DATA_PW],
    stop: () => cluster.stop(),
    keys: async (prefix) => {
      let all = 0;
      for (const n of cluster.nodes) all += ((await n.call("KEYS", `${prefix}*`)) as string[]).length;
      return { all, noTtl: await cluster.keysWithoutTtl(prefix) };
    },
  };
});

sameCases(
  "Redis Sentinel (master, replica, 3 sentinels)",
  async () => {
    const setup: RedisSentinelSetup = await startRedisSentinel({
      name: "alerts",
      password: DATA_PW,
      sentinelPassword: SENTINEL_PW,
    });
    return {
      redis: {
        redisMode: "sentinel",
        redisUrl: `${setup.url}/0`,
        redisMaster: "alerts",
        credentials: { redisPassword: DATA_PW, redisSentinelPassword: SENTINEL_PW },
      },
      secrets: [DATA_PW, SENTINEL_PW],
      stop: () => setup.stop(),
      failover: async () => {
        await setup.ready(60_000);
        const old = await setup.killMaster();
        await setup.waitNewMaster(old, 30_000);
      },
      askFailover: async () => {
        await setup.ready(60_000);
        const old = await setup.master();
        await setup.failover();
        await setup.waitNewMaster(old, 30_000);
      },
      keys: async (prefix) => {
        const master = await setup.master();
        const all = (await master.call("KEYS", `${prefix}*`)) as string[];
        const noTtl: string[] = [];
        for (const key of all) if (Number(await master.call("PTTL", key)) === -1) noTtl.push(key);
        return { all: all.length, noTtl };
      },
    };
  },
  true,
);
