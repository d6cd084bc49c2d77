import assert from "node:assert/strict";
import path from "node:path";
import { inspect } from "node:util";
import {
  connect,
  maybeRan,
  parseRedisUrl,
  type LinkOptions,
  type RedisLink,
  type Reply,
} from "../../../src/lib/state/connect";
import { RedisStateError } from "../../../src/lib/state/problem";
import { FaultProxy } from "../../support/fault-proxy";
import { freePort, startRedis, type RedisServer } from "../../support/redis";
import { startRedisCluster, type RedisCluster } from "../../support/redis-cluster";
import { startRedisSentinel, type RedisSentinelSetup } from "../../support/redis-sentinel";
import { waitFor } from "../../support/stub";
import { testCa } from "../../support/tls-servers";

// Distinctive secrets: none may appear in an error, an event or anything inspected from them.
const REQUIREPASS = "Rq-Secret-5521";
const NR_PASSWORD = "Nr-Secret-8830";
const WRONG = "Wrong-Secret-1177";
const SENTINEL_PASSWORD = "Sn-Secret-2290";
const SECRETS = [REQUIREPASS, NR_PASSWORD, WRONG, SENTINEL_PASSWORD];
const NR_USER = ["nr", "on", `>${NR_PASSWORD}`, "~nr:*", "&nr:*", "+@all", "-@dangerous"];

interface Watched {
  link: RedisLink;
  events: string[];
  errors: unknown[];
}

/** Everything a link told or threw: none of it may hold a secret. */
const seen: unknown[] = [];
function noSecrets(): void {
  const text = seen.map((e) => `${String((e as Error)?.message ?? e)} ${inspect(e, { depth: 6 })}`).join("\n");
  for (const s of SECRETS) assert.ok(!text.includes(s), `a secret (${s.slice(0, 3)}…) in an error or event`);
}

const open: RedisLink[] = [];
function link(opts: LinkOptions): Watched {
  const l = connect(opts);
  open.push(l);
  const w: Watched = { link: l, events: [], errors: [] };
  l.on("ready", () => w.events.push("ready"));
  l.on("end", () => w.events.push("end"));
  l.on("error", (e) => {
    w.errors.push(e);
    seen.push(e);
    w.events.push(`error:${(e as RedisStateError).kind}`);
  });
  return w;
}
const ready = (w: Watched, ms = 5000) => waitFor(() => w.link.isReady, ms, "the link ready");
/** The rejection of `p` (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    seen.push(e);
    return e;
  }
  assert.fail("expected a failure");
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The caller's own bound on a command (what redis.ts does): the command may still run later. */
function callerTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  p.catch(() => undefined);
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new RedisStateError("command", "timeout")))]);
}

const closeAll = () => Promise.all(open.splice(0).map((l) => l.close()));

describe("state/connect: URLs", () => {
  it("parses the three modes' URLs; an unusable one is a url problem that does not repeat the URL", () => {
    const single = parseRedisUrl("rediss://nr:p%40ss@redis.example:6380/2", "single");
    assert.deepEqual(single, {
      tls: true,
      nodes: [{ host: "redis.example", port: 6380 }],
      username: "nr",
      password: "p@ss",
      database: 2,
    });
    assert.deepEqual(parseRedisUrl("redis://h1:26379,h2,[::1]:26380/0", "sentinel").nodes, [
      { host: "h1", port: 26379 },
      { host: "h2", port: 26379 },
      { host: "::1", port: 26380 },
    ]);
    assert.deepEqual(parseRedisUrl("redis://:pw@h1:7000,h2:7001", "cluster").nodes.length, 2);
    for (const [url, mode] of [
      [`http://127.0.0.1:1`, "single"],
      [`redis://a:1,b:2`, "single"],
      [`redis://h:99999`, "single"],
      [`redis://h:7000/3`, "cluster"],
      [`redis://${WRONG}@h x:1`, "single"],
      [`redis://u:%E0%A4%A@h`, "single"],
    ] as const) {
      assert.throws(
        () => connect({ mode, url }),
        (e: unknown) => e instanceof RedisStateError && e.kind === "url" && !String(e.message).includes(WRONG),
        url,
      );
    }
  });
});

