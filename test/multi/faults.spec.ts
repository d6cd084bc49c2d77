// The account state under Redis's own faults, across real Node-RED processes (the packed package,
// as users install it) on one real redis-server (SPEC B6a, issue 21): a stall while a long SMS is
// pending (what a fork for a snapshot does), and an ACL user. Pushes come in over HTTP as the
// platform sends them; every message a node emits (and the receive node's status) is posted by a
// core `http request` node to a collector here, so the test counts what each instance emitted.
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { startPackedNodeRed, type RunningNodeRed } from "../support/packed";
import { startRedis, type RedisServer } from "../support/redis";
import { startCollector } from "../support/collector";
import { waitFor } from "../support/stub";

const PREFIX = "mfault:";
const RECEIVER = "rcv";
const RECEIVER_PW = "multi-fault-push-pw";
const MOBILE = "13900210021";
const PATH = "/sms/fault";
/** seconds each part of a long SMS is waited for */
const PART_WAIT = "4";
const ACL_USER = "nrapp";
const ACL_PASSWORD = "Acl-User-Pw-7f3k";
const WRONG_PASSWORD = "Wrong-Acl-Pw-x9q2";

type Payload = Record<string, unknown>;
interface Emitted {
  inst: string;
  /** report, mo, status, error */
  kind: string;
  payload: Payload;
  topic?: string;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = (cond: () => boolean | Promise<boolean>, what: string, ms = 20_000) => waitFor(cond, ms, what, 50);

/** The flow both instances run (same ids: one cluster); only where they post differs. */
function flow(inst: string, o: { sim: string; redis: string; redisPassword?: string; collector: string }): object[] {
  const z = "tab";
  const post = (kind: string, expr: string) => [
    {
      id: `wrap-${kind}`,
      type: "function",
      z,
      func: `msg.payload = ${expr};\ndelete msg.req; delete msg.res; delete msg.headers;\nreturn msg;`,
      outputs: 1,
      wires: [[`post-${kind}`]],
    },
    {
      id: `post-${kind}`,
      type: "http request",
      z,
      method: "POST",
      ret: "txt",
      url: `${o.collector}/${inst}/${kind}`,
      wires: [],
    },
  ];
  const emitted = "{ payload: msg.payload, topic: msg.topic, error: msg.error ? msg.error.message : undefined }";
  return [
    { id: z, type: "tab", label: "multi faults" },
    {
      id: "cfg",
      type: "sms-config",
      name: "sim",
      url: o.sim,
      rate: "0",
      tz: "+08:00",
      store: "redis",
      redisUrl: o.redis,
      redisPrefix: PREFIX,
      credentials: {
        account: "demo",
        password: "demo",
        receiver: RECEIVER,
        receiverPassword: RECEIVER_PW,
        ...(o.redisPassword ? { redisPassword: o.redisPassword } : {}),
      },
    },
    {
      id: "rx",
      type: "sms-receive",
      z,
      config: "cfg",
      path: PATH,
      partTimeout: PART_WAIT,
      wires: [["wrap-report"], ["wrap-mo"]],
    },
    // The receive node shows the config node's state (a config node is not drawn on the canvas).
    { id: "st", type: "status", z, scope: ["rx"], wires: [["wrap-status"]] },
    { id: "catcher", type: "catch", z, scope: ["rx"], wires: [["wrap-error"]] },
    ...post("report", emitted),
    ...post("mo", emitted),
    ...post("error", emitted),
    ...post("status", "{ payload: msg.status }"),
  ];
}

async function deploy(nr: RunningNodeRed, nodes: object[]): Promise<void> {
  const res = await fetch(`${nr.url}/flows`, {
    method: "POST",
    headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full", "Node-RED-API-Version": "v1" },
    body: JSON.stringify(nodes),
  });
  assert.ok(res.ok, `deploy: HTTP ${res.status} ${await res.text()}`);
}

/** Pushes as the platform does (GET); retried while the route is not there yet; asserts 200 OK. */
async function push(nr: RunningNodeRed, params: Record<string, string>): Promise<number> {
  const q = new URLSearchParams({ receiver: RECEIVER, pswd: RECEIVER_PW, ...params });
  const end = Date.now() + 30_000;
  for (;;) {
    const t0 = Date.now();
    let res: Response | null = null;
    try {
      res = await fetch(`${nr.url}${PATH}?${q}`, { signal: AbortSignal.timeout(15_000) });
    } catch {
      /* a deploy in progress */
    }
    if (res && res.status !== 404) {
      assert.equal(`${res.status} ${await res.text()}`, "200 OK", `push to ${nr.url}`);
      return Date.now() - t0;
    }
    if (Date.now() > end) throw new Error(`${PATH}: ${res ? `HTTP ${res.status}` : "no answer"} for 30 s`);
    await sleep(100);
  }
}

const report = (msgid: string) => ({ msgid, reportTime: "1012241002", mobile: MOBILE, status: "DELIVRD" });
const part = (mobile: string, id: number, total: number, n: number, text: string) => ({
  mobile,
  destcode: "1065751600001",
  msg: text,
  isems: "1",
  emshead: `${id},${total},${n}`,
});
const partText = (key: string, n: number) => `<${key} part ${n}: 长短信第${n}段>`;

describe("multi: the account state under Redis faults, two Node-RED processes on one Redis (SPEC B6a)", function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let sim: Simulator;
  let collector: Awaited<ReturnType<typeof startCollector<Emitted>>>;
  let a: RunningNodeRed;
  let b: RunningNodeRed;
  let probes = 0;
  let mobiles = 0;

  before(async function () {
    this.timeout(300_000);
    // `default` stays usable without a password (the support talks as it): a client that fell
    // back to `default` would work, so the ACL case checks who each connection is.
    redis = await startRedis({
      users: [[ACL_USER, "on", `>${ACL_PASSWORD}`, `~${PREFIX}*`, "&*", "+@all"]],
    });
    sim = await startSimulator();
    collector = await startCollector<Emitted>();
    [a, b] = await Promise.all([
      startPackedNodeRed({ shareInstall: true }),
      startPackedNodeRed({ shareInstall: true }),
    ]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await collector?.close();
    await sim?.close();
    await redis?.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed") {
      for (const [name, nr] of [
        ["a", a],
        ["b", b],
      ] as const) {
        const tail = nr?.log().split("\n").slice(-30).join("\n");
        process.stderr.write(`--- Node-RED ${name} log (tail) ---\n${tail}\n`);
      }
    }
  });

  const emitted = (kind: string, pred: (e: Emitted) => boolean = () => true) =>
    collector.got.filter((e) => e.kind === kind && pred(e));
  const reportsOf = (msgid: string) => emitted("report", (e) => e.payload.msgid === msgid);
  const moOf = (mobile: string) => emitted("mo", (e) => e.payload.mobile === mobile);
  const nextMobile = () => `1380014${String(++mobiles).padStart(4, "0")}`;
  const errors = () => emitted("error");

  /** Until a report pushed to a and then to b is emitted once: both decide on Redis. */
  async function untilShared(ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const id = `probe-${++probes}`;
      await push(a, report(id));
      await until(() => reportsOf(id).length >= 1, `${id} emitted by a`);
      await push(b, report(id));
      await push(b, report(`${id}-end`));
      await until(() => reportsOf(`${id}-end`).length >= 1, `${id}-end emitted`);
      await sleep(200);
      if (reportsOf(id).length === 1) return;
      if (Date.now() > end) throw new Error(`the two instances did not share their state within ${ms} ms`);
      await sleep(200);
    }
  }

