// The "tracking in use" marker another instance reads before it matches reports (src/lib/alerts/
// tracking.ts expect()): a marker written while the account's Redis state ran locally (Redis still
// connecting at a start, or down) never reached Redis, so it must be written again once shared.
import assert from "node:assert/strict";
import { Tracker } from "../../../src/lib/alerts/tracking";
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
