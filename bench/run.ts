// `npm run bench`: our nodes against what users build today (core nodes + function nodes) and
// against raw undici, in one run on one machine. Loopback only; every loop is bounded.
import { execFile } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { inspect } from "node:util";
import { Pool } from "undici";
import { SmsClient } from "../src/lib/platform/client";
import { prepareSend } from "../src/lib/platform/prepare";
import { Reassembly } from "../src/lib/push/reassembly";
import { MemoryState } from "../src/lib/state/memory";
import { startRedis, type RedisServer } from "../test/support/redis";
import { guardBench } from "./guard";
import { benchModes } from "./modes";
import { benchOncall } from "./oncall";
import { countingProxy } from "./redis-count";
import { benchPersonalise } from "./personalise";
import { startRuntime, type Runtime } from "./runtime";
import { benchTracking } from "./tracking";

interface AutocannonResult {
  requests: { average: number };
  latency: { p99: number };
  /** seconds the load ran */
  duration: number;
  "2xx": number;
  non2xx: number;
  errors: number;
}

/** One receive run: the answers, and the emitted reports behind them. */
interface ReceiveRun {
  r: AutocannonResult;
  /** pushes answered and emitted per second: the answers / (the run + the wait for the last emit) */
  emitted: number;
}

const N = Number(process.env.BENCH_N || 5000);
const RUNS = Number(process.env.BENCH_RUNS || 5);
const CONNECTIONS = 8;
const REPLY = "20110725160412,0\n1234567890100";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const line = (s: string) => process.stdout.write(s + "\n");

