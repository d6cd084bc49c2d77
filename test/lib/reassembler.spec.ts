import assert from "node:assert/strict";
import fc from "fast-check";
import { Reassembler, type Assembled, type LongPart } from "../../src/lib/reassembler";
import { FakeClock } from "../support/stub";

function setup(opts: { timeoutMs?: number; maxPending?: number; maxBytes?: number } = {}) {
  const clock = new FakeClock();
  const out: Assembled[] = [];
  const r = new Reassembler({
    timeoutMs: opts.timeoutMs ?? 1000,
    maxPending: opts.maxPending,
    maxBytes: opts.maxBytes,
    clock,
    onMessage: (m) => out.push(m),
  });
  return { clock, out, r };
}

const part = (number: number, total = 3, id = "7", mobile = "13800138000", destcode = "1065"): LongPart => ({
  mobile,
  destcode,
  id,
  total,
  number,
  text: `<${number}>`,
});

describe("lib/reassembler", () => {
  it("emits a complete message once, in part order, whatever the arrival order", () => {
    const { out, r } = setup();
    assert.equal(r.add(part(3)), "added");
    assert.equal(r.add(part(1)), "added");
    assert.equal(r.add(part(2)), "completed");
    assert.equal(out.length, 1);
    assert.equal(out[0].text, "<1><2><3>");
    assert.equal(out[0].complete, true);
    assert.deepEqual(out[0].missing, []);
    assert.equal(r.size, 0);
  });

  it("drops duplicate parts, also after the message was emitted", () => {
    const { out, r } = setup();
    r.add(part(1));
    assert.equal(r.add(part(1)), "duplicate");
    r.add(part(2));
    r.add(part(3));
    assert.equal(r.add(part(2)), "duplicate");
    assert.equal(out.length, 1);
  });

  it("keys by mobile, destcode, id and total", () => {
    const { out, r } = setup();
    r.add(part(1, 2, "1", "13800138000"));
    r.add(part(1, 2, "1", "13900139000"));
    r.add(part(1, 2, "1", "13800138000", "other"));
    r.add(part(1, 3, "1", "13800138000"));
    assert.equal(r.size, 4);
    assert.equal(out.length, 0);
  });

  it("emits the partial message after the timeout, flagged with what is missing", () => {
    const { clock, out, r } = setup({ timeoutMs: 1000 });
    r.add(part(1, 4));
    r.add(part(3, 4));
    clock.advance(999);
    assert.equal(out.length, 0);
    clock.advance(1);
    assert.equal(out.length, 1);
    assert.equal(out[0].complete, false);
    assert.deepEqual(out[0].missing, [2, 4]);
    assert.equal(out[0].text, "<1><3>");
    assert.equal(out[0].reason, "timeout");
    assert.equal(clock.pending, 0);
  });

  it("restarts the wait with each new part", () => {
    const { clock, out, r } = setup({ timeoutMs: 1000 });
    r.add(part(1));
    clock.advance(800);
    r.add(part(2));
    clock.advance(800);
    assert.equal(out.length, 0, "second part extended the wait");
    clock.advance(200);
    assert.equal(out.length, 1);
    assert.deepEqual(out[0].received, [1, 2]);
  });

  it("bounds pending messages: the oldest is flushed as partial, never dropped", () => {
    const { out, r } = setup({ maxPending: 2 });
    r.add(part(1, 2, "a"));
    r.add(part(1, 2, "b"));
    r.add(part(1, 2, "c"));
    assert.equal(r.size, 2);
    assert.equal(out.length, 1);
    assert.equal(out[0].id, "a");
    assert.equal(out[0].reason, "evicted");
  });

  it("bounds pending bytes: the oldest message is flushed as incomplete, never dropped", () => {
    const { out, r } = setup({ maxBytes: 10_000 });
    // A part counts its own size when the caller gives one (text and meta), else its text.
    const big = (id: string, number: number, bytes: number): LongPart => ({ ...part(number, 3, id), bytes });
    r.add(big("a", 1, 4000));
    r.add(big("b", 1, 4000));
    assert.equal(r.bytes, 8000);
    r.add(big("a", 2, 1000)); // "a" was extended last: "b" is now the oldest
    assert.equal(out.length, 0);
    r.add(big("c", 1, 2000));
    assert.deepEqual(
      out.map((m) => [m.id, m.reason, m.complete, m.received]),
      [["b", "evicted", false, [1]]],
    );
    assert.equal(r.size, 2);
    assert.equal(r.bytes, 7000);
    // Finishing a message gives its bytes back.
    r.add(big("a", 3, 10));
    assert.equal(out[1].id, "a");
    assert.equal(out[1].complete, true);
    assert.equal(r.bytes, 2000);
  });

  it("a single message larger than the byte bound is emitted at once as incomplete", () => {
    const { out, r } = setup({ maxBytes: 1000 });
    r.add({ ...part(1, 3, "huge"), bytes: 5000 });
    assert.deepEqual(
      out.map((m) => [m.id, m.reason, m.complete]),
      [["huge", "evicted", false]],
    );
    assert.equal(r.size, 0);
    assert.equal(r.bytes, 0);
  });

  it("counts a part's text (two bytes a character) when no size is given; the default bound is 8 MiB", () => {
    const { out, r } = setup();
    const text = "长".repeat(160);
    const n = Math.ceil((8 * 1024 * 1024) / (2 * text.length)) + 10;
    for (let i = 0; i < n; i++) r.add({ ...part(1, 2, String(i)), text });
    assert.ok(out.length > 0, "some were flushed");
    assert.ok(r.bytes <= 8 * 1024 * 1024, String(r.bytes));
    assert.ok(out.every((m) => m.reason === "evicted" && !m.complete));
    assert.equal(out[0].id, "0", "oldest first");
    assert.equal(out.length + r.size, n, "none dropped");
  });

  it("a wait longer than setTimeout can hold is armed in steps, never as an overflowing delay", () => {
    const { clock, out, r } = setup({ timeoutMs: 30 * 86_400_000 });
    const delays: number[] = [];
    const set = clock.setTimeout;
    clock.setTimeout = (fn, ms) => (delays.push(ms), set(fn, ms));
    r.add(part(1, 2));
    clock.advance(29 * 86_400_000);
    assert.equal(out.length, 0);
    clock.advance(86_400_000);
    assert.equal(out.length, 1);
    assert.ok(delays.length >= 2 && delays.every((ms) => ms <= 2 ** 31 - 1), delays.join());
  });

  it("close() stops all timers and emits pending partials", () => {
    const { clock, out, r } = setup();
    r.add(part(1, 2, "a"));
    r.add(part(2, 3, "b"));
    r.close();
    assert.equal(clock.pending, 0);
    assert.deepEqual(
      out.map((m) => [m.id, m.reason, m.complete]),
      [
        ["a", "closed", false],
        ["b", "closed", false],
      ],
    );
    assert.throws(() => r.add(part(1)));
  });

  it("a single-part long SMS completes at once; bad numbers throw", () => {
    const { out, r } = setup();
    assert.equal(r.add(part(1, 1)), "completed");
    assert.equal(out.length, 1);
    assert.throws(() => r.add(part(4, 3)), RangeError);
  });

  it("model: any order, any duplication → exactly one complete message per key with the right text", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat({ max: 3 }), { maxLength: 60 }),
        fc.infiniteStream(fc.nat()),
        (totals, dupCounts, rnd) => {
          const { out, r } = setup({ maxPending: 100 });
          const parts: LongPart[] = [];
          totals.forEach((total, m) => {
            for (let n = 1; n <= total; n++) {
              const p = { mobile: "13800138000", destcode: "1", id: String(m), total, number: n, text: `m${m}p${n};` };
              const copies = 1 + (dupCounts[parts.length % Math.max(1, dupCounts.length)] ?? 0);
              for (let c = 0; c < copies; c++) parts.push(p);
            }
          });
          const it = rnd[Symbol.iterator]();
          for (let i = parts.length - 1; i > 0; i--) {
            const j = (it.next().value as number) % (i + 1);
            [parts[i], parts[j]] = [parts[j], parts[i]];
          }
          for (const p of parts) r.add(p);
          assert.equal(out.length, totals.length);
          assert.equal(r.size, 0);
          for (const m of out) {
            const total = totals[Number(m.id)];
            assert.ok(m.complete);
            assert.equal(m.text, Array.from({ length: total }, (_, k) => `m${m.id}p${k + 1};`).join(""));
          }
          r.close();
        },
      ),
    );
  });
});
