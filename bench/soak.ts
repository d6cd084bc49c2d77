// `npm run soak`: 100,000 delivery-report pushes and 10,000 long inbound SMS through a running
// Node-RED with sms-receive: nothing lost, nothing emitted twice, heap after GC bounded.
// Loopback only; bounded in count and time (a watchdog ends a stuck run). SOAK_STORE=redis runs
// it on the Redis account state (a redis-server started here) instead of the memory one.
//
// SOAK_FAULTS=1 (with SOAK_STORE=redis, `npm run soak:faults`): Redis is reached through a TCP
// fault proxy (test/support/fault-proxy.ts) and a fault is made every few seconds while reports
// and long SMS flow at a steady pace: a stall, a delay, a reset, a clean drop, a black hole, and
// Redis's own CLIENT PAUSE (a fork for a snapshot). Fewer items by default (20,000 reports and
// 2,000 long SMS spread over SOAK_FAULTS_SECONDS, 60) so the run stays within a few minutes. It
// passes when nothing is lost and every duplicate is one SPEC B6a allows: a push the platform made
// twice (a re-pushed report, a long SMS with one part pushed twice), emitted at most twice, with a
// copy pushed while a fault lasted or just after (the state is local then: SPEC B6).
import { Pool } from "undici";
import { FaultProxy } from "../test/support/fault-proxy";
import { startRedis, type RedisServer } from "../test/support/redis";
import { startRuntime } from "./runtime";

const STORE = process.env.SOAK_STORE === "redis" ? "redis" : "memory";
const FAULTS = STORE === "redis" && process.env.SOAK_FAULTS === "1";
const REPORTS_ASKED = Number(process.env.SOAK_REPORTS || (FAULTS ? 20_000 : 100_000));
// Faults: in blocks of 20 reports and one re-push (see reportJob).
const REPORTS = FAULTS ? Math.max(20, Math.round(REPORTS_ASKED / 20) * 20) : REPORTS_ASKED;
const LONG = Number(process.env.SOAK_LONG || (FAULTS ? 2_000 : 10_000));
/** faults: the pushes are spread over this long, so traffic meets every fault */
const FAULT_SECONDS = Number(process.env.SOAK_FAULTS_SECONDS || 80);
/** faults: a pause between two faults */
const FAULT_GAP_MS = 2500;
/**
 * faults: how long after a fault a push may still meet the local state (the state leaves Redis
 * alone 5 s after a failure unless Redis answers sooner; a reconnect backs off up to ~3 s).
 */
const FAULT_AFTER_MS = 8000;
/**
 * faults: a push made this long before a fault may still have its commands under way when it
 * begins (a command waits up to 1 s for its answer, and pushes queue under load)
 */
const FAULT_BEFORE_MS = 2000;
/** faults: a long SMS's parts are waited for this long (a message split by a fault still comes out) */
const FAULT_PART_WAIT_S = 20;
const CONCURRENCY = 64;
const HEAP_BOUND_MB = 150;
const line = (s: string) => process.stdout.write(s + "\n");

function heapMb(): number {
  global.gc?.();
  global.gc?.();
  return process.memoryUsage().heapUsed / 1e6;
}

