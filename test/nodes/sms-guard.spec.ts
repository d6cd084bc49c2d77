// `sms-guard` (SPEC B8) in a real Node-RED (the test helper), with the package's real en-US and
// zh-CN catalogs. Time: the account state is leased here first with a FakeClock (sms-config then
// gets that same state, as a redeploy would), and the node's module-level clock hook is set to
// the same clock, so the tests cross local midnight and the start of sending hours at once.
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import vm from "node:vm";
import type { NodeAPI } from "node-red";
import guardNode = require("../../src/nodes/sms-guard");
import { Guard } from "../../src/lib/alerts/guard";
import { systemClock } from "../../src/lib/clock";
import { MemoryState } from "../../src/lib/state/memory";
import { closeAllStates, leaseState, type StateLease } from "../../src/lib/state/registry";
import { startRedis, type RedisServer } from "../support/redis";
import { ALL_NODES, coreNode, creds, flowWith, helper, sleep, spiesSeen, type FlowNode } from "../support/nr";
import { FakeClock, waitFor } from "../support/stub";

const ROOT = path.resolve(__dirname, "../../..");
// No platform is reached; its own origin keeps this account's state apart from other tests'.
const PLATFORM = "http://127.0.0.1:19";
const A = "13800138000";
const B = "13900139000";
const C = "13700137000";
type Lang = "en-US" | "zh-CN";
type Msg = Record<string, unknown> & { guard?: Record<string, unknown>; mobile?: unknown };
type Catalog = Record<string, unknown>;

function catalog(lang: Lang): Catalog {
  return JSON.parse(fs.readFileSync(path.join(ROOT, "locales", lang, "sms-guard.json"), "utf8")) as Catalog;
}

/** Node-RED's lookup: dotted key, `__name__` placeholders, no escaping (as the runtime and editor do). */
function translator(cat: Catalog) {
  return (key: string, params: Record<string, unknown> = {}): string => {
    const v = key.split(".").reduce<unknown>((o, k) => (o as Catalog | undefined)?.[k], cat);
    if (typeof v !== "string") return key;
    return v.replace(/__(\w+)__/g, (m, k: string) => (k in params ? String(params[k]) : m));
  };
}

const completeNode = coreNode("common/24-complete.js");

/** Every node module, the guard reading the given catalog (the helper's own RED._ returns keys). */
function modules(lang: Lang): unknown[] {
  const _ = translator(catalog(lang));
  const guard = (RED: NodeAPI) => guardNode(Object.create(RED, { _: { value: _ } }) as NodeAPI);
  return [...ALL_NODES.map((m) => (m === guardNode ? guard : m)), completeNode];
}

/** The guard `g` (outputs → out, out2), a Complete node on it (→ completed), and a Catch (→ caught). */
function guardFlow(props: Record<string, unknown>, config: Record<string, unknown> = {}): FlowNode[] {
  return flowWith({ url: PLATFORM, ...config }, [
    { id: "g", type: "sms-guard", name: "guard", config: "cfg", mobile: A, ...props, wires: [["out"], ["out2"]] },
    { id: "done", type: "complete", scope: ["g"], wires: [["completed"]] },
    { id: "completed", type: "helper" },
  ]);
}

async function load(flow: FlowNode[], lang: Lang = "en-US", credentials: Record<string, unknown> = creds()) {
  await helper.load(modules(lang) as never, flow as never, credentials as never);
  spiesSeen.push(helper.log() as unknown as { args: unknown[][] });
  const g = helper.getNode("g") as unknown as Record<string, { args: unknown[][] }>;
  for (const m of ["status", "error", "warn", "log", "send"]) if (g?.[m]?.args) spiesSeen.push(g[m]);
}

/** Messages reaching a helper node, collected from now on. */
function collect(id: string): Msg[] {
  const msgs: Msg[] = [];
  helper.getNode(id).on("input", (m: Msg) => msgs.push(m));
  return msgs;
}

type Spy = { args: unknown[][]; thisValues: Array<{ id: string }> };
function own(id: string, method: "status" | "error" | "log" | "warn"): unknown[] {
  const spy = helper.getNode(id)[method] as unknown as Spy;
  return spy.args.filter((_a, i) => spy.thisValues[i]?.id === id).map((a) => a[0]);
}
const statusText = (id = "g") => (own(id, "status").at(-1) as { text?: string } | undefined)?.text ?? "";

