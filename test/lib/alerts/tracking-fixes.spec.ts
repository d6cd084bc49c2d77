// Fixes to src/lib/alerts/tracking.ts found while wiring it into sms-send, with a Redis-backed
// state as the tracker sees it (backend "redis", writes going where its mode says).
import assert from "node:assert/strict";
import { Tracker, jsonSafe } from "../../../src/lib/alerts/tracking";
import type { AccountState, StateMode } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock, waitFor } from "../../support/stub";

describe("alerts/tracking: the shared 'tracking in use' marker", () => {
  it("written while the Redis state runs locally, it is written again as soon as the state is shared", async () => {
    const clock = new FakeClock();
    const memory = new MemoryState({ clock });
    let mode: StateMode = "local";
    const puts: string[] = [];
    // A Redis-backed state as the tracker sees it: its writes go where its mode says.
    const state = Object.create(memory, {
      backend: { value: "redis" },
      mode: { get: () => mode },
      put: {
        value: (key: string, value: string, ttl: number) => {
          puts.push(`${mode} ${key}`);
          return memory.put(key, value, ttl);
        },
      },
    }) as AccountState;
    const tracker = new Tracker(state, { clock });
    await tracker.expect();
    mode = "shared";
    clock.advance(1000);
    await tracker.expect();
    clock.advance(1000);
    await tracker.expect(); // shared and fresh: not again
    assert.deepEqual(puts, ["local track:on", "shared track:on"]);
    await memory.close();
  });
});

describe("alerts/tracking: the msg kept with Redis", () => {
  it("one msg shared by the requests of a send is serialised once, not once per request", async () => {
    const clock = new FakeClock();
    const memory = new MemoryState({ clock });
    const state = Object.create(memory, { backend: { value: "redis" }, mode: { value: "shared" } }) as AccountState;
    const tracker = new Tracker(state, { clock });
    let serialised = 0;
    // A personalised send's msg.mobile can hold 100,000 recipient objects, and the send 100,000 requests.
    const msg = { topic: "notice", mobile: { toJSON: () => (serialised++, ["13800138000"]) } };
    for (let i = 0; i < 3; i++) {
      await tracker.open({
        msgid: `m${i}`,
        mobiles: ["13800138000"],
        owner: "s",
        sentAt: clock.now(),
        timeoutMs: 60_000,
        batch: { index: i + 1, count: 3 },
        msg,
      });
    }
    assert.equal(serialised, 1);
    const summary = await tracker.finish("m2");
    assert.deepEqual(summary?.mobile, ["13800138000"]);
    assert.equal(summary?.topic, "notice");
    assert.deepEqual(jsonSafe({ a: 1 }), { json: '{"a":1}', dropped: [] });
    await memory.close();
  });
});

describe("alerts/tracking: faults around a tracked request (SPEC B6a, issue 21)", () => {
  const send = (clock: FakeClock, msgid: string) => ({
    msgid,
    mobiles: ["13800138000", "13800138001"],
    owner: "s1",
    sentAt: clock.now(),
    timeoutMs: 60_000,
    batch: { index: 1, count: 1 },
    msg: { topic: "alert" },
  });

  it("open() failing after its tally is written does not throw: one summary, at the deadline (not one now and one later)", async () => {
    const clock = new FakeClock();
    const memory = new MemoryState({ clock });
    // The state fails once the tally exists: taking the early reports, and moving the deadline.
    const state = Object.create(memory, {
      takeList: { value: () => Promise.reject(new Error("state failed")) },
    }) as AccountState;
    const tracker = new Tracker(state, { clock });
    const got: unknown[] = [];
    tracker.listen("s1", { summary: (m) => got.push(m) });
    const opened = await tracker.open(send(clock, "m1"));
    assert.equal(opened.complete, false);
    clock.advance(60_000);
    await waitFor(() => got.length === 1, 2000, "the summary at the timeout");
    clock.advance(600_000);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got.length, 1);
    await memory.close();
  });

  it("open() failing before its tally exists throws and leaves no deadline behind (the caller sums it up)", async () => {
    const clock = new FakeClock();
    const memory = new MemoryState({ clock });
    const state = Object.create(memory, {
      tally: { value: () => Promise.reject(new Error("state failed")) },
    }) as AccountState;
    const tracker = new Tracker(state, { clock });
    const got: unknown[] = [];
    tracker.listen("s1", { summary: (m) => got.push(m) });
    await assert.rejects(tracker.open(send(clock, "m2")), /state failed/);
    assert.deepEqual(await memory.drain("track:s1"), []);
    await memory.close();
  });

  it("stopping the listener waits for a summary under way: it leaves through the node that took it, before close ends", async () => {
    const clock = new FakeClock();
    const memory = new MemoryState({ clock });
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const state = Object.create(memory, {
      takeTally: { value: (k: string) => slow.then(() => memory.takeTally(k)) },
    }) as AccountState;
    const tracker = new Tracker(state, { clock });
    const events: string[] = [];
    const stop = tracker.listen("s1", { summary: () => events.push("summary") });
    await tracker.open(send(clock, "m3"));
    await tracker.report("m3", "13800138000", "DELIVRD");
    await tracker.report("m3", "13800138001", "DELIVRD");
    clock.advance(1); // the summary is due now: under way, its tally not taken yet
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(events.length, 0);
    const stopped = stop().then(() => events.push("stopped"));
    setTimeout(release, 30);
    await stopped;
    assert.deepEqual(events, ["summary", "stopped"]);
    await memory.close();
  });
});
