import assert from "node:assert/strict";
import { QueueFullError, Scheduler, SchedulerClosedError } from "../../../src/lib/platform/scheduler";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock } from "../../support/stub";

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
});