/** Moves the fake clock forward to an instant written with its offset. */
function at(clock: FakeClock, iso: string): void {
  const d = Date.parse(iso) - clock.now();
  assert.ok(d >= 0, `the clock only moves forward (to ${iso})`);
  clock.advance(d);
}

const input = (msg: Msg) => helper.getNode("g").receive(msg as never);
const mobiles = (ms: Msg[]) => ms.map((m) => m.mobile);

describe("nodes/sms-guard", function () {
  this.timeout(20_000);
  let clock: FakeClock;
  let lease: StateLease;
  let out: Msg[];
  let out2: Msg[];
  let caught: Msg[];
  let completed: Msg[];

  beforeEach(async () => {
    // A state another test left in the registry (kept for a redeploy's grace) would run on real time.
    await closeAllStates();
    clock = new FakeClock();
    guardNode.clock = clock;
    lease = leaseState({ url: PLATFORM, account: "demo", store: "memory", clock });
  });
  afterEach(async () => {
    await helper.unload();
    lease.release();
    guardNode.clock = systemClock;
    await closeAllStates();
  });

  async function start(props: Record<string, unknown>, lang: Lang = "en-US") {
    await load(guardFlow(props), lang);
    out = collect("out");
    out2 = collect("out2");
    caught = collect("caught");
    completed = collect("completed");
  }

  /** Sends alerts one after another, each fully decided (its done) before the next. */
  async function send(...msgs: Msg[]) {
    for (const m of msgs) {
      const n = completed.length + caught.length;
      input(m);
      await waitFor(() => completed.length + caught.length > n, 5000, `done for ${JSON.stringify(m)}`);
    }
  }

  it("window per key and per number: the same topic once per 30 min to a number; other topics and numbers pass", async () => {
    await start({ window: "30" });
    at(clock, "2023-11-15T10:00:00+08:00");
    await send(
      { topic: "cpu", payload: "1", mobile: [A, B] },
      { topic: "cpu", payload: "2", mobile: [A, C] },
      { topic: "disk", payload: "3", mobile: A },
    );
    assert.deepEqual(mobiles(out), [[A, B], [C], [A]]);
    assert.deepEqual(out[0].guard, { key: "cpu", allowed: 2, suppressed: 0 });
    assert.deepEqual(out[1].guard, { key: "cpu", allowed: 1, suppressed: 1 });
    assert.deepEqual(mobiles(out2), [[A]]);
    assert.equal(out2[0].payload, "2", "output 2 carries the same alert");
    assert.deepEqual(out2[0].guard, { key: "cpu", reasons: { [A]: "window" }, until: "2023-11-15T10:30:00+08:00" });
    at(clock, "2023-11-15T10:29:59+08:00");
    await send({ topic: "cpu", payload: "4" });
    assert.equal(out.length, 3, "still inside the window");
    at(clock, "2023-11-15T10:30:00+08:00");
    await send({ topic: "cpu", payload: "5" });
    assert.deepEqual(out[3].mobile, [A], "the window is over");
  });

  it("window 0: every alert passes", async () => {
    await start({ window: "0" });
    await send({ topic: "cpu" }, { topic: "cpu" });
    assert.equal(out.length, 2);
    assert.equal(out2.length, 0);
  });

  for (const [mode, same, other] of [
    [
      "topic",
      [
        { topic: "t", payload: "x" },
        { topic: "t", payload: "y" },
      ],
      { topic: "u", payload: "x" },
    ],
    [
      "payload",
      [
        { topic: "t", payload: "x" },
        { topic: "u", payload: "x" },
      ],
      { topic: "t", payload: "y" },
    ],
    [
      "topic+payload",
      [
        { topic: "t", payload: { a: 1, b: 2 } },
        { topic: "t", payload: { b: 2, a: 1 } },
      ],
      { topic: "t", payload: "x" },
    ],
  ] as Array<[string, Msg[], Msg]>) {
    it(`key ${mode}: ${JSON.stringify(same[1])} repeats ${JSON.stringify(same[0])}, ${JSON.stringify(other)} does not`, async () => {
      await start({ key: mode });
      await send(same[0], same[1], other);
      assert.equal(out.length, 2);
      assert.deepEqual(
        out2.map((m) => (m.guard as { reasons: unknown }).reasons),
        [{ [A]: "window" }],
      );
      assert.equal(out2[0].payload, same[1].payload);
    });
  }

  it("an alert without msg.topic uses the empty key: two of them are the same alert", async () => {
    await start({});
    await send({ payload: "a" }, { payload: "b" });
    assert.equal(out.length, 1);
    assert.equal((out[0].guard as { key: string }).key, "");
    assert.equal(out2.length, 1);
  });

  it("daily cap per number resets at local midnight (+08:00), not at the machine's UTC midnight", async () => {
    await start({ window: "0", dailyCap: "2" });
    at(clock, "2023-11-15T23:50:00+08:00");
    await send({ topic: "a", mobile: [A, B] }, { topic: "b", mobile: A }, { topic: "c", mobile: [A, B] });
    assert.deepEqual(mobiles(out), [[A, B], [A], [B]]);
    assert.deepEqual(out2[0].guard, { key: "c", reasons: { [A]: "cap" }, until: "2023-11-16T00:00:00+08:00" });
    at(clock, "2023-11-16T00:00:00+08:00");
    await send({ topic: "d", mobile: A });
    assert.deepEqual(out[3].mobile, [A], "a new local day");
    await send({ topic: "e", mobile: A }, { topic: "f", mobile: A });
    assert.deepEqual(mobiles(out2).slice(1), [[A]], "two today, the third is capped");
    // UTC midnight is 08:00 here: nothing resets then.
    at(clock, "2023-11-16T08:00:00+08:00");
    await send({ topic: "g", mobile: A });
    assert.equal(out.length, 5);
    assert.equal((out2.at(-1)!.guard as { reasons: Record<string, string> }).reasons[A], "cap");
  });

  it("hours 22:00-07:00 with hold: held alerts are done at once, emit nothing, and are released in order at 22:00, each checked again", async () => {
    await start({ window: "30", hours: "22:00-07:00" });
    at(clock, "2023-11-15T12:00:00+08:00");
    await send(
      { topic: "cpu", payload: "1", mobile: [A, B] },
      { topic: "disk", payload: "2" },
      { topic: "cpu", payload: "3", mobile: [A, B] },
    );
    assert.equal(completed.length, 3, "each input is done when it is held");
    assert.equal(out.length + out2.length, 0);
    await waitFor(() => statusText() === "3 held", 5000, `"3 held", got "${statusText()}"`);
    at(clock, "2023-11-15T21:59:59+08:00");
    await sleep(50);
    assert.equal(out.length + out2.length, 0, "not before the hours");
    at(clock, "2023-11-15T22:00:00+08:00");
    await waitFor(() => out.length === 2 && out2.length === 1, 5000, "released");
    assert.deepEqual(
      out.map((m) => [m.payload, m.mobile]),
      [
        ["1", [A, B]],
        ["2", [A]],
      ],
    );
    assert.equal((out[0].guard as { heldSince: string }).heldSince, "2023-11-15T12:00:00+08:00");
    assert.equal(out2[0].payload, "3");
    assert.deepEqual(out2[0].guard, {
      key: "cpu",
      reasons: { [A]: "window", [B]: "window" },
      until: "2023-11-15T22:30:00+08:00",
    });
    assert.equal(completed.length, 3, "a release is a new send: no second done");
    await waitFor(() => /^released: sent to 3, suppressed 2/.test(statusText()), 5000, statusText());
    // Inside the hours alerts pass at once.
    await send({ topic: "net", payload: "4" });
    assert.equal(out.at(-1)!.payload, "4");
  });

  it("hours with drop: outside they go to output 2 with hours and until the next start; inside they pass", async () => {
    await start({ hours: "22:00-07:00", outside: "drop" });
    at(clock, "2023-11-15T07:00:00+08:00");
    await send({ topic: "a", mobile: [A, B] });
    assert.equal(out.length, 0);
    assert.deepEqual(out2[0].guard, {
      key: "a",
      reasons: { [A]: "hours", [B]: "hours" },
      until: "2023-11-15T22:00:00+08:00",
    });
    at(clock, "2023-11-16T06:59:00+08:00");
    await send({ topic: "a" });
    assert.deepEqual(out[0].mobile, [A], "06:59 is inside 22:00-07:00");
  });

  it("holdMax: beyond it the oldest held alert goes to output 2 with overflow", async () => {
    await start({ hours: "22:00-07:00", holdMax: "2" });
    at(clock, "2023-11-15T12:00:00+08:00");
    await send({ topic: "a", payload: 1 }, { topic: "b", payload: 2, mobile: [A, B] }, { topic: "c", payload: 3 });
    assert.equal(out.length, 0);
    assert.equal(out2.length, 1);
    assert.equal(out2[0].payload, 1, "the oldest");
    assert.deepEqual(out2[0].guard, { key: "a", reasons: { [A]: "overflow" }, until: "2023-11-15T22:00:00+08:00" });
    await waitFor(() => statusText() === "2 held · suppressed 1 (hold list full)", 5000, statusText());
    at(clock, "2023-11-15T22:00:00+08:00");
    await waitFor(() => out.length === 2, 5000, "released");
    assert.deepEqual(
      out.map((m) => m.payload),
      [2, 3],
    );
  });

  it('msg.priority "critical" bypasses hours and window, never the daily cap', async () => {
    await start({ window: "30", dailyCap: "2", hours: "22:00-07:00" });
    at(clock, "2023-11-15T12:00:00+08:00");
    const crit = { topic: "db", priority: "critical" };
    await send(crit, crit, crit);
    assert.equal(out.length, 2, "outside hours and inside the window, twice");
    assert.deepEqual(out2[0].guard, { key: "db", reasons: { [A]: "cap" }, until: "2023-11-16T00:00:00+08:00" });
    at(clock, "2023-11-15T22:00:00+08:00");
    await send({ ...crit, mobile: B }, { topic: "db", mobile: B });
    assert.deepEqual(mobiles(out).slice(2), [[B]]);
    assert.deepEqual(
      out2[1].guard?.reasons,
      { [B]: "window" },
      "a critical send counts towards the window of later alerts",
    );
  });

  it("recipients: msg.mobile wins, normalised as sms-send does; invalid ones → INVALID_MOBILE to Catch, nothing passes", async () => {
    await start({ mobile: "13800138000, 139-0013-9000" });
    await send({ topic: "a" }, { topic: "b", mobile: ["+86 137 0013 7000", "１３７００１３７０００"] });
    assert.deepEqual(mobiles(out), [[A, B], [C]]);
    await send({ topic: "c", mobile: "13800138000,12345" });
    await send({ topic: "d", mobile: { n: 1 } });
    assert.equal(out.length + out2.length, 2, "nothing passes");
    assert.equal(caught.length, 2);
    const e = caught[0].error as { message: string; code: string };
    assert.equal(e.code, "INVALID_MOBILE");
    const text = "1 invalid mobile number(s): 12345; nothing was sent";
    assert.equal(e.message, `Error: ${text}`);
    assert.deepEqual(caught[0].payload, {
      code: "INVALID_MOBILE",
      ok: false,
      description: text,
      message: text,
      outcomeUnknown: false,
      invalid: ["12345"],
    });
    assert.equal((caught[1].error as { code: string }).code, "INVALID_MOBILE");
    assert.equal(completed.length, 2, "a failed input is done with its error, not done twice");
  });

  it("a redeploy keeps the counters and the held alerts: the new node releases them", async () => {
    const props = { window: "30", dailyCap: "1", hours: "22:00-07:00" };
    await start(props);
    at(clock, "2023-11-15T12:00:00+08:00");
    await send(
      { topic: "a", payload: 1, priority: "critical" },
      { topic: "b", payload: 2, mobile: B },
      { topic: "c", payload: 3, mobile: C },
    );
    assert.equal(out.length, 1);
    await helper.setFlows(guardFlow({ ...props, name: "renamed" }) as never, "full", creds() as never);
    out = collect("out");
    out2 = collect("out2");
    completed = collect("completed");
    caught = collect("caught");
    await waitFor(() => statusText() === "2 held", 5000, `held count read back, got "${statusText()}"`);
    await send({ topic: "z", payload: 4, priority: "critical" });
    assert.deepEqual(out2[0].guard, { key: "z", reasons: { [A]: "cap" }, until: "2023-11-16T00:00:00+08:00" });
    at(clock, "2023-11-15T22:00:00+08:00");
    await waitFor(() => out.length === 2, 5000, "released by the new node");
    assert.deepEqual(
      out.map((m) => [m.payload, m.mobile]),
      [
        [2, [B]],
        [3, [C]],
      ],
    );
  });

  it("a node removed for good discards its held alerts with one log line; a later node of that id has none", async () => {
    await start({ hours: "22:00-07:00" });
    at(clock, "2023-11-15T12:00:00+08:00");
    await send({ topic: "a" }, { topic: "b" });
    const without = guardFlow({}).filter((n) => n.id !== "g" && n.id !== "done" && n.id !== "completed");
    const logged = () =>
      (helper.log() as unknown as { args: Array<[{ msg: unknown }]> }).args.map(([e]) => String(e.msg));
    await helper.setFlows(without as never, "full", creds() as never);
    assert.deepEqual(
      logged().filter((l) => /discarded/.test(l)),
      ["2 held alert(s) discarded: the node was removed"],
    );
    await helper.setFlows(guardFlow({ hours: "22:00-07:00" }) as never, "full", creds() as never);
    out = collect("out");
    at(clock, "2023-11-15T22:00:00+08:00");
    await sleep(100);
    assert.equal(out.length, 0);
  });

  describe("bad settings", () => {
    for (const [lang, text] of [
      ["en-US", 'Sending hours "25:00-x" are not valid: write them as HH:MM-HH:MM, e.g. 08:00-22:00 or 22:00-07:00'],
      ["zh-CN", "发送时段“25:00-x”无效：请写成 HH:MM-HH:MM，例如 08:00-22:00 或 22:00-07:00"],
    ] as Array<[Lang, string]>) {
      it(`hours "25:00-x" (${lang}): a clear error at start, a red status; alerts go to Catch, nothing passes`, async () => {
        await start({ hours: "25:00-x" }, lang);
        assert.deepEqual(own("g", "error"), [text]);
        const s = own("g", "status")[0] as { fill: string; shape: string; text: string };
        assert.deepEqual(s, { fill: "red", shape: "ring", text: lang === "en-US" ? "bad settings" : "配置有误" });
        await send({ topic: "a" });
        assert.equal(out.length + out2.length, 0);
        assert.equal((caught[0].error as { message: string }).message, `Error: ${text}`);
      });
    }

    it("no account: NO_CONFIG at start and for every alert", async () => {
      await start({ config: "" });
      await send({ topic: "a" });
      assert.equal((caught[0].error as { code: string }).code, "NO_CONFIG");
      assert.equal(out.length, 0);
    });
  });

  it("status: held count and the last decision, short and translated", async () => {
    await start({ window: "30", hours: "22:00-07:00" }, "zh-CN");
    at(clock, "2023-11-15T22:00:00+08:00");
    await send({ topic: "a", mobile: [A, B] });
    await waitFor(() => statusText() === "已放行 2 个号码", 5000, statusText());
    await send({ topic: "a", mobile: [A, C] });
    await waitFor(() => statusText() === "已放行 1 个号码、已拦截 1 个号码（窗口期内重复）", 5000, statusText());
    at(clock, "2023-11-16T12:00:00+08:00");
    await send({ topic: "b" });
    await waitFor(() => statusText().startsWith("暂存 1 条"), 5000, statusText());
  });
});

