// `sms-oncall` (SPEC B11) in a real Node-RED (the test helper), with the package's real en-US and
// zh-CN catalogs. Time: the account state is leased first with a FakeClock (sms-config then gets
// that same state, as a redeploy would) and the node's clock hook is set to the same clock, so
// waits pass at once. Replies reach the account's inbox as an sms-receive hands them over; the
// last test goes through a real sms-send, the simulator and a real sms-receive instead.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { NodeAPI } from "node-red";
import oncallNode = require("../../src/nodes/sms-oncall");
import { inboxFor } from "../../src/lib/alerts/inbox";
import { repliesFor } from "../../src/lib/alerts/oncall";
import { systemClock } from "../../src/lib/clock";
import type { SmsConfigNode } from "../../src/nodes/common";
import { closeAllStates, leaseState, type StateLease } from "../../src/lib/state/registry";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import {
  ALL_NODES,
  captured,
  coreNode,
  creds,
  flowWith,
  helper,
  PASSWORD,
  spiesSeen,
  type FlowNode,
} from "../support/nr";
import { FakeClock, waitFor } from "../support/stub";

const ROOT = path.resolve(__dirname, "../../..");
// No platform is reached; its own origin keeps this account's state apart from other tests'.
const PLATFORM = "http://127.0.0.1:29";
const A = "13800138000";
const B = "13900139000";
const C = "13700137000";
const MIN = 60_000;
type Lang = "en-US" | "zh-CN";
type Msg = Record<string, unknown> & { oncall?: Record<string, unknown>; mobile?: string[]; payload?: unknown };
type Catalog = Record<string, unknown>;

function catalog(lang: Lang): Catalog {
  return JSON.parse(fs.readFileSync(path.join(ROOT, "locales", lang, "sms-oncall.json"), "utf8")) as Catalog;
}

/** Node-RED's lookup: dotted key, `__name__` placeholders (as the runtime and editor do). */
function translator(cat: Catalog) {
  return (key: string, params: Record<string, unknown> = {}): string => {
    const v = key.split(".").reduce<unknown>((o, k) => (o as Catalog | undefined)?.[k], cat);
    if (typeof v !== "string") return key;
    return v.replace(/__(\w+)__/g, (m, k: string) => (k in params ? String(params[k]) : m));
  };
}

const completeNode = coreNode("common/24-complete.js");

function modules(lang: Lang): unknown[] {
  const _ = translator(catalog(lang));
  const oncall = (RED: NodeAPI) => oncallNode(Object.create(RED, { _: { value: _ } }) as NodeAPI);
  return [...ALL_NODES.map((m) => (m === oncallNode ? oncall : m)), completeNode];
}

/** The on-call node `o` (outputs → out, out2), a Complete node on it (→ completed), a Catch (→ caught). */
function oncallFlow(props: Record<string, unknown>, config: Record<string, unknown> = {}): FlowNode[] {
  return flowWith({ url: PLATFORM, ...config }, [
    { id: "o", type: "sms-oncall", config: "cfg", rota: [A, B, C], ...props, wires: [["out"], ["out2"]] },
    { id: "done", type: "complete", scope: ["o"], wires: [["completed"]] },
    { id: "completed", type: "helper" },
  ]);
}

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
const statusText = (id = "o") => (own(id, "status").at(-1) as { text?: string } | undefined)?.text ?? "";