async function stub(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(REPLY);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Feeds n messages into `input` and resolves with msgs/s once `sink` has received n (bounded). */
function through(
  rt: Runtime,
  inputId: string,
  sinkId: string,
  n: number,
  make: () => Record<string, unknown>,
): Promise<number> {
  const input = rt.node(inputId);
  return new Promise((resolve, reject) => {
    let seen = 0;
    const t0 = process.hrtime.bigint();
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${inputId}: ${seen}/${n} after 120 s`));
    }, 120_000);
    const off = rt.onReceive(sinkId, () => {
      if (++seen === n) {
        clearTimeout(timer);
        off();
        resolve(n / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
    });
    for (let i = 0; i < n; i++) input.receive(make());
  });
}

async function sendThroughput(rt: Runtime) {
  const s = await stub();
  const flow = [
    { id: "t", type: "tab" },
    {
      id: "cfg",
      type: "sms-config",
      url: s.url,
      rate: 0,
      queue: 1_000_000,
      timeout: 30_000,
      credentials: { account: "demo", password: "demo" },
    },
    {
      id: "ours",
      type: "sms-send",
      z: "t",
      x: 1,
      y: 1,
      config: "cfg",
      mobile: "13800138000",
      needstatus: true,
      wires: [["ours-out"]],
    },
    { id: "ours-out", type: "junction", z: "t", x: 1, y: 1, wires: [] },
    {
      id: "build",
      type: "function",
      z: "t",
      x: 1,
      y: 1,
      func: "msg.payload = 'account=demo&pswd=demo&mobile=' + encodeURIComponent(msg.mobile) + '&msg=' + encodeURIComponent(msg.text) + '&needstatus=true';\nmsg.headers = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };\nreturn msg;",
      outputs: 1,
      wires: [["req"]],
    },
    {
      id: "req",
      type: "http request",
      z: "t",
      x: 1,
      y: 1,
      method: "POST",
      ret: "txt",
      url: s.url + "/msg/HttpBatchSendSM",
      persist: true,
      wires: [["parse"]],
    },
    {
      id: "parse",
      type: "function",
      z: "t",
      x: 1,
      y: 1,
      func: "const lines = String(msg.payload).split(/\\r?\\n/).filter(Boolean);\nconst [time, code] = lines[0].split(',');\nmsg.payload = { code: Number(code), msgid: lines[1] || null, resptime: time };\nif (msg.payload.code !== 0) { node.error('code ' + code, msg); return null; }\nreturn msg;",
      outputs: 1,
      wires: [["core-out"]],
    },
    { id: "core-out", type: "junction", z: "t", x: 1, y: 1, wires: [] },
  ];
  await rt.deploy(flow);

  const pool = new Pool(s.url, { connections: CONNECTIONS, pipelining: 1 });
  const body = SmsClient.sendBody("demo", "demo", {
    mobiles: ["13800138000"],
    text: "benchmark alert",
    needstatus: true,
  });
  const undiciRun = async () => {
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: N }, async () => {
        const r = await pool.request({
          method: "POST",
          path: "/msg/HttpBatchSendSM",
          body,
          headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
        });
        await r.body.text();
      }),
    );
    return N / (Number(process.hrtime.bigint() - t0) / 1e9);
  };
  const oursRun = () => through(rt, "ours", "ours-out", N, () => ({ payload: "benchmark alert" }));
  const coreRun = () => through(rt, "build", "core-out", N, () => ({ mobile: "13800138000", text: "benchmark alert" }));

  // Warm-up (not counted): JIT, connection pools.
  await oursRun();
  await coreRun();
  await undiciRun();
  const ours: number[] = [];
  const coreRate: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(await oursRun());
    coreRate.push(await coreRun());
    raw.push(await undiciRun());
  }
  await pool.close();
  await rt.deploy([]);
  await s.close();
  return { ours: median(ours), core: median(coreRate), undici: median(raw) };
}

type StateNode = { state: { mode: string; onMode(fn: (mode: string) => void): () => void } };

/**
 * Report pushes: sms-receive on the memory state, sms-receive on the Redis state (the same
 * account, another config node), and the core flow, side by side in one runtime. A third
 * receiver reaches the same Redis through a proxy that counts its commands (round trips), apart
 * from the timed runs so the proxy's hop does not slow them.
 */
async function receiveThroughput(rt: Runtime, redis: RedisServer) {
  const proxy = await countingProxy(redis.port);
  const account = { account: "demo", password: "demo", receiver: "rcv", receiverPassword: "push-secret" };
  const flow = [
    { id: "t", type: "tab" },
    { id: "cfg", type: "sms-config", credentials: account },
    {
      id: "cfg-redis",
      type: "sms-config",
      store: "redis",
      redisUrl: redis.url,
      redisPrefix: "bench:",
      credentials: account,
    },
    { id: "rx", type: "sms-receive", z: "t", x: 1, y: 1, config: "cfg", path: "/sms/push", wires: [["rx-out"], []] },
    { id: "rx-out", type: "junction", z: "t", x: 1, y: 1, wires: [] },
    {
      id: "rx-redis",
      type: "sms-receive",
      z: "t",
      x: 1,
      y: 1,
      config: "cfg-redis",
      path: "/sms/redis",
      wires: [["rx-redis-out"], []],
    },
    { id: "rx-redis-out", type: "junction", z: "t", x: 1, y: 1, wires: [] },
    {
      id: "cfg-count",
      type: "sms-config",
      store: "redis",
      redisUrl: proxy.url,
      redisPrefix: "bench:",
      credentials: account,
    },
    {
      id: "rx-count",
      type: "sms-receive",
      z: "t",
      x: 1,
      y: 1,
      config: "cfg-count",
      path: "/sms/count",
      wires: [["rx-count-out"], []],
    },
    { id: "rx-count-out", type: "junction", z: "t", x: 1, y: 1, wires: [] },
    { id: "in", type: "http in", z: "t", x: 1, y: 1, url: "/core/push", method: "get", wires: [["res"]] },
    { id: "res", type: "http response", z: "t", x: 1, y: 1, statusCode: "200", headers: {}, wires: [] },
  ];
  await rt.deploy(flow);
  // Measured on Redis once the account state is there (while connecting it is local); a fallback
  // to local state during the runs is counted and said (its figures would not be Redis figures).
  const state = (rt.node("cfg-redis") as unknown as StateNode).state;
  const counted = (rt.node("cfg-count") as unknown as StateNode).state;
  const until = Date.now() + 10_000;
  while (state.mode !== "shared" || counted.mode !== "shared") {
    if (Date.now() > until) throw new Error("receive bench: the Redis state did not connect");
    await new Promise((r) => setTimeout(r, 20));
  }
  let wentLocal = 0;
  const offModes = [state, counted].map((st) => st.onMode((mode) => void (mode === "local" && wentLocal++)));
  const emitted = { "/sms/push": 0, "/sms/redis": 0, "/core/push": 0, "/sms/count": 0 };
  const offs = [
    rt.onReceive("rx-out", () => emitted["/sms/push"]++),
    rt.onReceive("rx-redis-out", () => emitted["/sms/redis"]++),
    rt.onReceive("rx-count-out", () => emitted["/sms/count"]++),
  ];

  const base = rt.url;
  // A distinct msgid per request ([<id>]), so every push is a new report that is emitted.
  const q = "receiver=rcv&pswd=push-secret&msgid=[<id>]&reportTime=1012241002&mobile=13900210021&status=DELIVRD";
  // The load generator runs in its own process, so it does not take CPU from the server's loop.
  const load = (path: string, duration: number) =>
    new Promise<AutocannonResult>((resolve, reject) => {
      const bin = require.resolve("autocannon/autocannon.js");
      execFile(
        process.execPath,
        [bin, "-c", "10", "-d", String(duration), "-I", "-j", `${base}${path}?${q}`],
        { timeout: (duration + 30) * 1000, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout) as AutocannonResult)),
      );
    });
  // A push is answered before its report is de-duplicated and emitted: the run ends when every
  // answered push has been emitted too (a Redis falling behind would show here, not in the answers).
  const run = async (path: keyof typeof emitted, duration: number): Promise<ReceiveRun> => {
    const before = emitted[path];
    const r = await load(path, duration);
    const t0 = process.hrtime.bigint();
    if (path !== "/core/push") {
      const end = Date.now() + 60_000;
      while (emitted[path] - before < r["2xx"]) {
        if (Date.now() > end) throw new Error(`${path}: ${emitted[path] - before}/${r["2xx"]} emitted after 60 s`);
        await new Promise((res) => setImmediate(res));
      }
    }
    const drain = Number(process.hrtime.bigint() - t0) / 1e9;
    return { r, emitted: r["2xx"] / (r.duration + drain) };
  };
  await run("/sms/push", 2);
  await run("/sms/redis", 2);
  await run("/core/push", 2);
  const ours: ReceiveRun[] = [];
  const onRedis: ReceiveRun[] = [];
  const coreRes: ReceiveRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(await run("/sms/push", 5));
    onRedis.push(await run("/sms/redis", 5));
    coreRes.push(await run("/core/push", 5));
  }
  // Round trips: 200 pushes to warm up, then 5,000 counted (10 at a time), every one emitted.
  const pool = new Pool(base, { connections: 10 });
  const pushes = async (n: number, from: number) => {
    const before = emitted["/sms/count"];
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < n) {
          const i = from + next++;
          const res = await pool.request({ method: "GET", path: "/sms/count?" + q.replace("[<id>]", `count-${i}`) });
          if ((await res.body.text()) !== "OK") throw new Error(`/sms/count: HTTP ${res.statusCode}`);
        }
      }),
    );
    const end = Date.now() + 60_000;
    while (emitted["/sms/count"] - before < n) {
      if (Date.now() > end) throw new Error(`/sms/count: ${emitted["/sms/count"] - before}/${n} emitted after 60 s`);
      await new Promise((res) => setTimeout(res, 5));
    }
  };
  await pushes(200, 0);
  proxy.reset();
  const COUNTED = 5000;
  await pushes(COUNTED, 200);
  const roundTrips = proxy.total() / COUNTED;
  const perCommand = [...proxy.byName]
    .sort((x, y) => y[1] - x[1])
    .map(([name, n]) => `${name} ${(n / COUNTED).toFixed(3)}`)
    .join(", ");
  await pool.close();
  for (const off of [...offModes, ...offs]) off();
  await rt.deploy([]);
  await proxy.close();
  const bad = [...ours, ...onRedis, ...coreRes].reduce((n, x) => n + x.r.non2xx + x.r.errors, 0);
  const answers = (xs: ReceiveRun[]) => median(xs.map((x) => x.r.requests.average));
  return {
    ours: answers(ours),
    core: answers(coreRes),
    redis: answers(onRedis),
    oursEmitted: median(ours.map((x) => x.emitted)),
    redisEmitted: median(onRedis.map((x) => x.emitted)),
    oursP99: median(ours.map((x) => x.r.latency.p99)),
    coreP99: median(coreRes.map((x) => x.r.latency.p99)),
    redisP99: median(onRedis.map((x) => x.r.latency.p99)),
    roundTrips,
    perCommand,
    wentLocal,
    bad,
  };
}

function prep50k() {
  const numbers = Array.from({ length: 50_000 }, (_, i) => `139${String(i).padStart(8, "0")}`).join(",");
  const once = () => {
    const t0 = process.hrtime.bigint();
    const p = prepareSend("【朗宇信息】benchmark", numbers, { signature: "【朗宇信息】" });
    const body = SmsClient.sendBody("demo", "demo", { mobiles: p.batches[0], text: p.text, needstatus: true });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (p.count !== 50_000 || body.length < 600_000) throw new Error("prep benchmark did not prepare the send");
    return ms;
  };
  for (let i = 0; i < 5; i++) once();
  const times = Array.from({ length: 21 }, once);
  // Memory: what one preparation allocates (heap growth across it, GC before, none during).
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  once();
  const heapDeltaMb = (process.memoryUsage().heapUsed - heap0) / 1e6;
  return { ms: median(times), heapDeltaMb };
}

async function reassembly() {
  const MESSAGES = 100_000;
  const make = (onMessage: (m: { complete: boolean }) => void) => {
    const state = new MemoryState();
    const r = new Reassembly<null>({
      state,
      scope: "bench",
      timeoutMs: 600_000,
      maxPending: 10_000,
      maxBytes: 64 << 20,
      dedupeMs: 600_000,
      onMessage,
      onError: (e) => {
        throw e;
      },
    });
    return { r, state };
  };
  const run = async () => {
    let emitted = 0;
    const { r, state } = make(() => emitted++);
    // 3 parts each, a duplicate of part 2, interleaved across 1,000 messages at a time.
    const order = [3, 1, 2, 2];
    let parts = 0;
    const t0 = process.hrtime.bigint();
    for (let base = 0; base < MESSAGES; base += 1000) {
      for (const n of order) {
        for (let m = base; m < base + 1000; m++) {
          await r.add({
            mobile: "13800138000",
            destcode: "106",
            id: String(m),
            total: 3,
            number: n,
            text: "part",
            meta: null,
          });
          parts++;
        }
      }
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    await state.close();
    if (emitted !== MESSAGES) throw new Error(`reassembly emitted ${emitted}/${MESSAGES}`);
    return parts / s;
  };
  await run();
  const rate = median([await run(), await run(), await run()]);

  // A flood of never-completed messages: the pending count must stay at the bound.
  let evicted = 0;
  const { r, state } = make((m) => void (m.complete || evicted++));
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  let maxPending = 0;
  for (let m = 0; m < 200_000; m++) {
    await r.add({
      mobile: "13800138000",
      destcode: "106",
      id: String(m),
      total: 3,
      number: 1,
      text: "never completed",
      meta: null,
    });
    maxPending = Math.max(maxPending, state.size.pendingMessages);
  }
  global.gc?.();
  const heapMb = (process.memoryUsage().heapUsed - heap0) / 1e6;
  await state.close();
  return { rate, maxPending, evicted, heapMb };
}

async function main() {
  const t0 = Date.now();
  line(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
  );
  line(
    `send: N=${N} messages, ${RUNS} counted runs after a warm-up, ${CONNECTIONS} connections, rate limit off, embedded Node-RED`,
  );
  // Preparing a send, plain or personalised, is pure lib code: measured first, in a clean heap. Later,
  // the heap holds what the runs before left (the registry keeps account state for its grace minute,
  // the guard and tracking benches build hundreds of MB): allocation-heavy work then slows apart from
  // the code measured (personalised 100,000: ~180 ms first, ~300 ms at the end). prep is measured
  // again after the Node-RED runs to show that.
  // BENCH_ONLY=receive: the push benchmark alone (its ratio to core, measured again and again
  // without the 10 minutes of the rest).
  if (process.env.BENCH_ONLY === "receive") return receiveOnly();
  const prep = prep50k();
  const pers = benchPersonalise();
  const redis = await startRedis();
  const rt = await startRuntime();
  const send = await sendThroughput(rt);
  line(`send  sms-send        ${send.ours.toFixed(0)} msgs/s`);
  line(`send  core flow       ${send.core.toFixed(0)} msgs/s  (function → http request → function)`);
  line(`send  raw undici      ${send.undici.toFixed(0)} msgs/s  (Pool, ${CONNECTIONS} connections)`);
  const recv = await receiveThroughput(rt, redis);
  await rt.stop();
  await redis.stop();
  line(`recv  sms-receive     ${recv.ours.toFixed(0)} req/s  p99 ${recv.oursP99} ms  (report pushes, auth on)`);
  line(`recv  core flow       ${recv.core.toFixed(0)} req/s  p99 ${recv.coreP99} ms  (http in → http response)`);
  line(
    `recv  on Redis        ${recv.redis.toFixed(0)} req/s  p99 ${recv.redisP99} ms; answered and emitted: ${recv.redisEmitted.toFixed(0)}/s on Redis, ${recv.oursEmitted.toFixed(0)}/s in memory (${(recv.redisEmitted / recv.oursEmitted).toFixed(2)}×)`,
  );
  line(
    `recv  Redis round trips ${recv.roundTrips.toFixed(3)} per report push (commands sent, deadline poll included): ${recv.perCommand}`,
  );
  if (recv.bad) line(`recv  non-2xx or errors: ${recv.bad}`);
  // A Redis reply later than the state's command timeout (1 s) sends the state local for a while.
  if (recv.wentLocal)
    line(`recv  WARNING: the Redis state went local ${recv.wentLocal} time(s): Redis figures are mixed`);
  const prepAfter = prep50k();
  line(
    `prep  50,000 numbers  ${prep.ms.toFixed(2)} ms median (normalise, validate, de-duplicate, encode); heap +${prep.heapDeltaMb.toFixed(1)} MB over 21 runs; ${prepAfter.ms.toFixed(2)} ms after the Node-RED runs`,
  );
  const re = await reassembly();
  line(`reasm 3-part + dup    ${re.rate.toFixed(0)} parts/s`);
  line(
    `reasm flood 200,000   pending max ${re.maxPending} (bound 10,000), ${re.evicted} emitted incomplete, heap +${re.heapMb.toFixed(1)} MB`,
  );
  // Wave 2: the guard (1,000,000 pairs in memory, 50,000 on Redis: the Redis rate is steady well
  // before that) and tracking of a 1,000,000-number send. Each starts its own Redis.
  const guard = await guardBench({ redisPairs: Number(process.env.GUARD_REDIS_PAIRS) || 50_000 });
  line(
    `guard decisions       ${guard.guard_per_s} /s in memory (${guard.memory_decisions}), ${guard.guard_redis_per_s} /s on Redis (${guard.redis_decisions}); memory state ${guard.memory_heap_mb} MB`,
  );
  const track = await benchTracking({ log: (s) => line(s) });
  // Wave 3: on-call with 10,000 open alerts (memory, then a Redis of its own).
  const oncall = await benchOncall({ log: (s) => line(s) });
  // Pushes through Node-RED on a Redis Cluster and on Sentinel, against memory in the same run.
  const modes = await benchModes({ log: (s) => line(s) });
  line(
    `personalise 100,000   ${pers.personalise_100k_ms} ms (plain ${pers.plain_100k_ms} ms: ${pers.personalise_vs_plain}×); 3 texts ${pers.personalise_3texts_100k_ms} ms (${pers.personalise_3texts_vs_plain}×); plan only ${pers.personalise_plan_100k_ms} ms, render only ${pers.render_only_100k_ms} ms`,
  );
  line(`total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const result = {
    send_msgs_per_s: Math.round(send.ours),
    core_send_msgs_per_s: Math.round(send.core),
    undici_msgs_per_s: Math.round(send.undici),
    send_vs_core: +(send.ours / send.core).toFixed(2),
    send_vs_undici: +(send.ours / send.undici).toFixed(2),
    receive_req_per_s: Math.round(recv.ours),
    core_receive_req_per_s: Math.round(recv.core),
    receive_vs_core: +(recv.ours / recv.core).toFixed(2),
    receive_p99_ms: recv.oursP99,
    core_p99_ms: recv.coreP99,
    receive_redis_req_per_s: Math.round(recv.redis),
    receive_redis_p99_ms: recv.redisP99,
    receive_redis_vs_memory: +(recv.redisEmitted / recv.oursEmitted).toFixed(2),
    receive_redis_round_trips_per_push: +recv.roundTrips.toFixed(3),
    receive_redis_went_local: recv.wentLocal,
    prep_50k_ms: +prep.ms.toFixed(2),
    prep_50k_alloc_mb: +prep.heapDeltaMb.toFixed(1),
    prep_50k_after_runs_ms: +prepAfter.ms.toFixed(2),
    reassembly_parts_per_s: Math.round(re.rate),
    reassembly_flood_max_pending: re.maxPending,
    guard_per_s: guard.guard_per_s,
    guard_redis_per_s: guard.guard_redis_per_s,
    guard_memory_heap_mb: guard.memory_heap_mb,
    ...track,
    ...pers,
    ...oncall,
    ...modes,
  };
  line(JSON.stringify(result));
}

async function receiveOnly() {
  const redis = await startRedis();
  const rt = await startRuntime();
  const recv = await receiveThroughput(rt, redis);
  await rt.stop();
  await redis.stop();
  line(`recv  sms-receive     ${recv.ours.toFixed(0)} req/s  p99 ${recv.oursP99} ms  (report pushes, auth on)`);
  line(`recv  core flow       ${recv.core.toFixed(0)} req/s  p99 ${recv.coreP99} ms  (http in → http response)`);
  if (recv.bad) line(`recv  non-2xx or errors: ${recv.bad}`);
  line(
    JSON.stringify({
      receive_req_per_s: Math.round(recv.ours),
      core_receive_req_per_s: Math.round(recv.core),
      receive_vs_core: +(recv.ours / recv.core).toFixed(2),
      receive_p99_ms: recv.oursP99,
      core_p99_ms: recv.coreP99,
    }),
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    // inspect: an error without a message (an AggregateError) still shows what it holds.
    process.stderr.write(`bench failed: ${inspect(e)}\n`);
    process.exit(1);
  },
);
