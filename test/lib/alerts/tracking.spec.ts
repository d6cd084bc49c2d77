// Delivery tracking (SPEC B7, issue 13): the tracker on the account state, every scenario run
// against the memory state and a real redis-server, time moved by a FakeClock.
import assert from "node:assert/strict";
import {
  EARLY_MS,
  MARGIN_MS,
  MAX_MSG_BYTES,
  MAX_TRACK_TIMEOUT_MS,
  parseTrackTimeout,
  trackerFor,
  type SummaryMsg,
  type TrackOpen,
  type Tracker,
} from "../../../src/lib/alerts/tracking";
import { CodeTable } from "../../../src/lib/platform/codes";
import type { AccountState } from "../../../src/lib/state/index";
import { waitFor } from "../../support/stub";
import { memoryEnv, redisEnv, type Env, type EnvMaker } from "./tracking-env";

const OWNER = "a1b2c3d4e5f60718";
const MIN = 60_000;
const A = "13800138000";
const B = "13800138001";
const C = "13800138002";
const CST = 480;

interface Listening {
  got: SummaryMsg[];
  errors: unknown[];
  off(): void;
}

function listen(tracker: Tracker, owner = OWNER, lang: "en-US" | "zh-CN" = "en-US"): Listening {
  const got: SummaryMsg[] = [];
  const errors: unknown[] = [];
  const codes = new CodeTable(lang);
  const off = tracker.listen(owner, {
    offsetMinutes: CST,
    describe: (s) => codes.status(s),
    summary: (m) => got.push(m),
    error: (e) => errors.push(e),
  });
  return { got, errors, off };
}

