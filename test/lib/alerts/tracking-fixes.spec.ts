// Fixes to src/lib/alerts/tracking.ts found while wiring it into sms-send, with a Redis-backed
// state as the tracker sees it (backend "redis", writes going where its mode says).
import assert from "node:assert/strict";
import { Tracker, jsonSafe } from "../../../src/lib/alerts/tracking";
import type { AccountState, StateMode } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock } from "../../support/stub";

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