describe("nodes/sms-oncall", function () {
  this.timeout(20_000);
  let clock: FakeClock;
  let lease: StateLease;
  let out: Msg[];
  let out2: Msg[];
  let caught: Msg[];
  let completed: Msg[];

  beforeEach(async () => {
    await closeAllStates();
    clock = new FakeClock();
    oncallNode.clock = clock;
    lease = leaseState({ url: PLATFORM, account: "demo", store: "memory", clock });
  });
  afterEach(async () => {
    await helper.unload();
    lease.release();
    oncallNode.clock = systemClock;
    await closeAllStates();
  });

  async function load(flow: FlowNode[], lang: Lang = "en-US") {
    await helper.load(modules(lang) as never, flow as never, creds() as never);
    spiesSeen.push(helper.log() as unknown as { args: unknown[][] });
    const o = helper.getNode("o") as unknown as Record<string, { args: unknown[][] }>;
    for (const m of ["status", "error", "warn", "log", "send"]) if (o?.[m]?.args) spiesSeen.push(o[m]);
    out = collect("out");
    out2 = collect("out2");
    caught = collect("caught");
    completed = collect("completed");
  }

  /** Sends inputs one after another, each done (Complete or Catch) before the next. */
  async function send(...msgs: Msg[]) {
    for (const m of msgs) {
      const n = completed.length + caught.length;
      helper.getNode("o").receive(m as never);
      await waitFor(() => completed.length + caught.length > n, 5000, `done for ${JSON.stringify(m)}`);
    }
  }
  /** Moves the clock and waits until `n` SMS in all reached output 1. */
  async function after(ms: number, n: number) {
    clock.advance(ms);
    await waitFor(() => out.length >= n, 5000, `${n} SMS (got ${out.length})`);
  }
  const state = () => (helper.getNode("cfg") as unknown as SmsConfigNode).state;
  async function reply(mobile: string, text: string) {
    await inboxFor(state()).deliver({ mobile, text, destcode: "1069" });
    // The confirm goes out through the node's outbox deadline, due now.
    clock.advance(0);
  }
  const events = () => out2.map((m) => (m.payload as { event: string }).event);

  it("an alert: the page to the one on call on output 1, opened and notified on output 2, done once", async () => {
    await load(oncallFlow({}));
    await send({ topic: "disk", payload: "disk full on db-1" });
    assert.equal(out.length, 1);
    assert.deepEqual(out[0].mobile, [A]);
    assert.equal(out[0].payload, "disk full on db-1 Reply 1 to ack");
    assert.equal(out[0].topic, "disk");
    assert.deepEqual(out[0].oncall, { kind: "page", key: "disk", code: 1, step: 1, round: 1, count: 1 });
    assert.deepEqual(events(), ["opened", "notified"]);
    assert.deepEqual((out2[1].payload as { to: string[] }).to, [A]);
    assert.equal(completed.length, 1);
    await waitFor(() => statusText() === "1 open · paged disk", 5000, statusText());
  });

  it("zh-CN runtime: the page says 回复1确认, the confirm 已确认, the status in Chinese", async () => {
    await load(oncallFlow({}), "zh-CN");
    await send({ topic: "disk", payload: "磁盘已满" });
    assert.equal(out[0].payload, "磁盘已满 回复1确认");
    await reply(A, "收到");
    await waitFor(() => out.length === 2, 5000, "the confirm");
    assert.equal(out[1].payload, "已确认 磁盘已满");
    await waitFor(() => statusText() === "1 个未结束 · 已确认 disk", 5000, statusText());
  });

  it("the chain goes on by the clock; a reply stops it (confirm, acknowledged), nothing after", async () => {
    await load(oncallFlow({}));
    await send({ topic: "disk", payload: "disk full" });
    await after(5 * MIN, 2);
    assert.deepEqual(out[1].mobile, [B]);
    assert.equal(events().at(-1), "escalated");
    await reply(B, "1");
    await waitFor(() => out.length === 3, 5000, "the confirm");
    assert.deepEqual([out[2].mobile, out[2].payload], [[B], "Acknowledged disk full"]);
    assert.equal(events().at(-1), "acknowledged");
    assert.equal((out2.at(-1)!.payload as { by: string }).by, B);
    clock.advance(60 * MIN);
    await repliesFor(state()).last;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(out.length, 3, "no step after the acknowledgement");
  });

  it("resolved (msg.status or msg.resolved): resolved SMS to everyone paged and the event; msg.ack acknowledges from the flow", async () => {
    await load(oncallFlow({}));
    await send({ topic: "a", payload: "alpha" }, { topic: "b", payload: "beta" });
    await after(5 * MIN, 4);
    await send({ topic: "a", status: "resolved" });
    assert.deepEqual([out[4].mobile, out[4].payload], [[A, B], "Resolved alpha"]);
    assert.equal((out[4].oncall as { kind: string }).kind, "resolved");
    await send({ topic: "b", ack: true, ackBy: "ops dashboard" });
    assert.equal(events().at(-1), "acknowledged");
    assert.equal((out2.at(-1)!.payload as { by: string }).by, "ops dashboard");
    await send({ topic: "b", resolved: true });
    assert.equal(events().at(-1), "resolved");
    await send({ topic: "unknown", status: "resolved" });
    assert.equal(out2.length, 9, "an unknown key does nothing");
  });

  it("a delivery summary wired back with nothing delivered starts the next step at once", async () => {
    await load(oncallFlow({}));
    await send({ topic: "disk", payload: "disk full" });
    const page = out[0];
    await send({
      ...page,
      payload: {
        msgid: "m1",
        total: 1,
        delivered: [],
        failed: [{ mobile: A, status: "UNDELIV" }],
        pending: [],
        complete: true,
      },
    });
    assert.deepEqual(out[1].mobile, [B], "step 2 without waiting");
    await send({
      ...out[1],
      payload: { msgid: "m2", total: 1, delivered: [B], failed: [], pending: [], complete: true },
    });
    assert.equal(out.length, 2, "a delivered one changes nothing");
  });

  it("inputs it refuses go to Catch: an empty topic (INVALID_PAYLOAD), an alert beyond maxOpen (MAX_OPEN, naming the key)", async () => {
    await load(oncallFlow({ maxOpen: "1" }));
    await send({ payload: "no key" }, { topic: "a", payload: "one" }, { topic: "b", payload: "two" });
    assert.equal(caught.length, 2);
    assert.equal((caught[0].error as { code: string }).code, "INVALID_PAYLOAD");
    assert.equal((caught[1].error as { code: string }).code, "MAX_OPEN");
    assert.match((caught[1].error as { message: string }).message, /"b"/);
    assert.equal(out.length, 1);
    assert.equal(completed.length, 1, "done once each: the refused ones with their error (to Catch)");
  });

  describe("bad settings", () => {
    for (const [lang, text] of [
      ["en-US", "The rota has 1 invalid number(s): 123"],
      ["zh-CN", "值班表中有 1 个无效号码：123"],
    ] as Array<[Lang, string]>) {
      it(`a rota with "123" (${lang}): a clear error at start, a red status; alerts go to Catch`, async () => {
        await load(oncallFlow({ rota: [A, "123"] }), lang);
        assert.deepEqual(own("o", "error"), [text]);
        const s = own("o", "status")[0] as { fill: string; text: string };
        assert.deepEqual([s.fill, s.text], ["red", lang === "en-US" ? "bad settings" : "设置有误"]);
        await send({ topic: "a", payload: "x" });
        assert.equal(out.length + out2.length, 0);
        assert.equal((caught[0].error as { message: string }).message, `Error: ${text}`);
      });
    }

    it("a rotating rota without its start, steps that are not JSON: refused with the reason", async () => {
      await load(oncallFlow({ rotate: "daily" }));
      assert.match(String(own("o", "error")[0]), /needs its start/);
      await helper.unload();
      await load(oncallFlow({ steps: "[{" }));
      assert.match(String(own("o", "error")[0]), /^Steps must be a JSON list/);
    });

    it("no account: NO_CONFIG for every alert", async () => {
      await load(oncallFlow({ config: "" }));
      await send({ topic: "a", payload: "x" });
      assert.equal((caught[0].error as { code: string }).code, "NO_CONFIG");
    });
  });

  it("a redeploy keeps the open alerts: the new node goes on with the chain and takes replies", async () => {
    await load(oncallFlow({}));
    await send({ topic: "disk", payload: "disk full" });
    await helper.setFlows(oncallFlow({ name: "renamed" }) as never, "full", creds() as never);
    out = collect("out");
    out2 = collect("out2");
    await waitFor(() => statusText() === "1 open", 5000, `open count read back, got "${statusText()}"`);
    await after(5 * MIN, 1);
    assert.deepEqual(out[0].mobile, [B]);
    await reply(A, "1");
    await waitFor(() => out.length === 2, 5000, "the confirm from the new node");
  });

  it("a node removed for good discards its alerts with one log line; a later node of that id starts empty", async () => {
    await load(oncallFlow({}));
    await send({ topic: "a", payload: "1" }, { topic: "b", payload: "2" });
    const without = oncallFlow({}).filter((n) => !["o", "done", "completed"].includes(n.id));
    const logged = () =>
      (helper.log() as unknown as { args: Array<[{ msg: unknown }]> }).args.map(([e]) => String(e.msg));
    await helper.setFlows(without as never, "full", creds() as never);
    assert.deepEqual(
      logged().filter((l) => /discarded/.test(l)),
      ["2 open alert(s) discarded: the node was removed"],
    );
    await helper.setFlows(oncallFlow({}) as never, "full", creds() as never);
    out = collect("out");
    clock.advance(60 * MIN);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(out.length, 0);
    await reply(A, "1");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(out.length, 0, "their codes are gone too");
  });
});

