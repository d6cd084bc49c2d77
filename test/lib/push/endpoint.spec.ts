// The push endpoint without Node-RED, on a real MemoryState: what a flood of forged pushes can make
// it keep (SPEC B4a: with neither credentials nor an allow-list, at most 100,000 dedupe keys per
// account, the oldest going first).
import assert from "node:assert/strict";
import { CodeTable } from "../../../src/lib/platform/codes";
import { Batch, MAX_OPEN_KEYS, PushEndpoint, type ReceiveOptions } from "../../../src/lib/push/endpoint";
import type { Params } from "../../../src/lib/push/parse";
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
