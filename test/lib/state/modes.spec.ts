// The account state on Redis as production runs it (SPEC B6a, issue 25): the state contract on a
// 3-master Redis Cluster and on a master + replica + 3 sentinels, every script's keys in the
// account's one slot (CROSSSLOT never), and the account's slot moved while traffic flows.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { RedisLink } from "../../../src/lib/state/connect";
import { Guard } from "../../../src/lib/alerts/guard";
import { Tracker, type SummaryMsg } from "../../../src/lib/alerts/tracking";
import { Reassembly, type Assembled } from "../../../src/lib/push/reassembly";
import { FailoverState } from "../../../src/lib/state/failover";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState, scopeTag } from "../../../src/lib/state/redis";
import { startRedisCluster, type RedisCluster } from "../../support/redis-cluster";
import { startRedisSentinel, type RedisSentinelSetup, type SentinelDataNode } from "../../support/redis-sentinel";
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
    // while the state waits (1 s); past that the account runs on local state for the moment
    // (nothing ran in Redis, so nothing is doubled) and hands what it kept over once Redis answers.
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

  it("after a failover an instance puts back what it wrote, but not a record another instance deleted, a tally it summed up or a long SMS it emitted", async () => {
    const clock = new FakeClock();
    const failover = () => {
      const f = new FailoverState(make(clock, "moved:"), new MemoryState({ clock }));
      others.push(f);
      return f;
    };
    const others: FailoverState[] = [];
    try {
      const a = failover();
      const b = failover();
      await waitFor(() => a.mode === "shared" && b.mode === "shared", 10_000, "both on the master");
      // Written by a a minute before the failover; then deleted, summed up, completed by b.
      assert.ok(await a.cas([{ key: "oc:x", expect: null, value: "open", ttlMs: 3600_000 }]));
      await a.tally("t1", ["13800000001"], 3600_000);
      await a.schedule("track:s", "t1", clock.now() + 600_000);
      assert.equal((await a.addPart("g", "L1", 1, 2, "a", LIMITS)).result, "added");
      const x = await b.read("oc:x");
      assert.ok(await b.cas([{ key: "oc:x", expect: x!.version, value: null, ttlMs: 3600_000 }]));
      assert.ok(await b.takeTally("t1"));
      assert.equal((await b.addPart("g", "L1", 2, 2, "b", LIMITS)).result, "complete");
      clock.advance(60_000);
      // Written by a just before: on the new master already (replicated), or put back.
      assert.ok(await a.cas([{ key: "oc:y", expect: null, value: "open", ttlMs: 3600_000 }]));
      await a.tally("t2", ["13800000002"], 3600_000);
      let wentLocal = false;
      a.onMode((m) => void (m === "local" && (wentLocal = true)));
      const old = await setup.master();
      // The replica has every write so far (a replica still in its first sync would be promoted
      // without any data: that is a Redis restarted empty, another test).
      const replica = setup.nodes.find((n) => n !== old)!;
      const offset = async (n: SentinelDataNode, field: string) =>
        Number(new RegExp(`${field}:(\\d+)`).exec(String(await n.call("INFO", "replication")))?.[1] ?? -1);
      await setup.ready(30_000);
      const written = await offset(old, "master_repl_offset");
      await waitFor(async () => (await offset(replica, "slave_repl_offset")) >= written, 15_000, "the replica in sync");
      await setup.failover();
      const master = await setup.waitNewMaster(old, 30_000);
      const k = (key: string) => `moved:{${scopeTag(SCOPE)}}:${key}`;
      // The link leaves the old master when the sentinels announce the new one: local a moment.
      await waitFor(() => wentLocal && a.mode === "shared", 30_000, "a shared again on the new master");
      await waitFor(() => !a.unsettled && !a.keptLocally, 15_000, "a's sync done");
      await a.sync();
      assert.equal(await master.call("EXISTS", k("oc:x")), 0, "the record b deleted came back");
      assert.equal(await master.call("EXISTS", k("t1:t")), 0, "the tally b summed up came back");
      assert.equal(await master.call("EXISTS", k("g:m:L1")), 0, "the long SMS b emitted came back");
      assert.equal(await master.call("EXISTS", k("oc:y")), 1, "a's last record");
      assert.equal(await master.call("EXISTS", k("t2:t")), 1, "a's last tally");
    } finally {
      for (const f of others) await f.close();
    }
  });
});

