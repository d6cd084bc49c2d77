import assert from "node:assert/strict";
import { closeAllStates, leaseState, registry } from "../../../src/lib/state/registry";
import { waitFor } from "../../support/stub";

describe("state: the account registry", () => {
  const grace = registry.graceMs;
  afterEach(async () => {
    registry.graceMs = grace;
    await closeAllStates();
  });

  it("config nodes of one account share one state; other accounts and URLs do not", () => {
    const a = leaseState({ url: "http://p.example/x", account: "acct", store: "memory" });
    const b = leaseState({ url: "http://p.example/", account: "acct", store: "memory" });
    const c = leaseState({ url: "http://p.example", account: "other", store: "memory" });
    const d = leaseState({ url: "https://p.example", account: "acct", store: "memory" });
    assert.equal(a.state, b.state, "same origin and account");
    assert.notEqual(a.state, c.state);
    assert.notEqual(a.state, d.state);
  });

  it("a redeploy (release, then a new lease within the grace period) keeps the state", async () => {
    registry.graceMs = 50;
    const spec = { url: "http://p", account: "acct", store: "memory" as const };
    const first = leaseState(spec);
    await first.state.put("k", "kept", 60_000);
    first.release();
    const second = leaseState(spec);
    assert.equal(second.state, first.state);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await second.state.get("k"), "kept");
    second.release();
    await waitFor(() => registry.size === 0, 2000, "freed after the grace period");
    const third = leaseState(spec);
    assert.equal(await third.state.get("k"), null, "a new state once the old one was freed");
  });

  it("releasing twice counts once", async () => {
    registry.graceMs = 20;
    const spec = { url: "http://p", account: "acct", store: "memory" as const };
    const a = leaseState(spec);
    const b = leaseState(spec);
    a.release();
    a.release();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(registry.size, 1, "b still holds it");
    b.release();
    await waitFor(() => registry.size === 0, 2000, "freed");
  });

  it("a bad Redis URL gives a local state with a url problem, never a throw", async () => {
    const l = leaseState({ url: "http://p", account: "a", store: "redis", redisUrl: "nonsense", redisPrefix: "x:" });
    assert.equal(l.state.mode, "local");
    assert.equal(l.problem()?.kind, "url");
    assert.equal(await l.state.claim("k", 1000), true);
  });
});