  async function deployBoth(o: { redis: string; redisPassword?: string }): Promise<void> {
    await Promise.all(
      (
        [
          ["a", a],
          ["b", b],
        ] as const
      ).map(([name, nr]) => deploy(nr, flow(name, { sim: sim.url, collector: collector.url, ...o }))),
    );
  }

  it("a 2.5 s stall (CLIENT PAUSE) with long SMS pending: the report pushed meanwhile is answered and emitted once; each long SMS comes out once, complete or after its wait", async () => {
    await deployBoth({ redis: redis.url });
    await untilShared();
    // Two long SMS of 2 parts, part 1 of each pending on the account: one on a, one on b.
    const completes = { key: "stall-complete", mobile: nextMobile() };
    const waits = { key: "stall-wait", mobile: nextMobile() };
    await push(a, part(completes.mobile, 31, 2, 1, partText(completes.key, 1)));
    await push(b, part(waits.mobile, 32, 2, 1, partText(waits.key, 1)));
    for (const m of [completes, waits]) {
      await until(
        async () => (await redis.command("KEYS", `${PREFIX}*parts:m:*${m.mobile}*`)).includes(m.mobile),
        `${m.key}: part 1 stored in Redis`,
      );
    }
    // A fork for a snapshot: every client of Redis waits 2.5 s. A report pushed to each instance
    // meanwhile: its dedupe claim times out there (the command may still run).
    const t0 = Date.now();
    await redis.pauseClients(2500);
    const answered = await Promise.all([push(a, report("stall-a")), push(b, report("stall-b"))]);
    for (const ms of answered) assert.ok(ms < 2500, `a push answered within the stall (${answered} ms)`);
    await until(() => reportsOf("stall-a").length + reportsOf("stall-b").length >= 2, "both reports emitted");
    // The stall is over: part 2 of the first long SMS reaches the other instance, in its wait.
    await until(() => Date.now() - t0 > 2600, "the stall over", 5000);
    await push(b, part(completes.mobile, 31, 2, 2, partText(completes.key, 2)));
    await until(() => moOf(completes.mobile).length >= 1, "the completed long SMS emitted");
    await until(() => moOf(waits.mobile).length >= 1, "the other long SMS emitted after its wait", 30_000);
    // Both instances poll for due deadlines every 250 ms; a lost answer is settled within seconds.
    await sleep(6000);
    assert.equal(reportsOf("stall-a").length, 1, JSON.stringify(reportsOf("stall-a")));
    assert.equal(reportsOf("stall-b").length, 1, JSON.stringify(reportsOf("stall-b")));
    const done = moOf(completes.mobile);
    assert.equal(done.length, 1, `${completes.key}: ${JSON.stringify(done)}`);
    assert.equal(done[0].payload.text, partText(completes.key, 1) + partText(completes.key, 2));
    assert.equal(done[0].payload.complete, true);
    const waited = moOf(waits.mobile);
    assert.equal(waited.length, 1, `${waits.key}: ${JSON.stringify(waited)}`);
    assert.equal(waited[0].payload.text, partText(waits.key, 1));
    assert.equal(waited[0].payload.complete, false);
    assert.deepEqual(waited[0].payload.missing, [2]);
    assert.deepEqual(errors(), []);
    assert.deepEqual(await redis.keysWithoutTtl(PREFIX), []);
    // Shared again after the stall: a report pushed to both comes out once.
    await untilShared();
  });