describe("state/connect: single (a real redis-server)", function () {
  this.timeout(20_000);
  let redis: RedisServer; // default without a password, and the ACL user nr
  let secured: RedisServer; // requirepass, and nr
  before(async () => {
    [redis, secured] = await Promise.all([
      startRedis({ users: [NR_USER], debug: true }),
      startRedis({ users: [NR_USER], password: REQUIREPASS }),
    ]);
  });
  afterEach(closeAll);
  after(async () => {
    await Promise.all([redis?.stop(), secured?.stop()]);
    noSecrets();
  });

  it("runs commands, a script and a MULTI/EXEC", async () => {
    const w = link({ mode: "single", url: `redis://127.0.0.1:${redis.port}` });
    await ready(w);
    assert.equal(await w.link.send(["SET", "plain:a", "1", "PX", "60000"], "plain:a"), "OK");
    const script =
      "redis.call('INCR', KEYS[1]) redis.call('PEXPIRE', KEYS[1], 60000) return redis.call('GET', KEYS[1])";
    assert.equal(await w.link.send(["EVAL", script, "1", "plain:a"], "plain:a"), "2");
    assert.deepEqual(
      await w.link.exec(
        [
          ["INCR", "plain:a"],
          ["HSET", "plain:h", "f", "v"],
          ["HGETALL", "plain:h"],
          ["PEXPIRE", "plain:h", "60000"],
        ],
        "plain:a",
      ),
      [3, 1, ["f", "v"], 1],
    );
    assert.deepEqual(w.events, ["ready"]);
  });

  it("with requirepass: the password in the URL, or the credential (which wins over the URL's)", async () => {
    const inUrl = link({ mode: "single", url: secured.url });
    const credential = link({
      mode: "single",
      url: `redis://:${WRONG}@127.0.0.1:${secured.port}`,
      password: REQUIREPASS,
    });
    await Promise.all([ready(inUrl), ready(credential)]);
    assert.equal(await inUrl.link.send(["ACL", "WHOAMI"], "x"), "default");
    assert.equal(await credential.link.send(["ACL", "WHOAMI"], "x"), "default");
  });

  it("a user name in the URL with the password credential runs as that ACL user, within its key pattern", async () => {
    for (const server of [redis, secured]) {
      const w = link({ mode: "single", url: `redis://nr@127.0.0.1:${server.port}/0`, password: NR_PASSWORD });
      await ready(w);
      assert.equal(await w.link.send(["ACL", "WHOAMI"], "nr:x"), "nr");
      assert.equal(await w.link.send(["SET", "nr:x", "1", "PX", "60000"], "nr:x"), "OK");
      const e = await failure(w.link.send(["SET", "other:x", "1"], "other:x"));
      assert.match(String((e as Error).message), /^NOPERM/);
      assert.equal(maybeRan(e), false, "refused by the ACL: never ran");
    }
    // The user's own password in the URL works too.
    const inUrl = link({ mode: "single", url: `redis://nr:${NR_PASSWORD}@127.0.0.1:${redis.port}` });
    await ready(inUrl);
    assert.equal(await inUrl.link.send(["ACL", "WHOAMI"], "nr:x"), "nr");
  });

  it("a wrong user or password: one auth error, then end, and no reconnect loop (also where default has no password)", async () => {
    const cases: Array<[RedisServer, string, string | undefined]> = [
      [secured, `redis://nr@127.0.0.1:${secured.port}`, WRONG],
      [redis, `redis://nr@127.0.0.1:${redis.port}`, WRONG], // `default` has no password here
      [redis, `redis://nr@127.0.0.1:${redis.port}`, undefined], // a user and no password at all
      [redis, `redis://nobody@127.0.0.1:${redis.port}`, NR_PASSWORD],
      [secured, `redis://127.0.0.1:${secured.port}`, WRONG],
      [secured, `redis://127.0.0.1:${secured.port}`, undefined], // NOAUTH
    ];
    for (const [server, url, password] of cases) {
      const before = Number((await server.info("stats")).get("total_connections_received"));
      const w = link({ mode: "single", url, password });
      await waitFor(() => w.events.includes("end"), 5000, `the link to give up (${url})`);
      // Long enough for reconnects at the backoff's start (100, then 200 ms): none come.
      await sleep(500);
      assert.deepEqual(w.events, ["error:auth", "end"], url);
      assert.equal(w.link.isReady, false);
      const after = Number((await server.info("stats")).get("total_connections_received"));
      assert.equal(after - before - 1, 1, `one connection (the second INFO is the other): ${url}`);
      const e = await failure(w.link.send(["PING"], "x"));
      assert.equal(maybeRan(e), false);
    }
  });

  it("rediss:// with the server's CA connects; without it the certificate is refused (a connect problem)", async () => {
    const tlsPort = await freePort();
    const fixtures = path.resolve(__dirname, "../../../../test/fixtures/tls");
    const server = await startRedis({
      args: ["--tls-port", String(tlsPort), "--tls-auth-clients", "no"].concat(
        ["--tls-cert-file", path.join(fixtures, "good.pem"), "--tls-key-file", path.join(fixtures, "leaf.key")],
        ["--tls-ca-cert-file", path.join(fixtures, "ca.pem")],
      ),
    });
    try {
      const w = link({ mode: "single", url: `rediss://127.0.0.1:${tlsPort}`, tls: { ca: testCa() } });
      await ready(w);
      assert.equal(await w.link.send(["PING"], "x"), "PONG");
      const untrusted = link({ mode: "single", url: `rediss://127.0.0.1:${tlsPort}` });
      await waitFor(() => untrusted.errors.length > 0, 5000, "a TLS error");
      assert.equal((untrusted.errors[0] as RedisStateError).kind, "connect");
      assert.equal(untrusted.link.isReady, false);
    } finally {
      await closeAll();
      await server.stop();
    }
  });

  describe("faults through the proxy and Redis's own", () => {
    let proxy: FaultProxy;
    beforeEach(async () => {
      proxy = await FaultProxy.start(redis.port);
    });
    afterEach(async () => {
      await closeAll();
      await proxy.close();
    });
    const viaProxy = (extra: Partial<LinkOptions> = {}) => link({ mode: "single", url: proxy.url(), ...extra });

    it("offline: a command fails at once and never ran; the link comes back by itself", async () => {
      const w = viaProxy();
      await ready(w);
      proxy.drop(); // every connection closed, new ones too
      await waitFor(() => !w.link.isReady, 2000, "the link to notice");
      const e = await failure(w.link.send(["INCR", "off:n"], "off:n"));
      assert.equal(e?.constructor?.name, "ClientOfflineError", "refused before it was queued");
      assert.equal(maybeRan(e), false);
      assert.equal(await redis.call("GET", "off:n"), null);
      proxy.pass();
      await ready(w, 5000);
      assert.equal(await w.link.send(["INCR", "off:n"], "off:n"), 1);
      await redis.call("DEL", "off:n");
      assert.deepEqual(w.events.slice(0, 2), ["ready", "error:connect"]);
      assert.equal(w.events.at(-1), "ready");
    });

    it("a connection reset while the command is in flight: maybe ran (here it did), and it is not sent again", async () => {
      const w = viaProxy();
      await ready(w);
      await w.link.send(["SET", "rst:n", "0", "PX", "60000"], "rst:n");
      proxy.stall("down"); // the command reaches Redis, its answer is held
      const p = w.link.send(["INCR", "rst:n"], "rst:n");
      await waitFor(async () => (await redis.call("GET", "rst:n")) === "1", 2000, "the INCR to run");
      proxy.reset();
      const e = await failure(p);
      assert.equal(maybeRan(e), true, String(e));
      proxy.pass();
      await ready(w);
      await sleep(200);
      assert.equal(await redis.call("GET", "rst:n"), "1", "ran once");
    });

    it("a stall: the caller's timeout, which may have run; the command runs when the stall ends", async () => {
      const w = viaProxy();
      await ready(w);
      await w.link.send(["SET", "stall:n", "0", "PX", "60000"], "stall:n");
      proxy.stall();
      const p = w.link.send(["INCR", "stall:n"], "stall:n");
      const e = await failure(callerTimeout(p, 300));
      assert.equal(maybeRan(e), true);
      assert.equal(await redis.call("GET", "stall:n"), "0", "held in the stall");
      proxy.pass();
      assert.equal(await p, 1, "the link itself still gets the answer");
      assert.equal(await redis.call("GET", "stall:n"), "1");
      assert.deepEqual(w.events, ["ready"], "a stall shorter than deadAfterMs is not an outage");
    });

    it("CLIENT PAUSE and DEBUG SLEEP hold answers (the caller's timeout), then the same connection answers", async () => {
      const w = viaProxy();
      await ready(w);
      await redis.pauseClients(800);
      const e = await failure(callerTimeout(w.link.send(["PING"], "x"), 200));
      assert.equal(maybeRan(e), true);
      const sleeping = await redis.debugSleep(600);
      const p = w.link.send(["INCR", "sleep:n"], "sleep:n");
      assert.equal(maybeRan(await failure(callerTimeout(p, 200))), true);
      await sleeping.done;
      assert.equal(await p, 1);
      await redis.call("DEL", "sleep:n");
      assert.deepEqual(w.events, ["ready"]);
    });

    it("a black hole: given up after deadAfterMs (the command may have run), then a new connection", async () => {
      const w = viaProxy({ deadAfterMs: 600, connectTimeoutMs: 1000 });
      await ready(w);
      const before = proxy.accepted;
      proxy.blackhole();
      const t0 = Date.now();
      const e = await failure(w.link.send(["INCR", "bh:n"], "bh:n"));
      assert.ok(Date.now() - t0 >= 550, `given up after ${Date.now() - t0} ms`);
      assert.equal(maybeRan(e), true);
      assert.equal(e?.constructor?.name, "DisconnectsClientError");
      proxy.pass();
      await ready(w, 5000);
      assert.ok(proxy.accepted > before, "a new connection");
      assert.equal(await w.link.send(["INCR", "bh:n"], "bh:n"), 1, "the swallowed INCR never reached Redis");
      await redis.call("DEL", "bh:n");
      assert.deepEqual(w.events.slice(0, 2), ["ready", "error:connect"]);
    });

    it("READONLY and OOM answers never ran: a command, a MULTI and a script", async () => {
      const w = viaProxy();
      await ready(w);
      const master = await startRedis();
      try {
        await redis.replicaOf(master);
        const script = "return redis.call('SET', KEYS[1], '1')";
        for (const p of [
          w.link.send(["SET", "ro:a", "1"], "ro:a"),
          w.link.exec(
            [
              ["SET", "ro:a", "1"],
              ["INCR", "ro:b"],
            ],
            "ro:a",
          ),
          w.link.send(["EVAL", script, "1", "ro:a"], "ro:a"),
        ]) {
          const e = await failure(p);
          assert.match(String((e as Error).message), /^READONLY/);
          assert.equal(maybeRan(e), false, String(e));
        }
      } finally {
        await redis.replicaOf(null);
        await master.stop();
      }
      await redis.outOfMemory(true);
      try {
        for (const p of [
          w.link.send(["SET", "oom:a", "1"], "oom:a"),
          w.link.exec([["SET", "oom:a", "1"]], "oom:a"),
          w.link.send(["EVAL", "return redis.call('SET', KEYS[1], '1')", "1", "oom:a"], "oom:a"),
        ]) {
          const e = await failure(p);
          assert.match(String((e as Error).message), /^OOM/);
          assert.equal(maybeRan(e), false, String(e));
        }
      } finally {
        await redis.outOfMemory(false);
      }
      assert.equal(await redis.call("EXISTS", "ro:a", "ro:b", "oom:a"), 0);
    });

    it("a script that fails after a write, and an EXEC with a failing command, may have run", async () => {
      const w = viaProxy();
      await ready(w);
      await redis.call("SET", "part:s", "x", "PX", "60000");
      const script = "redis.call('SET', KEYS[1], 'written', 'PX', 60000) return redis.call('HGET', KEYS[1], 'f')";
      const e1 = await failure(w.link.send(["EVAL", script, "1", "part:s"], "part:s"));
      assert.equal(maybeRan(e1), true, String(e1));
      assert.equal(await redis.call("GET", "part:s"), "written");
      const e2 = await failure(
        w.link.exec(
          [
            ["SET", "part:t", "1", "PX", "60000"],
            ["HGET", "part:t", "f"],
          ],
          "part:t",
        ),
      );
      assert.equal(maybeRan(e2), true, String(e2));
      assert.equal(await redis.call("GET", "part:t"), "1");
      // A plain command's error reply had no effect.
      assert.equal(maybeRan(await failure(w.link.send(["HGET", "part:t", "f"], "part:t"))), false);
    });

    it("close waits for a pending command; destroy rejects it (maybe ran); both end the link", async () => {
      const w = viaProxy();
      await ready(w);
      proxy.delay(150);
      const p = w.link.send(["INCR", "close:n"], "close:n");
      await sleep(20);
      await w.link.close();
      assert.equal(await p, 1);
      assert.deepEqual(w.events, ["ready", "end"]);
      assert.equal(maybeRan(await failure(w.link.send(["PING"], "x"))), false);
      const d = viaProxy();
      await ready(d);
      const q = d.link.send(["INCR", "close:n"], "close:n");
      d.link.destroy();
      assert.equal(maybeRan(await failure(q)), true);
      assert.equal(d.events.at(-1), "end");
      await redis.call("DEL", "close:n");
    });
  });
});