/** Waits (bounded) until `n` summaries arrived, letting due deadlines fire meanwhile. */
async function summaries(env: Env, l: Listening, n: number, ms = 5000): Promise<SummaryMsg[]> {
  const until = Date.now() + ms;
  while (l.got.length < n) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${n} summaries (got ${l.got.length})`);
    await env.fire();
    await new Promise((r) => setTimeout(r, 5));
  }
  return l.got;
}

/** A negative check: nothing more arrives while due deadlines get every chance to fire. */
async function quiet(env: Env, ms = 400): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await env.fire();
    await new Promise((r) => setTimeout(r, 20));
  }
}

function iso(env: Env, ms: number): string {
  // Written out by hand rather than with formatInstant, so a formatting mistake shows here.
  const d = new Date(ms + CST * MIN);
  const p = (n: number) => String(n).padStart(2, "0");
  return (
    `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}+08:00`
  );
}

/** Records the name of every state operation made from here on. */
function spy(state: AccountState): string[] {
  const calls: string[] = [];
  const s = state as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ["mark", "get", "put", "append", "schedule", "takeList", "claim", "tally", "take", "takeTally"]) {
    const orig = s[name].bind(state);
    s[name] = (...a: unknown[]) => {
      calls.push(name);
      return orig(...a);
    };
  }
  return calls;
}

function sendOf(env: Env, over: Partial<TrackOpen> = {}): TrackOpen {
  return {
    msgid: "1234567890100",
    mobiles: [A, B, C],
    owner: OWNER,
    sentAt: env.clock.now(),
    timeoutMs: 60 * MIN,
    batch: { index: 1, count: 1 },
    msg: { topic: "disk full", alert: { host: "db1", level: 2 }, payload: "【朗宇信息】disk full on db1" },
    ...over,
  };
}

function scenarios(maker: EnvMaker): void {
  describe(`tracking (${maker.name})`, function () {
    this.timeout(30_000);
    let env: Env;
    let tracker: Tracker;
    beforeEach(async () => {
      env = await maker.make();
      tracker = trackerFor(env.state, { clock: env.clock });
    });
    afterEach(() => maker.cleanup());

    it("all delivered: one summary, complete, before the timeout, the input msg's properties kept", async () => {
      const l = listen(tracker);
      const sentAt = env.clock.now();
      const opened = await tracker.open(sendOf(env));
      assert.deepEqual(opened, { complete: false, early: 0, dropped: [] });
      assert.equal(tracker.tracking(OWNER), 1);
      env.clock.advance(90_000);
      for (const m of [C, A, B])
        assert.match(await tracker.report("1234567890100", m, "DELIVRD"), /^(marked|complete)$/);
      const [s] = await summaries(env, l, 1);
      assert.equal(s.topic, "disk full");
      assert.deepEqual(s.alert, { host: "db1", level: 2 });
      assert.equal(s.msgid, "1234567890100");
      assert.deepEqual(s.payload, {
        msgid: "1234567890100",
        total: 3,
        delivered: [A, B, C],
        failed: [],
        pending: [],
        complete: true,
        sentAt: iso(env, sentAt),
        doneAt: iso(env, sentAt + 90_000),
        batch: { index: 1, count: 1 },
      });
      assert.match(s.payload.doneAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
      await quiet(env);
      assert.equal(l.got.length, 1, "exactly one summary");
      assert.equal(tracker.tracking(OWNER), 0);
      assert.deepEqual(l.errors, []);
    });

    it("one number MBBLACK and one never reporting: failed and pending, exactly at the timeout", async () => {
      const l = listen(tracker);
      const sentAt = env.clock.now();
      await tracker.open(sendOf(env, { timeoutMs: 30 * MIN }));
      assert.equal(await tracker.report("1234567890100", A, "DELIVRD"), "marked");
      assert.equal(await tracker.report("1234567890100", B, "MBBLACK"), "marked");
      env.clock.advance(30 * MIN - 1);
      await quiet(env);
      assert.equal(l.got.length, 0, "nothing before the timeout");
      env.clock.advance(1);
      const [s] = await summaries(env, l, 1);
      assert.deepEqual(s.payload, {
        msgid: "1234567890100",
        total: 3,
        delivered: [A],
        failed: [{ mobile: B, status: "MBBLACK", description: "number blacklisted" }],
        pending: [C],
        complete: false,
        sentAt: iso(env, sentAt),
        doneAt: iso(env, sentAt + 30 * MIN),
        batch: { index: 1, count: 1 },
      });
    });

    it("descriptions come from the listener (zh-CN), unknown carrier codes included", async () => {
      const l = listen(tracker, OWNER, "zh-CN");
      await tracker.open(sendOf(env, { mobiles: [A, B] }));
      await tracker.report("1234567890100", A, "MBBLACK");
      await tracker.report("1234567890100", B, "UNDELIV");
      const [s] = await summaries(env, l, 1);
      assert.deepEqual(s.payload.failed, [
        { mobile: A, status: "MBBLACK", description: "黑名单号码" },
        { mobile: B, status: "UNDELIV", description: new CodeTable("zh-CN").status("UNDELIV") },
      ]);
      assert.equal(s.payload.complete, true);
    });

    it("a report before the send reply is kept and applied when the send opens", async () => {
      const l = listen(tracker);
      await tracker.expect();
      // Reported on the other instance's receive node (the same state with memory).
      const other = trackerFor(env.twin, { clock: env.clock });
      assert.equal(await other.report("1234567890100", A, "DELIVRD"), "early");
      assert.equal(await other.report("1234567890100", B, "REJECT"), "early");
      env.clock.advance(EARLY_MS - 1000);
      const opened = await tracker.open(sendOf(env, { mobiles: [A, B] }));
      assert.deepEqual(opened, { complete: true, early: 2, dropped: [] });
      const [s] = await summaries(env, l, 1);
      assert.deepEqual(s.payload.delivered, [A]);
      assert.deepEqual(s.payload.failed, [{ mobile: B, status: "REJECT", description: "review rejected" }]);
      assert.equal(s.payload.complete, true);
    });

    it("an early report is kept 5 minutes, not longer", async () => {
      const l = listen(tracker);
      await tracker.expect();
      assert.equal(await tracker.report("1234567890100", A, "DELIVRD"), "early");
      env.clock.advance(EARLY_MS + 1);
      assert.deepEqual(await tracker.open(sendOf(env, { mobiles: [A, B], timeoutMs: MIN })), {
        complete: false,
        early: 0,
        dropped: [],
      });
      env.clock.advance(MIN);
      const [s] = await summaries(env, l, 1);
      assert.deepEqual(s.payload.pending, [A, B]);
    });

    it("while no send of the account is tracked, unknown reports are not kept", async () => {
      assert.equal(await tracker.report("999", A, "DELIVRD"), "ignored");
      assert.deepEqual(await env.keys(), []);
      await tracker.expect();
      assert.equal(await tracker.report("", A, "DELIVRD"), "ignored", "no msgid: no send");
      assert.equal(await tracker.report("999", "", "DELIVRD"), "ignored", "no number: no send");
      const l = listen(tracker);
      await tracker.open(sendOf(env, { msgid: "999", mobiles: [A], timeoutMs: MIN }));
      env.clock.advance(MIN);
      const [s] = await summaries(env, l, 1);
      assert.deepEqual(s.payload.pending, [A]);
    });

    it("duplicates, strangers and late reports change nothing; after the summary, nothing", async () => {
      const l = listen(tracker);
      await tracker.open(sendOf(env, { mobiles: [A, B], timeoutMs: 10 * MIN }));
      assert.equal(await tracker.report("1234567890100", A, "MBBLACK"), "marked");
      assert.equal(await tracker.report("1234567890100", A, "DELIVRD"), "duplicate");
      assert.equal(await tracker.report("1234567890100", A, "MBBLACK"), "duplicate");
      assert.equal(await tracker.report("1234567890100", "13900000000", "DELIVRD"), "stranger");
      env.clock.advance(10 * MIN);
      const [s] = await summaries(env, l, 1);
      assert.deepEqual(s.payload.failed, [{ mobile: A, status: "MBBLACK", description: "number blacklisted" }]);
      assert.deepEqual(s.payload.pending, [B]);
      // Late: B's report after the summary.
      assert.match(await tracker.report("1234567890100", B, "DELIVRD"), /^(early|ignored)$/);
      env.clock.advance(MARGIN_MS + EARLY_MS);
      await quiet(env);
      assert.equal(l.got.length, 1);
      assert.equal(await tracker.finish("1234567890100"), null, "someone (we) already finished it");
      if (env.name === "memory") assert.deepEqual(await env.keys(), [], "everything freed");
    });

    it("two batches of one send (50,001 numbers): two summaries, each with its batch", async () => {
      const l = listen(tracker);
      const mobiles = Array.from({ length: 50_001 }, (_, i) => `139${String(i).padStart(8, "0")}`);
      const sentAt = env.clock.now();
      const msg = { topic: "big" };
      await tracker.open(
        sendOf(env, { msgid: "m1", mobiles: mobiles.slice(0, 50_000), batch: { index: 1, count: 2 }, msg }),
      );
      await tracker.open(
        sendOf(env, { msgid: "m2", mobiles: mobiles.slice(50_000), batch: { index: 2, count: 2 }, msg }),
      );
      assert.equal(tracker.tracking(OWNER), 2);
      // All but one of batch 1 delivered; batch 2's only number delivered.
      const reports = mobiles.map((m, i) => [i < 50_000 ? "m1" : "m2", m] as const).filter((_, i) => i !== 7);
      for (let i = 0; i < reports.length; i += 500) {
        await Promise.all(reports.slice(i, i + 500).map(([id, m]) => tracker.report(id, m, "DELIVRD")));
      }
      const [first] = await summaries(env, l, 1);
      assert.equal(first.msgid, "m2");
      assert.deepEqual(first.payload.batch, { index: 2, count: 2 });
      assert.deepEqual(first.payload.delivered, [mobiles[50_000]]);
      assert.equal(first.payload.total, 1);
      assert.equal(first.payload.sentAt, iso(env, sentAt));
      await tracker.report("m1", mobiles[7], "EXPIRED");
      const [, second] = await summaries(env, l, 2);
      assert.equal(second.msgid, "m1");
      assert.equal(second.topic, "big");
      assert.deepEqual(second.payload.batch, { index: 1, count: 2 });
      assert.equal(second.payload.total, 50_000);
      assert.equal(second.payload.delivered.length, 49_999);
      assert.deepEqual(second.payload.failed, [
        { mobile: mobiles[7], status: "EXPIRED", description: new CodeTable("en-US").status("EXPIRED") },
      ]);
      assert.equal(second.payload.complete, true);
      assert.notEqual(first, second);
      await quiet(env);
      assert.equal(l.got.length, 2);
    });

    it("a redeploy of the send node: a summary due meanwhile comes from the new node", async () => {
      const old = listen(tracker);
      await tracker.open(sendOf(env, { mobiles: [A], timeoutMs: MIN }));
      old.off();
      await tracker.report("1234567890100", A, "DELIVRD");
      await quiet(env, 300);
      assert.equal(old.got.length, 0);
      // The replacing node (same id) gets the tracker again from the same state.
      const again = trackerFor(env.state, { clock: env.clock });
      assert.equal(again, tracker, "one tracker per state");
      const fresh = listen(again);
      const [s] = await summaries(env, fresh, 1);
      assert.equal(s.payload.complete, true);
      assert.equal(s.topic, "disk full");
    });

    it("a send node removed for good: drop() discards its sends, no summary follows", async () => {
      const l = listen(tracker);
      await tracker.open(sendOf(env, { msgid: "d1", timeoutMs: MIN }));
      await tracker.open(sendOf(env, { msgid: "d2", timeoutMs: MIN }));
      await tracker.open(sendOf(env, { msgid: "other", owner: "ffff", timeoutMs: MIN }));
      assert.equal(tracker.tracking(OWNER), 2);
      assert.equal(tracker.tracking("ffff"), 1);
      l.off();
      assert.equal(await tracker.drop(OWNER), 2);
      assert.equal(tracker.tracking(OWNER), 0);
      assert.equal(tracker.tracking("ffff"), 1);
      // Late for a dropped send: kept as an early report a few minutes at most, never applied.
      assert.equal(await tracker.report("d1", A, "DELIVRD"), "early");
      const l2 = listen(tracker);
      env.clock.advance(MIN);
      await quiet(env);
      assert.equal(l2.got.length, 0);
      assert.equal(await tracker.drop(OWNER), 0);
      const other = listen(tracker, "ffff");
      const [s] = await summaries(env, other, 1);
      assert.equal(s.msgid, "other");
    });

    it("the timeout is at most 48 h; everything kept ends by then plus a margin", async () => {
      await tracker.open(sendOf(env, { timeoutMs: 100 * 3_600_000 }));
      const l = listen(tracker);
      env.clock.advance(MAX_TRACK_TIMEOUT_MS - 1);
      await quiet(env, 200);
      assert.equal(l.got.length, 0);
      env.clock.advance(1);
      const [s] = await summaries(env, l, 1);
      assert.deepEqual(s.payload.pending, [A, B, C]);
    });

    it("a send whose own deadline passed before its reply was processed is summed up at once", async () => {
      const l = listen(tracker);
      const sentAt = env.clock.now();
      env.clock.advance(2 * MIN);
      await tracker.open(sendOf(env, { sentAt, timeoutMs: MIN, mobiles: [A] }));
      const [s] = await summaries(env, l, 1);
      assert.deepEqual(s.payload.pending, [A]);
      assert.equal(s.payload.doneAt, iso(env, sentAt + 2 * MIN));
    });
  });
}

describe("tracking: parseTrackTimeout", () => {
  it("minutes (number or numeric string) to ms, default 60, at most 2880; anything else null", () => {
    assert.equal(parseTrackTimeout(undefined), 60 * MIN);
    assert.equal(parseTrackTimeout(""), 60 * MIN);
    assert.equal(parseTrackTimeout("15"), 15 * MIN);
    assert.equal(parseTrackTimeout(0.5), 30_000);
    assert.equal(parseTrackTimeout(2880), MAX_TRACK_TIMEOUT_MS);
    assert.equal(parseTrackTimeout("2881"), null);
    assert.equal(parseTrackTimeout(0), null);
    assert.equal(parseTrackTimeout(-5), null);
    assert.equal(parseTrackTimeout("abc"), null);
    assert.equal(parseTrackTimeout({}), null);
  });
});

scenarios(memoryEnv());

describe("tracking: memory only", () => {
  const maker = memoryEnv();
  afterEach(() => maker.cleanup());

  it("the input msg's own values are kept (non-JSON properties survive), but not req/res (SPEC B9a)", async () => {
    const env = await maker.make();
    const tracker = trackerFor(env.state, { clock: env.clock });
    const l = listen(tracker);
    class Alert {
      constructor(readonly host: string) {}
    }
    const alert = new Alert("db1");
    const callback = () => "hi";
    // An http-in flow's request and response would be held until the summary (up to two days).
    const req = { url: "/x" };
    const res = { statusCode: 200 };
    const msg = { topic: "t", alert, callback, req, res, big: 10n, payload: "text" };
    await tracker.open(sendOf(env, { mobiles: [A], msg }));
    await tracker.report("1234567890100", A, "DELIVRD");
    const [s] = await summaries(env, l, 1);
    assert.equal(s.alert, alert);
    assert.equal(s.callback, callback);
    assert.equal("req" in s, false);
    assert.equal("res" in s, false);
    assert.equal(msg.req, req, "the input msg itself is not changed");
    assert.equal(s.big, 10n);
    assert.equal(msg.payload, "text", "the kept msg is not changed: the summary is a new object");
    assert.notEqual(s, msg);
  });

  it("a summary's msg is a new object per batch: two batches of one msg do not share a payload", async () => {
    const env = await maker.make();
    const tracker = trackerFor(env.state, { clock: env.clock });
    const l = listen(tracker);
    const msg = { topic: "t" };
    await tracker.open(sendOf(env, { msgid: "x1", mobiles: [A], msg, batch: { index: 1, count: 2 } }));
    await tracker.open(sendOf(env, { msgid: "x2", mobiles: [B], msg, batch: { index: 2, count: 2 } }));
    await tracker.report("x1", A, "DELIVRD");
    await tracker.report("x2", B, "DELIVRD");
    const [a, b] = await summaries(env, l, 2);
    assert.notEqual(a, b);
    assert.notEqual(a.payload, b.payload);
    assert.deepEqual([a, b].map((s) => s.payload.batch!.index).sort(), [1, 2]);
  });

  it("no send tracked: a report costs no state operation; after the last summary neither", async () => {
    const env = await maker.make();
    const tracker = trackerFor(env.state, { clock: env.clock });
    const calls = spy(env.state);
    assert.equal(await tracker.report("1", A, "DELIVRD"), "ignored");
    assert.deepEqual(calls, []);
    const l = listen(tracker);
    await tracker.open(sendOf(env, { mobiles: [A] }));
    await tracker.report("1234567890100", A, "DELIVRD");
    await summaries(env, l, 1);
    env.clock.advance(EARLY_MS * 2);
    calls.length = 0;
    assert.equal(await tracker.report("1234567890100", A, "DELIVRD"), "ignored");
    assert.deepEqual(calls, []);
  });

  it("after every summary, the state and the tracker hold nothing of the send", async () => {
    const env = await maker.make();
    const tracker = trackerFor(env.state, { clock: env.clock });
    const l = listen(tracker);
    for (let i = 0; i < 100; i++) await tracker.open(sendOf(env, { msgid: `s${i}`, mobiles: [A, B] }));
    for (let i = 0; i < 100; i++) {
      await tracker.report(`s${i}`, A, "DELIVRD");
      await tracker.report(`s${i}`, B, "DELIVRD");
    }
    await summaries(env, l, 100);
    assert.deepEqual(await env.keys(), []);
    assert.equal(tracker.tracking(OWNER), 0);
  });
});

describe("tracking: a failing state", () => {
  it("a summary whose tally could not be taken is tried again, and comes once the state answers", async () => {
    const env = await memoryEnv().make();
    const failures = { left: 2 };
    const real = env.state.takeTally.bind(env.state);
    env.state.takeTally = (key: string) => (failures.left-- > 0 ? Promise.reject(new Error("state down")) : real(key));
    const tracker = trackerFor(env.state, { clock: env.clock });
    const l = listen(tracker);
    await tracker.open(sendOf(env, { mobiles: [A] }));
    assert.equal(await tracker.report("1234567890100", A, "DELIVRD"), "complete");
    await waitFor(() => (env.clock.advance(0), l.errors.length === 1), 5000, "the first failure");
    assert.equal(l.got.length, 0);
    env.clock.advance(5000);
    await waitFor(() => (env.clock.advance(0), l.errors.length === 2), 5000, "the second failure");
    env.clock.advance(5000);
    const [s] = await summaries(env, l, 1);
    assert.equal(s.payload.complete, true);
    assert.match(String(l.errors[0]), /state down/);
    await env.state.close();
  });
});

describe("tracking: redis only", function () {
  this.timeout(30_000);
  const maker = redisEnv();
  scenarios(maker);
  afterEach(() => maker.cleanup());

  it("two instances: the send opened on one, its reports on the other, exactly one summary", async () => {
    const env = await maker.make();
    const one = trackerFor(env.state, { clock: env.clock });
    const two = trackerFor(env.twin, { clock: env.clock });
    assert.notEqual(one, two);
    // The same send node runs on both instances.
    const l1 = listen(one);
    const l2 = listen(two);
    await one.expect();
    assert.equal(await two.report("m", C, "DELIVRD"), "early", "a report that beats the send reply, elsewhere");
    await one.open(sendOf(env, { msgid: "m" }));
    await two.report("m", A, "DELIVRD");
    await two.report("m", B, "UNDELIV");
    const until = Date.now() + 5000;
    while (l1.got.length + l2.got.length < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 700));
    const all = [...l1.got, ...l2.got];
    assert.equal(all.length, 1, "exactly one summary");
    assert.deepEqual(all[0].payload.delivered, [A, C]);
    assert.equal(all[0].topic, "disk full");
  });

  it("two instances: a send finished elsewhere stops counting here at its timeout", async () => {
    const env = await maker.make();
    const one = trackerFor(env.state, { clock: env.clock });
    const two = trackerFor(env.twin, { clock: env.clock });
    const l2 = listen(two);
    await one.open(sendOf(env, { mobiles: [A], timeoutMs: 10 * MIN }));
    await two.report("1234567890100", A, "DELIVRD");
    await summaries(env, l2, 1);
    assert.equal(one.tracking(OWNER), 1, "this instance cannot know yet");
    env.clock.advance(10 * MIN);
    assert.equal(one.tracking(OWNER), 0);
  });

  it("two instances racing to finish the same send: one summary", async () => {
    const env = await maker.make();
    const one = trackerFor(env.state, { clock: env.clock });
    const two = trackerFor(env.twin, { clock: env.clock });
    await one.open(sendOf(env, { mobiles: [A] }));
    const [x, y] = await Promise.all([one.finish("1234567890100"), two.finish("1234567890100")]);
    assert.equal([x, y].filter(Boolean).length, 1);
  });

  it("the kept msg: its JSON-safe properties, without req/res; over 64 KiB the largest are left out", async () => {
    const env = await maker.make();
    const tracker = trackerFor(env.state, { clock: env.clock });
    const l = listen(tracker);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const msg = {
      _msgid: "abc",
      topic: "disk full",
      alert: { host: "db1", at: new Date(0) },
      req: { url: "/x" },
      res: { status: 200 },
      fn: () => 1,
      cyclic,
      huge: "x".repeat(MAX_MSG_BYTES),
      mobile: Array.from({ length: 3000 }, (_, i) => `139${String(i).padStart(8, "0")}`),
      payload: "the text",
    };
    const opened = await tracker.open(sendOf(env, { mobiles: [A], msg }));
    assert.deepEqual(opened.dropped.sort(), ["cyclic", "fn", "huge"]);
    await tracker.report("1234567890100", A, "DELIVRD");
    const [s] = await summaries(env, l, 1);
    assert.deepEqual(Object.keys(s).sort(), ["_msgid", "alert", "mobile", "msgid", "payload", "topic"]);
    assert.deepEqual(s.alert, { host: "db1", at: "1970-01-01T00:00:00.000Z" });
    assert.equal((s.mobile as string[]).length, 3000);
    assert.equal(s.payload.complete, true);
  });

  it("a summary still comes after a restart of every instance (state kept in Redis)", async () => {
    const env = await maker.make();
    const before = trackerFor(env.state, { clock: env.clock });
    await before.open(sendOf(env, { mobiles: [A, B] }));
    await before.report("1234567890100", A, "DELIVRD");
    await env.state.close();
    // A new process: a new state handle, a new tracker, nothing in memory.
    const after = trackerFor(env.twin, { clock: env.clock });
    const l = listen(after);
    await after.report("1234567890100", B, "DELIVRD");
    const [s] = await summaries(env, l, 1);
    assert.deepEqual(s.payload.delivered, [A, B]);
    assert.equal(s.topic, "disk full");
    assert.deepEqual(s.payload.batch, { index: 1, count: 1 });
  });

  it("every key has a TTL: a send's at most its timeout plus the margin", async () => {
    const env = await maker.make();
    const tracker = trackerFor(env.state, { clock: env.clock });
    await tracker.expect();
    await tracker.report("early", A, "DELIVRD");
    await tracker.open(sendOf(env, { timeoutMs: 30 * MIN }));
    await tracker.report("1234567890100", A, "DELIVRD");
    const keys = await env.keys();
    assert.ok(keys.length >= 5, keys.join(" "));
    for (const k of keys) {
      const ttl = Number((await env.redis!.command("PTTL", k)).replace(/^:/, ""));
      assert.ok(ttl > 0, `${k} has no TTL`);
      // 60 s: the Redis state's own garbage-collection slack on top of the logical lifetime. The
      // account's one "tracking in use" key lasts as long as the longest timeout could.
      // A kind's deadline zset is kept two days past its latest deadline (a late restart still
      // fires it); it holds only deadline ids.
      if (k.includes(":due:")) {
        assert.ok(ttl <= 2 * 24 * 60 * MIN + 30 * MIN + MIN, `${k}: ${ttl} ms`);
        continue;
      }
      const most = k.endsWith(":track:on") ? MAX_TRACK_TIMEOUT_MS + MARGIN_MS + 2 * MIN : 30 * MIN + MARGIN_MS + MIN;
      assert.ok(ttl <= most, `${k}: ${ttl} ms`);
    }
  });

  it("an account that tracks nothing: a report costs no Redis round trip (a look at most every 250 ms)", async () => {
    const env = await maker.make();
    const tracker = trackerFor(env.state, { clock: env.clock });
    const calls = spy(env.state);
    assert.equal(await tracker.report("1", A, "DELIVRD"), "ignored");
    assert.deepEqual(calls, ["get"]);
    assert.equal(await tracker.report("2", A, "DELIVRD"), "ignored");
    env.clock.advance(249);
    assert.equal(await tracker.report("3", A, "DELIVRD"), "ignored");
    assert.deepEqual(calls, ["get"], "the answer is trusted 250 ms");
    // Another instance starts a tracked send: seen at the next look.
    await trackerFor(env.twin, { clock: env.clock }).expect();
    env.clock.advance(1);
    assert.equal(await tracker.report("4", A, "DELIVRD"), "early");
    assert.deepEqual(calls, ["get", "get", "mark", "append", "mark"]);
    // From then on, matched without looking again, for as long as a send can take reports.
    calls.length = 0;
    env.clock.advance(EARLY_MS + 10 * MIN);
    assert.equal(await tracker.report("5", A, "DELIVRD"), "ignored");
    assert.deepEqual(calls, ["mark", "get"], "no longer kept: nothing in flight; still matched");
    calls.length = 0;
    env.clock.advance(MAX_TRACK_TIMEOUT_MS + MARGIN_MS + 2 * MIN);
    assert.equal(await tracker.report("6", A, "DELIVRD"), "ignored");
    assert.deepEqual(calls, ["get"]);
  });

  it("a report on the common path is one Redis round trip", async () => {
    const env = await maker.make();
    const tracker = trackerFor(env.state, { clock: env.clock });
    await tracker.open(sendOf(env));
    const calls = spy(env.state);
    await tracker.report("1234567890100", A, "DELIVRD");
    await tracker.report("1234567890100", A, "DELIVRD");
    assert.deepEqual(calls, ["mark", "mark"]);
  });
});
