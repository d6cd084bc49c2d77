// The push endpoint without Node-RED, on a real MemoryState: what a flood of forged pushes can make
// it keep (SPEC B4a: with neither credentials nor an allow-list, at most 100,000 dedupe keys per
// account, the oldest going first).
import assert from "node:assert/strict";
import { CodeTable } from "../../../src/lib/platform/codes";
import { Batch, MAX_BATCH, MAX_OPEN_KEYS, PushEndpoint, type ReceiveOptions } from "../../../src/lib/push/endpoint";
import { formatInstant } from "../../../src/lib/platform/time";
import type { Params } from "../../../src/lib/push/parse";
import type { AccountState, ClaimBound } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { waitFor } from "../../support/stub";

function endpoint(state: MemoryState, o: Partial<ReceiveOptions> = {}) {
  const out = { reports: 0, mo: 0 };
  const e = new PushEndpoint({
    state,
    scope: "r:/sms/push",
    codes: new CodeTable("en-US"),
    offsetMinutes: 480,
    mobileCheck: "cn",
    receiver: "",
    receiverPassword: "",
    reassemble: true,
    partTimeoutMs: 600_000,
    emitReport: () => void out.reports++,
    emitMo: () => void out.mo++,
    onError: (err) => assert.fail(String(err)),
    ...o,
  });
  return { e, out };
}

const forgedReport = (i: number): Params => ({ msgid: `f${i}`, mobile: "13900210021", status: "DELIVRD" });
const forgedPart = (i: number): Params => ({
  mobile: "13900210021",
  msg: "x",
  isems: "1",
  emshead: `${i % 100_000},2,1`,
  destcode: String(i),
});

function push(e: PushEndpoint, p: Params): void {
  const r = e.handle(p);
  assert.equal(r.answer.status, 200, r.answer.body);
  r.emit?.();
}

describe("lib/push/endpoint: memory under forged pushes (SPEC B4a)", function () {
  this.timeout(120_000);

  it("open (no credentials, no allow-list): 150,000 forged reports keep at most 100,000 dedupe keys", async () => {
    const state = new MemoryState();
    const { e, out } = endpoint(state, { open: true });
    const n = MAX_OPEN_KEYS + 50_000;
    for (let i = 0; i < n; i++) {
      push(e, forgedReport(i));
      // Let the claims settle now and then: the flood arrives over time, not in one tick.
      if (i % 5000 === 4999) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => out.reports === n, 30_000, "every forged report handled");
    assert.ok(state.size.keys <= MAX_OPEN_KEYS, `${state.size.keys} keys`);
    // The newest are still remembered: a re-push of the last one is a duplicate.
    push(e, forgedReport(n - 1));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(out.reports, n);
    await e.close(false);
    await state.close();
  });

  it("open: forged long-SMS parts keep the handled-part memory bounded too (one bound for the account)", async () => {
    const state = new MemoryState();
    const { e } = endpoint(state, { open: true, maxOpenKeys: 2000, maxPending: 100 });
    for (let i = 0; i < 10_000; i++) {
      push(e, forgedPart(i));
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 3000; i++) push(e, forgedReport(i));
    await new Promise((r) => setTimeout(r, 200));
    // Claims within the bound; pending parts within their own bound (a message, its part, its deadline).
    const { keys, pendingMessages } = state.size;
    assert.ok(pendingMessages <= 100, `${pendingMessages} pending`);
    assert.ok(keys <= 2000 + 3 * 100, `${keys} keys`);
    await e.close(false);
    await state.close();
  });

  it("with credentials, nothing is forgotten early: the bound is only for an open endpoint", async () => {
    const state = new MemoryState();
    const { e, out } = endpoint(state, { receiver: "rcv", receiverPassword: "pw", maxOpenKeys: 100 });
    for (let i = 0; i < 300; i++) push(e, { ...forgedReport(i), receiver: "rcv", pswd: "pw" });
    await waitFor(() => out.reports === 300, 10_000, "all taken");
    assert.ok(state.size.keys >= 300, `${state.size.keys} keys`);
    push(e, { ...forgedReport(0), receiver: "rcv", pswd: "pw" });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(out.reports, 300, "the first one is still a duplicate");
    await e.close(false);
    await state.close();
  });

  it("an array whose second report's emit throws (a flow's hook) still emits the others, once each", async () => {
    // Reports on the memory state are emitted at once, in the request's own turn: a throw from one
    // element's emit must not end the loop over the rest (nor be lost: it goes to onError).
    const state = new MemoryState();
    const emitted: string[] = [];
    const errors: unknown[] = [];
    const { e } = endpoint(state, {
      emitReport: (m) => {
        const id = (m as { msgid: string }).msgid;
        if (id === "b2") throw new Error("hook failed");
        emitted.push(id);
      },
      onError: (err) => errors.push(err),
    });
    const r = e.handle(new Batch([forgedReport(1), { ...forgedReport(2), msgid: "b2" }, forgedReport(3)], {}));
    assert.equal(r.answer.status, 200);
    r.emit?.();
    await waitFor(() => emitted.length === 2 && errors.length === 1, 5000, "two emitted, one error");
    assert.deepEqual(emitted, ["f1", "f3"]);
    assert.match(String(errors[0]), /hook failed/);
    await e.close(false);
    await state.close();
  });
});