describe("state/connect: cluster (3 masters)", function () {
  this.timeout(30_000);
  let cluster: RedisCluster;
  before(async () => {
    cluster = await startRedisCluster({ password: REQUIREPASS });
  });
  afterEach(closeAll);
  after(async () => {
    await cluster?.stop();
    noSecrets();
  });
  // The seeds as a user writes them: two of the three nodes, the password as the credential.
  const clusterLink = () =>
    link({
      mode: "cluster",
      url: `redis://127.0.0.1:${cluster.nodes[0].port},127.0.0.1:${cluster.nodes[1].port}`,
      password: REQUIREPASS,
    });

  it("a script with its keys in one hash tag, a MULTI, and keys in other slots route to their nodes", async () => {
    const w = clusterLink();
    await ready(w);
    const script =
      "redis.call('INCR', KEYS[1]) redis.call('PEXPIRE', KEYS[1], 60000) redis.call('SET', KEYS[2], 'x', 'PX', 60000) return redis.call('GET', KEYS[1])";
    assert.equal(await w.link.send(["EVAL", script, "2", "{acct}:a", "{acct}:b"], "{acct}:a"), "1");
    assert.deepEqual(
      await w.link.exec(
        [
          ["INCR", "{acct}:a"],
          ["GET", "{acct}:b"],
        ],
        "{acct}:a",
      ),
      [2, "x"],
    );
    // Keys of other accounts live on other nodes: each routes by its own key.
    const owners = new Set<number>();
    for (const k of ["{other}:a", "{third}:a", "{acct}:a", "{x1}", "{x2}", "{x3}"]) {
      await w.link.send(["SET", k, "1", "PX", "60000"], k);
      owners.add((await cluster.ownerOf(k)).port);
    }
    assert.ok(owners.size >= 2, "the keys span nodes");
    const e = await failure(w.link.send(["EVAL", script, "2", "{acct}:a", "{other}:b"], "{acct}:a"));
    assert.match(String((e as Error).message), /^CROSSSLOT/);
    assert.equal(maybeRan(e), false);
    assert.deepEqual(await cluster.keysWithoutTtl(), []);
  });

  it("a reshard moving the account's slot during traffic (MOVED, ASK, TRYAGAIN) loses no command and no answer", async () => {
    const w = clusterLink();
    await ready(w);
    const script = "redis.call('INCR', KEYS[1]) return redis.call('INCR', KEYS[2])";
    let stop = false;
    let answered = 0;
    let duringMove = 0;
    let moving = false;
    const failures: string[] = [];
    const worker = async (id: number) => {
      for (let i = 0; !stop; i++) {
        const part = `{acct}:k${(id * 7 + i) % 30}`;
        try {
          if (i % 3 === 0) await w.link.send(["EVAL", script, "2", part, "{acct}:count"], "{acct}:count");
          else if (i % 3 === 1) await w.link.send(["INCR", "{acct}:count"], "{acct}:count");
          else
            await w.link.exec(
              [
                ["INCR", part],
                ["INCR", "{acct}:count"],
              ],
              "{acct}:count",
            );
          answered++;
          if (moving) duringMove++;
        } catch (e) {
          failures.push(String(e));
        }
      }
    };
    await w.link.send(["SET", "{acct}:count", "0"], "{acct}:count");
    const workers = [0, 1, 2, 3].map(worker);
    await waitFor(() => answered > 50, 5000, "traffic");
    const before = await cluster.ownerOf("{acct}:count");
    moving = true;
    const moved = await cluster.moveSlot("{acct}:count", { pauseMs: 5 });
    const back = await cluster.moveSlot("{acct}:count", { pauseMs: 5 });
    moving = false;
    await waitFor(() => answered > duringMove + 100, 5000, "traffic after the moves");
    stop = true;
    await Promise.all(workers);
    assert.equal(moved.from, before);
    assert.notEqual(back.to, before, "moved on twice");
    assert.ok(duringMove > 0, "commands ran while the slot moved");
    assert.deepEqual(failures, []);
    const count = Number(await (await cluster.ownerOf("{acct}:count")).call("GET", "{acct}:count"));
    assert.equal(count, answered, "every answered command counted once");
    await w.link.send(["DEL", "{acct}:count"], "{acct}:count");
    for (let k = 0; k < 30; k++) await w.link.send(["DEL", `{acct}:k${k}`], `{acct}:k${k}`);
  });

  it("TRYAGAIN is not tried again once its caller gave up: the command never runs after its answer (a refusal) was given", async () => {
    const w = clusterLink();
    await ready(w);
    const from = await cluster.ownerOf("{acct}:tg");
    const to = cluster.nodes.find((n) => n !== from)!;
    const slot = String(await cluster.slotOf("{acct}:tg"));
    const [fromId, toId] = [String(await from.call("CLUSTER", "MYID")), String(await to.call("CLUSTER", "MYID"))];
    await w.link.send(["SET", "{acct}:tg", "1", "PX", "60000"], "{acct}:tg");
    // The slot half moved: one key still here, the other not: a script over both is refused.
    await to.call("CLUSTER", "SETSLOT", slot, "IMPORTING", fromId);
    await from.call("CLUSTER", "SETSLOT", slot, "MIGRATING", toId);
    const script = "redis.call('SET', KEYS[2], 'ran', 'PX', 60000) return 1";
    let settled = false;
    const t0 = Date.now();
    const p = w.link.send(["EVAL", script, "2", "{acct}:tg", "{acct}:tg2"], "{acct}:tg", Date.now() + 300);
    p.then(
      () => undefined,
      () => undefined,
    ).finally(() => (settled = true));
    try {
      await waitFor(() => settled, 3000, "the refusal, soon after the caller's limit");
    } finally {
      // The move called off: a retry still going on now would run the script.
      await from.call("CLUSTER", "SETSLOT", slot, "STABLE");
      await to.call("CLUSTER", "SETSLOT", slot, "STABLE");
    }
    const e = await failure(p);
    assert.match(String((e as Error).message), /^TRYAGAIN/);
    assert.equal(maybeRan(e), false);
    assert.ok(Date.now() - t0 < 3000);
    await sleep(1500);
    assert.equal(await from.call("GET", "{acct}:tg2"), null, "the script ran after its refusal was given");
    await w.link.send(["DEL", "{acct}:tg"], "{acct}:tg");
  });

  it("the slot's master reset mid-command: maybe ran, and ran once; while it is unreachable, commands fail at once", async () => {
    const owner = await cluster.ownerOf("{acct}:r");
    const proxy = await FaultProxy.start(owner.port);
    try {
      const w = link({
        mode: "cluster",
        url: `redis://127.0.0.1:${cluster.nodes[0].port}`,
        password: REQUIREPASS,
        nodeAddressMap: (n) => (n.port === owner.port ? { host: "127.0.0.1", port: proxy.port } : undefined),
      });
      await ready(w);
      await w.link.send(["SET", "{acct}:r", "0", "PX", "60000"], "{acct}:r");
      assert.ok(proxy.connections > 0, "through the proxy");
      proxy.stall("down");
      const p = w.link.send(["INCR", "{acct}:r"], "{acct}:r");
      await waitFor(async () => (await owner.call("GET", "{acct}:r")) === "1", 2000, "the INCR to run");
      proxy.reset(); // reset, and new connections too: the node is unreachable
      assert.equal(maybeRan(await failure(p)), true);
      const e = await failure(w.link.send(["INCR", "{acct}:r"], "{acct}:r"));
      assert.equal(e?.constructor?.name, "ClientOfflineError", "refused before it was queued");
      assert.equal(maybeRan(e), false);
      proxy.pass();
      await waitFor(
        async () => (await w.link.send(["GET", "{acct}:r"], "{acct}:r").catch(() => null)) !== null,
        5000,
        "the node back",
      );
      assert.equal(await owner.call("GET", "{acct}:r"), "1", "ran once");
    } finally {
      await closeAll();
      await proxy.close();
    }
  });

  it("a wrong password: one auth error, then end", async () => {
    const w = link({ mode: "cluster", url: `redis://:${WRONG}@127.0.0.1:${cluster.nodes[2].port}` });
    await waitFor(() => w.events.includes("end"), 5000, "the link to give up");
    await sleep(300);
    assert.deepEqual(w.events, ["error:auth", "end"]);
  });
});