  it("a stall that holds the deadline poll itself: the long SMS comes out once, after the poll's lease at the latest", async () => {
    await untilShared();
    const m = { key: "stall-alone", mobile: nextMobile() };
    await push(a, part(m.mobile, 33, 2, 1, partText(m.key, 1)));
    await until(
      async () => (await redis.command("KEYS", `${PREFIX}*parts:m:*${m.mobile}*`)).includes(m.mobile),
      "part 1 stored in Redis",
    );
    // Paused across the end of the wait: the poll that claims the deadline is held past its
    // timeout, and Redis runs the claim when the pause ends, for a poll that no longer listens.
    // The claim is a lease (30 s): the deadline is due again after it, never lost.
    await sleep(3500);
    const t0 = Date.now();
    await redis.pauseClients(2500);
    await until(() => moOf(m.mobile).length >= 1, "the long SMS emitted after its wait", 60_000);
    const late = Date.now() - t0;
    process.stdout.write(`      (the long SMS came out ${late} ms after the stall began)\n`);
    assert.ok(late < 45_000, `${late} ms`);
    await sleep(5000);
    assert.equal(moOf(m.mobile).length, 1, JSON.stringify(moOf(m.mobile)));
    assert.equal(moOf(m.mobile)[0].payload.complete, false);
    assert.equal(moOf(m.mobile)[0].payload.text, partText(m.key, 1));
    assert.deepEqual(errors(), []);
  });

