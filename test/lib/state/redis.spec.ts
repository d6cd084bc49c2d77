import assert from "node:assert/strict";
import { FailoverState } from "../../../src/lib/state/failover";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState, RedisStateError } from "../../../src/lib/state/redis";
import { startRedis, type RedisServer } from "../../support/redis";
import { FakeClock, waitFor } from "../../support/stub";
import { stateContract } from "./contract";

describe("state: Redis (a real redis-server)", function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let n = 0;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());

  const open: RedisState[] = [];
  const make = (clock: FakeClock, prefix: string, scope = "http://p\nacct") => {
    const s = new RedisState({ url: redis.url, prefix, scope, clock });
    open.push(s);
    return s;
  };
  const ready = (s: RedisState) => waitFor(() => s.mode === "shared", 5000, "Redis connected");
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  // Each contract test gets its own prefix, as two deployments sharing one Redis would.
  stateContract("redis", async (clock) => {
    const prefix = `t${++n}:`;
    const state = make(clock, prefix);
    const twin = make(clock, prefix);
    await Promise.all([ready(state), ready(twin)]);
    return { state, twin: () => twin, cleanup: async () => undefined };
  });

  it("every key has a TTL and one hash tag per account", async () => {
    const clock = new FakeClock();
    const s = make(clock, "ttl:");
    await ready(s);
    await s.claim("c", 1000);
    await s.admit([{ window: { key: "w", ttlMs: 1000 }, cap: { key: "cap", max: 3, ttlMs: 1000 } }]);
    await s.pace("p", 100);
    await s.put("r", "v", 1000);
    await s.append("l", ["a"], 10, 1000);
    await s.addPart("g", "m", 1, 2, "x", { ttlMs: 1000, maxPending: 10, maxBytes: 1e6 });
    await s.tally("t", ["a", "b"], 1000);
    await s.mark("t", "a", "DELIVRD");
    await s.schedule("k", "id", clock.now() + 1000);
    const keys = (await redis.command("KEYS", "ttl:*")).split("\r\n").filter((l) => l.startsWith("ttl:"));
    assert.ok(keys.length >= 10, keys.join(" "));
    const tags = new Set(keys.map((k) => /\{([0-9a-f]+)\}/.exec(k)?.[1]));
    assert.equal(tags.size, 1, `one hash tag: ${[...tags].join(",")}`);
    for (const k of keys) {
      const ttl = Number((await redis.command("PTTL", k)).replace(/^:/, ""));
      assert.ok(ttl > 0, `${k} has no TTL (${ttl})`);
    }
  });

  it("a deadline fires on exactly one of two instances", async () => {
    const clock = new FakeClock();
    const a = make(clock, "dl:");
    const b = make(clock, "dl:");
    await Promise.all([ready(a), ready(b)]);
    const fired: string[] = [];
    a.onDue("k", (id) => void fired.push(`a:${id}`));
    b.onDue("k", (id) => void fired.push(`b:${id}`));
    for (let i = 0; i < 20; i++) await a.schedule("k", String(i), clock.now() + 100);
    clock.advance(100);
    await waitFor(() => fired.length >= 20, 5000, "20 deadlines");
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(fired.length, 20);
    assert.equal(new Set(fired.map((f) => f.slice(2))).size, 20);
  });

  it("a handler that fails gets its deadline again a little later; a finished one is gone", async () => {
    const clock = new FakeClock();
    const s = new RedisState({ url: redis.url, prefix: "lease:", scope: "x", clock, leaseMs: 300 });
    open.push(s);
    await ready(s);
    const calls: string[] = [];
    let fail = true;
    s.onDue("k", (id) => {
      calls.push(id);
      return fail ? Promise.reject(new Error("state failed")) : Promise.resolve();
    });
    await s.schedule("k", "a", clock.now());
    await waitFor(() => calls.length === 1, 5000, "first call");
    fail = false;
    clock.advance(1000);
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(calls, ["a"], "not again before the retry delay (2 s)");
    clock.advance(1000);
    await waitFor(() => calls.length === 2, 5000, "the retry after 2 s");
    clock.advance(10_000);
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(calls, ["a", "a"]);
  });

  it("due deadlines of another kind never hold back this instance's own", async () => {
    const clock = new FakeClock();
    const s = make(clock, "starve:");
    await ready(s);
    for (let i = 0; i < 500; i++) await s.schedule("other", String(i), clock.now());
    await s.schedule("mine", "x", clock.now());
    const fired: string[] = [];
    s.onDue("mine", (id) => void fired.push(id));
    await waitFor(() => fired.length === 1, 5000, "our deadline");
  });

  it("a deadline's key outlives what it governs: a restart days later still finds it", async () => {
    const clock = new FakeClock();
    const s = make(clock, "keep:");
    await ready(s);
    await s.schedule("part:r", "m", clock.now() + 1000);
    const keys = (await redis.command("KEYS", "keep:*")).split("\r\n").filter((l) => l.startsWith("keep:"));
    const ttl = Number((await redis.command("PTTL", keys[0])).replace(/^:/, ""));
    assert.ok(ttl > 24 * 3600_000, `the due zset expires in ${ttl} ms`);
  });

  it("a list takes 10,000 items in one append", async () => {
    const s = make(new FakeClock(), "big:");
    await ready(s);
    const items = Array.from({ length: 10_000 }, (_, i) => String(i));
    assert.deepEqual(await s.append("l", items, 20_000, 60_000), []);
    assert.equal((await s.takeList("l")).length, 10_000);
  });

  it("different prefixes and accounts do not share anything", async () => {
    const clock = new FakeClock();
    const a = make(clock, "p1:");
    const b = make(clock, "p2:");
    const c = make(clock, "p1:", "http://p\nother");
    await Promise.all([ready(a), ready(b), ready(c)]);
    assert.equal(await a.claim("x", 1000), true);
    assert.equal(await b.claim("x", 1000), true);
    assert.equal(await c.claim("x", 1000), true);
  });

  it("failover: an outage goes local (one mode change, nothing refused), and back when Redis returns", async function () {
    const clock = new FakeClock();
    const redisState = make(clock, "fo:");
    const state = new FailoverState(redisState, new MemoryState({ clock }));
    await ready(redisState);
    const modes: string[] = [];
    state.onMode((m, reason) => modes.push(`${m}:${reason}`));
    assert.equal(await state.claim("before", 1000), true);
    await redis.kill();
    // Operations during the outage answer from local memory, at once.
    const t0 = Date.now();
    assert.equal(await state.claim("during", 1000), true);
    assert.equal(await state.claim("during", 1000), false);
    assert.equal(await state.pace("rate", 100), 0);
    assert.ok(Date.now() - t0 < 2000, "nothing waits for Redis");
    await waitFor(() => state.mode === "local", 5000, "local mode");
    await redis.restart();
    await waitFor(() => state.mode === "shared", 10_000, "shared again");
    assert.equal(await state.claim("after", 1000), true);
    // One outage: one change to local (its reason may be told again as it changes), then shared.
    const changes = modes.map((m) => m.split(":")[0]).filter((m, i, all) => i === 0 || all[i - 1] !== m);
    assert.deepEqual(changes, ["local", "shared"], modes.join(" | "));
  });

  it("a Redis that stops answering (paused) holds nothing up: operations go local within a second", async () => {
    const clock = new FakeClock();
    const redisState = make(clock, "pause:");
    const state = new FailoverState(redisState, new MemoryState({ clock }));
    await ready(redisState);
    redis.pause();
    try {
      const t0 = Date.now();
      assert.equal(await state.pace("rate", 100), 0);
      assert.equal(await state.claim("k", 1000), true);
      assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
      assert.equal(state.mode, "local");
      // Right after a failure Redis is left alone: the next operations do not wait at all.
      const t1 = Date.now();
      await state.admit([{ window: { key: "w", ttlMs: 1000 } }]);
      assert.ok(Date.now() - t1 < 200, `took ${Date.now() - t1} ms`);
    } finally {
      redis.resume();
    }
    // Back: the first operation after the pause tries Redis again and finds it answering.
    const mode = (): string => state.mode;
    for (let i = 0; i < 150 && mode() !== "shared"; i++) {
      await state.claim(`probe${i}`, 1000);
      if (mode() !== "shared") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(state.mode, "shared");
  });

  it("a take that fails in Redis with nothing local is a failure, not 'nothing there'", async () => {
    const clock = new FakeClock();
    const redisState = make(clock, "take:");
    const state = new FailoverState(redisState, new MemoryState({ clock }));
    await ready(redisState);
    await state.put("r", "v", 60_000);
    redis.pause();
    try {
      await assert.rejects(state.take("r"));
    } finally {
      redis.resume();
    }
  });
});

