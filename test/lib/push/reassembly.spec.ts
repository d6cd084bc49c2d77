import assert from "node:assert/strict";
import fc from "fast-check";
import { Reassembly, type Assembled, type LongPart } from "../../../src/lib/push/reassembly";
import type { ClaimBound } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock } from "../../support/stub";

type Meta = { n: number };

type SetupOptions = {
  timeoutMs?: number;
  maxPending?: number;
  maxBytes?: number;
  dedupeMs?: number;
  claimBound?: ClaimBound;
  state?: (clock: FakeClock) => MemoryState;
};

function setup(opts: SetupOptions = {}) {
  const clock = new FakeClock();
  const state = opts.state?.(clock) ?? new MemoryState({ clock });
  const out: Array<Assembled<Meta>> = [];
  const errors: unknown[] = [];
  const make = () =>
    new Reassembly<Meta>({
      state,
      scope: "r:/sms/push",
      timeoutMs: opts.timeoutMs ?? 1000,
      maxPending: opts.maxPending ?? 1000,
      maxBytes: opts.maxBytes ?? 8 << 20,
      dedupeMs: opts.dedupeMs ?? 600_000,
      claimBound: opts.claimBound,
      clock,
      onMessage: (m) => out.push(m),
      onError: (e) => errors.push(e),
    });
  const r = make();
  const off = r.listen();
  return { clock, state, out, errors, r, off, make };
}

const part = (number: number, total = 3, id = "7", mobile = "13800138000", destcode = "1065"): LongPart<Meta> => ({
  mobile,
  destcode,
  id,
  total,
  number,
  text: `<${number}>`,
  meta: { n: number },
});

