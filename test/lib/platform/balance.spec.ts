// The balance window (SPEC A2, B3) at the library level: at most one platform query per window per
// account state; inside it the last answer or error is given again with `cached: true`.
import assert from "node:assert/strict";
import { SmsError } from "../../../src/lib/errors";
import { BALANCE_WINDOW_MS, queryBalance, type BalanceWindowOptions } from "../../../src/lib/platform/balance";
import type { BalanceOutcome } from "../../../src/lib/platform/client";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock } from "../../support/stub";

const OUTCOME: BalanceOutcome = {
  code: 0,
  description: "ok",
  resptime: "20130303180000",
  products: [{ product: "1001", balance: 1000 }],
};

const busy = () => new SmsError({ code: 103, message: "busy" });

/** A platform that counts its queries and answers each with its number as the balance. */
function platform(): { query: () => Promise<BalanceOutcome>; count: () => number } {
  let n = 0;
  return {
    query: async () => ({ ...OUTCOME, products: [{ product: "1001", balance: ++n }] }),
    count: () => n,
  };
}

/** Rejects when `p` has not settled within `ms`: no test waits forever on a promise that never ends. */
function bounded<T>(p: Promise<T>, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled in ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("did not reject");
}

describe("lib/platform/balance", () => {
  let states: MemoryState[] = [];
  const newState = (clock?: FakeClock) => {
    const s = new MemoryState({ clock });
    states.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(states.map((s) => s.close()));
    states = [];
  });

  it("queries once per window; inside it the same answer is given again, cached; after it, a new query", async () => {
    const clock = new FakeClock();
    const state = newState(clock);
    const p = platform();
    const opts: BalanceWindowOptions = { waitMs: 0, busy };
    const first = await queryBalance(state, p.query, opts);
    assert.deepEqual(first, { outcome: { ...OUTCOME, products: [{ product: "1001", balance: 1 }] }, cached: false });
    clock.advance(BALANCE_WINDOW_MS - 1);
    assert.deepEqual(await queryBalance(state, p.query, opts), { ...first, cached: true });
    assert.equal(p.count(), 1);
    clock.advance(1);
    const next = await queryBalance(state, p.query, opts);
    assert.equal(next.cached, false);
    assert.equal(next.outcome.products[0].balance, 2);
    assert.equal(p.count(), 2);
  });

  it("a window of its own length when one is given", async () => {
    const clock = new FakeClock();
    const state = newState(clock);
    const p = platform();
    const opts: BalanceWindowOptions = { waitMs: 0, busy, windowMs: 1_000 };
    await queryBalance(state, p.query, opts);
    clock.advance(999);
    assert.equal((await queryBalance(state, p.query, opts)).cached, true);
    clock.advance(1);
    assert.equal((await queryBalance(state, p.query, opts)).cached, false);
    assert.equal(p.count(), 2);
  });

  it("the window is kept in the account state under the keys other instances read (bal:q, bal:a)", async () => {
    const state = newState();
    await queryBalance(state, platform().query, { waitMs: 0, busy });
    assert.equal(await state.claim("bal:q", 1_000), false);
    assert.deepEqual(JSON.parse((await state.get("bal:a"))!), {
      outcome: { ...OUTCOME, products: [{ product: "1001", balance: 1 }] },
    });
  });

  it("a failed query's error is given at once and again inside the window, never retryable, nothing queried again", async () => {
    const state = newState(new FakeClock());
    let n = 0;
    const failing = async (): Promise<BalanceOutcome> => {
      n++;
      throw new SmsError({ code: 102, message: "wrong password", retryable: true, details: { description: "x" } });
    };
    for (let i = 0; i < 2; i++) {
      const e = await rejection(queryBalance(state, failing, { waitMs: 0, busy }));
      assert.ok(e instanceof SmsError, String(e));
      assert.equal(e.code, 102);
      assert.equal(e.message, "wrong password");
      assert.equal(e.outcomeUnknown, false);
      assert.deepEqual(e.details, { description: "x" });
      // Not retryable even when the query's error was: a retry inside the window only gets it again.
      assert.equal(e.retryable, false);
    }
    assert.equal(n, 1);
  });

  it("callers in one process at the same time share one query, the later ones cached", async () => {
    const state = newState();
    const p = platform();
    const answers = await Promise.all([1, 2, 3].map(() => queryBalance(state, p.query, { waitMs: 0, busy })));
    assert.equal(p.count(), 1);
    assert.deepEqual(
      answers.map((a) => [a.cached, a.outcome.products[0].balance]),
      [
        [false, 1],
        [true, 1],
        [true, 1],
      ],
    );
  });

  it("while another instance queries, its answer is given as soon as it lands (polled every 100 ms)", async () => {
    const state = newState();
    assert.equal(await state.claim("bal:q", BALANCE_WINDOW_MS), true);
    const p = platform();
    const sleeps: number[] = [];
    const sleep = async (ms: number) => {
      sleeps.push(ms);
      if (sleeps.length > 100) throw new Error("still waiting");
      if (sleeps.length === 3) await state.put("bal:a", JSON.stringify({ outcome: OUTCOME }), BALANCE_WINDOW_MS);
    };
    const answer = await bounded(queryBalance(state, p.query, { waitMs: 1_000, busy, sleep }));
    assert.deepEqual(answer, { outcome: OUTCOME, cached: true });
    assert.deepEqual(sleeps, [100, 100, 100]);
    assert.equal(p.count(), 0);
  });

  it("with no answer within waitMs it gives the busy error, after waitMs / 100 polls", async () => {
    const state = newState();
    await state.claim("bal:q", BALANCE_WINDOW_MS);
    let sleeps = 0;
    const sleep = async () => {
      if (++sleeps > 100) throw new Error("still waiting");
    };
    const e = await rejection(bounded(queryBalance(state, platform().query, { waitMs: 300, busy, sleep })));
    assert.ok(e instanceof SmsError && e.code === 103, String(e));
    assert.equal(sleeps, 3);
  });

  it("by default it waits 100 ms between polls, in real time", async () => {
    const state = newState();
    await state.claim("bal:q", BALANCE_WINDOW_MS);
    const landed = setTimeout(() => void state.put("bal:a", JSON.stringify({ outcome: OUTCOME }), 60_000), 250);
    try {
      const answer = await bounded(queryBalance(state, platform().query, { waitMs: 3_000, busy }));
      assert.deepEqual(answer, { outcome: OUTCOME, cached: true });
    } finally {
      clearTimeout(landed);
    }
  });
});