describe("nodes/sms-guard: the editor's validators say what the runtime says", () => {
  type Validator = (v: unknown, opt?: object) => true | false | string;
  const validators = (lang: Lang): Record<string, Validator> => {
    const html = fs.readFileSync(path.join(ROOT, "nodes", "sms-guard.html"), "utf8");
    const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1];
    const _ = translator(catalog(lang));
    let def: { defaults: Record<string, { validate?: Validator }> } | undefined;
    const RED = { nodes: { registerType: (_t: string, d: typeof def) => (def = d), getType: () => ({ _ }) } };
    // The editor's bundle of the runtime's rules (resources/, built by npm run build), as the page loads it.
    const context = vm.createContext({ RED, window: {} as Record<string, unknown> });
    vm.runInContext(fs.readFileSync(path.join(ROOT, "resources", "cnsms-sms.js"), "utf8"), context);
    vm.runInContext(script, context);
    return Object.fromEntries(Object.entries(def!.defaults).map(([k, d]) => [k, d.validate!]));
  };
  /** The runtime's answer for one option: null when it starts, else the node's error text. */
  const runtime = (name: string, value: unknown, lang: Lang): string | null => {
    try {
      new Guard({ state: new MemoryState(), scope: "x", [name]: value } as never);
      return null;
    } catch (e) {
      const err = e as { key: string; params: Record<string, unknown> };
      const t = translator(catalog(lang));
      return t(`sms-guard.errors.${err.key}`, { ...err.params, name: t(`sms-guard.label.${String(err.params.name)}`) });
    }
  };

  const cases: Array<[string, unknown[]]> = [
    [
      "hours",
      [
        "",
        "08:00-22:00",
        "22:00-07:00",
        "8:00 - 22:00",
        "22：00～07：00",
        "00:00-24:00",
        "25:00-x",
        "24:00-07:00",
        "08:60-09:00",
        "08:00-08:00",
        "08:00-24:01",
        "8-22",
      ],
    ],
    ["window", ["", "30", "0", "0.5", " 15 ", "-1", "abc", "1e2", 30]],
    ["dailyCap", ["", "0", "5", "2.5", "-3", "x"]],
    ["holdMax", ["", "1000", "0", "1.5", "-1"]],
    ["key", ["topic", "payload", "topic+payload", "", "Topic"]],
    ["outside", ["hold", "drop", "", "keep"]],
  ];
  for (const lang of ["en-US", "zh-CN"] as Lang[]) {
    it(`${lang}: the same values refused, with the same words`, () => {
      const v = validators(lang);
      for (const [name, values] of cases)
        for (const value of values) {
          const said = runtime(name, value, lang);
          assert.equal(v[name](value), said === null, `${name} ${JSON.stringify(value)}`);
          assert.equal(v[name](value, {}), said ?? true, `${name} ${JSON.stringify(value)}`);
        }
    });
  }
});

