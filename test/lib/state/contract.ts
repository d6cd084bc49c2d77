// The contract of the account state (SPEC B6), one suite for every implementation: the memory
// state and the Redis state run exactly these assertions.
import assert from "node:assert/strict";
import type { AccountState, PartLimits } from "../../../src/lib/state/index";
import { FakeClock, waitFor } from "../../support/stub";

export interface Subject {
  state: AccountState;
  /** a second handle on the same state (another config node, or another instance with Redis) */
  twin(): AccountState;
  cleanup(): Promise<void>;
}

const LIMITS: PartLimits = { ttlMs: 60_000, maxPending: 1000, maxBytes: 1 << 20 };

export function stateContract(name: string, make: (clock: FakeClock) => Promise<Subject>): void {
  describe(`state contract: ${name}`, () => {
    let clock: FakeClock;
    let s: Subject;
    let state: AccountState;
    beforeEach(async () => {
      clock = new FakeClock();
      s = await make(clock);
      state = s.state;
    });
    afterEach(() => s.cleanup());

    it("claim: once within the ttl, again after it; shared by every handle", async () => {
      assert.equal(await state.claim("c:a", 1000), true);
      assert.equal(await state.claim("c:a", 1000), false);
      assert.equal(await s.twin().claim("c:a", 1000), false);
      assert.equal(await state.claim("c:b", 1000), true);
      clock.advance(999);
      assert.equal(await state.claim("c:a", 1000), false);
      clock.advance(1);
      assert.equal(await state.claim("c:a", 1000), true);
    });

    it("claim: of 50 racing callers exactly one wins", async () => {
      const twin = s.twin();
      const all = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? twin : state).claim("race", 5000)));
      assert.equal(all.filter(Boolean).length, 1);
    });

    it("claim: a bounded group keeps its newest claims only (the oldest are forgotten first)", async () => {
      const bound = { group: "seen", max: 3 };
      for (const k of ["a", "b", "c", "d"]) assert.equal(await state.claim(`s:${k}`, 60_000, bound), true);
      // "a" was pushed out by "d": claimable again; "b".."d" are still held.
      assert.equal(await s.twin().claim("s:a", 60_000, bound), true);
      for (const k of ["c", "d"]) assert.equal(await state.claim(`s:${k}`, 60_000, bound), false);
      // The re-claim of "a" pushed "b" out.
      assert.equal(await state.claim("s:b", 60_000, bound), true);
      // Unbounded claims are not counted in any group.
      assert.equal(await state.claim("free", 60_000), true);
      assert.equal(await state.claim("s:a", 60_000, bound), false);
    });

    it("cas: writes when every key is at the expected version, all or none; read gives value and version", async () => {
      assert.equal(await state.read("v:a"), null);
      const v1 = await state.cas([
        { key: "v:a", expect: null, value: "A1", ttlMs: 10_000 },
        { key: "v:b", expect: null, value: "B1", ttlMs: 10_000 },
      ]);
      assert.ok(v1);
      assert.deepEqual(await s.twin().read("v:a"), { value: "A1", version: v1 });
      // One stale expectation: nothing is written.
      assert.equal(
        await state.cas([
          { key: "v:a", expect: v1, value: "A2", ttlMs: 10_000 },
          { key: "v:b", expect: null, value: "B2", ttlMs: 10_000 },
        ]),
        null,
      );
      assert.deepEqual(await state.read("v:b"), { value: "B1", version: v1 });
      const v2 = await state.cas([
        { key: "v:a", expect: v1, value: "A2|with a bar", ttlMs: 10_000 },
        { key: "v:b", expect: v1, value: null, ttlMs: 0 },
      ]);
      assert.ok(v2 && v2 !== v1);
      assert.deepEqual(await state.read("v:a"), { value: "A2|with a bar", version: v2 });
      assert.equal(await state.read("v:b"), null);
      // Gone after its ttl: absent again for the next writer.
      clock.advance(10_000);
      assert.equal(await state.read("v:a"), null);
      assert.ok(await state.cas([{ key: "v:a", expect: null, value: "A3", ttlMs: 1000 }]));
    });

    it("cas: of 20 racing writers from one version exactly one wins", async () => {
      const v0 = await state.cas([{ key: "race:v", expect: null, value: "0", ttlMs: 10_000 }]);
      const twin = s.twin();
      const all = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? twin : state).cas([{ key: "race:v", expect: v0, value: String(i + 1), ttlMs: 10_000 }]),
        ),
      );
      assert.equal(all.filter(Boolean).length, 1);
    });

    it("admit: a window per key, a cap per number; refusals take nothing and say when to retry", async () => {
      const check = (k: string, n: string) => ({
        window: { key: `w:${k}:${n}`, ttlMs: 60_000 },
        cap: { key: `cap:${n}`, max: 2, ttlMs: 3_600_000 },
      });
      assert.deepEqual(await state.admit([check("cpu", "1"), check("cpu", "2")]), [{ ok: true }, { ok: true }]);
      clock.advance(10_000);
      assert.deepEqual(await state.admit([check("cpu", "1")]), [{ ok: false, reason: "window", retryInMs: 50_000 }]);
      assert.deepEqual(await state.admit([check("disk", "1")]), [{ ok: true }]);
      // Number 1 has had 2 today: the cap refuses any key, and its window is not taken.
      assert.deepEqual(await state.admit([check("net", "1")]), [
        { ok: false, reason: "cap", retryInMs: 3_600_000 - 10_000 },
      ]);
      clock.advance(3_600_000);
      assert.deepEqual(await state.admit([check("net", "1")]), [{ ok: true }]);
      // No window and no cap: always admitted.
      assert.deepEqual(await state.admit([{}, {}]), [{ ok: true }, { ok: true }]);
    });

    it("admit: two checks for the same number in one call count in order", async () => {
      const cap = { key: "cap:9", max: 1, ttlMs: 1000 };
      const r = await state.admit([{ cap }, { cap }]);
      assert.deepEqual(r, [{ ok: true }, { ok: false, reason: "cap", retryInMs: 1000 }]);
    });

    it("pace: starts spaced by the interval, shared by every handle", async () => {
      const twin = s.twin();
      assert.equal(await state.pace("rate", 100), 0);
      assert.equal(await twin.pace("rate", 100), 100);
      assert.equal(await state.pace("rate", 100), 200);
      clock.advance(250);
      assert.equal(await state.pace("rate", 100), 50);
      clock.advance(1000);
      assert.equal(await twin.pace("rate", 100), 0);
    });

    it("records: put, get, take once, gone after the ttl", async () => {
      await state.put("r:1", "one", 1000);
      await state.put("r:2", "two", 1000);
      assert.equal(await s.twin().get("r:1"), "one");
      assert.equal(await state.take("r:1"), "one");
      assert.equal(await state.take("r:1"), null);
      clock.advance(1000);
      assert.equal(await state.get("r:2"), null);
    });

    it("lists: appended in order, bounded (the oldest dropped and returned), taken once", async () => {
      assert.deepEqual(await state.append("l", ["a", "b"], 3, 10_000), []);
      assert.deepEqual(await state.append("l", ["c", "d", "e"], 3, 10_000), ["a", "b"]);
      assert.deepEqual(await state.takeList("l"), ["c", "d", "e"]);
      assert.deepEqual(await state.takeList("l"), []);
    });

    it("parts: duplicates refused, the last part completes once with every part", async () => {
      assert.equal((await state.addPart("g", "m1", 2, 3, "b", LIMITS)).result, "added");
      assert.equal((await state.addPart("g", "m1", 2, 3, "b", LIMITS)).result, "duplicate");
      assert.equal((await s.twin().addPart("g", "m1", 3, 3, "c", LIMITS)).result, "added");
      const done = await state.addPart("g", "m1", 1, 3, "a", LIMITS);
      assert.equal(done.result, "complete");
      assert.deepEqual([...done.parts!].sort(), [
        [1, "a"],
        [2, "b"],
        [3, "c"],
      ]);
      assert.equal(await state.takeParts("g", "m1"), null);
    });

    it("parts: of racing final parts exactly one completes", async () => {
      const twin = s.twin();
      const adds = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? twin : state).addPart("g", "race", i + 1, 20, `p${i}`, LIMITS)),
      );
      assert.equal(adds.filter((a) => a.result === "complete").length, 1);
      assert.equal(adds.find((a) => a.result === "complete")!.parts!.size, 20);
    });

    it("parts: a timeout's take gets what arrived; the oldest message is evicted beyond maxPending", async () => {
      const small = { ...LIMITS, maxPending: 2 };
      await state.addPart("g2", "old", 1, 2, "o1", small);
      clock.advance(1);
      await state.addPart("g2", "mid", 1, 2, "m1", small);
      clock.advance(1);
      const r = await state.addPart("g2", "new", 1, 3, "n1", small);
      assert.equal(r.result, "added");
      assert.deepEqual(
        r.evicted?.map((e) => [e.key, [...e.parts]]),
        [["old", [[1, "o1"]]]],
      );
      assert.deepEqual([...(await state.takeParts("g2", "mid"))!], [[1, "m1"]]);
      assert.equal(await state.takeParts("g2", "mid"), null);
      assert.equal(await state.takeParts("g2", "old"), null);
    });

    it("parts: bounded in bytes too, the oldest messages evicted first (never dropped)", async () => {
      const limits = { ttlMs: 60_000, maxPending: 1000, maxBytes: 10_000 };
      const evicted: string[] = [];
      for (let i = 0; i < 50; i++) {
        clock.advance(1);
        const r = await state.addPart("gb", `m${String(i).padStart(2, "0")}`, 1, 2, "x".repeat(1000), limits);
        for (const e of r.evicted ?? []) evicted.push(e.key);
      }
      assert.ok(evicted.length >= 40, `${evicted.length} evicted`);
      assert.deepEqual(evicted, [...evicted].sort(), "oldest first");
      let kept = 0;
      for (let i = 0; i < 50; i++) if (await state.takeParts("gb", `m${String(i).padStart(2, "0")}`)) kept++;
      assert.equal(evicted.length + kept, 50);
    });

    it("tally: each member marked once; strangers and unknown tallies say so; taken once", async () => {
      assert.deepEqual(await state.mark("t", "a", "DELIVRD"), { result: "unknown", left: 0 });
      await state.tally("t", ["a", "b", "c"], 60_000);
      assert.deepEqual(await state.mark("t", "a", "DELIVRD"), { result: "marked", left: 2 });
      assert.deepEqual(await s.twin().mark("t", "a", "UNDELIV"), { result: "duplicate", left: 2 });
      assert.deepEqual(await state.mark("t", "z", "DELIVRD"), { result: "stranger", left: 2 });
      assert.deepEqual(await state.mark("t", "b", "MBBLACK"), { result: "marked", left: 1 });
      const t = await state.takeTally("t");
      assert.deepEqual([...t!.marks].sort(), [
        ["a", "DELIVRD"],
        ["b", "MBBLACK"],
      ]);
      assert.deepEqual(t!.pending, ["c"]);
      assert.equal(await state.takeTally("t"), null);
      assert.deepEqual(await state.mark("t", "c", "DELIVRD"), { result: "unknown", left: 0 });
    });

    it("tally: the last member of 2,000 marked by racing callers completes it once", async () => {
      const members = Array.from({ length: 2000 }, (_, i) => String(13800000000 + i));
      await state.tally("big", members, 60_000);
      const twin = s.twin();
      const marks = await Promise.all(members.map((m, i) => (i % 2 ? twin : state).mark("big", m, "DELIVRD")));
      assert.equal(marks.filter((m) => m.result === "marked" && m.left === 0).length, 1);
    });

    it("deadlines: fire once at their time; moved, cancelled and drained ones do not fire early or at all", async () => {
      const fired: string[] = [];
      const off = state.onDue("k", (id) => void fired.push(id));
      const t0 = clock.now();
      await state.schedule("k", "a", t0 + 1000);
      await state.schedule("k", "b", t0 + 1000);
      await state.schedule("k", "c", t0 + 1000);
      await state.schedule("k", "b", t0 + 5000);
      await state.cancel("k", "c");
      clock.advance(1000);
      await waitFor(() => fired.length >= 1, 5000, "deadline a");
      assert.deepEqual(fired, ["a"]);
      assert.deepEqual(await state.drain("k"), ["b"]);
      clock.advance(10_000);
      await new Promise((r) => setTimeout(r, 400));
      assert.deepEqual(fired, ["a"]);
      off();
    });

    it("deadlines: one due while no handler exists waits for the next handler of its kind", async () => {
      await state.schedule("later", "x", clock.now() + 100);
      clock.advance(200);
      const fired: string[] = [];
      const off = s.twin().onDue("later", (id) => void fired.push(id));
      clock.advance(1);
      await waitFor(() => fired.length === 1, 5000, "parked deadline");
      assert.deepEqual(fired, ["x"]);
      off();
    });
  });
}