  for (const keepData of [true, false]) {
    it(`Redis restarted ${keepData ? "with" : "without"} its data while a long SMS is pending: nothing dropped${keepData ? ", nothing twice" : ""}`, async () => {
      await deployBoth({ redis: redis.url });
      await untilShared();
      const tag = keepData ? "keep" : "empty";
      const m = { key: `restart-${tag}`, mobile: nextMobile() };
      await push(a, part(m.mobile, 51, 2, 1, partText(m.key, 1)));
      await push(a, report(`${tag}-before`));
      await until(
        async () => (await redis.command("KEYS", `${PREFIX}*parts:m:*${m.mobile}*`)).includes(m.mobile),
        "part 1 stored in Redis",
      );
      await until(() => reportsOf(`${tag}-before`).length === 1, "the report emitted");
      await redis.restart({ keepData });
      await untilShared();
      // The platform pushes the report again (it got no answer, say); part 2 reaches b.
      await push(b, report(`${tag}-before`));
      await push(b, part(m.mobile, 51, 2, 2, partText(m.key, 2)));
      await until(() => moOf(m.mobile).length >= 1, "the long SMS emitted", 30_000);
      await sleep(Number(PART_WAIT) * 1000 + 3000);
      const got = moOf(m.mobile).map((e) => `${e.inst}:${e.payload.complete}:${e.payload.text}`);
      process.stdout.write(
        `      (restart ${keepData ? "with" : "without"} data: long SMS ${JSON.stringify(got)}; report out ${reportsOf(`${tag}-before`).length}×)\n`,
      );
      const parts = new Set(
        moOf(m.mobile).flatMap((e) => [1, 2].filter((n) => String(e.payload.text).includes(partText(m.key, n)))),
      );
      assert.deepEqual([...parts].sort(), [1, 2], `every part of the long SMS emitted: ${JSON.stringify(got)}`);
      if (keepData) {
        assert.equal(got.length, 1, JSON.stringify(got));
        assert.equal(reportsOf(`${tag}-before`).length, 1);
      }
      assert.deepEqual(errors(), []);
    });
  }

  const outageLines: Array<{ fault: string; inst: string; local: number; back: number }> = [];
  for (const fault of ["READONLY", "OOM"] as const) {
    it(`${fault} for 5 s (${fault === "READONLY" ? "Redis made a replica" : "maxmemory below use"}): pushes answered, each report and long SMS out once, the state shared again after`, async () => {
      await deployBoth({ redis: redis.url });
      await untilShared();
      const logFrom = { a: a.log().length, b: b.log().length };
      let master: RedisServer | null = null;
      if (fault === "READONLY") {
        master = await startRedis();
        await redis.replicaOf(master);
        await until(
          async () => (await redis.info("replication")).get("master_link_status") === "up",
          "replica in sync",
        );
      } else await redis.outOfMemory(true);
      try {
        const tag = fault.toLowerCase();
        const ids = Array.from({ length: 10 }, (_, i) => `${tag}-${i}`);
        const m = { key: `${tag}-long`, mobile: nextMobile() };
        const t0 = Date.now();
        for (const [i, id] of ids.entries()) {
          await push(i % 2 ? a : b, report(id));
          if (i === 3) for (const n of [2, 1]) await push(a, part(m.mobile, 41, 2, n, partText(m.key, n)));
          await sleep(400);
        }
        await until(() => ids.every((id) => reportsOf(id).length >= 1), "every report emitted");
        await until(() => moOf(m.mobile).length >= 1, "the long SMS emitted");
        await until(() => Date.now() - t0 > 5000, "5 s of the fault", 10_000);
        for (const id of ids) assert.equal(reportsOf(id).length, 1, `${id}: emitted ${reportsOf(id).length} times`);
        assert.equal(moOf(m.mobile)[0].payload.text, partText(m.key, 1) + partText(m.key, 2));
        assert.equal(moOf(m.mobile)[0].payload.complete, true);
      } finally {
        if (master) {
          await redis.replicaOf(null);
          await master.stop();
        } else await redis.outOfMemory(false);
      }
      await untilShared();
      await sleep(1000);
      assert.deepEqual(errors(), []);
      // What an operator reads meanwhile: how many lines the fault made in each log.
      for (const [name, nr] of [
        ["a", a],
        ["b", b],
      ] as const) {
        const log = nr.log().slice(logFrom[name]);
        const local = log.match(/The account state is local/g)?.length ?? 0;
        const back = log.match(/shared through Redis again/g)?.length ?? 0;
        process.stdout.write(`      (${fault}: ${name} logged "local" ${local}×, "shared again" ${back}×)\n`);
        outageLines.push({ fault, inst: name, local, back });
        assert.ok(!/\[error\]/.test(log), log);
      }
    });
  }

