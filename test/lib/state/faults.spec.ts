// The account state under the faults production Redis has (SPEC B6a), each case of issue 21's
// review against a real redis-server, its faults made for real: Redis's own (CLIENT PAUSE) and
// a TCP fault proxy between the state and Redis (stall, reset, delay).
import assert from "node:assert/strict";
import { Guard, type Released } from "../../../src/lib/alerts/guard";
import { OnCall, type Out } from "../../../src/lib/alerts/oncall";
import { trackerFor } from "../../../src/lib/alerts/tracking";
import { Reassembly, type Assembled } from "../../../src/lib/push/reassembly";
import { FailoverState } from "../../../src/lib/state/failover";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState, RedisStateError, scopeTag } from "../../../src/lib/state/redis";
import { closeAllStates, leaseState } from "../../../src/lib/state/registry";
import type { Clock } from "../../../src/lib/clock";
import { systemClock } from "../../../src/lib/clock";
import { FaultProxy } from "../../support/fault-proxy";
import { rawCommand, startRedis, type RedisServer, type Reply } from "../../support/redis";
import { FakeClock, waitFor } from "../../support/stub";

const SCOPE = "http://p\nfaults";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("state under faults (SPEC B6a): a real Redis, its faults made for real", function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let proxy: FaultProxy;
  let n = 0;
  let prefix = "";
  const open: Array<{ close(): Promise<void> }> = [];
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());
  beforeEach(async () => {
    prefix = `f${++n}:`;
    proxy = await FaultProxy.start(redis.port);
  });
  afterEach(async () => {
    proxy.pass();
    await Promise.all(open.splice(0).map((s) => s.close()));
    await proxy.close();
  });

  function redisState(clock: Clock, url = proxy.url()): RedisState {
    const r = new RedisState({ url, prefix, scope: SCOPE, clock });
    open.push(r);
    return r;
  }
  function failover(clock: Clock, url = proxy.url()): FailoverState {
    const f = new FailoverState(redisState(clock, url), new MemoryState({ clock }));
    open.push(f);
    return f;
  }
  const shared = (s: { mode: string }) => waitFor(() => s.mode === "shared", 10_000, "Redis connected");
  const key = (k: string) => `${prefix}{${scopeTag(SCOPE)}}:${k}`;

  it("a stall does not lose a long SMS: its deadline comes while one failed command keeps the state off Redis, and the parts are still taken from Redis", async () => {
    const state = failover(systemClock);
    await shared(state);
    const out: Array<Assembled<null>> = [];
    const errors: unknown[] = [];
    const r = new Reassembly<null>({
      state,
      scope: "rx",
      timeoutMs: 2000,
      maxPending: 100,
      maxBytes: 1 << 20,
      dedupeMs: 60_000,
      onMessage: (m) => out.push(m),
      onError: (e) => errors.push(e),
    });
    const off = r.listen();
    try {
      const part = { mobile: "13800138000", destcode: "1069", id: "7", total: 2, text: "第一部分", meta: null };
      assert.equal(await r.add({ ...part, number: 1 }), "added");
      // A fork for a snapshot: every client waits 2.5 s. A report's dedupe claim meanwhile times
      // out: from then on the state leaves Redis alone for a while, but the deadline poll does not.
      await redis.pauseClients(2500);
      assert.equal(await state.claim("rx:seen:report", 60_000), true);
      assert.equal(state.mode, "local");
      await waitFor(() => out.length === 1, 15_000, "the long SMS, incomplete, after its wait");
      assert.equal(out[0].text, "第一部分");
      assert.deepEqual(out[0].missing, [2]);
      assert.equal(out[0].complete, false);
      await sleep(1500);
      assert.equal(out.length, 1, "emitted once");
      assert.deepEqual(await redis.keysWithoutTtl(prefix), []);
    } finally {
      off();
    }
  });

  it("a held alert whose append went unanswered is kept here once and released once (not stored twice)", async () => {
    const clock = new FakeClock();
    clock.advance(Date.parse("2023-11-15T04:00:00Z") - clock.now()); // 12:00 at +08:00
    const state = failover(clock);
    await shared(state);
    const guard = new Guard({ state, scope: "g1", clock, window: 0, hours: "22:00-07:00" });
    const released: Released[] = [];
    const off = guard.listen(
      (r) => released.push(r),
      () => undefined,
    );
    try {
      // The append runs in Redis, its answer is held, and asking again gets no answer either.
      proxy.stall("down");
      const t0 = Date.now();
      const d = await guard.decide({ msg: { topic: "disk full", payload: 1 }, mobiles: ["13800138000"] });
      assert.equal(d.held, true);
      assert.ok(Date.now() - t0 >= 2000, "asked again before giving up on an answer");
      assert.equal(state.unsettled, 1, "kept here, to be settled with Redis");
      proxy.pass();
      await waitFor(() => state.mode === "shared" && state.unsettled === 0, 15_000, "settled with Redis");
      clock.advance(10 * 3600_000); // 22:00
      await waitFor(() => released.length >= 1, 15_000, "released when the hours begin");
      await sleep(1000);
      assert.equal(released.length, 1, "released once");
      assert.deepEqual(released[0].send?.mobile, ["13800138000"]);
    } finally {
      off();
    }
  });

  it("an admission whose answer was lost is asked again (counted once); unanswered, it lets the alert through uncounted here", async () => {
    const state = failover(systemClock);
    await shared(state);
    const cap = (max: number) => ({ cap: { key: "cap:13800138000", max, ttlMs: 3600_000 } });
    // Answer held 1.5 s: within the 2 s it is asked again; the second sending answers from the memo.
    proxy.stall("down");
    setTimeout(() => proxy.pass(), 1500);
    assert.deepEqual(await state.admit([cap(2)]), [{ ok: true }]);
    assert.equal(await redis.call("HGET", key("cap:13800138000"), "n"), "1", "counted once in Redis");
    // Answer held past every retry: let through, and nothing counted here (it may count there).
    proxy.stall("down");
    assert.deepEqual(await state.admit([cap(2)]), [{ ok: true }]);
    assert.deepEqual(state.local.admitNow([cap(1)]), [{ ok: true }], "no count was taken here");
    proxy.pass();
    await waitFor(async () => (await redis.call("HGET", key("cap:13800138000"), "n")) === "2", 5000, "its run");
  });

  it("decisions at a start wait for the first connection (up to 2 s) instead of deciding on empty local state", async () => {
    const clock = systemClock;
    const first = failover(clock, redis.url);
    await shared(first);
    const window = [{ window: { key: "w:cpu:13800138000", ttlMs: 600_000 } }];
    assert.deepEqual(await first.admit(window), [{ ok: true }]);
    // A restart: the new state's connection takes 800 ms to come up.
    proxy.stall();
    setTimeout(() => proxy.pass(), 800);
    const restarted = failover(clock);
    const t0 = Date.now();
    const [again] = await restarted.admit(window);
    assert.equal(again.ok, false, "the repeat right after a restart is held back by the window kept in Redis");
    assert.ok(Date.now() - t0 < 2500);
    // Redis not there at all: after 2 s the decision is made locally (never blocked for longer).
    await proxy.close();
    const gone = failover(clock, "redis://127.0.0.1:1");
    const t1 = Date.now();
    assert.deepEqual(await gone.admit(window), [{ ok: true }]);
    const waited = Date.now() - t1;
    assert.ok(waited >= 1500 && waited < 4000, `waited ${waited} ms`);
    proxy = await FaultProxy.start(redis.port);
  });

  it("a deadline claimed while its node is being replaced is given back at once, for the replacing node", async () => {
    const clock = systemClock;
    const direct = redisState(clock, redis.url);
    await shared(direct);
    await direct.schedule("part:rx", "m1", clock.now());
    // The old node's poll claims it through a slow link; its handler is gone by the time the
    // claim is answered (a redeploy in between).
    proxy.delay(400);
    const old = redisState(clock);
    await shared(old);
    const oldCalls: string[] = [];
    const offOld = old.onDue("part:rx", (id) => void oldCalls.push(id));
    await sleep(150);
    offOld();
    await sleep(1200);
    const newCalls: string[] = [];
    const t0 = Date.now();
    direct.onDue("part:rx", (id) => void newCalls.push(id));
    await waitFor(() => newCalls.length === 1, 5000, "the replacing node's handler");
    assert.ok(Date.now() - t0 < 3000, "not after the 30 s lease");
    assert.deepEqual(oldCalls, []);
  });

  it("held alerts kept locally during an outage are released in arrival order with the ones in Redis, each once", async () => {
    const clock = new FakeClock();
    clock.advance(Date.parse("2023-11-15T04:00:00Z") - clock.now()); // 12:00 at +08:00
    const a = failover(clock);
    const b = failover(clock, redis.url);
    await Promise.all([shared(a), shared(b)]);
    const opts = { clock, window: 0, hours: "22:00-07:00", scope: "g" };
    const ga = new Guard({ state: a, ...opts });
    const gb = new Guard({ state: b, ...opts });
    const hold = async (g: Guard, topic: string) => {
      assert.equal((await g.decide({ msg: { topic }, mobiles: ["13800138000"] })).held, true);
      clock.advance(1000);
    };
    await hold(ga, "a1");
    // Instance a loses Redis (its connection is reset); b still has it.
    proxy.reset();
    await hold(ga, "a2");
    await hold(gb, "b3");
    await hold(ga, "a4");
    assert.equal(a.keptLocally, true, "a2 and a4 are kept locally");
    proxy.pass();
    await waitFor(() => a.mode === "shared" && !a.keptLocally, 15_000, "handed to Redis");
    clock.advance(10 * 3600_000);
    const released = await gb.release();
    assert.deepEqual(
      released.map((r) => (r.msg as { topic: string }).topic),
      ["a1", "a2", "b3", "a4"],
    );
    assert.deepEqual(await ga.release(), []);
  });

  it("every key has a TTL, also those a script makes on a miss (parts' sizes, memos, claim groups)", async () => {
    const clock = new FakeClock();
    const s = redisState(clock, redis.url);
    await shared(s);
    const limits = { ttlMs: 60_000, maxPending: 2, maxBytes: 1 << 20 };
    // A take of a message that is not there (the sizes hash must not be made by it).
    assert.equal(await s.takeParts("g", "gone"), null);
    await s.addPart("g", "m1", 1, 2, "x", limits);
    await s.addPart("g", "m2", 1, 2, "y", limits);
    await s.addPart("g", "m3", 1, 2, "z", limits); // evicts m1
    await s.addPart("g", "m2", 2, 2, "y2", limits); // completes m2
    assert.ok(await s.takeParts("g", "m3"));
    assert.equal(await s.takeParts("g", "m3"), null);
    await s.claim("c", 1000, { group: "seen", max: 1 });
    await s.claim("c2", 1000, { group: "seen", max: 1 });
    await s.cas([{ key: "v", expect: null, value: "1", ttlMs: 1000 }]);
    await s.admit([{ window: { key: "w", ttlMs: 1000 }, cap: { key: "cap", max: 3, ttlMs: 1000 } }]);
    await s.append("l", ["a"], 10, 1000);
    await s.takeList("l");
    await s.mergeList("l2", ["b"], 1000);
    await s.tally("t", ["a", "b"], 1000);
    await s.mark("t", "a", "DELIVRD");
    await s.mergeTally("t2", { pending: ["c"], marks: new Map([["d", "DELIVRD"]]) }, 1000);
    await s.takeTally("t");
    await s.mergeParts("g", "m9", new Map([[1, "w"]]), 1000);
    await s.schedule("k", "id", clock.now() + 1000);
    await s.scheduleEarliest("k", "id2", clock.now() + 1000);
    const keys = ((await redis.call("KEYS", `${prefix}*`)) as string[]).length;
    assert.ok(keys >= 10, `${keys} keys`);
    assert.deepEqual(await redis.keysWithoutTtl(prefix), []);
  });

  it("a tracked send outlives its deadline by at least 24 h in Redis (a Node-RED down for hours still sums it up)", async () => {
    const clock = new FakeClock();
    const s = redisState(clock, redis.url);
    await shared(s);
    await trackerFor(s, { clock }).open({
      msgid: "m-24h",
      mobiles: ["13800138000"],
      owner: "send1",
      sentAt: clock.now(),
      timeoutMs: 60_000,
      batch: { index: 1, count: 1 },
      msg: { topic: "x" },
    });
    const keys = (await redis.call("KEYS", `${prefix}*track*m-24h*`)) as string[];
    assert.ok(keys.length >= 3, keys.join(" "));
    for (const k of keys) {
      const ttl = Number(await redis.call("PTTL", k));
      // The deadline is 60 s away: the key lives a day past it (less the ms this test took).
      assert.ok(ttl >= 60_000 + 24 * 3600_000 - 5000, `${k}: ${ttl} ms`);
    }
  });

  it("a key prefix with { or } is refused at start, with a clear reason and no fallback to another key layout", async () => {
    assert.throws(
      () => new RedisState({ url: redis.url, prefix: "team{a}:", scope: SCOPE }),
      (e: unknown) => e instanceof RedisStateError && e.kind === "prefix" && /\{ or \}/.test(e.message),
    );
    const lease = leaseState({ url: "http://p", account: "x", store: "redis", redisUrl: redis.url, redisPrefix: "a}" });
    try {
      assert.equal(lease.problem()?.kind, "prefix");
      assert.equal(lease.state.mode, "local");
    } finally {
      lease.release();
      await closeAllStates();
    }
  });

  // SPEC B6a/B11: an on-call chain's steps go on from memory while Redis is away, and once it is
  // back each step comes once, whichever instance's poll finds it, Redis restarted empty or not.
  for (const keepData of [false, true]) {
    it(`on-call steps go on locally while Redis is down, then each once on two instances (Redis back ${keepData ? "with" : "without"} its data)`, async () => {
      const clock = new FakeClock();
      const pages: string[] = [];
      const errors: unknown[] = [];
      const instance = (state: FailoverState) => {
        const oc = new OnCall({ state, scope: "oc", clock, rota: ["13800138000", "13900139000", "13700137000"] });
        open.push({ close: async () => stop() });
        const stop = oc.listen({
          emit: (outs: Out[]) => {
            for (const o of outs) if (o.port === 0) pages.push(`${String(o.msg.mobile)} ${String(o.msg.payload)}`);
          },
          error: (e) => errors.push(e),
        });
        return oc;
      };
      const a = failover(clock, redis.url);
      const b = failover(clock, redis.url);
      await Promise.all([shared(a), shared(b)]);
      const oa = instance(a);
      instance(b);
      for (const o of await oa.fire("disk", "disk full"))
        if (o.port === 0) pages.push(`${String(o.msg.mobile)} ${String(o.msg.payload)}`);
      if (keepData) await redis.command("SAVE");
      await redis.kill();
      await waitFor(() => a.mode === "local" && b.mode === "local", 15_000, "both local");
      clock.advance(5 * 60_000);
      await waitFor(() => pages.length >= 2, 15_000, `step 2 from memory (pages ${JSON.stringify(pages)})`);
      await redis.restart({ keepData });
      await waitFor(() => a.mode === "shared" && b.mode === "shared" && !a.keptLocally, 30_000, "both shared again");
      clock.advance(10 * 60_000);
      await waitFor(() => pages.length >= 3, 15_000, `step 3 once back (pages ${JSON.stringify(pages)})`).catch(
        async (e) => {
          const keys = (await redis.command("KEYS", "*")).split("\n");
          throw new Error(`${(e as Error).message} errors ${String(errors)} keys ${keys.join(" ")}`);
        },
      );
      await sleep(1500); // a second page would come from the other instance's poll (every 250 ms)
      assert.deepEqual(
        pages.map((p) => p.replace(/ disk full.*/, "")),
        ["13800138000", "13900139000", "13800138000,13900139000,13700137000"],
      );
      assert.deepEqual(errors, []);
    });
  }

  it("Redis restarted without its data: a pending part, a held alert and a tracked send's tally and deadline come back from the instance that wrote them", async () => {
    const clock = new FakeClock();
    clock.advance(Date.parse("2023-11-15T04:00:00Z") - clock.now()); // 12:00 at +08:00
    const a = failover(clock, redis.url);
    const b = failover(clock, redis.url);
    await Promise.all([shared(a), shared(b)]);
    const limits = { ttlMs: 60_000, maxPending: 10, maxBytes: 1 << 20 };
    assert.equal((await a.addPart("rx", "m1", 1, 2, "第一部分", limits)).result, "added");
    const guard = new Guard({ state: a, clock, window: 0, hours: "22:00-07:00", scope: "g" });
    assert.equal((await guard.decide({ msg: { topic: "disk" }, mobiles: ["13800138000"] })).held, true);
    await a.tally("track:1", ["13800138000", "13900139000"], 3600_000);
    await a.mark("track:1", "13800138000", "DELIVRD");
    await a.schedule("track", "1", clock.now() + 60_000);
    await b.put("msg:1", "the msg", 3600_000);
    await redis.restart({ keepData: false });
    await waitFor(
      () => a.mode === "shared" && b.mode === "shared" && !a.keptLocally && !b.keptLocally,
      30_000,
      "both shared again",
    );
    // A call after the restart finds Redis without its data and puts back what each wrote.
    await waitFor(async () => /\b1\b/.test(await redis.command("EXISTS", key("state:epoch"))), 10_000, "epoch");
    await waitFor(async () => (await b.get("msg:1")) === "the msg", 10_000, "the record b kept");
    const done = await b.addPart("rx", "m1", 2, 2, "第二部分", limits);
    assert.equal(done.result, "complete");
    assert.deepEqual([...done.parts!.entries()].sort(), [
      [1, "第一部分"],
      [2, "第二部分"],
    ]);
    const tally = await b.takeTally("track:1");
    assert.deepEqual(tally?.pending, ["13900139000"]);
    assert.equal(tally?.marks.get("13800138000"), "DELIVRD");
    const due: string[] = [];
    const off = b.onDue("track", (id) => void due.push(id));
    clock.advance(61_000);
    await waitFor(() => due.length === 1, 10_000, "the tracking deadline, put back");
    off();
    clock.advance(10 * 3600_000);
    const gb = new Guard({ state: b, clock, window: 0, hours: "22:00-07:00", scope: "g" });
    assert.deepEqual(
      (await gb.release()).map((r) => (r.msg as { topic: string }).topic),
      ["disk"],
    );
    assert.deepEqual(await redis.keysWithoutTtl(prefix), []);
  });

  it("Redis restarted without its data brings back only what nobody took: a tally summed up, held alerts released and a record deleted by another instance stay gone", async () => {
    const clock = new FakeClock();
    clock.advance(Date.parse("2023-11-15T04:00:00Z") - clock.now()); // 12:00 at +08:00
    const a = failover(clock, redis.url);
    const b = failover(clock, redis.url);
    await Promise.all([shared(a), shared(b)]);
    await Promise.all([a.sync(), b.sync()]);
    const guard = new Guard({ state: a, clock, window: 0, hours: "22:00-07:00", scope: "g2" });
    assert.equal((await guard.decide({ msg: { topic: "disk" }, mobiles: ["13800138000"] })).held, true);
    await a.tally("track:2", ["13800138000"], 3600_000);
    await a.put("msg:2", "the msg", 3600_000);
    // An on-call alert a opened (a versioned record: a keeps a copy of it).
    assert.ok(await a.cas([{ key: "oc:disk", expect: null, value: "open", ttlMs: 24 * 3600_000 }]));
    // b sums the send up and releases the held alert (both taken from Redis), and resolves the alert.
    assert.ok(await b.takeTally("track:2"));
    assert.equal(await b.take("msg:2"), "the msg");
    const alert = await b.read("oc:disk");
    assert.ok(await b.cas([{ key: "oc:disk", expect: alert!.version, value: null, ttlMs: 24 * 3600_000 }]));
    clock.advance(10 * 3600_000);
    const gb = new Guard({ state: b, clock, window: 0, hours: "22:00-07:00", scope: "g2" });
    assert.deepEqual(
      (await gb.release()).map((r) => (r.msg as { topic: string }).topic),
      ["disk"],
    );
    // a's sweep finds them gone from Redis and forgets its copies.
    await a.sweepShadow();
    await redis.restart({ keepData: false });
    await waitFor(() => a.mode === "shared" && b.mode === "shared", 30_000, "both shared again");
    await waitFor(async () => /\b1\b/.test(await redis.command("EXISTS", key("state:epoch"))), 10_000, "epoch");
    await Promise.all([a.sync(), b.sync()]);
    assert.equal(await b.takeTally("track:2"), null, "no second summary");
    assert.equal(await b.get("msg:2"), null);
    assert.deepEqual(await gb.release(), [], "not released twice");
    assert.equal(
      await b.read("oc:disk"),
      null,
      "the resolved alert came back (it would swallow the next one of its key)",
    );
  });

  describe("a failover that loses the old master's last writes (the loss made by hand: a deterministic SENTINEL FAILOVER)", () => {
    /** A RedisState whose link can be told "the master moved" (what a Sentinel failover does). */
    function movable(clock: Clock) {
      const r = redisState(clock, redis.url);
      let moves = 0;
      Object.defineProperty(r, "masterMoves", { get: () => moves });
      const f = new FailoverState(r, new MemoryState({ clock }));
      open.push(f);
      return { f, move: () => moves++ };
    }
    const cmd = async (...args: string[]) => (await rawCommand(redis.port, args)).value;
    type Kept = { key: string; type: string; value: Reply; ttl: number };
    /** Every key of this test as it is now (the replica's copy when the master is lost). */
    async function snapshot(): Promise<Kept[]> {
      const read: Record<string, (k: string) => Promise<Reply>> = {
        string: (k) => cmd("GET", k),
        set: (k) => cmd("SMEMBERS", k),
        hash: (k) => cmd("HGETALL", k),
        zset: (k) => cmd("ZRANGE", k, "0", "-1", "WITHSCORES"),
        list: (k) => cmd("LRANGE", k, "0", "-1"),
      };
      const out: Kept[] = [];
      for (const key of (await cmd("KEYS", `${prefix}*`)) as string[]) {
        const type = String(await cmd("TYPE", key));
        out.push({ key, type, value: await read[type](key), ttl: Number(await cmd("PTTL", key)) });
      }
      return out;
    }
    /** The old master's last writes lost: every key back as the snapshot had it (memos too). */
    async function loseSince(snap: Kept[]): Promise<void> {
      for (const key of (await cmd("KEYS", `${prefix}*`)) as string[]) await cmd("DEL", key);
      for (const k of snap) {
        const v = k.value as string[];
        if (k.type === "string") await cmd("SET", k.key, k.value as string);
        else if (k.type === "set") await cmd("SADD", k.key, ...v);
        else if (k.type === "hash") await cmd("HSET", k.key, ...v);
        else if (k.type === "list") await cmd("RPUSH", k.key, ...v);
        else for (let i = 0; i < v.length; i += 2) await cmd("ZADD", k.key, v[i + 1], v[i]);
        if (k.ttl > 0) await cmd("PEXPIRE", k.key, String(k.ttl));
      }
    }
    const get = async (k: string) => (await cmd("GET", key(k))) as string | null;
    const day = 24 * 3600_000;

    it("the versioned writes of the last minute are sent again: a lost one comes back whole, a lost deletion is redone, one not lost changes nothing", async () => {
      const clock = new FakeClock();
      const a = movable(clock);
      const b = failover(clock, redis.url);
      await Promise.all([shared(a.f), shared(b)]);
      await Promise.all([a.f.sync(), b.sync()]);
      const v0 = await a.f.cas([{ key: "count", expect: null, value: "0", ttlMs: day }]);
      const vRes = await a.f.cas([{ key: "resolved", expect: null, value: "open", ttlMs: day }]);
      // Not lost: a opened it, b resolved it (deleted) since. A resend must not bring it back.
      const vx = await a.f.cas([{ key: "x", expect: null, value: "open", ttlMs: day }]);
      assert.ok(v0 && vRes && vx);
      assert.ok(await b.cas([{ key: "x", expect: (await b.read("x"))!.version, value: null, ttlMs: day }]));
      const snap = await snapshot();
      // Lost with the old master: an alert opened with its count (one write of two keys), and a resolve.
      assert.ok(
        await a.f.cas([
          { key: "alert", expect: null, value: "open", ttlMs: day },
          { key: "count", expect: v0, value: "1", ttlMs: day },
        ]),
      );
      assert.ok(await a.f.cas([{ key: "resolved", expect: vRes, value: null, ttlMs: day }]));
      await loseSince(snap);
      a.move();
      await a.f.sync();
      assert.match((await get("alert")) ?? "", /\|open$/, "the lost alert back");
      assert.match((await get("count")) ?? "", /\|1$/, "with the count written with it");
      assert.equal(await get("resolved"), null, "the lost resolve redone");
      assert.equal(await get("x"), null, "the alert b resolved since came back");
    });

    it("a write refused by its expectations is not sent again: the one that won stays", async () => {
      const clock = new FakeClock();
      const a = movable(clock);
      const b = movable(clock);
      await Promise.all([shared(a.f), shared(b.f)]);
      await Promise.all([a.f.sync(), b.f.sync()]);
      const va = await a.f.cas([{ key: "x", expect: null, value: "step", ttlMs: day }]);
      const snap = await snapshot();
      // b acknowledges; a's next step, decided on the old version, is refused.
      assert.ok(await b.f.cas([{ key: "x", expect: va, value: "acked", ttlMs: day }]));
      assert.equal(await a.f.cas([{ key: "x", expect: va, value: "next step", ttlMs: day }]), null);
      await loseSince(snap);
      a.move();
      await a.f.sync();
      b.move();
      await b.f.sync();
      assert.match((await get("x")) ?? "", /\|acked$/, "a refused write ran on the replay");
    });

    for (const first of ["a", "b"] as const)
      it(`two instances' lost writes to one record come back in their order (${first === "a" ? "the earlier one's instance" : "the later one's instance"} sends first)`, async () => {
        const clock = new FakeClock();
        const a = movable(clock);
        const b = movable(clock);
        await Promise.all([shared(a.f), shared(b.f)]);
        await Promise.all([a.f.sync(), b.f.sync()]);
        const v0 = await a.f.cas([{ key: "y", expect: null, value: "open", ttlMs: day }]);
        const snap = await snapshot();
        // Both lost: a's step, then b's acknowledgement of it.
        const va = await a.f.cas([{ key: "y", expect: v0, value: "step 2", ttlMs: day }]);
        assert.ok(await b.f.cas([{ key: "y", expect: va, value: "acked", ttlMs: day }]));
        await loseSince(snap);
        for (const x of first === "a" ? [a, b] : [b, a]) {
          x.move();
          await x.f.sync();
        }
        await waitFor(
          async () => /\|acked$/.test((await get("y")) ?? ""),
          15_000,
          "b's acknowledgement after a's step",
        );
        assert.deepEqual(await redis.keysWithoutTtl(prefix), []);
      });

    it("a lost create refused on its replay is not tried again: a record made and deleted again since stays deleted", async () => {
      const clock = new FakeClock();
      const a = movable(clock);
      const b = movable(clock);
      await Promise.all([shared(a.f), shared(b.f)]);
      await Promise.all([a.f.sync(), b.f.sync()]);
      const snap = await snapshot();
      assert.ok(await a.f.cas([{ key: "z", expect: null, value: "old open by a", ttlMs: day }])); // lost
      await loseSince(snap);
      b.move();
      await b.f.sync();
      // After the failover, b opens it anew; a's replay is refused (it exists); b resolves it.
      const vb = await b.f.cas([{ key: "z", expect: null, value: "open by b", ttlMs: day }]);
      a.move();
      await a.f.sync();
      assert.ok(await b.f.cas([{ key: "z", expect: vb, value: null, ttlMs: day }]));
      await sleep(4500); // two retry periods
      assert.equal(await get("z"), null, "the old create came back after the resolve");
    });

    it("a late part of a long SMS that went out incomplete, lost in a failover, is put back (the old message's mark does not refuse it)", async () => {
      const r = redisState(systemClock, redis.url);
      await shared(r);
      const limits = { ttlMs: 60_000, maxPending: 100, maxBytes: 1 << 20 };
      assert.equal((await r.addPart("g", "L", 1, 3, "a", limits)).result, "added");
      assert.ok(await r.takeParts("g", "L")); // out incomplete at its timeout: marked as taken
      const snap = await snapshot();
      assert.equal((await r.addPart("g", "L", 3, 3, "c", limits)).result, "added"); // a late part: a new message
      await loseSince(snap);
      // A copy of the part taken before stays refused; the late one comes back.
      assert.equal(await r.mergeParts("g", "L", new Map([[1, "a"]]), 60_000, true), -1);
      assert.equal(await r.mergeParts("g", "L", new Map([[3, "c"]]), 60_000, true), 1, "the late part refused");
      assert.equal(await r.mergeParts("g", "L", new Map([[1, "a"]]), 60_000, true), 1);
      assert.deepEqual(await redis.keysWithoutTtl(prefix), []);
    });
  });

  it("a take that fails while Redis restarts empty keeps the copy: the tally comes back when Redis does", async () => {
    const clock = new FakeClock();
    const a = failover(clock, redis.url);
    await shared(a);
    await a.sync();
    await a.tally("track:3", ["13800138000"], 3600_000);
    await redis.kill();
    await assert.rejects(a.takeTally("track:3"));
    await redis.restart({ keepData: false });
    await waitFor(() => a.mode === "shared" && !a.keptLocally, 30_000, "shared again");
    await a.sync();
    const t = await a.takeTally("track:3");
    assert.deepEqual(t?.pending, ["13800138000"]);
  });
});