describe("state/connect: sentinel (master, replica, 3 sentinels)", function () {
  this.timeout(60_000);
  // Two setups, started together: one for SENTINEL FAILOVER (with a sentinel password), one for a
  // SIGKILLed master (no passwords at all). A failover needs a replica the sentinels know (~5 s).
  let asked: RedisSentinelSetup;
  let killed: RedisSentinelSetup;
  before(async () => {
    [asked, killed] = await Promise.all([
      startRedisSentinel({ password: REQUIREPASS, sentinelPassword: SENTINEL_PASSWORD }),
      startRedisSentinel({ name: "alerts" }),
    ]);
    await Promise.all([asked.ready(), killed.ready()]);
  });
  afterEach(closeAll);
  after(async () => {
    await Promise.all([asked?.stop(), killed?.stop()]);
    noSecrets();
  });
  const askedLink = (extra: Partial<LinkOptions> = {}) =>
    link({
      mode: "sentinel",
      url: `${asked.url}/0`,
      password: REQUIREPASS,
      sentinelPassword: SENTINEL_PASSWORD,
      ...extra,
    });

  /**
   * INCRs one after another through `failover` (which returns the new master), until a write
   * succeeds through the link on that master: how long that took, and the slowest answer
   * meanwhile (commands fail at once while there is no master: none is held).
   */
  async function through(
    w: Watched,
    failover: () => Promise<{ port: number }>,
  ): Promise<{ ms: number; slowest: number }> {
    let stop = false;
    let slowest = 0;
    const traffic = (async () => {
      while (!stop) {
        const t = Date.now();
        await w.link.send(["INCR", "traffic:n"], "traffic:n").catch((e: unknown) => seen.push(e));
        slowest = Math.max(slowest, Date.now() - t);
        await sleep(5);
      }
    })();
    const t0 = Date.now();
    try {
      const master = await failover();
      for (;;) {
        try {
          const port = ((await w.link.send(["CONFIG", "GET", "port"], "x")) as string[])[1];
          if (Number(port) === master.port && (await w.link.send(["SET", "after", "1"], "after")) === "OK") break;
        } catch {
          /* not there yet */
        }
        if (Date.now() - t0 > 30_000) break;
        await sleep(20);
      }
      return { ms: Date.now() - t0, slowest };
    } finally {
      stop = true;
      await traffic;
    }
  }

  it("finds the master through the sentinels and runs commands and scripts there", async () => {
    const w = askedLink();
    await ready(w);
    assert.deepEqual(((await w.link.send(["ROLE"], "x")) as Reply[])[0], "master");
    assert.equal(
      await w.link.send(["EVAL", "return redis.call('SET', KEYS[1], 'v', 'PX', 60000)", "1", "s:a"], "s:a"),
      "OK",
    );
    assert.equal(
      (await asked.master()).port,
      Number(((await w.link.send(["CONFIG", "GET", "port"], "x")) as string[])[1]),
    );
    const unknown = askedLink({ master: "nosuch" });
    await waitFor(() => unknown.errors.length > 0, 5000, "an error");
    assert.equal((unknown.errors[0] as RedisStateError).detail, "unknown master name");
  });

  it("a wrong sentinel password or data password: one auth error, then end", async () => {
    const badSentinel = askedLink({ sentinelPassword: WRONG });
    const badData = askedLink({ password: WRONG });
    await waitFor(() => badSentinel.events.includes("end") && badData.events.includes("end"), 5000, "both to give up");
    assert.deepEqual(badSentinel.events, ["error:auth", "end"]);
    assert.equal((badSentinel.errors[0] as RedisStateError).detail, "sentinel");
    assert.deepEqual(badData.events, ["error:auth", "end"]);
  });

  it("a reset mid-command on the master: maybe ran, and not sent again (node-redis' createSentinel resends it)", async () => {
    const master = await asked.master();
    const proxy = await FaultProxy.start(master.port);
    try {
      const w = askedLink({
        nodeAddressMap: (n) => (n.port === master.port ? { host: "127.0.0.1", port: proxy.port } : undefined),
      });
      await ready(w);
      assert.ok(proxy.connections > 0, "through the proxy");
      await w.link.send(["SET", "s:n", "0", "PX", "60000"], "s:n");
      proxy.stall("down");
      const p = w.link.send(["INCR", "s:n"], "s:n");
      await waitFor(async () => (await master.call("GET", "s:n")) === "1", 2000, "the INCR to run");
      proxy.reset();
      assert.equal(maybeRan(await failure(p)), true);
      proxy.pass();
      await ready(w);
      assert.equal(await w.link.send(["GET", "s:n"], "s:n"), "1", "ran once");
    } finally {
      await closeAll();
      await proxy.close();
    }
  });

  it("after SENTINEL FAILOVER, commands work on the new master within 30 s; none waits meanwhile", async () => {
    const w = askedLink();
    await ready(w);
    const old = await asked.master();
    const { ms, slowest } = await through(w, async () => {
      await asked.failover();
      return asked.waitNewMaster(old);
    });
    assert.ok(ms < 30_000, `back after ${ms} ms`);
    assert.ok(slowest < 2000, `a command waited ${slowest} ms`);
    assert.notEqual((await asked.master()).port, old.port);
  });

  it("after SIGKILL of the master, commands work on the new master within 30 s; none waits meanwhile", async () => {
    const w = link({ mode: "sentinel", url: killed.url, master: "alerts" });
    await ready(w);
    const old = await killed.master();
    const { ms, slowest } = await through(w, async () => {
      await killed.killMaster();
      return killed.waitNewMaster(old);
    });
    assert.ok(ms < 30_000, `back after ${ms} ms`);
    assert.ok(slowest < 2000, `a command waited ${slowest} ms`);
    assert.ok(w.events.includes("error:connect"), w.events.join(" "));
    assert.equal(w.events.at(-1), "ready");
  });
});