describe("state: Redis setup problems", function () {
  this.timeout(20_000);
  it("a wrong password is an auth problem that names no secret; a bad URL is a url problem", async () => {
    const redis = await startRedis({ password: "Redis-Pa55-Qx7" });
    const s = new RedisState({
      url: `redis://127.0.0.1:${redis.port}`,
      password: "Wrong-Pw-993",
      prefix: "x:",
      scope: "s",
    });
    try {
      await waitFor(() => s.problem?.kind === "auth", 8000, "auth problem");
      assert.doesNotMatch(s.problem!.message, /Wrong-Pw-993|Redis-Pa55/);
      assert.equal(s.mode, "local");
    } finally {
      await s.close();
      await redis.stop();
    }
    assert.throws(
      () => new RedisState({ url: "http://127.0.0.1:1", prefix: "x:", scope: "s" }),
      (e: unknown) => e instanceof RedisStateError && e.kind === "url",
    );
  });

  it("the right password in the credential connects", async () => {
    const redis = await startRedis({ password: "Redis-Pa55-Qx7" });
    const s = new RedisState({
      url: `redis://127.0.0.1:${redis.port}`,
      password: "Redis-Pa55-Qx7",
      prefix: "x:",
      scope: "s",
    });
    try {
      await waitFor(() => s.mode === "shared", 5000, "connected");
      assert.equal(await s.claim("a", 1000), true);
    } finally {
      await s.close();
      await redis.stop();
    }
  });
});
