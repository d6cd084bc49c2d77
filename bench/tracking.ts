// Benchmark of delivery tracking (issue 13): one 1,000,000-number send tracked as 20 requests of
// 50,000, then 1,000,000 reports plus 10 % duplicates, shuffled, through the tracker; with the
// memory state and with a real redis-server. Run with --expose-gc (heap figures need global.gc).
import { trackerFor, type SummaryMsg, type Tracker } from "../src/lib/alerts/tracking";
import type { AccountState } from "../src/lib/state/index";
import { MemoryState } from "../src/lib/state/memory";
import { RedisState } from "../src/lib/state/redis";
import { startRedis, type RedisServer } from "../test/support/redis";

export interface TrackingBenchOptions {
  /** numbers in the send (default 1,000,000) */
  numbers?: number;
  /** numbers per platform request (default 50,000) */
  perRequest?: number;
  /** reports in flight at once against Redis (default 256) */
  concurrency?: number;
  /** a Redis to use; by default a redis-server is started on a free port and stopped after */
  redisUrl?: string;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

export interface TrackingBenchResult {
  /** heap the memory tracker keeps per tracked number, all requests open, no report yet (target ≤ 100) */
  track_bytes_per_number: number;
  /** the same with half the reports applied (the tally's marks grow as its pending shrink) */
  track_peak_bytes_per_number: number;
  /** heap still held per number after every summary (should be ~0) */
  track_after_bytes_per_number: number;
  /** reports/s through the memory tracker, one at a time (target ≥ 200,000) */
  track_reports_per_s: number;
  /** reports/s through the Redis tracker, `concurrency` in flight (target ≥ 20,000) */
  track_redis_reports_per_s: number;
  /** Redis commands per report on this workload (each one a round trip, pipelined) */
  track_redis_round_trips_per_report: number;
  /** Redis memory per tracked number, all requests open (only when the bench started its own Redis) */
  track_redis_bytes_per_number: number | null;
  /** ms to open one 50,000-number request: memory, Redis */
  track_open_ms: number;
  track_redis_open_ms: number;
}

const OWNER = "bench-send-node";
const STATUSES = ["DELIVRD", "MBBLACK", "UNDELIV", "EXPIRED"];

/** A small deterministic PRNG (mulberry32): the same shuffle every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const mobileOf = (i: number) => `139${String(i).padStart(8, "0")}`;

interface Workload {
  requests: number;
  msgids: string[];
  /** per report: the request index, the number (its own string), the status */
  req: Uint16Array;
  mobile: string[];
  status: string[];
  /** per number: its first status, for checking the summaries */
  truth: Uint8Array;
}

function workload(numbers: number, perRequest: number): Workload {
  const rand = prng(13);
  const requests = Math.ceil(numbers / perRequest);
  const truth = new Uint8Array(numbers);
  // 95 % delivered, the rest spread over three failures.
  for (let i = 0; i < numbers; i++) truth[i] = rand() < 0.95 ? 0 : 1 + Math.floor(rand() * 3);
  const dups = Math.floor(numbers / 10);
  const order = new Int32Array(numbers + dups);
  for (let i = 0; i < numbers; i++) order[i] = i;
  for (let i = 0; i < dups; i++) order[numbers + i] = Math.floor(rand() * numbers);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const req = new Uint16Array(order.length);
  const mobile: string[] = new Array<string>(order.length);
  const status: string[] = new Array<string>(order.length);
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    req[k] = Math.floor(i / perRequest);
    // Its own string, as a pushed report's number is: not the one the tally holds.
    mobile[k] = mobileOf(i);
    status[k] = STATUSES[truth[i]];
  }
  return {
    requests,
    msgids: Array.from({ length: requests }, (_, r) => `8${String(r).padStart(12, "0")}`),
    req,
    mobile,
    status,
    truth,
  };
}

