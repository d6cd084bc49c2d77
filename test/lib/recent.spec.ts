import assert from "node:assert/strict";
import { RecentSet } from "../../src/lib/recent";
import { FakeClock } from "../support/stub";

describe("lib/recent", () => {
  it("remembers keys for the window and forgets them after", () => {
    const clock = new FakeClock();
    const s = new RecentSet(1000, 10, clock);
    assert.equal(s.checkAndAdd("a"), false);
    assert.equal(s.checkAndAdd("a"), true);
    clock.advance(1000);
    assert.equal(s.checkAndAdd("a"), false);
  });

  it("is bounded in count, oldest out first", () => {
    const s = new RecentSet(60_000, 3, new FakeClock());
    for (const k of ["a", "b", "c", "d"]) s.add(k);
    assert.equal(s.size, 3);
    assert.equal(s.has("a"), false);
    assert.equal(s.has("d"), true);
  });
});