type Emitted = { msgid: string; payload: { msgid: string; mobile: string; receivedAt: string } };

/** The memory state seen as a state that answers claims by promise only (as Redis does). */
function byPromise(state: MemoryState, claim?: AccountState["claim"]): AccountState {
  return new Proxy(state, {
    get(t, k) {
      if (k === "claimNow") return undefined;
      if (k === "claim" && claim) return claim;
      const v = Reflect.get(t, k) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as unknown as AccountState;
}

describe("lib/push/endpoint: what a push is taken as", function () {
  this.timeout(30_000);

  function taking(state: AccountState, o: Partial<ReceiveOptions> = {}) {
    const emitted: Emitted[] = [];
    const errors: unknown[] = [];
    const e = new PushEndpoint({
      state,
      scope: "r:/sms/push",
      codes: new CodeTable("en-US"),
      offsetMinutes: 480,
      mobileCheck: "cn",
      receiver: "",
      receiverPassword: "",
      reassemble: true,
      partTimeoutMs: 600_000,
      emitReport: (m) => void emitted.push(m as Emitted),
      emitMo: () => undefined,
      onError: (err) => void errors.push(err),
      ...o,
    });
    return { e, emitted, errors };
  }

  it("reports whose fields run together to the same text are two reports (the key keeps fields apart)", async () => {
    const state = new MemoryState();
    const { e, emitted } = taking(state);
    push(e, { msgid: "m1", mobile: "3900210021x", status: "DELIVRD" });
    push(e, { msgid: "m13", mobile: "900210021x", status: "DELIVRD" });
    await waitFor(() => emitted.length === 2, 5000, "both reports emitted");
    await e.close(false);
    await state.close();
  });

  it("a long msgid's dedupe key is short (hashed), and long msgids that differ at the end stay apart", async () => {
    const state = new MemoryState();
    const keys: string[] = [];
    const recording = new Proxy(state, {
      get(t, k) {
        if (k === "claimNow") {
          return (key: string, ms: number, bound?: ClaimBound) => (keys.push(key), t.claimNow(key, ms, bound));
        }
        const v = Reflect.get(t, k) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    }) as unknown as AccountState;
    const { e, emitted } = taking(recording);
    const long = "x".repeat(99); // msgid: at most 100 characters
    push(e, { msgid: long + "1", mobile: "13900210021", status: "DELIVRD" });
    push(e, { msgid: long + "2", mobile: "13900210021", status: "DELIVRD" });
    push(e, { msgid: "short", mobile: "13900210021", status: "DELIVRD" });
    await waitFor(() => emitted.length === 3, 5000, "three reports emitted");
    assert.equal(keys.length, 3);
    for (const k of keys.slice(0, 2)) assert.ok(k.length <= 60, `a dedupe key of ${k.length} characters`);
    assert.ok(keys[2].includes("short"), "a short key is kept as it is, readable");
    await e.close(false);
    await state.close();
  });

  it("a receiver and password pushed as JSON numbers are read as their text", async () => {
    const state = new MemoryState();
    const { e, emitted } = taking(state, { receiver: "12345", receiverPassword: "678" });
    push(e, { ...forgedReport(1), receiver: 12345, pswd: 678 } as unknown as Params);
    await waitFor(() => emitted.length === 1, 5000, "the report emitted");
    await e.close(false);
    await state.close();
  });

  it("on a state that answers by promise (Redis): a report twice is emitted once, two reports twice", async () => {
    const state = new MemoryState();
    const { e, emitted, errors } = taking(byPromise(state));
    push(e, forgedReport(1));
    push(e, forgedReport(1));
    push(e, forgedReport(2));
    await waitFor(() => emitted.length === 2, 5000, "two emitted");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      emitted.map((m) => m.msgid),
      ["f1", "f2"],
    );
    assert.deepEqual(errors, []);
    assert.equal(e.stats.duplicates, 1);
    await e.close(false);
    await state.close();
  });

  it("a claim that fails is reported and the report still emitted (at least once), by promise or at once", async () => {
    const state = new MemoryState();
    const failing = byPromise(state, () => Promise.reject(new Error("claim failed")));
    const a = taking(failing);
    push(a.e, forgedReport(1));
    await waitFor(() => a.emitted.length === 1 && a.errors.length === 1, 5000, "emitted and reported");
    assert.match(String(a.errors[0]), /claim failed/);
    await a.e.close(false);
    const throwing = new Proxy(state, {
      get(t, k) {
        if (k === "claimNow") {
          return () => {
            throw new Error("claimNow failed");
          };
        }
        const v = Reflect.get(t, k) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    }) as unknown as AccountState;
    const b = taking(throwing);
    push(b.e, forgedReport(1));
    await waitFor(() => b.emitted.length === 1 && b.errors.length === 1, 5000, "emitted and reported");
    assert.match(String(b.errors[0]), /claimNow failed/);
    await b.e.close(false);
    await state.close();
  });

  it("close() waits for a claim under way: its report leaves first; nothing stays in flight after", async () => {
    const state = new MemoryState();
    const slow = byPromise(state, (key, ms, bound) =>
      new Promise((r) => setTimeout(r, 100)).then(() => state.claim(key, ms, bound)),
    );
    const { e, emitted } = taking(slow);
    push(e, forgedReport(1));
    push(e, forgedReport(2));
    await e.close(false);
    assert.equal(emitted.length, 2, "both reports out before close() resolved");
    assert.equal((e as unknown as { inflight: Set<unknown> }).inflight.size, 0, "nothing kept once settled");
    await state.close();
  });

  it("a report carries the time it was received (the node's offset, whole seconds)", async () => {
    const state = new MemoryState();
    const { e, emitted } = taking(state);
    const before = formatInstant(Date.now(), 480);
    push(e, forgedReport(1));
    const after = formatInstant(Date.now(), 480);
    await waitFor(() => emitted.length === 1, 5000, "emitted");
    const at = emitted[0].payload.receivedAt;
    assert.ok(at === before || at === after, `${at} is neither ${before} nor ${after}`);
    await e.close(false);
    await state.close();
  });

  it("after close() a push is answered 503 and nothing of it is emitted", async () => {
    const state = new MemoryState();
    const { e, emitted } = taking(state);
    await e.close(false);
    const r = e.handle(forgedReport(1));
    assert.equal(r.answer.status, 503);
    assert.equal(r.emit, undefined);
    assert.equal(emitted.length, 0);
    await state.close();
  });

  it("arrays: more than MAX_BATCH pushes is 413 with nothing taken; URL params × elements at the bound is taken", async () => {
    const state = new MemoryState();
    const { e, emitted } = taking(state);
    const over = e.handle(
      new Batch(
        Array.from({ length: MAX_BATCH + 1 }, (_, i) => forgedReport(i)),
        {},
      ),
    );
    assert.equal(over.answer.status, 413);
    assert.match(over.answer.body, /more than 1000 pushes/);
    assert.equal(over.emit, undefined);
    // 20 params in the URL on 1,000 elements: 20,000 copies, the most taken.
    const shared: Params = { status: "DELIVRD" };
    for (let i = 0; i < 19; i++) shared[`x${i}`] = "1";
    const items = Array.from({ length: 1000 }, (_, i) => ({ msgid: `b${i}`, mobile: "13900210021" }));
    const at = e.handle(new Batch(items, shared));
    assert.equal(at.answer.status, 200, at.answer.body);
    at.emit?.();
    await waitFor(() => emitted.length === 1000, 10_000, "every element emitted");
    shared.x19 = "1";
    const past = e.handle(new Batch(items, shared));
    assert.equal(past.answer.status, 400);
    assert.match(past.answer.body, /too many parameters for 1000 pushes/);
    await e.close(false);
    await state.close();
  });

  it("arrays: only bad elements are reported as bad; all bad is 400 listing ten reasons and the rest's count", async () => {
    const state = new MemoryState();
    const reported: Array<[string[], number]> = [];
    const { e, emitted } = taking(state, { onBadElements: (bad, total) => void reported.push([bad, total]) });
    const good = e.handle(new Batch([forgedReport(1), forgedReport(2)], {}));
    assert.equal(good.answer.status, 200);
    good.emit?.();
    assert.deepEqual(reported, [], "an array with nothing bad reports nothing");
    const some = e.handle(new Batch([forgedReport(3), 7], {}));
    assert.equal(some.answer.status, 200);
    assert.deepEqual(reported, [[["[1] not an object"], 2]]);
    const none = e.handle(
      new Batch(
        Array.from({ length: 12 }, () => 7),
        {},
      ),
    );
    assert.equal(none.answer.status, 400);
    const reasons = Array.from({ length: 10 }, (_, i) => `[${i}] not an object`);
    assert.equal(none.answer.body, `Bad Request: 12 of 12 rejected: ${reasons.join("; ")}; … (+2)`);
    some.emit?.();
    await waitFor(() => emitted.length === 3, 5000, "the good ones emitted");
    await e.close(false);
    await state.close();
  });

  it("without the optional callbacks, refused and partly bad pushes are still answered", async () => {
    const state = new MemoryState();
    const { e } = taking(state, { receiver: "rcv", receiverPassword: "pw" });
    const one = e.handle({ ...forgedReport(1), receiver: "rcv", pswd: "wrong" });
    assert.deepEqual(one.answer, { status: 401, body: "Unauthorized" });
    const many = e.handle(new Batch([{ ...forgedReport(1), receiver: "rcv", pswd: "wrong" }], {}));
    assert.deepEqual(many.answer, { status: 401, body: "Unauthorized" });
    const part = e.handle(
      new Batch(
        [
          { ...forgedReport(2), receiver: "rcv", pswd: "pw" },
          { receiver: "rcv", pswd: "pw" },
        ],
        {},
      ),
    );
    assert.equal(part.answer.status, 200);
    await e.close(false);
    await state.close();
  });
});