function heap(): number {
  const gc = (global as { gc?: () => void }).gc;
  if (!gc) throw new Error("run node with --expose-gc: the heap figures need global.gc()");
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function openAll(tracker: Tracker, w: Workload, numbers: number, perRequest: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < w.requests; r++) {
    // Fresh strings, kept from here on by the tracker only (as after a real send).
    const mobiles = Array.from({ length: Math.min(perRequest, numbers - r * perRequest) }, (_, j) =>
      mobileOf(r * perRequest + j),
    );
    await tracker.open({
      msgid: w.msgids[r],
      mobiles,
      owner: OWNER,
      sentAt: Date.now(),
      timeoutMs: 60 * 60_000,
      batch: { index: r + 1, count: w.requests },
      msg: { topic: "bench", alert: { host: "db1" } },
    });
  }
  return Number(process.hrtime.bigint() - t0) / 1e6 / w.requests;
}

/** Applies reports [from, to) with `concurrency` in flight; returns the seconds it took. */
async function apply(tracker: Tracker, w: Workload, from: number, to: number, concurrency: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  if (concurrency <= 1) {
    for (let k = from; k < to; k++) await tracker.report(w.msgids[w.req[k]], w.mobile[k], w.status[k]);
  } else {
    let next = from;
    const worker = async () => {
      for (let k = next++; k < to; k = next++) await tracker.report(w.msgids[w.req[k]], w.mobile[k], w.status[k]);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function waitForSummaries(got: SummaryMsg[], n: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (got.length >= n) return resolve();
      if (Date.now() > until) return reject(new Error(`tracking bench: ${got.length}/${n} summaries after ${ms} ms`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

/** Every summary complete, and every number's first status where it belongs. */
function check(got: SummaryMsg[], w: Workload, numbers: number, perRequest: number): void {
  let delivered = 0;
  let failed = 0;
  for (const s of got) {
    const p = s.payload;
    const r = w.msgids.indexOf(p.msgid ?? "");
    if (r < 0 || !p.complete || p.pending.length || p.batch?.index !== r + 1) {
      throw new Error(`tracking bench: unexpected summary for ${p.msgid}`);
    }
    for (const m of p.delivered) if (w.truth[Number(m.slice(3))] !== 0) throw new Error(`${m} is not delivered`);
    for (const f of p.failed) {
      if (STATUSES[w.truth[Number(f.mobile.slice(3))]] !== f.status) throw new Error(`${f.mobile}: wrong status`);
    }
    if (p.total !== Math.min(perRequest, numbers - r * perRequest)) throw new Error(`${p.msgid}: wrong total`);
    delivered += p.delivered.length;
    failed += p.failed.length;
  }
  if (delivered + failed !== numbers)
    throw new Error(`tracking bench: ${delivered + failed}/${numbers} numbers summed up`);
}

function listen(tracker: Tracker): SummaryMsg[] {
  const got: SummaryMsg[] = [];
  tracker.listen(OWNER, { summary: (m) => got.push(m) });
  return got;
}

async function memoryRun(w: Workload, numbers: number, perRequest: number, log: (s: string) => void) {
  const h0 = heap();
  const state = new MemoryState({ maxKeys: 10_000_000 });
  const tracker = trackerFor(state);
  const got = listen(tracker);
  const openMs = await openAll(tracker, w, numbers, perRequest);
  const h1 = heap();
  const total = w.mobile.length;
  const half = Math.floor(total / 2);
  const s1 = await apply(tracker, w, 0, half, 1);
  const h2 = heap();
  const s2 = await apply(tracker, w, half, total, 1);
  await waitForSummaries(got, w.requests, 60_000);
  check(got, w, numbers, perRequest);
  got.length = 0;
  const h3 = heap();
  await state.close();
  const rate = total / (s1 + s2);
  log(
    `track memory: open ${openMs.toFixed(1)} ms/request; heap ${((h1 - h0) / numbers).toFixed(1)} B/number open, ` +
      `${((h2 - h0) / numbers).toFixed(1)} B/number at half the reports, ${((h3 - h0) / numbers).toFixed(1)} after; ` +
      `${Math.round(rate)} reports/s`,
  );
  return {
    bytes: (h1 - h0) / numbers,
    peak: (h2 - h0) / numbers,
    after: (h3 - h0) / numbers,
    rate,
    openMs,
  };
}

/** Counts the state operations the tracker makes (each one a Redis round trip). */
function counted(state: RedisState): { state: AccountState; calls: () => number } {
  let n = 0;
  // Wrapped once per method: a wrapper made on every access would cost more than what it measures.
  const wrappers = new Map<PropertyKey, unknown>();
  const proxy = new Proxy(state, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== "function") return v;
      let w = wrappers.get(prop);
      if (!w) {
        const f = (v as (...a: unknown[]) => unknown).bind(target);
        w =
          prop === "onDue" || prop === "onMode" || prop === "close"
            ? f
            : (...a: unknown[]) => {
                n++;
                return f(...a);
              };
        wrappers.set(prop, w);
      }
      return w;
    },
  });
  return { state: proxy, calls: () => n };
}

async function usedMemory(redis: RedisServer | null): Promise<number | null> {
  if (!redis) return null;
  const info = await redis.command("INFO", "memory");
  const m = /used_memory:(\d+)/.exec(info);
  return m ? Number(m[1]) : null;
}

async function redisRun(
  w: Workload,
  numbers: number,
  perRequest: number,
  concurrency: number,
  url: string,
  redis: RedisServer | null,
  log: (s: string) => void,
) {
  // A generous command timeout (as the guard bench has): the default 1 s fails the whole run when
  // a GC pause or a busy machine delays one reply; this measures throughput, not the fallback.
  const raw = new RedisState({
    url,
    prefix: `cnsms-bench-${process.pid}:`,
    scope: "bench\nbench",
    commandTimeoutMs: 10_000,
  });
  const until = Date.now() + 10_000;
  while (raw.mode !== "shared") {
    if (Date.now() > until) throw new Error("tracking bench: Redis did not connect within 10 s");
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    const { state, calls } = counted(raw);
    const tracker = trackerFor(state);
    const got = listen(tracker);
    const m0 = await usedMemory(redis);
    const openMs = await openAll(tracker, w, numbers, perRequest);
    const m1 = await usedMemory(redis);
    const before = calls();
    const s = await apply(tracker, w, 0, w.mobile.length, concurrency);
    const perReport = (calls() - before) / w.mobile.length;
    await waitForSummaries(got, w.requests, 60_000);
    check(got, w, numbers, perRequest);
    const rate = w.mobile.length / s;
    const bytes = m0 !== null && m1 !== null ? (m1 - m0) / numbers : null;
    log(
      `track redis:  open ${openMs.toFixed(1)} ms/request; ${Math.round(rate)} reports/s (${concurrency} in flight), ` +
        `${perReport.toFixed(3)} round trips/report` +
        (bytes !== null ? `; Redis ${bytes.toFixed(0)} B/number open` : ""),
    );
    return { rate, perReport, bytes, openMs };
  } finally {
    await raw.close();
  }
}

export async function benchTracking(opts: TrackingBenchOptions = {}): Promise<TrackingBenchResult> {
  const numbers = opts.numbers ?? 1_000_000;
  const perRequest = opts.perRequest ?? 50_000;
  const concurrency = opts.concurrency ?? 256;
  const log = opts.log ?? (() => undefined);
  const w = workload(numbers, perRequest);
  const mem = await memoryRun(w, numbers, perRequest, log);
  let redis: RedisServer | null = null;
  let url = opts.redisUrl;
  if (!url) {
    redis = await startRedis();
    url = redis.url;
  }
  try {
    const red = await redisRun(w, numbers, perRequest, concurrency, url, redis, log);
    return {
      track_bytes_per_number: +mem.bytes.toFixed(1),
      track_peak_bytes_per_number: +mem.peak.toFixed(1),
      track_after_bytes_per_number: +mem.after.toFixed(1),
      track_reports_per_s: Math.round(mem.rate),
      track_redis_reports_per_s: Math.round(red.rate),
      track_redis_round_trips_per_report: +red.perReport.toFixed(3),
      track_redis_bytes_per_number: red.bytes === null ? null : Math.round(red.bytes),
      track_open_ms: +mem.openMs.toFixed(1),
      track_redis_open_ms: +red.openMs.toFixed(1),
    };
  } finally {
    await redis?.stop();
  }
}

// `node --expose-gc build/bench/tracking.js`: this benchmark alone.
if (require.main === module) {
  benchTracking({ log: (s) => process.stdout.write(s + "\n") }).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + "\n");
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`tracking bench failed: ${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
}
