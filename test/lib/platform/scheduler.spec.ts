import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import {
  accountBacklog,
  QueueFullError,
  Scheduler,
  SchedulerClosedError,
  type Backlog,
} from "../../../src/lib/platform/scheduler";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock } from "../../support/stub";

/** A few turns of the event loop: the scheduler's promise chains settle. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe("lib/platform/scheduler", () => {
  it("spaces starts by (1 s + 100 ms)/rate with no burst: a second at the platform holds at most rate", async () => {
    const clock = new FakeClock();
    const s = new Scheduler({ rate: 10, queue: 100, concurrency: 10, clock });
    const starts: number[] = [];
    const all = [0, 1, 2, 3].map(() => s.acquire().then((rel) => (starts.push(clock.now()), rel())));
    for (let i = 0; i < 5; i++) {
      await Promise.resolve();
      clock.advance(110);
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(all);
    const t0 = starts[0];
    assert.deepEqual(
      starts.map((t) => t - t0),
      [0, 110, 220, 330],
    );
  });

  it("two schedulers pacing through one account state are spaced as one (no double rate)", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const pace = (ms: number) => state.pace("rate", ms);
    const a = new Scheduler({ rate: 10, queue: 100, concurrency: 10, clock, pace });
    const b = new Scheduler({ rate: 10, queue: 100, concurrency: 10, clock, pace });
    const starts: number[] = [];
    const all = [a, b, a, b, a, b].map((s) => s.acquire().then((rel) => (starts.push(clock.now()), rel())));
    for (let i = 0; i < 10 && starts.length < 6; i++) {
      await new Promise((r) => setImmediate(r));
      clock.advance(110);
    }
    await Promise.all(all);
    const t0 = starts[0];
    assert.deepEqual(
      starts.map((t) => t - t0),
      [0, 110, 220, 330, 440, 550],
    );
  });

  it("refuses beyond the queue bound, except priority (retry) callers", async () => {
    const s = new Scheduler({ rate: 0, queue: 1, concurrency: 1 });
    const first = await s.acquire();
    const waiting = s.acquire();
    await assert.rejects(s.acquire(), QueueFullError);
    const retry = s.acquire(true);
    assert.equal(s.queued, 2);
    first();
    (await retry)();
    (await waiting)();
    assert.equal(s.active, 0);
  });

  it("queue 0 means no waiting: a caller that can start at once goes, one that would wait is refused", async () => {
    const clock = new FakeClock();
    const s = new Scheduler({ rate: 0, queue: 0, concurrency: 1, clock });
    const first = await s.acquire();
    // The only slot is taken: this caller would have to wait.
    await assert.rejects(s.acquire(), QueueFullError);
    // A retry keeps its priority: it waits for the slot instead of being refused.
    const retry = s.acquire(true);
    assert.equal(s.queued, 1);
    await assert.rejects(s.acquire(), QueueFullError);
    first();
    (await retry)();
    assert.equal(s.active, 0);
    // Idle again: a send goes at once.
    (await s.acquire())();
  });

  it("queue 0 with a rate: refused until its start time has come, then goes at once", async () => {
    const clock = new FakeClock();
    const s = new Scheduler({ rate: 10, queue: 0, concurrency: 5, clock });
    (await s.acquire())();
    await assert.rejects(s.acquire(), QueueFullError);
    clock.advance(109);
    await assert.rejects(s.acquire(), QueueFullError);
    clock.advance(1);
    const second = await s.acquire();
    const startedAt = clock.now();
    // A retry asked before its turn waits for the rate, never refused.
    let retryAt = 0;
    const retry = s.acquire(true).then((rel) => ((retryAt = clock.now()), rel));
    await Promise.resolve();
    assert.equal(retryAt, 0);
    clock.advance(110);
    (await retry)();
    second();
    assert.equal(retryAt - startedAt, 110);
  });

  it("close() fails every waiting caller; an aborted caller leaves the line", async () => {
    const s = new Scheduler({ rate: 0, queue: 10, concurrency: 1 });
    await s.acquire();
    const stop = new AbortController();
    const aborted = assert.rejects(s.acquire(false, stop.signal), SchedulerClosedError);
    const a = assert.rejects(s.acquire(), SchedulerClosedError);
    const b = assert.rejects(s.acquire(), SchedulerClosedError);
    assert.equal(s.queued, 3);
    stop.abort();
    await aborted;
    assert.equal(s.queued, 2);
    s.close();
    await a;
    await b;
    assert.equal(s.queued, 0);
    await assert.rejects(s.acquire(), SchedulerClosedError);
  });
  it("property: the account's shared backlog counts exactly the callers still waiting, and ends at 0", async () => {
    // A backlog that drifts up would refuse every send of the account for good: any mix of
    // acquires, aborts, releases, clock steps and closes across schedulers must leave it exact.
    const command = fc.oneof(
      fc.record({ k: fc.constant("acquire" as const), s: fc.nat(2), priority: fc.boolean(), abortable: fc.boolean() }),
      fc.record({ k: fc.constant("abort" as const), i: fc.nat(20) }),
      fc.record({ k: fc.constant("release" as const), i: fc.nat(20) }),
      fc.record({ k: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 600 }) }),
      fc.record({ k: fc.constant("close" as const), s: fc.nat(2) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 60 }), fc.boolean(), async (commands, shared) => {
        const clock = new FakeClock();
        const state = new MemoryState({ clock });
        const backlog: Backlog = { count: 0 };
        const pace = shared ? (ms: number) => state.pace("rate", ms) : undefined;
        const schedulers = [0, 1, 2].map(
          () => new Scheduler({ rate: 5, queue: 3, concurrency: 1, clock, pace, backlog }),
        );
        const aborts: AbortController[] = [];
        const releases: Array<() => void> = [];
        for (const c of commands) {
          if (c.k === "acquire") {
            const ac = new AbortController();
            if (c.abortable) aborts.push(ac);
            schedulers[c.s].acquire(c.priority, c.abortable ? ac.signal : undefined).then(
              (rel) => void releases.push(rel),
              () => undefined,
            );
          } else if (c.k === "abort") aborts[c.i % Math.max(1, aborts.length)]?.abort();
          else if (c.k === "release") releases.splice(c.i % Math.max(1, releases.length), 1)[0]?.();
          else if (c.k === "advance") clock.advance(c.ms);
          else schedulers[c.s].close();
          await settle();
          const queued = schedulers.reduce((n, s) => n + s.queued, 0);
          // Exact but for a head whose start is being reserved (at most one per scheduler).
          const ok = backlog.count <= queued && backlog.count >= queued - schedulers.length;
          assert.ok(ok, `count ${backlog.count}, queued ${queued}`);
        }
        // Everything ends: waiting callers leave or get their turn and release it, then all close.
        for (const ac of aborts) ac.abort();
        for (let i = 0; i < 50 && schedulers.some((s) => s.queued > 0); i++) {
          releases.splice(0).forEach((rel) => rel());
          clock.advance(300);
          await settle();
        }
        // With nobody left in any line the count is 0 already (close() would zero it regardless).
        if (schedulers.every((s) => s.queued === 0)) assert.equal(backlog.count, 0);
        for (const s of schedulers) s.close();
        await settle();
        assert.equal(backlog.count, 0);
      }),
      { numRuns: 300 },
    );
  });

  it("accountBacklog: one count per account while a client uses it, gone after the last release", () => {
    // Keys of their own: the map is module state, and a run that left an entry behind (StrykerJS
    // reruns the suite in one process) must not hide the one that is never removed.
    const key = `https://x.example\nacc-${randomUUID()}`;
    const a = accountBacklog(key);
    const b = accountBacklog(key);
    const other = accountBacklog(`https://x.example\nanother-${randomUUID()}`);
    assert.equal(a.backlog, b.backlog);
    assert.notEqual(a.backlog, other.backlog);
    a.release();
    a.release();
    const again = accountBacklog(key);
    assert.equal(again.backlog, b.backlog);
    again.release();
    b.release();
    other.release();
    // Every user gone: the account's entry is too (a new client starts a new count).
    const later = accountBacklog(key);
    assert.notEqual(later.backlog, b.backlog);
    later.release();
  });

  it("callers get their turn in the order they asked; a retry (priority) goes first", async () => {
    const s = new Scheduler({ rate: 0, queue: 10, concurrency: 1 });
    const order: string[] = [];
    const hold = await s.acquire();
    const take = (name: string, priority = false) =>
      s.acquire(priority).then((rel) => {
        order.push(name);
        rel();
      });
    const all = [take("a"), take("b"), take("retry", true), take("c")];
    hold();
    await Promise.all(all);
    assert.deepEqual(order, ["retry", "a", "b", "c"]);
  });

  it("a turn released twice frees one slot, not two (concurrency holds)", async () => {
    const s = new Scheduler({ rate: 0, queue: 10, concurrency: 1 });
    const first = await s.acquire();
    const started: string[] = [];
    void s.acquire().then(() => started.push("a"));
    void s.acquire().then(() => started.push("b"));
    first();
    first();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, ["a"]);
    assert.equal(s.active, 1);
    assert.equal(s.queued, 1);
    s.close();
  });

  it("close() stops the rate timer of a waiting caller", async () => {
    const clock = new FakeClock();
    const s = new Scheduler({ rate: 10, queue: 10, concurrency: 5, clock });
    (await s.acquire())();
    const waiting = assert.rejects(s.acquire(), SchedulerClosedError);
    assert.equal(clock.pending, 1);
    s.close();
    await waiting;
    assert.equal(clock.pending, 0);
  });

  it("rate 0 (no limit) with shared pacing never asks the pacing: every caller starts at once", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    let asked = 0;
    const pace = (ms: number) => (asked++, state.pace("rate", ms));
    const s = new Scheduler({ rate: 0, queue: 10, concurrency: 5, clock, pace });
    const turns = await Promise.all([s.acquire(), s.acquire(), s.acquire()]);
    assert.equal(asked, 0);
    assert.equal(s.active, 3);
    turns.forEach((rel) => rel());
  });

  it("shared pacing: callers that hold their turn start at 0, 110, 220 ms, the first at once", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const s = new Scheduler({ rate: 10, queue: 10, concurrency: 5, clock, pace: (ms) => state.pace("rate", ms) });
    const t0 = clock.now();
    const starts: number[] = [];
    const turns = [0, 1, 2].map(() => s.acquire().then((rel) => (starts.push(clock.now() - t0), rel)));
    await settle();
    assert.deepEqual(starts, [0]);
    for (let i = 0; i < 4; i++) {
      clock.advance(110);
      await settle();
    }
    assert.deepEqual(starts, [0, 110, 220]);
    (await Promise.all(turns)).forEach((rel) => rel());
  });

  it("shared pacing unreachable: the scheduler spaces starts on its own (no burst)", async () => {
    const clock = new FakeClock();
    const pace = () => Promise.reject(new Error("state down"));
    const s = new Scheduler({ rate: 10, queue: 10, concurrency: 5, clock, pace });
    const t0 = clock.now();
    const starts: number[] = [];
    const turns = [0, 1, 2].map(() => s.acquire().then((rel) => (starts.push(clock.now() - t0), rel)));
    await settle();
    for (let i = 0; i < 4; i++) {
      clock.advance(110);
      await settle();
    }
    assert.deepEqual(starts, [0, 110, 220]);
    (await Promise.all(turns)).forEach((rel) => rel());
  });

  it("queue 0 with shared pacing: a caller before the account's next start is QUEUE_FULL", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const pace = (ms: number) => state.pace("rate", ms);
    const x = new Scheduler({ rate: 10, queue: 10, concurrency: 5, clock, pace });
    const y = new Scheduler({ rate: 10, queue: 0, concurrency: 5, clock, pace });
    // x takes the account's start at 0; y's caller gets the one at 110 (its next is 220).
    (await x.acquire())();
    const yFirst = y.acquire();
    await settle();
    clock.advance(110);
    (await yFirst)();
    clock.advance(40);
    await assert.rejects(y.acquire(), QueueFullError);
    clock.advance(70);
    (await y.acquire())();
  });

  it("a caller that leaves the line while its reserved start is pending leaves the start unused", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const s = new Scheduler({ rate: 10, queue: 10, concurrency: 5, clock, pace: (ms) => state.pace("rate", ms) });
    const first = await s.acquire();
    const stop = new AbortController();
    const left = assert.rejects(s.acquire(false, stop.signal), SchedulerClosedError);
    await settle();
    stop.abort();
    await left;
    // The pending start fires with nobody in the line: nothing starts, nothing throws.
    clock.advance(110);
    await settle();
    assert.equal(s.active, 1);
    assert.equal(s.queued, 0);
    first();
    // The next caller gets the account's next start (220 ms), not the unused one.
    const next = s.acquire();
    await settle();
    assert.equal(s.active, 0);
    clock.advance(110);
    (await next)();
  });
});
