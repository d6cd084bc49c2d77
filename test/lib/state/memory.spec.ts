import assert from "node:assert/strict";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock } from "../../support/stub";
import { stateContract } from "./contract";

stateContract("memory", async (clock) => {
  // Two config nodes of one account share one MemoryState (the registry hands out the same one).
  const state = new MemoryState({ clock });
  return { state, twin: () => state, cleanup: () => state.close() };
});

describe("state: memory bounds", () => {
  it("pending parts are bounded in bytes: the oldest message is evicted, never dropped silently", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const limits = { ttlMs: 60_000, maxPending: 1000, maxBytes: 10_000 };
    const evicted: string[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await state.addPart("g", `m${i}`, 1, 2, "x".repeat(1000), limits);
      for (const e of r.evicted ?? []) evicted.push(e.key);
    }
    assert.ok(state.size.pendingBytes <= 10_000, `${state.size.pendingBytes} bytes pending`);
    assert.equal(state.size.pendingMessages + evicted.length, 50);
    assert.deepEqual(evicted.slice(0, 3), ["m0", "m1", "m2"]);
  });

  it("keys are bounded in count (the soonest to expire goes) and expired ones are swept", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock, maxKeys: 100 });
    for (let i = 0; i < 1000; i++) await state.claim(`k${i}`, 1000 + i);
    assert.equal(state.size.keys, 100);
    assert.equal(await state.claim("k999", 1000), false, "the latest keys are kept");
    clock.advance(10_000);
    await state.claim("fresh", 1000);
    assert.equal(state.size.keys, 1);
  });

  it("a handler that fails gets its deadline again, later each time (never given up), until it succeeds (SPEC B6a)", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const at: number[] = [];
    const t0 = clock.now();
    state.onDue("k", () => {
      at.push(clock.now() - t0);
      // Fails 20 times (the state could not answer), then works.
      return at.length <= 20 ? Promise.reject(new Error("failed")) : Promise.resolve();
    });
    await state.schedule("k", "a", clock.now());
    for (let i = 0; i < 10_000 && at.length < 21; i++) {
      clock.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(at.length, 21, "the first try and 20 retries: a failing state never loses the deadline");
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    // 2 s, doubling, at most 5 minutes apart. (The fake clock runs a timer at its time but the
    // handler's rejection is seen after the step: the first retry may count from the step's end.)
    assert.ok(gaps[0] >= 2000 && gaps[0] <= 3000, String(gaps[0]));
    assert.deepEqual(
      gaps.slice(1),
      gaps.slice(1).map((_g, i) => Math.min(300_000, 4000 * 2 ** i)),
    );
    clock.advance(3600_000);
    for (let j = 0; j < 4; j++) await Promise.resolve();
    assert.equal(at.length, 21, "settled once the handler succeeded");
    await state.close();
  });

  it("a deadline further away than a timer can wait (2^31-1 ms) is armed in steps and fires on time", async () => {
    const clock = new FakeClock();
    const delays: number[] = [];
    const set = clock.setTimeout;
    clock.setTimeout = (fn: () => void, ms: number) => (delays.push(ms), set(fn, ms));
    const state = new MemoryState({ clock });
    const fired: number[] = [];
    state.onDue("k", () => void fired.push(clock.now()));
    const at = clock.now() + 30 * 24 * 3600_000;
    await state.schedule("k", "far", at);
    clock.advance(30 * 24 * 3600_000 - 1);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, [at]);
    assert.ok(Math.max(...delays) <= 2 ** 31 - 1, `a timer of ${Math.max(...delays)} ms`);
    await state.close();
  });

  it("a handler that throws does not stop the other deadlines", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const fired: string[] = [];
    state.onDue("k", (id) => {
      fired.push(id);
      if (id === "a") throw new Error("boom");
    });
    await state.schedule("k", "a", clock.now() + 10);
    await state.schedule("k", "b", clock.now() + 10);
    clock.advance(10);
    assert.deepEqual(fired, ["a", "b"]);
    await state.close();
  });
});