describe("nodes/sms-oncall with sms-send, the simulator and sms-receive (real time)", function () {
  this.timeout(30_000);
  let sim: Simulator;
  let server: http.Server;

  afterEach(async () => {
    await helper.unload();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await sim?.close();
    await closeAllStates();
  });

  it("a page nobody received (UNDELIV) escalates at once; a reply pushed by the platform acknowledges", async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }], reportDelayMs: 50 });
    const flow = flowWith({ url: sim.url }, [
      { id: "o", type: "sms-oncall", config: "cfg", rota: [A, B], wires: [["s"], ["out2"]] },
      { id: "s", type: "sms-send", config: "cfg", track: true, trackTimeout: "60", wires: [["out"], ["o"]] },
      { id: "r", type: "sms-receive", config: "cfg", path: "/sms/oncall", wires: [[], ["mo"]] },
      { id: "mo", type: "helper" },
    ]);
    await helper.load(modules("en-US") as never, flow as never, creds() as never);
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms/oncall`;
    sim.reportUrl = base;
    sim.moUrl = base;
    sim.account("demo")!.reportStatus[A] = "UNDELIV";
    const texts = () =>
      sim.requests.filter((r) => r.path.endsWith("/HttpBatchSendSM")).map((r) => [r.params.mobile, r.params.msg]);
    const mo: Msg[] = [];
    helper.getNode("mo").on("input", (m: Msg) => mo.push(m));
    helper.getNode("o").receive({ topic: "disk", payload: "disk full" } as never);
    await waitFor(() => texts().length === 2, 10_000, `the escalation (got ${JSON.stringify(texts())})`);
    assert.deepEqual(texts(), [
      [A, "disk full Reply 1 to ack"],
      [B, "disk full Reply 1 to ack"],
    ]);
    const r = await fetch(`${sim.url}/sim/mo`, { method: "POST", body: JSON.stringify({ mobile: B, text: "1" }) });
    assert.equal(r.status, 200);
    await waitFor(() => texts().length === 3, 10_000, "the confirm");
    assert.deepEqual(texts()[2], [B, "Acknowledged disk full"]);
  });
});
