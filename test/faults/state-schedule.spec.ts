// A randomized fault schedule over a real Redis (SPEC B6a, issue 21): two "instances" (two account
// states, each reaching Redis through its own TCP fault proxy) drive the real features — pushed
// reports with their dedupe, long SMS parts and their reassembly, tracked sends and their
// summaries, guard holds and their release — while faults come and go: delays, stalls (both ways,
// or answers only), dropped and reset connections, a black hole, and Redis's own CLIENT PAUSE.
// Afterwards: nothing dropped, duplicates only where B6a allows them (a push emitted twice), held
// alerts released once each in arrival order, one summary per tracked request, every key with a
// TTL, no unhandled rejection, no event-loop stall over 100 ms.
//
// Seeded: the seed is printed on failure; FAULT_SEED=<n> replays one; FAULT_STEPS=<n> runs longer
// (npm test runs a bounded schedule).
import assert from "node:assert/strict";
import { Guard, type Released } from "../../src/lib/alerts/guard";
import { trackerFor, type SummaryMsg } from "../../src/lib/alerts/tracking";
import { Reassembly, type Assembled } from "../../src/lib/push/reassembly";
import { FailoverState } from "../../src/lib/state/failover";
import { MemoryState } from "../../src/lib/state/memory";
import { RedisState } from "../../src/lib/state/redis";
import { FaultProxy } from "../support/fault-proxy";
import { startRedis, type RedisServer } from "../support/redis";
import { collectGarbage, FakeClock, waitFor, watchStalls } from "../support/stub";

