import assert from "node:assert/strict";
import fc from "fast-check";
import { Reassembly, type Assembled, type LongPart } from "../../../src/lib/push/reassembly";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock } from "../../support/stub";

type Meta = { n: number };

function setup(opts: { timeoutMs?: number; maxPending?: number; maxBytes?: number; dedupeMs?: number } = {}) {
  const clock = new FakeClock();
  const state = new MemoryState({ clock });
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
});