/**
 * A real TCP proxy in front of Redis that holds new connections while shut: the account state is
 * still connecting when the nodes start, as at a Node-RED start (the test helper's load is slower
 * than a connection to a local Redis, which would otherwise hide it).
 */
async function redisGate(port: number) {
  let shut = false;
  const held: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    const pipe = () => {
      const up = net.connect(port, "127.0.0.1");
      track(up);
      client.pipe(up).pipe(client);
      up.on("close", () => client.destroy());
      client.on("close", () => up.destroy());
    };
    if (shut) held.push(pipe);
    else pipe();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}/0`,
    shut: () => void (shut = true),
    open: () => {
      shut = false;
      for (const p of held.splice(0)) p();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("nodes/sms-guard with a redis store", function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let gate: Awaited<ReturnType<typeof redisGate>>;
  let clock: FakeClock;
  let lease: StateLease | null = null;
  let prefix = "";
  let tests = 0;
  let out: Msg[];
  let completed: Msg[];
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());
  beforeEach(async () => {
    prefix = `guardnode${++tests}:`;
    gate = await redisGate(redis.port);
    clock = new FakeClock();
    guardNode.clock = clock;
    at(clock, "2023-11-15T12:00:00+08:00");
  });
  afterEach(async () => {
    await helper.unload();
    lease?.release();
    lease = null;
    guardNode.clock = systemClock;
    await closeAllStates();
    await gate.close();
  });

  const config = () => ({ store: "redis", redisUrl: gate.url, redisPrefix: prefix });
  /** A start of the process: a new account state and new nodes on the same Redis and clock. */
  async function boot(props: Record<string, unknown>) {
    await helper.unload();
    lease?.release();
    await closeAllStates();
    lease = leaseState({ url: PLATFORM, account: "demo", ...config(), store: "redis", clock });
    await load(guardFlow(props, config()));
    out = collect("out");
    completed = collect("completed");
  }
  /** A restart whose nodes start while the account state is still connecting to Redis. */
  async function restart(props: Record<string, unknown>) {
    gate.shut();
    await boot(props);
    assert.equal(lease!.state.mode, "local", "still connecting");
    gate.open();
  }
  /** Alerts held once Redis is there (before, they would be kept locally: SPEC B6). */
  async function hold(...topics: string[]) {
    await waitFor(() => lease!.state.mode === "shared", 5000, "Redis connected");
    for (const [i, topic] of topics.entries()) {
      input({ topic, payload: i });
      await waitFor(() => completed.length === i + 1, 5000, `held ${topic}`);
    }
    assert.equal(out.length, 0);
  }

  it("held alerts survive a restart: their count shows after it, and they are released in order when the hours begin", async () => {
    const props = { window: "30", hours: "22:00-07:00" };
    await boot(props);
    await hold("a", "b", "c");
    await restart(props);
    await waitFor(() => statusText() === "3 held", 5000, `the count after the restart, got "${statusText()}"`);
    at(clock, "2023-11-15T22:00:00+08:00");
    await waitFor(() => out.length === 3, 5000, "released after the restart");
    assert.deepEqual(
      out.map((m) => m.payload),
      [0, 1, 2],
    );
  });

  it("a restart with hours that have begun (changed while it was down) releases the held alerts, in order", async () => {
    await boot({ hours: "22:00-07:00" });
    await hold("a", "b");
    await restart({ hours: "" });
    await waitFor(() => out.length === 2, 5000, `released after the restart, got ${out.length}`);
    assert.deepEqual(
      out.map((m) => m.payload),
      [0, 1],
    );
  });
});