describe("failover during traffic (Sentinel, SPEC B6a): two instances, reports, long SMS, tracked sends and guard decisions", function () {
  this.timeout(120_000);
  // One setup per way of failing over, started together (a failover needs a replica the
  // sentinels know: ~5-10 s).
  let killed: RedisSentinelSetup;
  let asked: RedisSentinelSetup;
  const open: Array<{ close(): Promise<void> }> = [];
  before(async () => {
    [killed, asked] = await Promise.all([
      startRedisSentinel({ password: PASSWORD }),
      startRedisSentinel({ name: "alerts", password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD }),
    ]);
    await Promise.all([killed.ready(60_000), asked.ready(60_000)]);
  });
  after(() => Promise.all([killed?.stop(), asked?.stop()]));
  afterEach(async () => {
    for (const s of open.splice(0).reverse()) await s.close();
  });

  type Phase = "before" | "during" | "after";

  async function traffic(
    setup: RedisSentinelSetup,
    fail: () => Promise<SentinelDataNode>,
    expectLocal: boolean,
  ): Promise<void> {
    const prefix = "fo:";
    const instance = (name: string) => {
      const r = new RedisState({
        mode: "sentinel",
        url: setup.url,
        master: setup.name,
        password: PASSWORD,
        sentinelPassword: setup === asked ? SENTINEL_PASSWORD : undefined,
        prefix,
        scope: SCOPE,
      });
      const f = new FailoverState(r, new MemoryState({}));
      open.push(r, f);
      const modes: Array<{ mode: string; at: number }> = [];
      f.onMode((mode) => modes.push({ mode, at: Date.now() }));
      const messages: Array<Assembled<null>> = [];
      const errors: unknown[] = [];
      const rx = new Reassembly<null>({
        state: f,
        scope: "rx",
        timeoutMs: 3000,
        maxPending: 1000,
        maxBytes: 1 << 20,
        dedupeMs: 600_000,
        onMessage: (m) => messages.push(m),
        onError: (e) => errors.push(e),
      });
      const offRx = rx.listen();
      open.push({ close: async () => offRx() });
      const guard = new Guard({ state: f, scope: "guard", window: 10, hours: "" });
      // The same flows on both instances: one sms-send node id, listening on each.
      const tracker = new Tracker(f);
      const summaries: SummaryMsg[] = [];
      const summedAt = new Map<string, number>();
      const stopSummaries = tracker.listen("send1", {
        summary: (m) => {
          summaries.push(m);
          if (!summedAt.has(m.msgid!)) summedAt.set(m.msgid!, Date.now());
        },
        error: (e) => errors.push(e),
      });
      open.push({ close: () => stopSummaries() });
      return { name, r, f, modes, messages, errors, rx, guard, tracker, summaries, summedAt };
    };
    const a = instance("a");
    const b = instance("b");
    await waitFor(() => a.f.mode === "shared" && b.f.mode === "shared", 15_000, "both on the master");

    let phase: Phase = "before";
    const reports = new Map<number, { phase: Phase; emitted: number }>();
    const longs = new Map<number, Phase>();
    const alerts = new Map<number, { phase: Phase; sent: number }>();
    const sends = new Map<number, { phase: Phase; reported: string[] }>();
    const failures: string[] = [];
    const inflight = new Set<Promise<unknown>>();
    const track = (p: Promise<unknown>) => {
      const t = p
        .catch((e: unknown) => failures.push(String((e as Error)?.message ?? e)))
        .finally(() => inflight.delete(t));
      inflight.add(t);
    };
    let stop = false;
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        // A delivery report pushed to both instances (the platform retried on the other one):
        // emitted by whichever claims it first.
        const rep = { phase, emitted: 0 };
        reports.set(i, rep);
        for (const x of [a, b])
          track(x.f.claim(`rx:seen:report-${i}`, 600_000).then((first) => first && rep.emitted++));
        if (i % 3 === 0) {
          // A long SMS in two parts, one to each instance.
          longs.set(i, phase);
          const part = { mobile: "13800138000", destcode: "1069", id: `L${i}`, total: 2, meta: null };
          track(a.rx.add({ ...part, number: 1, text: `<${i}:1>` }));
          track(b.rx.add({ ...part, number: 2, text: `<${i}:2>` }));
        }
        if (i % 2 === 0) {
          // An alert, then its repeat on the other instance: the window holds the repeat back.
          const al = { phase, sent: 0 };
          alerts.set(i, al);
          const alert = { msg: { topic: `alert-${i}` }, mobiles: ["13800138000"] };
          const [first, second] = i % 4 === 0 ? [a, b] : [b, a];
          track(
            first.guard.decide(alert).then(async (d) => {
              if (d.send) al.sent++;
              if ((await second.guard.decide(alert)).send) al.sent++;
            }),
          );
        }
        if (i % 5 === 0) {
          // A tracked send of two numbers, opened on one instance; its reports arrive through the
          // other one (both numbers: summed up at once; one of them for every other send: at the
          // 4 s timeout, the other number pending).
          const [opener, receiver] = i % 10 === 0 ? [a, b] : [b, a];
          const reported = i % 10 === 0 ? ["13800000001", "13800000002"] : ["13800000001"];
          sends.set(i, { phase, reported });
          track(
            (async () => {
              await opener.tracker.expect();
              await opener.tracker.open({
                msgid: `T${i}`,
                mobiles: ["13800000001", "13800000002"],
                owner: "send1",
                sentAt: Date.now(),
                timeoutMs: 4000,
                batch: { index: 1, count: 1 },
                msg: { topic: `send-${i}` },
              });
              for (const m of reported) await receiver.tracker.report(`T${i}`, m, "DELIVRD");
            })(),
          );
        }
        await sleep(25);
      }
    })();
    await waitFor(() => reports.size > 40, 10_000, "traffic before the failover");
    const t0 = Date.now();
    phase = "during";
    const old = await fail();
    const master = await setup.waitNewMaster(old, 30_000);
    // Shared again: both instances on the new master (a write through each lands there).
    const probeKey = (k: string) => `${prefix}{${scopeTag(SCOPE)}}:${k}`;
    let seen = "";
    try {
      await waitFor(
        async () => {
          seen = `a ${a.f.mode}/${a.r.mode} ${a.f.problem?.message ?? ""}; b ${b.f.mode}/${b.r.mode} ${b.f.problem?.message ?? ""}`;
          if (a.f.mode !== "shared" || b.f.mode !== "shared") return false;
          const v = String(Math.random());
          await a.f.put("probe-a", v, 60_000);
          await b.f.put("probe-b", v, 60_000);
          const [pa, pb] = [
            await master.call("GET", probeKey("probe-a")),
            await master.call("GET", probeKey("probe-b")),
          ];
          seen += ` probes on ${master.port}: ${pa} ${pb}`;
          // A record is kept as "<expiry>|<value>".
          return String(pa).endsWith(`|${v}`) && String(pb).endsWith(`|${v}`);
        },
        30_000,
        "both instances shared again on the new master",
        100,
      );
    } catch (e) {
      stop = true;
      await loop;
      throw new Error(`${(e as Error).message}: ${seen}`);
    }
    const back = Date.now() - t0;
    await waitFor(() => !a.f.unsettled && !b.f.unsettled, 15_000, "what was kept locally handed over");
    phase = "after";
    const mark = reports.size;
    await waitFor(() => reports.size > mark + 40, 15_000, "traffic after the failover");
    stop = true;
    await loop;
    await waitFor(() => inflight.size === 0, 15_000, "every operation answered");
    await a.f.sync();
    await b.f.sync();
    // Incomplete long SMS come out after their wait (3 s since their last part).
    const emittedLongs = () => new Set([...a.messages, ...b.messages].map((m) => m.id));
    await waitFor(() => [...longs.keys()].every((i) => emittedLongs().has(`L${i}`)), 20_000, "every long SMS emitted");
    // Every tracked send summed up (at its 4 s timeout at the latest; a deadline lost with the old
    // master's writes is back from what its instance kept).
    const summed = () => new Set([...a.summaries, ...b.summaries].map((m) => m.msgid));
    const unsummed = () =>
      [...sends.keys()].filter((i) => !summed().has(`T${i}`)).map((i) => `T${i} (${sends.get(i)!.phase})`);
    try {
      await waitFor(() => unsummed().length === 0, 45_000, "every tracked send summed up");
    } catch (e) {
      throw new Error(`${(e as Error).message}: missing ${unsummed().join(", ")}`);
    }
    await sleep(1000);

    assert.ok(back < 30_000, `shared again after ${back} ms`);
    assert.deepEqual(failures, [], "no operation failed");
    assert.deepEqual([...a.errors, ...b.errors], []);
    const dups: string[] = [];
    for (const [i, r] of reports) {
      assert.ok(r.emitted >= 1, `report ${i} (${r.phase}) dropped`);
      if (r.emitted > 1) {
        assert.equal(r.phase, "during", `report ${i} emitted ${r.emitted} times ${r.phase} the failover`);
        dups.push(`report ${i}`);
      }
    }
    const all = [...a.messages, ...b.messages];
    for (const [i, p] of longs) {
      const got = all.filter((m) => m.id === `L${i}`);
      const text = got.map((m) => m.text).join("");
      assert.ok(text.includes(`<${i}:1>`) && text.includes(`<${i}:2>`), `long SMS ${i} (${p}): ${text}`);
      if (p !== "during") {
        assert.equal(got.length, 1, `long SMS ${i} emitted ${got.length} times ${p} the failover`);
        assert.equal(got[0].complete, true);
      } else if (got.length > 1) dups.push(`long ${i}`);
    }
    for (const [i, al] of alerts) {
      assert.ok(al.sent >= 1, `alert ${i} (${al.phase}) never sent`);
      if (al.phase !== "during") assert.equal(al.sent, 1, `alert ${i}'s repeat let through ${al.phase} the failover`);
      else if (al.sent > 1) dups.push(`alert ${i}`);
    }
    const summaries = [...a.summaries, ...b.summaries];
    for (const [i, t] of sends) {
      const got = summaries.filter((m) => m.msgid === `T${i}`);
      assert.ok(got.length >= 1, `send T${i} (${t.phase}) never summed up`);
      // Summed up before the failover began, or opened after it: once. A summary taken from the
      // old master while the new one was already promoted is lost with it and may come again.
      const first = Math.min(a.summedAt.get(`T${i}`) ?? Infinity, b.summedAt.get(`T${i}`) ?? Infinity);
      if (t.phase === "after" || first < t0) {
        assert.equal(got.length, 1, `send T${i} (opened ${t.phase}) summed up ${got.length} times`);
        const p = got[0].payload;
        assert.deepEqual(p.delivered, t.reported, `send T${i}'s delivered`);
        assert.equal(p.total, 2);
        assert.equal(got[0].topic, `send-${i}`, "the summary carries its send's msg");
      } else {
        // A mark written to the old master may be lost with it: still pending then, never wrong.
        for (const m of got) for (const d of m.payload.delivered) assert.ok(t.reported.includes(d));
        if (got.length > 1) dups.push(`send T${i}`);
      }
    }
    const local = (x: typeof a) => x.modes.filter((m) => m.mode === "local" && m.at >= t0).length;
    if (expectLocal) assert.ok(local(a) >= 1 && local(b) >= 1, "both instances went local meanwhile");
    const count = (what: string) => dups.filter((d) => d.startsWith(what)).length;
    console.log(
      `      (shared again after ${back} ms; ${reports.size} reports, ${longs.size} long SMS, ${alerts.size} alerts; ` +
        `local spells a ${local(a)}, b ${local(b)}; emitted twice during the failover: ${count("report")} reports, ` +
        `${count("long")} long SMS, ${count("alert")} alert repeats, ${count("send")} summaries; ${sends.size} tracked sends)`,
    );
  }

  it("the master SIGKILLed: local state, then shared again on the new master within 30 s; nothing dropped, duplicates only during the failover", async () => {
    await traffic(killed, () => killed.killMaster(), true);
  });

  it("SENTINEL FAILOVER: shared again on the new master within 30 s; nothing dropped, duplicates only during the failover", async () => {
    const old = await asked.master();
    await traffic(
      asked,
      async () => {
        await asked.failover();
        return old;
      },
      false,
    );
  });
});