const STEPS = Number(process.env.FAULT_STEPS || 70);
const SEED = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : (Date.now() % 1_000_000) + 1;
const PREFIX = "sched:";
const SCOPE = "http://platform\nschedule";
const OWNER = "send-node";
const MOBILES = ["13800138000", "13800138001", "13800138002"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small seeded generator (mulberry32): the same seed, the same schedule. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Instance {
  name: string;
  proxy: FaultProxy;
  state: FailoverState;
  reassembly: Reassembly<null>;
  guard: Guard;
  stops: Array<() => unknown>;
}

describe("faults: a randomized schedule over a real Redis and two fault proxies (SPEC B6a)", function () {
  this.timeout(300_000);
  let redis: RedisServer;
  const instances: Instance[] = [];
  const rejections: unknown[] = [];
  const onRejection = (e: unknown) => rejections.push(e);

  before(async () => {
    redis = await startRedis();
    process.on("unhandledRejection", onRejection);
  });
  after(async () => {
    process.off("unhandledRejection", onRejection);
    for (const i of instances.splice(0)) {
      for (const stop of i.stops) await stop();
      i.proxy.pass();
      await i.state.close();
      await i.proxy.close();
    }
    await redis?.stop();
  });

  it(`${STEPS} steps: nothing dropped, duplicates only where B6a allows, held alerts once and in order (seed ${SEED})`, async () => {
    const random = rng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const clock = new FakeClock();
    clock.advance(Date.parse("2023-11-15T04:00:00Z") - clock.now()); // 12:00 at +08:00: outside the hours

    // What the features emitted.
    const reports = new Map<string, number>();
    const messages: Array<Assembled<null>> = [];
    const summaries: SummaryMsg[] = [];
    const released: Released[] = [];
    const errors: unknown[] = [];

    for (const name of ["a", "b"]) {
      const proxy = await FaultProxy.start(redis.port);
      const state = new FailoverState(
        new RedisState({ url: proxy.url(), prefix: PREFIX, scope: SCOPE, clock }),
        new MemoryState({ clock }),
      );
      const reassembly = new Reassembly<null>({
        state,
        scope: "rx",
        timeoutMs: 3000,
        maxPending: 1000,
        maxBytes: 1 << 22,
        dedupeMs: 3600_000,
        clock,
        onMessage: (m) => messages.push(m),
        onError: (e) => errors.push(`${name} parts: ${String((e as Error)?.message ?? e)}`),
      });
      const guard = new Guard({ state, scope: "g", clock, window: 0, hours: "22:00-07:00", holdMax: 10_000 });
      const inst: Instance = { name, proxy, state, reassembly, guard, stops: [] };
      inst.stops.push(reassembly.listen());
      inst.stops.push(
        trackerFor(state, { clock }).listen(OWNER, {
          summary: (m) => summaries.push(m),
          error: (e, msgid) => errors.push(`${name} finish ${msgid}: ${String((e as Error)?.message ?? e)}`),
        }),
      );
      inst.stops.push(
        guard.listen(
          (r) => released.push(r),
          (e) => errors.push(e),
        ),
      );
      instances.push(inst);
    }
    await waitFor(() => instances.every((i) => i.state.mode === "shared"), 10_000, "both connected");

    // What was sent into them.
    const sentReports = new Set<string>();
    const trace: string[] = [];
    const parts = new Map<string, Map<number, string>>(); // message id -> part number -> text
    const tracked: string[] = [];
    const held: string[] = [];
    const faults: string[] = [];

    const push = async (inst: Instance, id: string) => {
      sentReports.add(id);
      // As the endpoint does: the dedupe claim decides; a failing state emits (at least once).
      const first = await inst.state.claim(`rx:seen:${id}`, 3600_000).catch(() => true);
      if (first) reports.set(id, (reports.get(id) ?? 0) + 1);
    };
    const part = async (inst: Instance, msg: string, total: number, number: number) => {
      const text = `${msg}/${number};`;
      if (!parts.has(msg)) parts.set(msg, new Map());
      parts.get(msg)!.set(number, text);
      await inst.reassembly
        .add({ mobile: MOBILES[0], destcode: "1069", id: msg, total, number, text, meta: null })
        .catch((e: unknown) => errors.push(e));
    };
    const track = async (inst: Instance, msgid: string) => {
      const tracker = trackerFor(inst.state, { clock });
      await tracker.expect();
      tracked.push(msgid);
      if (process.env.FAULT_DEBUG)
        trace.push(`${Date.now() % 100000} ${inst.name} open ${msgid} faults=${faults.length}`);
      await tracker
        .open({
          msgid,
          mobiles: MOBILES,
          owner: OWNER,
          sentAt: clock.now(),
          timeoutMs: 20_000,
          batch: { index: 1, count: 1 },
          msg: { topic: msgid },
        })
        .catch((e: unknown) => errors.push(e));
    };
    const report = async (inst: Instance, msgid: string, mobile: string, status: string) => {
      await trackerFor(inst.state, { clock })
        .report(msgid, mobile, status)
        .catch((e: unknown) => errors.push(e));
    };
    // Holds go one after another (each its own arrival time), whatever else is under way.
    let holds: Promise<void> = Promise.resolve();
    const hold = (inst: Instance, topic: string) => {
      holds = holds.then(async () => {
        clock.advance(1);
        held.push(topic);
        const d = await inst.guard.decide({ msg: { topic }, mobiles: [MOBILES[1]] });
        assert.equal(d.held, true);
      });
      return holds;
    };

    const fault = async () => {
      const inst = pick(instances);
      const kind = pick(["delay", "stall", "stall-down", "drop", "reset", "blackhole", "pause"] as const);
      const ms = 300 + Math.floor(random() * 2200);
      faults.push(`${inst.name}:${kind}:${ms}`);
      if (process.env.FAULT_DEBUG) trace.push(`${Date.now() % 100000} fault ${inst.name}:${kind}:${ms}`);
      if (kind === "pause") return redis.pauseClients(ms);
      if (kind === "delay") inst.proxy.delay(Math.min(ms, 1500));
      else if (kind === "stall") inst.proxy.stall();
      else if (kind === "stall-down") inst.proxy.stall("down");
      else if (kind === "drop") inst.proxy.drop();
      else if (kind === "reset") inst.proxy.reset();
      else inst.proxy.blackhole();
      setTimeout(() => inst.proxy.pass(), ms);
    };

    // From a clean heap: the suite before this test leaves garbage whose collection is not ours.
    collectGarbage();
    const watch = watchStalls(100);
    const inflight = new Set<Promise<void>>();
    const run = (p: Promise<void>) => {
      const q = p.finally(() => inflight.delete(q));
      inflight.add(q);
    };
    let stalls: Array<{ at: number; ms: number; gcMs: number }> = [];
    let msgSeq = 0;
    let reportSeq = 0;
    let trackSeq = 0;
    const open = new Map<string, { total: number; next: number }>();
    try {
      for (let step = 0; step < STEPS; step++) {
        const inst = pick(instances);
        const r = random();
        if (r < 0.08) await fault();
        else if (r < 0.35) {
          // A report, sometimes one pushed before (the platform pushes again).
          const id = reportSeq > 0 && random() < 0.3 ? `r${Math.floor(random() * reportSeq)}` : `r${reportSeq++}`;
          run(push(inst, id));
        } else if (r < 0.55) {
          // A part of a long SMS: a new message, or the next part of one under way (sometimes again).
          const ids = [...open.keys()];
          if (!ids.length || random() < 0.35) {
            const id = `m${msgSeq++}`;
            open.set(id, { total: 2 + Math.floor(random() * 3), next: 1 });
            run(part(inst, id, open.get(id)!.total, 1));
            open.get(id)!.next = 2;
          } else {
            const id = pick(ids);
            const m = open.get(id)!;
            const n = random() < 0.15 ? Math.max(1, m.next - 1) : m.next;
            run(part(inst, id, m.total, n));
            if (n === m.next) m.next++;
            // Some messages never get their last parts: the wait flushes them, incomplete.
            if (m.next > m.total || random() < 0.1) open.delete(id);
          }
        } else if (r < 0.7) {
          const id = `t${trackSeq++}`;
          // Reports for its numbers (some never come: pending at the timeout), on either instance;
          // drawn now, so the schedule does not depend on timing.
          const later = MOBILES.filter(() => random() < 0.8).map((mobile) => ({
            inst: pick(instances),
            mobile,
            status: random() < 0.7 ? "DELIVRD" : "UNDELIV",
          }));
          run(
            track(inst, id).then(async () => {
              for (const x of later) await report(x.inst, id, x.mobile, x.status);
            }),
          );
        } else if (r < 0.85) run(hold(inst, `h${held.length + inflight.size}-${step}`));
        else await sleep(20 + Math.floor(random() * 100));
        clock.advance(50);
        await sleep(15);
        // Bounded concurrency: a stalled Redis must not make the schedule pile up work.
        while (inflight.size >= 12) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      await holds;
    } finally {
      stalls = watch.stop();
      for (const i of instances) i.proxy.pass();
    }

    // Faults over: both instances share Redis again, settle what was left unanswered and hand
    // over what they kept locally.
    await waitFor(
      () => instances.every((i) => i.state.mode === "shared" && i.state.unsettled === 0 && !i.state.keptLocally),
      60_000,
      "both instances shared again, nothing left to settle or hand over",
      50,
    ).catch((e: unknown) => {
      const how = instances.map(
        (i) =>
          `${i.name}: ${i.state.mode} (redis ${(i.state as unknown as { redis: RedisState }).redis.mode}, ${i.state.problem?.message}) ` +
          `unsettled ${i.state.unsettled} local ${i.state.keptLocally} faults ${faults.filter((f) => f.startsWith(i.name)).join(" ")} ` +
          `link ${JSON.stringify(((l: { pending: Set<{ since: number }>; lastAnswer: number; ready: boolean }) => ({ n: l.pending.size, oldest: Date.now() - ([...l.pending][0]?.since ?? 0), last: Date.now() - l.lastAnswer, ready: l.ready, wd: !!(l as unknown as { watchdog: unknown }).watchdog, rel: !!(l as unknown as { release: unknown }).release }))((i.state as unknown as { redis: { link: never } }).redis.link))} conns ${i.proxy.connections}/${i.proxy.accepted}`,
      );
      throw new Error(`${(e as Error).message} (${how.join("; ")}; seed ${SEED})`);
    });
    // Every wait runs out (parts, tracked sends), then the hours begin (held alerts are released).
    for (let i = 0; i < 60; i++) {
      clock.advance(1000);
      await sleep(25);
    }
    clock.advance(Date.parse("2023-11-15T14:00:00Z") - clock.now()); // 22:00 at +08:00
    const quiet = async () => {
      let last = "";
      for (let i = 0; i < 200; i++) {
        clock.advance(200);
        await sleep(100);
        const now = `${reports.size}/${messages.length}/${summaries.length}/${released.length}`;
        if (
          now === last &&
          released.length >= held.length &&
          summaries.length >= tracked.length &&
          instances.every((x) => x.state.unsettled === 0)
        ) {
          return;
        }
        last = now;
      }
    };
    await quiet();

    const context = `seed ${SEED}, faults ${faults.join(" ")}`;
    try {
      // Reports: each at least once; twice only where B6a allows it (a push during a fault).
      for (const id of sentReports) assert.ok((reports.get(id) ?? 0) >= 1, `report ${id} dropped`);
      const twice = [...reports.values()].filter((c) => c > 1).length;
      // Long SMS: every part of every message is in some emitted message (never dropped).
      for (const [id, want] of parts) {
        const got = new Set<number>();
        for (const m of messages) if (m.id === id) for (const n of m.received) got.add(n);
        assert.deepEqual([...got].sort(), [...want.keys()].sort(), `long SMS ${id}: parts emitted`);
      }
      // Tracked sends: exactly one summary each, with every number accounted for.
      const byId = new Map<string, number>();
      for (const s of summaries) byId.set(String(s.msgid), (byId.get(String(s.msgid)) ?? 0) + 1);
      for (const id of tracked) assert.equal(byId.get(id) ?? 0, 1, `summaries of ${id}`);
      for (const s of summaries) assert.equal(s.payload.total, MOBILES.length);
      // Held alerts: each released once, in arrival order.
      const order = released.map((r) => (r.msg as { topic: string }).topic);
      assert.deepEqual(order, held, "held alerts released once each, in arrival order");
      // Every key has a TTL.
      assert.deepEqual(await redis.keysWithoutTtl(PREFIX), []);
      assert.deepEqual(rejections, [], "no unhandled rejection");
      // The event loop never stalled while the faults came and went (a stalled Redis holds up
      // nothing): no stall over 100 ms that a pause of the garbage collector does not explain.
      const ours = stalls.filter((st) => st.ms - st.gcMs > 100);
      assert.deepEqual(ours, [], `event loop stalls (ms, of which GC): ${JSON.stringify(stalls)}`);
      const maxMs = Math.max(0, ...stalls.map((st) => st.ms));
      process.stdout.write(
        `      schedule: ${STEPS} steps, ${faults.length} faults, ${sentReports.size} reports (${twice} twice), ` +
          `${parts.size} long SMS in ${messages.length} messages, ${tracked.length} summaries, ` +
          `${held.length} held alerts released in order; ${stalls.length} event-loop stalls over 100 ms ` +
          `(longest ${maxMs} ms), each a GC pause; ` +
          `${errors.length} errors said (and retried)\n`,
      );
    } catch (e) {
      process.stdout.write(`      failed with ${context}\n`);
      if (process.env.FAULT_DEBUG) {
        process.stdout.write(`      errors: ${errors.map((x) => String((x as Error)?.message ?? x)).join(" | ")}\n`);
        process.stdout.write(`      summaries: ${summaries.map((m) => m.msgid).join(",")}\n`);
        process.stdout.write(`      trace: ${trace.join("\n        ")}\n`);
      }
      throw e;
    }
  });
});
