// `npm run soak`: 100,000 delivery-report pushes and 10,000 long inbound SMS through a running
// Node-RED with sms-receive: nothing lost, nothing emitted twice, heap after GC bounded.
// Loopback only; bounded in count and time (a watchdog ends a stuck run). SOAK_STORE=redis runs
// it on the Redis account state (a redis-server started here) instead of the memory one.
import { Pool } from "undici";
import { startRedis, type RedisServer } from "../test/support/redis";
import { startRuntime } from "./runtime";

const REPORTS = Number(process.env.SOAK_REPORTS || 100_000);
const LONG = Number(process.env.SOAK_LONG || 10_000);
const CONCURRENCY = 64;
const HEAP_BOUND_MB = 150;
const STORE = process.env.SOAK_STORE === "redis" ? "redis" : "memory";
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
  const rt = await startRuntime();
  await rt.deploy([
    { id: "t", type: "tab" },
    {
      id: "cfg",
      type: "sms-config",
      ...(redis ? { store: "redis", redisUrl: redis.url, redisPrefix: "soak:" } : {}),
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
      partTimeout: 600,
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
  let moBad = 0;
  rt.onReceive("mo", (m) => {
    const p = m.payload as { mobile: string; text: string; complete: boolean };
    const i = Number(p.text.slice(1, p.text.indexOf("|")));
    if (!p.complete || p.text !== expectedText(i)) moBad++;
    moSeen[i] = Math.min(255, moSeen[i] + 1);
  });

  const heap0 = heapMb();
  line(
    `soak: ${REPORTS} report pushes (+5 % re-pushed) and ${LONG} long inbound SMS (3 parts, shuffled, one duplicated), ${CONCURRENCY} at a time, ${STORE} state`,
  );

  let t0 = Date.now();
  const pushes = REPORTS + Math.floor(REPORTS / 20);
  await pool(pushes, CONCURRENCY, async (k) => {
    // The last 5 % re-push earlier reports: the platform's duplicates.
    const i = k < REPORTS ? k : (k - REPORTS) * 20;
    await get(
      `msgid=m${i}&reportTime=1012241002&mobile=139${String(i % 1e8).padStart(8, "0")}&status=DELIVRD&batchSeq=${i}`,
    );
  });
  await settle(() => reportSeen.reduce((n, v) => n + (v ? 1 : 0), 0) === REPORTS);
  const reportSecs = (Date.now() - t0) / 1000;
  const heap1 = heapMb();

  t0 = Date.now();
  await pool(LONG, CONCURRENCY, async (i) => {
    const order = shuffle([1, 2, 3, 1 + (i % 3)]);
    for (const n of order) {
      const text = partText(i, n);
      await get(
        `mobile=138${String(i).padStart(8, "0")}&destcode=106&isems=1&emshead=${i % 200},3,${n}&msg=${encodeURIComponent(text)}`,
      );
    }
  });
  await settle(() => moSeen.reduce((n, v) => n + (v ? 1 : 0), 0) === LONG);
  const moSecs = (Date.now() - t0) / 1000;
  const heap2 = heapMb();

  // Before the stop: Redis stopping under a state kept for its grace period takes it local.
  const localDuringRun = wentLocal;
  await http.close();
  await rt.stop();
  await redis?.stop();
  clearTimeout(watchdog);

  const lost = reportSeen.filter((v) => v === 0).length + moSeen.filter((v) => v === 0).length;
  const duplicated = reportSeen.filter((v) => v > 1).length + moSeen.filter((v) => v > 1).length;
  line(
    `reports  ${pushes} pushes in ${reportSecs.toFixed(1)} s (${Math.round(pushes / reportSecs)} /s): ${REPORTS} emitted once each`,
  );
  line(
    `long MO  ${LONG * 4} parts in ${moSecs.toFixed(1)} s (${Math.round((LONG * 4) / moSecs)} /s): ${LONG} messages, wrong or incomplete ${moBad}`,
  );
  line(`answers  non-200/OK: ${non200}`);
  if (redis) line(`state    ${localDuringRun ? `went local ${localDuringRun} time(s)` : "on Redis throughout"}`);
  line(`result   lost ${lost}, duplicated ${duplicated}`);
  line(
    `heap     after GC: start ${heap0.toFixed(1)} MB, after reports ${heap1.toFixed(1)} MB, after long MO ${heap2.toFixed(1)} MB (bound: start + ${HEAP_BOUND_MB} MB)`,
  );
  const ok =
    lost === 0 && duplicated === 0 && moBad === 0 && non200 === 0 && heap2 - heap0 < HEAP_BOUND_MB && !localDuringRun;
  line(
    JSON.stringify({
      store: STORE,
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
async function settle(done: () => boolean): Promise<void> {
  const until = Date.now() + 30_000;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

main().catch((e) => {
  process.stderr.write(`soak failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
