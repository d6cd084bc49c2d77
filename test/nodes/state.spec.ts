// The account state seen from the nodes (SPEC B6): what config nodes of one account share, what a
// redeploy keeps, and how a `redis` store that is wrong or down shows and behaves.
import assert from "node:assert/strict";
import supertest from "supertest";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { closeAllStates } from "../../src/lib/state/registry";
import { startRedis, type RedisServer } from "../support/redis";
import { captured, collect, creds, flowWith, helper, load, PASSWORD, type FlowNode } from "../support/nr";
import { waitFor } from "../support/stub";

type Payload = Record<string, unknown>;
type Spy = { args: unknown[][]; thisValues: Array<{ id: string }> };

/** The status objects a node set, in order. */
function statuses(id: string): Array<{ fill?: string; shape?: string; text?: string }> {
  const spy = helper.getNode(id).status as unknown as Spy;
  return spy.args.filter((_a, i) => spy.thisValues[i]?.id === id).map((a) => a[0] as never);
}

function logged(level: "warn" | "error" | "log"): string[] {
  const spy = helper.getNode("cfg")[level] as unknown as Spy;
  return spy.args.filter((_a, i) => spy.thisValues[i]?.id === "cfg").map((a) => String(a[0]));
}

describe("nodes: the account state", function () {
  this.timeout(30_000);
  let sim: Simulator;
  beforeEach(async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }] });
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
    await closeAllStates();
  });

  const balances = () => sim.requests.filter((r) => r.path.endsWith("/QueryBalance")).length;

  it("the balance window holds across a redeploy that renames the config node", async () => {
    const flow = (name: string) =>
      flowWith({ url: sim.url, name }, [{ id: "b", type: "sms-balance", config: "cfg", wires: [["out"]] }]);
    await load(flow("first"));
    let out = collect("out");
    helper.getNode("b").receive({} as never);
    assert.equal(((await out.next())[0].payload as Payload).cached, false);
    await helper.setFlows(flow("renamed") as never, "full", creds() as never);
    out = collect("out");
    helper.getNode("b").receive({} as never);
    const [m] = await out.next();
    assert.equal((m.payload as Payload).ok, true);
    assert.equal((m.payload as Payload).cached, true);
    assert.equal(balances(), 1, "one platform query: the platform would have answered 103");
  });

  it("two config nodes of one account share the balance window and the send rate", async () => {
    const nodes: FlowNode[] = [
      { id: "cfg2", type: "sms-config", name: "copy", url: sim.url, rate: 5 },
      { id: "b", type: "sms-balance", config: "cfg", wires: [["out"]] },
      { id: "b2", type: "sms-balance", config: "cfg2", wires: [["out2"]] },
      { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
      { id: "s2", type: "sms-send", config: "cfg2", mobile: "13800138000", wires: [["out2"]] },
    ];
    await load(flowWith({ url: sim.url, rate: 5 }, nodes), {
      ...creds(),
      cfg2: { account: "demo", password: PASSWORD },
    });
    const out = collect("out");
    const out2 = collect("out2");
    helper.getNode("b").receive({} as never);
    await out.next(1);
    helper.getNode("b2").receive({} as never);
    await out2.next(1);
    assert.equal((out2.msgs[0].payload as Payload).cached, true);
    assert.equal(balances(), 1);
    for (let i = 0; i < 4; i++) {
      helper.getNode("s").receive({ payload: `a${i}` } as never);
      helper.getNode("s2").receive({ payload: `b${i}` } as never);
    }
    await out.next(5, 15_000);
    await out2.next(5, 15_000);
    const starts = sim.requests
      .filter((r) => r.path.endsWith("/HttpBatchSendSM"))
      .map((r) => Date.parse(r.at))
      .sort((a, b) => a - b);
    assert.equal(starts.length, 8);
    // 5 requests/s for the account, not for each config node: starts at least ~200 ms apart.
    for (let i = 1; i < starts.length; i++) assert.ok(starts[i] - starts[i - 1] >= 150, `${starts.join(",")}`);
  });

  describe("long SMS parts live in the account state", () => {
    const receiver = (o: Record<string, unknown> = {}): FlowNode => ({
      id: "r",
      type: "sms-receive",
      config: "cfg",
      path: "/sms/push",
      partTimeout: 600,
      wires: [["out"], ["out2"]],
      ...o,
    });
    const part = (n: number, path = "/sms/push") =>
      supertest(captured.httpNode!)
        .get(path)
        .query({ mobile: "13800138000", destcode: "106", msg: `<${n}>`, isems: "1", emshead: `42,2,${n}` })
        .expect(200, "OK");
    /** inbound messages the receive node(s) sent, whichever instance of it */
    const moSent = () => {
      const spy = helper.getNode("r").send as unknown as Spy;
      return spy.args.map((a) => (a[0] as Array<{ payload: Payload } | null>)[1]?.payload).filter(Boolean) as Payload[];
    };

    for (const type of ["full", "flows", "nodes"] as const) {
      it(`a part pushed before a ${type} deploy completes after it, once`, async () => {
        await load(flowWith({}, [receiver({ name: "before" })]));
        await part(1);
        // The receive node itself changes, so every deploy type restarts it.
        await helper.setFlows(flowWith({}, [receiver({ name: "after" })]) as never, type, creds() as never);
        const mo = collect("out2");
        await part(2);
        const [m] = await mo.next(1);
        assert.equal((m.payload as Payload).text, "<1><2>");
        assert.equal((m.payload as Payload).complete, true);
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(moSent().length, 1, "nothing was flushed on the redeploy");
      });
    }

    it("Node-RED stopping with memory state emits pending long SMS as incomplete", async () => {
      await load(flowWith({}, [receiver()]));
      await part(1);
      const node = helper.getNode("r");
      const spy = node.send as unknown as Spy;
      const before = spy.args.length;
      await helper.unload();
      const sent = spy.args.slice(before).map((a) => (a[0] as Array<{ payload: Payload } | null>)[1]?.payload);
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.complete, false);
      assert.deepEqual(sent[0]!.missing, [2]);
    });

    it("a receive node redeployed with another path emits what was pending under the old one", async () => {
      await load(flowWith({}, [receiver()]));
      await part(1);
      await helper.setFlows(flowWith({}, [receiver({ path: "/sms/other" })]) as never, "full", creds() as never);
      await waitFor(() => moSent().length === 1, 5000, "the old path's part");
      assert.equal(moSent()[0].text, "<1>");
      assert.equal(moSent()[0].complete, false);
    });
  });

  describe("with store: redis", () => {
    let redis: RedisServer;
    before(async () => {
      redis = await startRedis({ password: "Redis-Pa55-Qx7" });
    });
    after(() => redis?.stop());

    const redisConfig = (extra: Record<string, unknown> = {}) => ({
      url: sim.url,
      store: "redis",
      redisUrl: `redis://127.0.0.1:${redis.port}/0`,
      redisPrefix: "nodes:",
      ...extra,
    });

    it("the right password connects: sends go, nothing shows as local", async () => {
      await load(
        flowWith(redisConfig({ rate: 5 }), [
          { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
        ]),
        creds({ redisPassword: "Redis-Pa55-Qx7" }),
      );
      await waitFor(() => (helper.getNode("cfg") as unknown as { state: { mode: string } }).state.mode === "shared");
      const out = collect("out");
      helper.getNode("s").receive({ payload: "hi" } as never);
      assert.equal(((await out.next())[0].payload as Payload).ok, true);
      assert.ok(!statuses("s").some((s) => s.fill === "yellow"));
      const keys = await redis.command("KEYS", "nodes:*");
      assert.match(keys, /nodes:\{[0-9a-f]+\}:pace/);
    });

    it("a wrong password: red status on the config and the send node, one log line without the secret, sends still go", async () => {
      await load(
        flowWith(redisConfig(), [
          { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
        ]),
        creds({ redisPassword: "Wrong-Pw-9912" }),
      );
      await waitFor(() => statuses("s").some((s) => s.fill === "red"), 8000, "red status on the send node");
      assert.ok(statuses("cfg").some((s) => s.fill === "red" && /redis/i.test(String(s.text))));
      const warnings = logged("warn");
      const errors = logged("error");
      assert.equal(
        errors.filter((w) => /state/.test(w)).length,
        1,
        "a wrong password is an error: " + errors.join(" | "),
      );
      assert.equal(warnings.filter((w) => /state/.test(w)).length, 0, warnings.join(" | "));
      for (const line of [...warnings, ...errors, ...logged("log")]) {
        assert.doesNotMatch(line, /Wrong-Pw-9912|Redis-Pa55/);
      }
      const out = collect("out");
      helper.getNode("s").receive({ payload: "hi" } as never);
      assert.equal(((await out.next())[0].payload as Payload).ok, true, "a send is never blocked by Redis");
    });

    it("a key prefix with { or }: red status and one error line at start, sends still go (SPEC B6a)", async () => {
      await load(
        flowWith(redisConfig({ redisPrefix: "team{a}:" }), [
          { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
        ]),
        creds({ redisPassword: "Redis-Pa55-Qx7" }),
      );
      await waitFor(() => statuses("s").some((s) => s.fill === "red"), 8000, "red status on the send node");
      // (The test helper shows texts by their catalog keys.)
      assert.ok(statuses("cfg").some((s) => s.fill === "red" && /redis\.prefix/.test(String(s.text))));
      const errors = logged("error").filter((w) => /state/.test(w));
      assert.equal(errors.length, 1, errors.join(" | "));
      const out = collect("out");
      helper.getNode("s").receive({ payload: "hi" } as never);
      assert.equal(((await out.next())[0].payload as Payload).ok, true);
    });

    it("Redis unreachable: yellow 'state: local' on the nodes, sends go at once", async () => {
      await load(
        flowWith(redisConfig({ redisUrl: "redis://127.0.0.1:1/0" }), [
          { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
        ]),
        creds(),
      );
      await waitFor(() => statuses("s").some((s) => s.fill === "yellow"), 8000, "yellow status");
      const out = collect("out");
      const t0 = Date.now();
      helper.getNode("s").receive({ payload: "hi" } as never);
      assert.equal(((await out.next())[0].payload as Payload).ok, true);
      assert.ok(Date.now() - t0 < 2000);
    });
  });

  describe("with store: redis and an ACL user (SPEC B6a)", () => {
    let redis: RedisServer;
    before(async () => {
      // `default` has no password, as in the issue: a client that dropped the user name would
      // silently run as `default`, past the ACL.
      redis = await startRedis({ users: [["nr", "on", ">nr-Pa55-81", "~acl:*", "&*", "+@all", "-@dangerous"]] });
    });
    after(() => redis?.stop());

    const aclConfig = () => ({
      url: sim.url,
      store: "redis",
      redisUrl: `redis://nr@127.0.0.1:${redis.port}/0`,
      redisPrefix: "acl:",
      rate: 5,
    });
    const clients = async () => String(await redis.call("CLIENT", "LIST"));

    it("a user name in the URL with the password credential runs as that user", async () => {
      await load(
        flowWith(aclConfig(), [{ id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] }]),
        creds({ redisPassword: "nr-Pa55-81" }),
      );
      await waitFor(() => (helper.getNode("cfg") as unknown as { state: { mode: string } }).state.mode === "shared");
      const out = collect("out");
      helper.getNode("s").receive({ payload: "hi" } as never);
      assert.equal(((await out.next())[0].payload as Payload).ok, true);
      assert.match(await redis.command("KEYS", "acl:*"), /acl:\{[0-9a-f]+\}:pace/);
      const list = await clients();
      assert.match(list, /user=nr /);
      // Only this test's own look (CLIENT LIST) runs as default.
      assert.equal(list.split("\n").filter((l) => /user=default /.test(l)).length, 1, list);
      assert.ok(!statuses("s").some((st) => st.fill === "yellow" || st.fill === "red"));
    });

    it("a wrong password for the user: red status, one error line, no retry loop and no fallback to default", async () => {
      // Refused logins of `nr` (ACL LOG counts repeats of one entry).
      const denied = async () => {
        const log = (await redis.call("ACL", "LOG")) as Array<Array<string | number>>;
        let n = 0;
        for (const e of log) {
          const f = new Map<string, string | number>();
          for (let i = 0; i + 1 < e.length; i += 2) f.set(String(e[i]), e[i + 1]);
          if (f.get("reason") === "auth" && f.get("username") === "nr") n += Number(f.get("count"));
        }
        return n;
      };
      await redis.call("ACL", "LOG", "RESET");
      const before = await denied();
      const keysBefore = await redis.command("KEYS", "acl:*");
      await load(
        flowWith(aclConfig(), [{ id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] }]),
        creds({ redisPassword: "Wrong-Pa55-17" }),
      );
      await waitFor(() => statuses("s").some((st) => st.fill === "red"), 8000, "red status on the send node");
      assert.ok(statuses("cfg").some((st) => st.fill === "red" && /redis\.auth/.test(String(st.text))));
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await denied()) - before, 1, "refused once: no reconnect loop");
      const errors = logged("error").filter((w) => /state/.test(w));
      assert.equal(errors.length, 1, errors.join(" | "));
      for (const line of [...logged("warn"), ...logged("error"), ...logged("log")]) {
        assert.doesNotMatch(line, /Wrong-Pa55-17|nr-Pa55-81/);
      }
      assert.doesNotMatch(await clients(), /user=nr /);
      assert.equal(await redis.command("KEYS", "acl:*"), keysBefore, "nothing written as default");
      const out = collect("out");
      helper.getNode("s").receive({ payload: "hi" } as never);
      assert.equal(((await out.next())[0].payload as Payload).ok, true, "a send is never blocked by Redis");
    });
  });
});