/** Runs `total` async jobs with at most `n` at once. */
async function pool(total: number, n: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < total) await job(next++);
    }),
  );
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    process.stderr.write("soak: did not finish within 10 minutes\n");
    process.exit(2);
  }, 600_000);
  const redis: RedisServer | null = STORE === "redis" ? await startRedis() : null;
  const proxy = FAULTS && redis ? await FaultProxy.start(redis.port) : null;
  const redisUrl = proxy ? proxy.url() : redis?.url;
  const rt = await startRuntime();
  await rt.deploy([
    { id: "t", type: "tab" },
    {
      id: "cfg",
      type: "sms-config",
      ...(redis ? { store: "redis", redisUrl, redisPrefix: "soak:" } : {}),
      credentials: { account: "demo", password: "demo", receiver: "rcv", receiverPassword: "soak-push-pw" },
    },
    {
      id: "rx",
      type: "sms-receive",
      z: "t",
      x: 1,
      y: 1,
      config: "cfg",
      path: "/sms/push",
      partTimeout: FAULTS ? FAULT_PART_WAIT_S : 600,
      wires: [["reports"], ["mo"]],
    },
    { id: "reports", type: "junction", z: "t", x: 1, y: 1, wires: [] },
    { id: "mo", type: "junction", z: "t", x: 1, y: 1, wires: [] },
  ]);
  // On Redis: measured once the state is there (while connecting it is local), and counted if it
  // ever falls back to local state during the run.
  const state = (rt.node("cfg") as unknown as { state: StateView }).state;
  const connectBy = Date.now() + 10_000;
  while (state.mode !== "shared" && redis) {
    if (Date.now() > connectBy) throw new Error("soak: the Redis state did not connect");
    await new Promise((r) => setTimeout(r, 20));
  }
  let wentLocal = 0;
  state.onMode((mode) => void (mode === "local" && wentLocal++));
  const http = new Pool(rt.url, { connections: 16 });
  const auth = "receiver=rcv&pswd=soak-push-pw";
  let non200 = 0;
  const get = async (query: string) => {
    const res = await http.request({ method: "GET", path: `/sms/push?${auth}&${query}` });
    const body = await res.body.text();
    if (res.statusCode !== 200 || body !== "OK") non200++;
  };

  const reportSeen = new Uint8Array(REPORTS);
  rt.onReceive("reports", (m) => {
    const i = Number((m.payload as { msgid: string }).msgid.slice(1));
    reportSeen[i] = Math.min(255, reportSeen[i] + 1);
  });
  const moSeen = new Uint8Array(LONG);
  /** per message and part: how often the part came out (in any message, complete or not) */
  const partSeen = new Uint8Array(LONG * 3);
  let moBad = 0;
  let moIncomplete = 0;
  rt.onReceive("mo", (m) => {
    const p = m.payload as { mobile: string; text: string; complete: boolean; missing?: number[] };
    const i = Number(p.mobile.slice(3));
    const present = [1, 2, 3].filter((n) => !(p.missing ?? []).includes(n));
    for (const n of present) partSeen[i * 3 + n - 1] = Math.min(255, partSeen[i * 3 + n - 1] + 1);
    // A message a fault split comes out in pieces, each with its own parts, in order.
    if (p.text !== present.map((n) => partText(i, n)).join("")) moBad++;
    else if (!p.complete) moIncomplete++;
    if (!FAULTS && !p.complete) moBad++;
    moSeen[i] = Math.min(255, moSeen[i] + 1);
  });
  // When each item was pushed (ms since the start), to tell whether a duplicate met a fault.
  const tStart = Date.now();
  const reportAt = new Float64Array(REPORTS * 2).fill(-1);
  const longAt = new Float64Array(LONG * 2).fill(-1);
  const faultLog: Array<{ name: string; from: number; to: number }> = [];
  const nearFault = (t: number) =>
    t >= 0 && faultLog.some((f) => t >= f.from - FAULT_BEFORE_MS && t <= f.to + FAULT_AFTER_MS);
  let faultsOn = FAULTS;
  const faultLoop = proxy && redis ? runFaults(proxy, redis, () => faultsOn, faultLog, tStart) : Promise.resolve();
  /** faults: job `k` of `total` starts no earlier than its share of FAULT_SECONDS */
  const paced = async (k: number, total: number) => {
    if (!FAULTS) return;
    const at = tStart + (k / total) * FAULT_SECONDS * 1000;
    if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
  };

  const heap0 = heapMb();
  line(
    `soak: ${REPORTS} report pushes (+5 % re-pushed) and ${LONG} long inbound SMS (3 parts, shuffled, ${FAULTS ? "every other one with a part pushed twice" : "one duplicated"}), ${CONCURRENCY} at a time, ${STORE} state${FAULTS ? `, faults through a proxy every ${FAULT_GAP_MS / 1000} s while they flow (~${FAULT_SECONDS} s)` : ""}`,
  );

  let t0 = Date.now();
  const pushes = REPORTS + Math.floor(REPORTS / 20);
  const reportJob = async (k: number) => {
    await paced(k, pushes);
    // The last 5 % re-push earlier reports: the platform's duplicates. With faults one in 21
    // pushes re-pushes a report of a moment ago, so duplicates meet every fault.
    const block = Math.floor(k / 21);
    const again = FAULTS ? k % 21 === 20 : k >= REPORTS;
    const i = FAULTS ? block * 20 + (again ? 5 : k % 21) : again ? (k - REPORTS) * 20 : k;
    reportAt[i * 2 + (again ? 1 : 0)] = Date.now() - tStart;
    await get(
      `msgid=m${i}&reportTime=1012241002&mobile=139${String(i % 1e8).padStart(8, "0")}&status=DELIVRD&batchSeq=${i}`,
    );
  };
  const longJob = async (i: number) => {
    await paced(i, LONG);
    // Faults: only every other message has a part pushed twice, so a duplicate of the others
    // would be one no push explains.
    const order = shuffle(FAULTS && i % 2 ? [1, 2, 3] : [1, 2, 3, 1 + (i % 3)]);
    longAt[i * 2] = Date.now() - tStart;
    for (const n of order) {
      const text = partText(i, n);
      await get(
        `mobile=138${String(i).padStart(8, "0")}&destcode=106&isems=1&emshead=${i % 200},3,${n}&msg=${encodeURIComponent(text)}`,
      );
    }
    longAt[i * 2 + 1] = Date.now() - tStart;
  };
  const allParts = () => partSeen.every((v) => v > 0);
  let reportSecs: number;
  let moSecs: number;
  let heap1: number;
  if (FAULTS) {
    // Both kinds at once, spread over the fault schedule; then the faults stop and whatever a
    // fault delayed (a deadline leased by a poll whose answer was lost: 30 s) comes out.
    await Promise.all([pool(pushes, CONCURRENCY / 2, reportJob), pool(LONG, CONCURRENCY / 2, longJob)]);
    const pushSecs = (Date.now() - t0) / 1000;
    faultsOn = false;
    await faultLoop;
    await settle(() => reportSeen.every((v) => v > 0) && allParts(), FAULT_PART_WAIT_S * 1000 + 60_000);
    reportSecs = moSecs = pushSecs;
    heap1 = heapMb();
  } else {
    await pool(pushes, CONCURRENCY, reportJob);
    await settle(() => reportSeen.reduce((n, v) => n + (v ? 1 : 0), 0) === REPORTS);
    reportSecs = (Date.now() - t0) / 1000;
    heap1 = heapMb();
    t0 = Date.now();
    await pool(LONG, CONCURRENCY, longJob);
    await settle(() => moSeen.reduce((n, v) => n + (v ? 1 : 0), 0) === LONG);
    moSecs = (Date.now() - t0) / 1000;
  }
  const heap2 = heapMb();
  // Faults: nothing more comes out a while after (a duplicate would come late).
  if (FAULTS) await new Promise((r) => setTimeout(r, 3000));
  const unsettled = (state as unknown as { unsettled?: number }).unsettled ?? 0;
  const keysWithoutTtl = redis ? (await redis.keysWithoutTtl("soak:")).length : 0;

  // Faults, something lost: where its parts are now (Redis, the local state), for the report.
  const whereLost: string[] = [];
  if (FAULTS && redis && !(reportSeen.every((v) => v > 0) && allParts())) {
    const st = state as unknown as { mode: string; unsettled: number; local: { holdsShared: boolean } };
    whereLost.push(`state ${st.mode}, unsettled ${st.unsettled}, local holds shared data: ${st.local.holdsShared}`);
    // The Redis side of it: whether its link is up, and what the proxy saw.
    const r = (state as unknown as { redis: Record<string, unknown> & { link: Record<string, unknown> } }).redis;
    const link = r.link;
    const pending = link.pending as Set<{ since: number }> | undefined;
    whereLost.push(
      `redis ${String(r.mode)} (ready ${String(r.ready)}, link.isReady ${String(link.isReady)}, problem ${(r.problem as Error | null)?.message}, ` +
        `last answer ${Date.now() - Number(r.lastAnswer)} ms ago, polling ${String(r.polling)}); link pending ${pending?.size}, ` +
        `oldest ${pending?.size ? Date.now() - [...pending][0].since : 0} ms, link.ready ${String(link.ready)}, last answer ${Date.now() - Number(link.lastAnswer)} ms ago; ` +
        `proxy ${proxy?.mode} connections ${proxy?.connections}/${proxy?.accepted} ${JSON.stringify(proxy?.connectionInfo())}`,
    );
    const dueKeys = (await redis.call("KEYS", "soak:*due*")) as string[];
    for (let i = 0, n = 0; i < LONG && n < 3; i++) {
      if (![0, 1, 2].some((k) => partSeen[i * 3 + k] === 0)) continue;
      n++;
      const mobile = `138${String(i).padStart(8, "0")}`;
      const keys = (await redis.call("KEYS", `soak:*${mobile}*`)) as string[];
      const info: string[] = [];
      for (const k of keys) {
        const type = await redis.call("TYPE", k);
        const body = type === "hash" ? JSON.stringify(await redis.call("HGETALL", k)).slice(0, 160) : type;
        info.push(`${k.slice(0, 90)} pttl ${await redis.call("PTTL", k)} ${body}`);
      }
      for (const z of dueKeys) {
        const all = (await redis.call("ZRANGE", z, "0", "-1", "WITHSCORES")) as string[];
        for (let j = 0; j < all.length; j += 2)
          if (all[j].includes(mobile)) info.push(`${z}: due in ${Number(all[j + 1]) - Date.now()} ms`);
      }
      whereLost.push(`#${i}: ${info.join(" | ") || "nothing in Redis"}`);
    }
  }
  // Before the stop: Redis stopping under a state kept for its grace period takes it local.
  const localDuringRun = wentLocal;
  await http.close();
  await rt.stop();
  await proxy?.close();
  await redis?.stop();
  clearTimeout(watchdog);

  // Lost: a report never emitted, or a part of a long SMS in no message emitted.
  let lostParts = 0;
  for (let i = 0; i < LONG; i++) if ([0, 1, 2].some((n) => partSeen[i * 3 + n] === 0)) lostParts++;
  const lost = reportSeen.filter((v) => v === 0).length + lostParts;
  // Duplicated: a report emitted more than once, a part of a long SMS in more than one message.
  const dupReports: number[] = [];
  reportSeen.forEach((v, i) => v > 1 && dupReports.push(i));
  const dupLong: number[] = [];
  for (let i = 0; i < LONG; i++) if ([0, 1, 2].some((n) => partSeen[i * 3 + n] > 1)) dupLong.push(i);
  const duplicated = dupReports.length + dupLong.length;
  // Within B6a's allowance (faults): pushed twice by the platform, out at most twice, a copy
  // pushed while a fault lasted or just after it.
  const beyondReports = dupReports.filter(
    (i) =>
      reportSeen[i] > 2 || reportAt[i * 2 + 1] < 0 || !(nearFault(reportAt[i * 2]) || nearFault(reportAt[i * 2 + 1])),
  );
  const beyondLong = dupLong.filter(
    (i) =>
      i % 2 === 1 ||
      // Only the part pushed twice may come out twice (in the message and in a piece of it).
      [0, 1, 2].some((n) => partSeen[i * 3 + n] > (n === i % 3 ? 2 : 1)) ||
      !faultLog.some((f) => longAt[i * 2 + 1] >= f.from - FAULT_BEFORE_MS && longAt[i * 2] <= f.to + FAULT_AFTER_MS),
  );
  const beyond = beyondReports.length + beyondLong.length;
  const split = moSeen.filter((v, i) => v > 1 && !dupLong.includes(i)).length;
  line(
    `reports  ${pushes} pushes in ${reportSecs.toFixed(1)} s (${Math.round(pushes / reportSecs)} /s): ${reportSeen.filter((v) => v > 0).length} of ${REPORTS} emitted, ${reportSeen.filter((v) => v === 1).length} once`,
  );
  line(
    `long MO  ${LONG * 4} parts in ${moSecs.toFixed(1)} s (${Math.round((LONG * 4) / moSecs)} /s): ${LONG} messages, wrong or incomplete ${moBad}`,
  );
  line(`answers  non-200/OK: ${non200}`);
  if (redis) line(`state    ${localDuringRun ? `went local ${localDuringRun} time(s)` : "on Redis throughout"}`);
  if (FAULTS) {
    const names = faultLog.map((f) => f.name);
    line(
      `faults   ${faultLog.length}: ${[...new Set(names)].map((n) => `${n} ×${names.filter((x) => x === n).length}`).join(", ")}`,
    );
    line(
      `long MO  incomplete pieces ${moIncomplete} (messages a fault split: ${split}); operations left unsettled ${unsettled}; keys without TTL ${keysWithoutTtl}`,
    );
    line(
      `result   lost ${lost}, duplicated ${duplicated} (reports ${dupReports.length}, long SMS ${dupLong.length}), beyond B6a's allowance ${beyond}`,
    );
  } else line(`result   lost ${lost}, duplicated ${duplicated}`);
  if (FAULTS && beyond) {
    const said = [
      ...beyondLong.map(
        (i) =>
          `long #${i} (part pushed twice: ${i % 2 ? "none" : 1 + (i % 3)}) parts out ${[0, 1, 2].map((n) => partSeen[i * 3 + n]).join("/")} pushed ${longAt[i * 2]}..${longAt[i * 2 + 1]}`,
      ),
      ...beyondReports.map(
        (i) => `report m${i} out ${reportSeen[i]}× pushed at ${reportAt[i * 2]} and ${reportAt[i * 2 + 1]}`,
      ),
    ];
    line(`beyond   ${said.slice(0, 10).join(", ")}`);
    line(`faults   at (ms): ${faultLog.map((f) => `${f.name} ${f.from}..${f.to}`).join("; ")}`);
  }
  if (FAULTS && lost) {
    // What was lost, and when it was pushed against the faults (ms since the start): for a report.
    const lostReports: string[] = [];
    reportSeen.forEach((v, i) => v === 0 && lostReports.length < 10 && lostReports.push(`m${i}@${reportAt[i * 2]}`));
    const lostLong: string[] = [];
    for (let i = 0; i < LONG && lostLong.length < 10; i++) {
      const seen = [0, 1, 2].map((n) => partSeen[i * 3 + n]);
      if (seen.includes(0))
        lostLong.push(`#${i} parts seen ${seen.join("/")} pushed ${longAt[i * 2]}..${longAt[i * 2 + 1]}`);
    }
    line(`lost     reports: ${lostReports.join(", ") || "none"}; long SMS: ${lostLong.join(", ") || "none"}`);
    for (const w of whereLost) line(`where    ${w}`);
    line(`faults   at (ms): ${faultLog.map((f) => `${f.name} ${f.from}..${f.to}`).join("; ")}`);
  }
  line(
    `heap     after GC: start ${heap0.toFixed(1)} MB, after reports ${heap1.toFixed(1)} MB, after long MO ${heap2.toFixed(1)} MB (bound: start + ${HEAP_BOUND_MB} MB)`,
  );
  const ok = FAULTS
    ? lost === 0 &&
      beyond === 0 &&
      moBad === 0 &&
      non200 === 0 &&
      keysWithoutTtl === 0 &&
      heap2 - heap0 < HEAP_BOUND_MB &&
      new Set(faultLog.map((f) => f.name)).size === FAULT_KINDS
    : lost === 0 && duplicated === 0 && moBad === 0 && non200 === 0 && heap2 - heap0 < HEAP_BOUND_MB && !localDuringRun;
  line(
    JSON.stringify({
      store: STORE,
      ...(FAULTS
        ? {
            faults: faultLog.length,
            went_local: localDuringRun,
            duplicated_beyond_b6a: beyond,
            incomplete_pieces: moIncomplete,
            keys_without_ttl: keysWithoutTtl,
          }
        : {}),
      reports: REPORTS,
      long_mo: LONG,
      lost,
      duplicated,
      wrong: moBad,
      non200,
      heap_start_mb: +heap0.toFixed(1),
      heap_end_mb: +heap2.toFixed(1),
      ok,
    }),
  );
  line(ok ? "1 passed, 0 failed" : "0 passed, 1 failed");
  process.exit(ok ? 0 : 1);
}

