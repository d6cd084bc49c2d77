// On-call (SPEC B11, issue 24) with 10,000 open alerts, on the memory state and on a real
// redis-server: how fast their steps go (each a deadline handled by the node's handler, as in
// Node-RED: read the alert, take a code at a number paged the first time, one compare-and-set),
// how much memory an open alert holds, and how long an acknowledgement by reply takes until its
// step is cancelled (the reply read, the alert acknowledged, its deadline moved).
//
// The default chain pages the one on call, then the next one (a code taken at a second number),
// then the whole rota (a third number): steps/s is measured over steps 2 and 3 of every alert.
import { inboxFor } from "../src/lib/alerts/inbox";
import { OnCall, repliesFor } from "../src/lib/alerts/oncall";
import type { AccountState } from "../src/lib/state/index";
import { MemoryState } from "../src/lib/state/memory";
import { RedisState } from "../src/lib/state/redis";
import { startRedis } from "../test/support/redis";
import { FakeClock } from "../test/support/stub";

export interface OncallBenchResult {
  oncall_steps_per_s: number;
  oncall_redis_steps_per_s: number;
  oncall_bytes_per_alert: number;
  oncall_ack_p99_ms: number;
  oncall_redis_ack_p99_ms: number;
}

export interface OncallBenchOptions {
  /** open alerts (default 10,000) */
  alerts?: number;
  /** acknowledgements timed (default 1,000) */
  acks?: number;
  /** an existing Redis; without it a redis-server is started and stopped */
  redisUrl?: string;
  log?: (s: string) => void;
}

const ROTA = ["13800138000", "13900139000", "13700137000"];
const MIN = 60_000;

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)];
}

interface Run {
  stepsPerS: number;
  bytesPerAlert: number;
  ackP99: number;
  ackP50: number;
}

async function run(
  state: AccountState,
  clock: FakeClock,
  alerts: number,
  acks: number,
  fire: () => Promise<void>,
): Promise<Run> {
  const oc = new OnCall({ state, scope: "bench", clock, rota: ROTA, maxOpen: alerts });
  let escalated = 0;
  let errors = 0;
  const stop = oc.listen({
    emit: (outs) => {
      for (const o of outs) if (o.port === 1 && o.msg.payload.event === "escalated") escalated++;
    },
    error: () => errors++,
  });
  // Each alert's code at the one on call (a typed array: nothing the measured heap would count).
  const codes = new Int32Array(alerts);
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  for (let base = 0; base < alerts; base += 1000) {
    const batch: Array<Promise<unknown>> = [];
    for (let i = base; i < Math.min(alerts, base + 1000); i++) {
      const key = `host-${i} disk`;
      batch.push(
        oc.fire(key, `disk full on host-${i}`).then((outs) => {
          for (const o of outs) if (o.port === 0) codes[i] = o.msg.oncall.code!;
        }),
      );
    }
    await Promise.all(batch);
  }
  global.gc?.();
  const bytesPerAlert = (process.memoryUsage().heapUsed - heap0) / alerts;

  // Steps 2 and 3 of every alert: the clock passes each wait, the deadlines fire.
  const t0 = process.hrtime.bigint();
  for (const [wait, want] of [
    [5 * MIN, alerts],
    [10 * MIN, 2 * alerts],
  ]) {
    clock.advance(wait);
    const until = Date.now() + 300_000;
    while (escalated < want) {
      if (Date.now() > until || errors) throw new Error(`oncall bench: ${escalated}/${want} steps, ${errors} errors`);
      await fire();
      await new Promise((r) => setImmediate(r));
    }
  }
  const stepsPerS = (2 * alerts) / (Number(process.hrtime.bigint() - t0) / 1e9);

  // Acknowledgements by reply, one at a time (as people answer): from the inbound SMS to the
  // alert acknowledged and its step deadline moved off.
  const inbox = inboxFor(state);
  const times: number[] = [];
  // The steps' garbage is collected first: the acknowledgements are timed, not the steps' GC.
  global.gc?.();
  for (let i = 0; i < Math.min(acks, alerts); i++) {
    const t = process.hrtime.bigint();
    await inbox.deliver({ mobile: ROTA[0], text: String(codes[i]), destcode: "1069" });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    // Its confirm goes out (the outbox deadline, due now) before the next person answers.
    await fire();
  }
  await repliesFor(state).last;
  stop();
  const sorted = [...times].sort((a, b) => a - b);
  return { stepsPerS, bytesPerAlert, ackP99: p99(times), ackP50: sorted[Math.floor(sorted.length / 2)] };
}

export async function benchOncall(opts: OncallBenchOptions = {}): Promise<OncallBenchResult> {
  const alerts = opts.alerts ?? 10_000;
  const acks = opts.acks ?? 1000;
  const log = opts.log ?? (() => undefined);

  // Warm-up on a state of its own: code compiled once is not an alert's memory.
  const wclock = new FakeClock();
  const warm = new MemoryState({ clock: wclock });
  await run(warm, wclock, Math.min(alerts, 2000), Math.min(acks, 100), async () => wclock.advance(0));
  await warm.close();

  const clock = new FakeClock();
  const memory = new MemoryState({ clock });
  const mem = await run(memory, clock, alerts, acks, async () => clock.advance(0));
  await memory.close();
  log(
    `oncall memory         ${Math.round(mem.stepsPerS)} steps/s with ${alerts} open; ${Math.round(mem.bytesPerAlert)} bytes per alert; ack p50 ${mem.ackP50.toFixed(2)} ms, p99 ${mem.ackP99.toFixed(2)} ms`,
  );

  const server = opts.redisUrl ? null : await startRedis();
  const rclock = new FakeClock();
  const redis = new RedisState({
    url: opts.redisUrl ?? server!.url,
    prefix: `oncallbench${Date.now()}:`,
    scope: "oncall",
    clock: rclock,
    commandTimeoutMs: 10_000,
  });
  try {
    const until = Date.now() + 5000;
    while (redis.mode !== "shared") {
      if (Date.now() > until) throw new Error("oncall bench: Redis did not connect");
      await new Promise((r) => setTimeout(r, 10));
    }
    const red = await run(redis, rclock, alerts, acks, async () => void (await redis.poll()));
    log(
      `oncall redis          ${Math.round(red.stepsPerS)} steps/s with ${alerts} open; ack p50 ${red.ackP50.toFixed(2)} ms, p99 ${red.ackP99.toFixed(2)} ms`,
    );
    return {
      oncall_steps_per_s: Math.round(mem.stepsPerS),
      oncall_redis_steps_per_s: Math.round(red.stepsPerS),
      oncall_bytes_per_alert: Math.round(mem.bytesPerAlert),
      oncall_ack_p99_ms: +mem.ackP99.toFixed(2),
      oncall_redis_ack_p99_ms: +red.ackP99.toFixed(2),
    };
  } finally {
    await redis.close();
    await server?.stop();
  }
}

// `node --expose-gc build/bench/oncall.js` runs it alone (bench/run.ts can call benchOncall).
if (require.main === module) {
  benchOncall({ log: (s) => process.stdout.write(s + "\n") }).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + "\n");
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`oncall bench failed: ${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
}