describe("lib/push/reassembly (on the account state)", () => {
  it("emits a complete message once, in part order, whatever the arrival order", async () => {
    const { out, r, state } = setup();
    assert.equal(await r.add(part(3)), "added");
    assert.equal(await r.add(part(1)), "added");
    assert.equal(await r.add(part(2)), "completed");
    assert.equal(out.length, 1);
    assert.equal(out[0].text, "<1><2><3>");
    assert.equal(out[0].complete, true);
    assert.deepEqual(out[0].missing, []);
    assert.deepEqual(
      out[0].metas.map((m) => m.n),
      [1, 2, 3],
    );
    assert.equal(state.size.pendingMessages, 0);
    assert.equal(state.size.deadlines, 0, "the completed message's wait was cancelled");
  });

  it("drops duplicate parts, also after the message was emitted", async () => {
    const { out, r } = setup();
    await r.add(part(1));
    assert.equal(await r.add(part(1)), "duplicate");
    await r.add(part(2));
    await r.add(part(3));
    assert.equal(await r.add(part(2)), "duplicate");
    assert.equal(out.length, 1);
  });

  it("keys by mobile, destcode, id and total", async () => {
    const { out, r, state } = setup();
    await r.add(part(1, 2, "1", "13800138000"));
    await r.add(part(1, 2, "1", "13900139000"));
    await r.add(part(1, 2, "1", "13800138000", "other"));
    await r.add(part(1, 3, "1", "13800138000"));
    assert.equal(state.size.pendingMessages, 4);
    assert.equal(out.length, 0);
  });

  it("emits the partial message after the wait, flagged with what is missing", async () => {
    const { out, r, clock } = setup({ timeoutMs: 1000 });
    await r.add(part(1));
    await r.add(part(3));
    clock.advance(999);
    await Promise.resolve();
    assert.equal(out.length, 0);
    clock.advance(1);
    for (let i = 0; i < 5 && !out.length; i++) await Promise.resolve();
    assert.equal(out.length, 1);
    assert.equal(out[0].complete, false);
    assert.deepEqual(out[0].missing, [2]);
    assert.equal(out[0].text, "<1><3>");
    assert.equal(out[0].reason, "timeout");
  });

  it("restarts the wait with each new part", async () => {
    const { out, r, clock } = setup({ timeoutMs: 1000 });
    await r.add(part(1));
    clock.advance(800);
    await r.add(part(2));
    clock.advance(800);
    await Promise.resolve();
    assert.equal(out.length, 0, "the second part moved the deadline");
    clock.advance(200);
    for (let i = 0; i < 5 && !out.length; i++) await Promise.resolve();
    assert.equal(out.length, 1);
  });

  it("bounds pending messages: the oldest is emitted as partial, never dropped", async () => {
    const { out, r, state } = setup({ maxPending: 2 });
    await r.add(part(1, 2, "a"));
    await r.add(part(1, 2, "b"));
    await r.add(part(1, 2, "c"));
    assert.equal(state.size.pendingMessages, 2);
    assert.deepEqual(
      out.map((m) => [m.id, m.reason, m.complete]),
      [["a", "evicted", false]],
    );
  });

  it("bounds pending bytes: the oldest message is emitted as incomplete, never dropped", async () => {
    const { out, r, state } = setup({ maxBytes: 20_000 });
    const big = (id: string): LongPart<Meta> => ({ ...part(1, 2, id), text: "x".repeat(3000) });
    for (const id of ["a", "b", "c", "d", "e"]) await r.add(big(id));
    assert.ok(state.size.pendingBytes <= 20_000, `${state.size.pendingBytes}`);
    assert.ok(out.length >= 1);
    assert.equal(out[0].id, "a");
    assert.ok(out.every((m) => m.reason === "evicted" && !m.complete));
    assert.equal(out.length + state.size.pendingMessages, 5);
  });

  it("a single message larger than the byte bound is emitted at once as incomplete", async () => {
    const { out, r, state } = setup({ maxBytes: 1000 });
    assert.equal(await r.add({ ...part(1, 2), text: "y".repeat(2000) }), "added");
    assert.equal(out.length, 1);
    assert.equal(out[0].complete, false);
    assert.equal(state.size.pendingMessages, 0);
    assert.equal(state.size.deadlines, 0, "no wait left for a message already emitted");
  });

  it("flush() emits every pending message of the scope as incomplete, and nothing fires later", async () => {
    const { out, r, clock } = setup();
    await r.add(part(1, 2, "a"));
    await r.add(part(2, 3, "b"));
    assert.equal(await r.flush(), 2);
    assert.deepEqual(out.map((m) => [m.id, m.reason]).sort(), [
      ["a", "closed"],
      ["b", "closed"],
    ]);
    clock.advance(10_000);
    await Promise.resolve();
    assert.equal(out.length, 2);
  });

  it("a replacing receiver (a redeploy) completes what the old one started, and takes over its waits", async () => {
    const { out, r, off, make, clock } = setup({ timeoutMs: 1000 });
    await r.add(part(1, 3, "x"));
    await r.add(part(1, 2, "y"));
    off();
    const next = make();
    next.listen();
    await next.add(part(2, 2, "y"));
    assert.deepEqual(
      out.map((m) => [m.id, m.complete]),
      [["y", true]],
    );
    clock.advance(1000);
    for (let i = 0; i < 5 && out.length < 2; i++) await Promise.resolve();
    assert.deepEqual(
      out.map((m) => [m.id, m.reason]),
      [
        ["y", "complete"],
        ["x", "timeout"],
      ],
    );
  });

  it("a single-part long SMS completes at once; bad numbers throw", async () => {
    const { out, r } = setup();
    assert.equal(await r.add(part(1, 1)), "completed");
    assert.equal(out.length, 1);
    await assert.rejects(r.add(part(4, 3)), RangeError);
    await assert.rejects(r.add(part(0, 3)), RangeError);
  });

  it("model: any order, any duplication → exactly one complete message per key with the right text", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat({ max: 3 }), { maxLength: 60 }),
        fc.infiniteStream(fc.nat()),
        async (totals, dupCounts, rnd) => {
          const { out, r, state } = setup({ maxPending: 100 });
          const parts: Array<LongPart<Meta>> = [];
          totals.forEach((total, m) => {
            for (let n = 1; n <= total; n++) {
              const p = {
                mobile: "1",
                destcode: "1",
                id: String(m),
                total,
                number: n,
                text: `m${m}p${n};`,
                meta: { n },
              };
              const copies = 1 + (dupCounts[parts.length % Math.max(1, dupCounts.length)] ?? 0);
              for (let c = 0; c < copies; c++) parts.push(p);
            }
          });
          const it = rnd[Symbol.iterator]();
          for (let i = parts.length - 1; i > 0; i--) {
            const j = (it.next().value as number) % (i + 1);
            [parts[i], parts[j]] = [parts[j], parts[i]];
          }
          for (const p of parts) await r.add(p);
          assert.equal(out.length, totals.length);
          assert.equal(state.size.pendingMessages, 0);
          for (const m of out) {
            const total = totals[Number(m.id)];
            assert.ok(m.complete);
            assert.equal(m.text, Array.from({ length: total }, (_, k) => `m${m.id}p${k + 1};`).join(""));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses a wait that is not positive, and part totals that are not whole numbers", async () => {
    for (const timeoutMs of [0, -1, NaN]) {
      assert.throws(
        () => setup({ timeoutMs }),
        { name: "RangeError", message: "timeoutMs must be > 0" },
        `${timeoutMs}`,
      );
    }
    const { out, r } = setup();
    for (const total of [NaN, 2.5]) {
      await assert.rejects(r.add({ ...part(1), total }), {
        name: "RangeError",
        message: "part number must be within 1..total",
      });
    }
    assert.equal(out.length, 0);
  });

  it("keeps the parts a day past their wait: a receiver back an hour late still completes the message", async () => {
    const { out, r, off, make, clock } = setup({ timeoutMs: 1000 });
    await r.add(part(1));
    await r.add(part(2));
    off();
    clock.advance(3600_000);
    const next = make();
    assert.equal(await next.add(part(3)), "completed");
    assert.deepEqual(
      out.map((m) => [m.text, m.complete]),
      [["<1><2><3>", true]],
    );
  });

  it("a wait whose parts are gone (no receiver for over a day) emits nothing and is not counted", async () => {
    const { out, r, off, make, clock, errors } = setup({ timeoutMs: 1000 });
    await r.add(part(1, 2, "a"));
    off();
    clock.advance(25 * 3600_000);
    const next = make();
    // A push to the group drops what outlived its keep; the wait of "a" is still set.
    await next.add(part(1, 2, "b"));
    assert.equal(await next.flush(), 1);
    assert.deepEqual(
      out.map((m) => [m.id, m.reason]),
      [["b", "closed"]],
    );
    assert.deepEqual(errors, []);
  });

  it("a state failing at a wait's end is reported, and the wait fires again until the message is out", async () => {
    class FailingOnce extends MemoryState {
      failures = 1;
      override takeParts(group: string, key: string): Promise<Map<number, string> | null> {
        if (this.failures-- > 0) return Promise.reject(new Error("state down"));
        return super.takeParts(group, key);
      }
    }
    const { out, r, clock, errors } = setup({ timeoutMs: 1000, state: (c) => new FailingOnce({ clock: c }) });
    await r.add(part(1));
    clock.advance(1000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ["state down"],
    );
    assert.equal(out.length, 0);
    clock.advance(60_000);
    for (let i = 0; i < 5 && !out.length; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      out.map((m) => [m.text, m.reason]),
      [["<1>", "timeout"]],
    );
  });

  it("a part pushed again after its message went out is a duplicate for dedupeMs plus the wait", async () => {
    const { out, r, clock } = setup({ timeoutMs: 5000, dedupeMs: 1000 });
    await r.add(part(1, 2));
    assert.equal(await r.add(part(2, 2)), "completed");
    clock.advance(5500);
    assert.equal(await r.add(part(1, 2)), "duplicate");
    assert.equal(out.length, 1);
  });

  it("a message whose part pushed another out still gets its wait", async () => {
    const { out, r, clock } = setup({ timeoutMs: 1000, maxPending: 1 });
    await r.add(part(1, 2, "a"));
    assert.equal(await r.add(part(1, 2, "b")), "added");
    clock.advance(1000);
    for (let i = 0; i < 5 && out.length < 2; i++) await Promise.resolve();
    assert.deepEqual(
      out.map((m) => [m.id, m.reason]),
      [
        ["a", "evicted"],
        ["b", "timeout"],
      ],
    );
  });

  it("a part whose handled mark was pushed out of the bound is still a duplicate, and does not restart the wait", async () => {
    const { out, r, clock } = setup({ timeoutMs: 1000, claimBound: { group: "r:/sms/push:claims", max: 1 } });
    await r.add(part(1, 2, "a"));
    clock.advance(100);
    await r.add(part(1, 2, "b"));
    clock.advance(400);
    assert.equal(await r.add(part(1, 2, "a")), "duplicate");
    clock.advance(500);
    for (let i = 0; i < 5 && !out.length; i++) await Promise.resolve();
    assert.deepEqual(
      out.map((m) => [m.id, m.reason, m.text]),
      [["a", "timeout", "<1>"]],
    );
  });

  it("receivers on two paths of one account keep their parts and their waits apart", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const receiver = (scope: string) => {
      const out: Array<Assembled<Meta>> = [];
      const r = new Reassembly<Meta>({
        state,
        scope,
        timeoutMs: 1000,
        maxPending: 10,
        maxBytes: 1 << 20,
        dedupeMs: 600_000,
        clock,
        onMessage: (m) => out.push(m),
        onError: (e) => assert.fail(e as Error),
      });
      r.listen();
      return { r, out };
    };
    const a = receiver("r:/a");
    const b = receiver("r:/b");
    assert.equal(await a.r.add(part(1, 2)), "added");
    assert.equal(await b.r.add(part(2, 2)), "added");
    clock.advance(1000);
    for (let i = 0; i < 5 && a.out.length + b.out.length < 2; i++) await Promise.resolve();
    assert.deepEqual(
      a.out.map((m) => [m.text, m.reason]),
      [["<1>", "timeout"]],
    );
    assert.deepEqual(
      b.out.map((m) => [m.text, m.reason]),
      [["<2>", "timeout"]],
    );
  });

  it("the handled marks of long pushed strings have short printable names, one per message", async () => {
    class Recording extends MemoryState {
      claimed: string[] = [];
      override claim(key: string, ttlMs: number, bound?: ClaimBound): Promise<boolean> {
        this.claimed.push(key);
        return super.claim(key, ttlMs, bound);
      }
    }
    let state: Recording | undefined;
    const { out, r } = setup({ state: (c) => (state = new Recording({ clock: c })) });
    const long = "9".repeat(100);
    await r.add(part(1, 2, `${long}a`));
    await r.add(part(1, 2, `${long}b`));
    await r.add(part(2, 2, `${long}a`));
    await r.add(part(2, 2, `${long}b`));
    assert.deepEqual(
      out.map((m) => [m.id.slice(100), m.complete]),
      [
        ["a", true],
        ["b", true],
      ],
    );
    assert.equal(new Set(state!.claimed).size, 4);
    for (const k of state!.claimed) {
      // Raw digest bytes read as text could make two messages share a mark (a part then dropped).
      assert.match(k, /^[\x21-\x7e]{1,80}$/, k);
    }
  });
});