interface StateView {
  mode: string;
  onMode(fn: (mode: string) => void): () => void;
}

const FAULT_KINDS = 6;

/**
 * Makes a fault every FAULT_GAP_MS while `on()`, in turn: a stall both ways, a 300 ms delay, a
 * reset, a clean drop, a black hole, and Redis's own CLIENT PAUSE; each logged (ms since `t0`).
 */
async function runFaults(
  proxy: FaultProxy,
  redis: RedisServer,
  on: () => boolean,
  log: Array<{ name: string; from: number; to: number }>,
  t0: number,
): Promise<void> {
  const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const faults: Array<[string, () => Promise<void>]> = [
    ["stall 1.5 s", () => (proxy.stall(), wait(1500))],
    ["delay 300 ms for 3 s", () => (proxy.delay(300), wait(3000))],
    ["reset", () => (proxy.reset(), wait(300))],
    ["drop", () => (proxy.drop(), wait(300))],
    ["black hole 1.5 s", () => (proxy.blackhole(), wait(1500))],
    ["CLIENT PAUSE 2 s", () => redis.pauseClients(2000).then(() => wait(2000))],
  ];
  for (let k = 0; ; k++) {
    await wait(FAULT_GAP_MS);
    if (!on()) return;
    const [name, make] = faults[k % faults.length];
    const from = Date.now() - t0;
    await make();
    proxy.pass();
    log.push({ name, from, to: Date.now() - t0 });
  }
}

function partText(i: number, n: number): string {
  return n === 1 ? `#${i}|part one=&%😀 ` : n === 2 ? "part two, 第二段 " : "part three.";
}
function expectedText(i: number): string {
  return partText(i, 1) + partText(i, 2) + partText(i, 3);
}
function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}
async function settle(done: () => boolean, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

main().catch((e) => {
  process.stderr.write(`soak failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
