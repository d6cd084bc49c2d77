// Guard decisions per second (issue 14): 10,000 distinct numbers × 100 keys, on the memory state
// and on a real redis-server, with many alerts in flight as a busy flow has. Each (key, number)
// is decided twice: first it passes (window and cap taken), then the window suppresses it.
import { Guard } from "../src/lib/alerts/guard";
import type { AccountState } from "../src/lib/state/index";
import { MemoryState } from "../src/lib/state/memory";
import { RedisState } from "../src/lib/state/redis";
import { startRedis } from "../test/support/redis";

export interface GuardBenchResult {
  guard_per_s: number;
  guard_redis_per_s: number;
  /** decisions timed on each state */
  memory_decisions: number;
  redis_decisions: number;
  /** heap held by the memory state's 1,000,000 windows and 10,000 caps */
  memory_heap_mb: number;
}

export interface GuardBenchOptions {
  numbers?: number;
  keys?: number;
  /** pairs decided on Redis (each twice); all of them by default */
  redisPairs?: number;
  /** alerts in flight at once */
  inFlight?: number;
  /** an existing Redis; without it a redis-server is started and stopped */
  redisUrl?: string;
}

const number = (i: number) => `139${String(i).padStart(8, "0")}`;

/** Decides `pairs` (key, number) pairs, each twice, `inFlight` at a time; returns decisions/s. */
async function run(guard: Guard, numbers: number, keys: number, pairs: number, inFlight: number): Promise<number> {
  const mobiles = Array.from({ length: numbers }, (_, i) => [number(i)]);
  const topics = Array.from({ length: keys }, (_, k) => `alert-${k}`);
  let sent = 0;
  let suppressed = 0;
  const t0 = process.hrtime.bigint();
  for (let pass = 0; pass < 2; pass++) {
    for (let base = 0; base < pairs; base += inFlight) {
      const batch: Promise<void>[] = [];
      for (let p = base; p < Math.min(pairs, base + inFlight); p++) {
        // Consecutive alerts differ in number and key, as a storm over many hosts looks.
        const d = guard.decide({
          msg: { topic: topics[p % keys], payload: "down" },
          mobiles: mobiles[Math.floor(p / keys) % numbers],
        });
        batch.push(
          d.then((r) => {
            if (r.send) sent++;
            else if (r.suppressed) suppressed++;
          }),
        );
      }
      await Promise.all(batch);
    }
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (sent !== pairs || suppressed !== pairs)
    throw new Error(`guard bench: ${sent} sent, ${suppressed} suppressed of ${pairs}`);
  return (2 * pairs) / s;
}

const make = (state: AccountState) =>
  new Guard({ state, scope: "bench", window: 30, dailyCap: 1000, hours: "", offsetMinutes: 480 });

export async function guardBench(opts: GuardBenchOptions = {}): Promise<GuardBenchResult> {
  const numbers = opts.numbers ?? 10_000;
  const keys = opts.keys ?? 100;
  const pairs = numbers * keys;
  const inFlight = opts.inFlight ?? 1000;

  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const memory = new MemoryState({ maxKeys: 2 * pairs });
  const memoryRate = await run(make(memory), numbers, keys, pairs, inFlight);
  global.gc?.();
  const heapMb = (process.memoryUsage().heapUsed - heap0) / 1e6;
  await memory.close();

  const server = opts.redisUrl ? null : await startRedis();
  const redis = new RedisState({
    url: opts.redisUrl ?? server!.url,
    prefix: `bench${Date.now()}:`,
    scope: "guard",
    commandTimeoutMs: 10_000,
  });
  try {
    const until = Date.now() + 5000;
    while (redis.mode !== "shared") {
      if (Date.now() > until) throw new Error("guard bench: Redis did not connect");
      await new Promise((r) => setTimeout(r, 10));
    }
    const redisPairs = Math.min(pairs, opts.redisPairs ?? pairs);
    const redisRate = await run(make(redis), numbers, keys, redisPairs, Math.min(inFlight, 256));
    return {
      guard_per_s: Math.round(memoryRate),
      guard_redis_per_s: Math.round(redisRate),
      memory_decisions: 2 * pairs,
      redis_decisions: 2 * redisPairs,
      memory_heap_mb: +heapMb.toFixed(1),
    };
  } finally {
    await redis.close();
    await server?.stop();
  }
}

// `node --expose-gc build/bench/guard.js` runs it alone (bench/run.ts will call guardBench).
if (require.main === module) {
  guardBench({ redisPairs: Number(process.env.GUARD_REDIS_PAIRS) || undefined }).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + "\n");
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`guard bench failed: ${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
}