  // Fails today (issue 21, for the lead): the config node promises one line per outage, but under
  // READONLY or OOM every command that succeeds (the failover's PING probe, any read) ends the
  // outage, and the next write starts another: "local" and "shared again" about once a second.
  it('READONLY and OOM are one outage each in the log: one "local" line per instance, not one per failed write', () => {
    assert.equal(outageLines.length, 4, "the READONLY and OOM cases ran");
    assert.deepEqual(
      outageLines.filter((x) => x.local > 1),
      [],
    );
  });

  it("an ACL user in redisUrl with the redisPassword credential: both instances run as that user and share the state", async () => {
    const port = redis.port;
    const deployedAt = Date.now();
    const before = Number((await redis.info("stats")).get("acl_access_denied_auth") ?? 0);
    await deployBoth({ redis: `redis://${ACL_USER}@127.0.0.1:${port}`, redisPassword: ACL_PASSWORD });
    await untilShared();
    const ids = Array.from({ length: 6 }, (_, i) => `acl-${i}`);
    await Promise.all(ids.flatMap((id) => [push(a, report(id)), push(b, report(id))]));
    await until(() => ids.every((id) => reportsOf(id).length >= 1), "every report emitted");
    await sleep(800);
    for (const id of ids) assert.equal(reportsOf(id).length, 1, `${id}: emitted ${reportsOf(id).length} times`);
    // Every connection made since this deploy is the ACL user, none `default`. (The states of
    // the previous deploy stay for the registry's grace period, as `default`; the support's own
    // connection is the one asking.)
    const age = Math.ceil((Date.now() - deployedAt) / 1000);
    const clients = String(await redis.call("CLIENT", "LIST"))
      .split("\n")
      .filter((l) => l.trim() && !/cmd=client\|list/.test(l))
      .filter((l) => Number(/ age=(\d+) /.exec(l)?.[1] ?? 1e9) <= age);
    assert.ok(clients.length >= 2, clients.join("\n"));
    assert.deepEqual(
      clients.filter((l) => !l.includes(` user=${ACL_USER} `)),
      [],
      "every connection authenticated as the ACL user",
    );
    assert.equal(Number((await redis.info("stats")).get("acl_access_denied_auth") ?? 0), before, "no refused AUTH");
    assert.deepEqual(await redis.keysWithoutTtl(PREFIX), []);
    assert.deepEqual(errors(), []);
  });

  it("a wrong ACL password: a red status and exactly one error line in the log, without the password; pushes still answered", async () => {
    const logFrom = a.log().length;
    const statusFrom = collector.got.length;
    await deploy(
      a,
      flow("a", {
        sim: sim.url,
        collector: collector.url,
        redis: `redis://${ACL_USER}@127.0.0.1:${redis.port}`,
        redisPassword: WRONG_PASSWORD,
      }),
    );
    const red = () =>
      collector.got
        .slice(statusFrom)
        .filter((e) => e.kind === "status" && e.inst === "a" && (e.payload as { fill?: string }).fill === "red");
    await until(() => red().length >= 1, "a red status on the receive node", 30_000);
    // Pushes are still answered (the state is local) and the report comes out.
    await push(a, report("wrongpw-1"));
    await until(() => reportsOf("wrongpw-1").length === 1, "the report emitted");
    await sleep(3000); // no reconnect loop: no second line comes
    const log = a.log().slice(logFrom);
    const errorLines = log.split("\n").filter((l) => /\[error\]/.test(l));
    assert.equal(errorLines.length, 1, log);
    assert.match(errorLines[0], /sms-config/);
    assert.match(errorLines[0], /Redis refused the user name or password/);
    assert.ok(!log.includes(WRONG_PASSWORD), "the wrong password is not in the log");
    assert.ok(!log.includes(ACL_PASSWORD), "no password is in the log");
    const statuses = JSON.stringify(collector.got.slice(statusFrom).filter((e) => e.kind === "status"));
    assert.ok(!statuses.includes(WRONG_PASSWORD), statuses);
    assert.equal((red()[0].payload as { shape?: string }).shape, "ring");
    assert.ok(String((red()[0].payload as { text?: string }).text).length > 0);
  });
});
