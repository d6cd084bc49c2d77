// The account state on Redis as production runs it (SPEC B6a, issue 25): the state contract on a
// 3-master Redis Cluster and on a master + replica + 3 sentinels, every script's keys in the
// account's one slot (CROSSSLOT never), and the account's slot moved while traffic flows.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { RedisLink } from "../../../src/lib/state/connect";
import { FailoverState } from "../../../src/lib/state/failover";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState, scopeTag } from "../../../src/lib/state/redis";
import { startRedisCluster, type RedisCluster } from "../../support/redis-cluster";
import { startRedisSentinel, type RedisSentinelSetup } from "../../support/redis-sentinel";
import { FakeClock, waitFor } from "../../support/stub";
import { stateContract } from "./contract";

const PASSWORD = "modes-data-pw";
const SENTINEL_PASSWORD = "modes-sentinel-pw";
const SCOPE = "http://p\nmodes";
const LIMITS = { ttlMs: 60_000, maxPending: 1000, maxBytes: 1 << 20 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Redis Cluster's slot of a key (CRC16/XMODEM of its hash tag, or of the whole key), mod 16384. */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

interface Seen {
  /** distinct scripts run (their SHA1), EVAL and EVALSHA alike */
  scripts: Set<string>;
  /** every command (or MULTI) whose keys are not all in the route's slot */
  strays: string[];
  commands: number;
}

/**
 * Watches what a RedisState sends over its link: every argument that names a key of the account
 * (it holds the account's hash tag), and every key a script declares, must hash to the slot the
 * command is routed by. Anything else would be CROSSSLOT on a cluster (or a script touching a
 * key of another node).
 */
function watchSlots(state: RedisState, prefix: string, seen: Seen): void {
  const link = (state as unknown as { link: RedisLink }).link;
  const send = link.send.bind(link);
  const exec = link.exec.bind(link);
  const check = (args: string[], route: string) => {
    seen.commands++;
    const slot = keySlot(route);
    const cmd = args[0].toUpperCase();
    let keys: string[];
    if (cmd === "EVAL" || cmd === "EVALSHA") {
      seen.scripts.add(cmd === "EVAL" ? createHash("sha1").update(args[1]).digest("hex") : args[1]);
      keys = args.slice(3, 3 + Number(args[2]));
      if (keys.some((k) => !k.startsWith(prefix + "{"))) seen.strays.push(`${cmd}: a key outside the account`);
    } else {
      keys = [];
    }
    // Keys a script builds from its arguments (a claim group's members) count too.
    for (const a of [...keys, ...args.slice(1).filter((x) => x.startsWith(prefix + "{"))]) {
      if (keySlot(a) !== slot) seen.strays.push(`${cmd} ${a} (slot ${keySlot(a)}, routed to ${slot})`);
    }
  };
  Object.assign(link, {
    send: (args: string[], key: string) => {
      check(args, key);
      return send(args, key);
    },
    exec: (commands: string[][], key: string) => {
      for (const c of commands) check(c, key);
      return exec(commands, key);
    },
  });
}

/** Every operation of the state, each script at least once (also the merges, a failing handler). */
async function everyOperation(s: RedisState, clock: FakeClock): Promise<void> {
  await s.claim("c", 1000);
  await s.claim("c1", 1000, { group: "seen", max: 1 });
  await s.claim("c2", 1000, { group: "seen", max: 1 });
  await s.claimIfAbsent("ci", clock.now() + 1000);
  const v = await s.cas([
    { key: "v:a", expect: null, value: "1", ttlMs: 1000 },
    { key: "v:b", expect: null, value: "2", ttlMs: 1000 },
  ]);
  await s.read("v:a");
  await s.readWithExpiry("v:b");
  await s.cas([{ key: "v:a", expect: v, value: null, ttlMs: 0 }]);
  await s.admit([
    { window: { key: "w", ttlMs: 1000 }, cap: { key: "cap", max: 3, ttlMs: 1000 } },
    { window: { key: "w2", ttlMs: 1000 } },
  ]);
  await s.pace("p", 100);
  await s.put("r", "v", 1000);
  await s.putIfAbsent("r2", "v", 1000);
  await s.get("r");
  await s.take("r");
  await s.append("l", ["a", "b"], 10, 1000);
  await s.takeList("l");
  await s.mergeList("l2", ["c"], 1000);
  await s.addPart("g", "m1", 1, 2, "x", LIMITS);
  await s.addPart("g", "m1", 2, 2, "y", LIMITS);
  await s.addPart("g", "m2", 1, 2, "z", LIMITS);
  await s.takeParts("g", "m2");
  await s.mergeParts("g", "m3", new Map([[1, "w"]]), 1000);
  await s.tally("t", ["a", "b"], 1000);
  await s.mark("t", "a", "DELIVRD");
  await s.takeTally("t");
  await s.mergeTally("t2", { pending: ["c"], marks: new Map([["d", "DELIVRD"]]) }, 1000);
  await s.schedule("k", "id", clock.now() + 1000);
  await s.scheduleEarliest("k", "id2", clock.now() + 1000);
  await s.cancel("k", "id2");
  await s.drain("k");
  // A deadline whose handler fails (its claim released), then succeeds (acknowledged).
  const calls: string[] = [];
  let fail = true;
  const off = s.onDue("d", (id) => {
    calls.push(id);
    return fail ? Promise.reject(new Error("not now")) : Promise.resolve();
  });
  try {
    await s.schedule("d", "x", clock.now());
    await waitFor(() => calls.length === 1, 10_000, "the deadline's first run");
    fail = false;
    clock.advance(5000);
    await waitFor(() => calls.length === 2, 10_000, "its run again after the failure");
  } finally {
    off();
  }
}

describe("state on Redis Cluster (3 masters, SPEC B6a)", function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let n = 0;
  const open: RedisState[] = [];
  const others: FailoverState[] = [];
  before(async () => {
    cluster = await startRedisCluster({ password: PASSWORD });
    for (const node of cluster.nodes) await node.call("CONFIG", "RESETSTAT");
  });
  after(() => cluster?.stop());
  afterEach(async () => {
    await Promise.all(others.splice(0).map((s) => s.close()));
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  // Seed nodes as a user writes them (two of three), the password as the credential.
  const seeds = () => `redis://127.0.0.1:${cluster.nodes[0].port},127.0.0.1:${cluster.nodes[2].port}`;
  const make = (clock: FakeClock | undefined, prefix: string, scope = SCOPE) => {
    const s = new RedisState({ mode: "cluster", url: seeds(), password: PASSWORD, prefix, scope, clock });
    open.push(s);
    return s;
  };
  const shared = (s: RedisState) => waitFor(() => s.mode === "shared", 10_000, "the cluster connected");

  stateContract("redis cluster", async (clock) => {
    const prefix = `c${++n}:`;
    const state = make(clock, prefix);
    const twin = make(clock, prefix);
    await Promise.all([shared(state), shared(twin)]);
    return { state, twin: () => twin, cleanup: async () => undefined };
  });

  describe("one slot per account", () => {
    it("every operation's keys (every script's, every MULTI's) hash to the account's slot; accounts spread over the nodes", async () => {
      const seen: Seen = { scripts: new Set(), strays: [], commands: 0 };
      const owners = new Set<number>();
      // Accounts whose tags land on each of the three masters.
      for (const scope of ["http://p\na1", "http://p\na2", "http://p\na3", "http://p\na4", "http://p\na5"]) {
        const clock = new FakeClock();
        const s = new RedisState({
          mode: "cluster",
          url: seeds(),
          password: PASSWORD,
          prefix: "slots:",
          scope,
          clock,
          leaseMs: 1000,
        });
        open.push(s);
        await shared(s);
        watchSlots(s, "slots:", seen);
        await everyOperation(s, clock);
        owners.add((await cluster.ownerOf(`slots:{${scopeTag(scope)}}:c`)).port);
      }
      assert.deepEqual(seen.strays, []);
      assert.ok(seen.commands > 100, `${seen.commands} commands`);
      // claim, cas, admit, pace, append, takeList, mergeList, addPart, takeParts, mergeParts, mark,
      // takeTally, mergeTally, schedule, claimDue, ack, release, drain: every script ran.
      assert.ok(seen.scripts.size >= 18, `${seen.scripts.size} scripts ran`);
      assert.ok(owners.size >= 2, "the accounts are on different masters");
      assert.deepEqual(await cluster.keysWithoutTtl("slots:"), []);
    });
  });

  describe("a reshard during traffic", () => {
    // While a slot migrates, Redis refuses (TRYAGAIN, before running anything) a script whose
    // keys are partly there: every script that writes a fresh key next to existing ones (the
    // memo of an admission, of a part) is refused until the last key has moved. The link retries
    // for ~0.8 s; past that the account runs on local state for the moment (nothing ran in Redis,
    // so nothing is doubled) and hands what it kept over once Redis answers again.
    it("moving the account's slot away and on (ASK, MOVED, TRYAGAIN) while claims, lists, caps, long SMS and tallies flow through two instances loses nothing and counts no mark twice", async () => {
      const clock = new FakeClock();
      const failover = () => {
        const f = new FailoverState(make(clock, "move:"), new MemoryState({ clock }));
        others.push(f);
        return f;
      };
      const a = failover();
      const b = failover();
      await waitFor(() => a.mode === "shared" && b.mode === "shared", 10_000, "both on the cluster");
      const failures: string[] = [];
      const claims: boolean[] = [];
      const appended: string[] = [];
      const completed: string[] = [];
      const started: string[] = [];
      const secondSent = new Set<string>();
      const local = { a: 0, b: 0 };
      a.onMode((m) => m === "local" && local.a++);
      b.onMode((m) => m === "local" && local.b++);
      let marked = 0;
      let stop = false;
      let moving = false;
      let duringMove = 0;
      await a.tally(
        "t",
        Array.from({ length: 2000 }, (_, i) => `m${i}`),
        600_000,
      );
      const worker = async (s: FailoverState, id: number) => {
        for (let i = 0; !stop; i++) {
          const tag = `${id}:${i}`;
          try {
            switch (i % 5) {
              case 0:
                claims.push(await s.claim(`c:${tag}`, 600_000));
                break;
              case 1:
                await s.append("list", [tag], 100_000, 600_000);
                appended.push(tag);
                break;
              case 2:
                await s.admit([{ cap: { key: "cap", max: 1e9, ttlMs: 600_000 } }]);
                break;
              case 3: {
                // Part 2 reaches the other instance.
                started.push(tag);
                await s.addPart("g", tag, 1, 2, "a", LIMITS);
                const r = await (s === a ? b : a).addPart("g", tag, 2, 2, "b", LIMITS);
                secondSent.add(tag);
                if (r.result === "complete") completed.push(tag);
                break;
              }
              default:
                if ((await s.mark("t", `m${(id * 997 + i) % 2000}`, "DELIVRD")).result === "marked") marked++;
            }
            if (moving) duringMove++;
          } catch (e) {
            failures.push(`${i % 5}: ${String((e as Error).message ?? e)}`);
          }
          await sleep(2);
        }
      };
      const workers = [a, b, a, b].map((s, i) => worker(s, i));
      await waitFor(() => claims.length > 20, 10_000, "traffic");
      const route = `move:{${scopeTag(SCOPE)}}:`;
      moving = true;
      const first = await cluster.moveSlot(route, { pauseMs: 1 });
      const second = await cluster.moveSlot(route, { pauseMs: 1 });
      moving = false;
      const after = claims.length;
      await waitFor(() => claims.length > after + 20, 10_000, "traffic after the moves");
      stop = true;
      await Promise.all(workers);
      await waitFor(
        () => a.mode === "shared" && b.mode === "shared" && !a.unsettled && !b.unsettled,
        15_000,
        "both shared again, everything handed over",
      );
      await a.sync();
      await b.sync();
      assert.notEqual(first.to.port, second.to.port, "moved twice");
      assert.ok(duringMove > 0, "operations ran while the slot moved");
      assert.deepEqual(failures, [], "no operation failed");
      assert.ok(
        claims.every((c) => c),
        "every new claim won",
      );
      const list = await a.takeList("list");
      assert.deepEqual([...list].sort(), [...appended].sort(), "every appended item is there, once");
      // Every long SMS is whole: completed by its second part, or both parts waiting in the state.
      assert.equal(completed.length, new Set(completed).size, "completed once");
      let kept = 0;
      for (const tag of started.filter((t) => !completed.includes(t))) {
        const parts = await b.takeParts("g", tag);
        assert.equal(parts?.get(1), "a", `${tag}: part 1 kept`);
        if (secondSent.has(tag)) assert.equal(parts?.get(2), "b", `${tag}: part 2 kept`);
        kept++;
      }
      const tally = await a.takeTally("t");
      assert.ok(tally);
      assert.equal(tally.marks.size, marked, "every mark counted once");
      assert.equal(tally.pending.length, 2000 - marked);
      assert.deepEqual(await cluster.keysWithoutTtl("move:"), []);
      console.log(
        `      (${duringMove} operations during the moves; local spells: a ${local.a}, b ${local.b}; long SMS kept whole for their wait: ${kept})`,
      );
    });
  });

  describe("afterwards", () => {
    it("no node ever answered CROSSSLOT, nor refused a script for a key of another node, during all of the above", async () => {
      for (const node of cluster.nodes) {
        const stats = String(await node.call("INFO", "errorstats"));
        console.log(`      node ${node.port}: ${stats.replace(/\r?\n/g, " ").replace(/# Errorstats/, "")}`);
        assert.doesNotMatch(stats, /errorstat_CROSSSLOT/, `node ${node.port}: ${stats}`);
        // A script touching an undeclared key of another slot is an ERR ("... non local key").
        assert.doesNotMatch(stats, /errorstat_ERR\b/, `node ${node.port}: ${stats}`);
      }
    });
  });
});

describe("state on Redis Sentinel (master, replica, 3 sentinels, SPEC B6a)", function () {
  this.timeout(60_000);
  let setup: RedisSentinelSetup;
  let n = 0;
  const open: RedisState[] = [];
  before(async () => {
    setup = await startRedisSentinel({ name: "alerts", password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
  });
  after(() => setup?.stop());
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  const make = (clock: FakeClock, prefix: string) => {
    const s = new RedisState({
      mode: "sentinel",
      url: setup.url,
      master: "alerts",
      password: PASSWORD,
      sentinelPassword: SENTINEL_PASSWORD,
      prefix,
      scope: SCOPE,
      clock,
    });
    open.push(s);
    return s;
  };
  const shared = (s: RedisState) => waitFor(() => s.mode === "shared", 10_000, "the master found");

  stateContract("redis sentinel", async (clock) => {
    const prefix = `s${++n}:`;
    const state = make(clock, prefix);
    const twin = make(clock, prefix);
    await Promise.all([shared(state), shared(twin)]);
    return { state, twin: () => twin, cleanup: async () => undefined };
  });
});
