import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { readSettings } from "../../src/nodes/settings";
import { stub as sinonStub } from "sinon";
import {
  collect,
  creds,
  flowWith,
  helper,
  load,
  PASSWORD,
  RECEIVER_PASSWORD,
  sleep,
  type FlowNode,
} from "../support/nr";
import { reply, StubServer } from "../support/stub";

describe("nodes/sms-config", () => {
  it("reads numbers and booleans given as strings, with SPEC defaults", () => {
    assert.deepEqual(readSettings({}), {
      url: "http://120.26.66.24",
      product: "",
      extno: "",
      signature: "",
      timeout: 10000,
      rate: 10,
      queue: 10000,
      retries: 3,
      maxLength: 700,
      mobileCheck: "cn",
      tz: "+08:00",
      offsetMinutes: 480,
      store: "memory",
      redisUrl: "redis://127.0.0.1:6379/0",
      redisPrefix: "cnsms:",
      redisMode: "single",
      redisMaster: "mymaster",
    });
    const s = readSettings({
      timeout: "500",
      rate: "0",
      queue: "5",
      retries: "1",
      maxLength: "536",
      mobileCheck: "digits",
      tz: "+0530",
    });
    assert.equal(s.timeout, 500);
    assert.equal(s.rate, 0);
    assert.equal(s.queue, 5);
    assert.equal(s.retries, 1);
    assert.equal(s.maxLength, 536);
    assert.equal(s.mobileCheck, "digits");
    assert.equal(s.offsetMinutes, 330);
    assert.equal(readSettings({ timeout: "abc" }).timeout, 10000);
  });

  describe("in Node-RED", () => {
    let sim: Simulator;
    beforeEach(async () => {
      sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }] });
    });
    afterEach(async () => {
      await helper.unload();
      await sim.close();
    });

    it("one client per account, shared by its nodes and closed on redeploy", async () => {
      const flow = flowWith({ url: sim.url }, [
        { id: "s1", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
        { id: "s2", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
      ]);
      await load(flow);
      const out = collect("out");
      helper.getNode("s1").receive({ payload: "a" } as never);
      helper.getNode("s2").receive({ payload: "b" } as never);
      await out.next(2);
      const cfg = helper.getNode("cfg") as unknown as { client(): { isClosed: boolean } };
      const client = cfg.client();
      assert.equal(cfg.client(), client);
      await helper.setFlows(flow as never, "full", creds() as never);
      assert.equal(client.isClosed, true);
    });

    it("test connection (admin route) queries the balance with the dialog's values or the saved password", async () => {
      await load(flowWith({ url: sim.url }, []));
      const ok = await helper
        .request()
        .post("/sms-config/test")
        .send({ id: "cfg", url: sim.url, account: "demo", password: "__PWRD__" });
      assert.equal(ok.body.ok, true);
      assert.deepEqual(ok.body.products[0], { product: "1001", balance: 10000 });
      const bad = await helper
        .request()
        .post("/sms-config/test")
        .send({ url: sim.url, account: "demo", password: "nope" });
      assert.equal(bad.body.ok, false);
      assert.equal(bad.body.code, 102);
      assert.ok(!JSON.stringify(ok.body).includes(PASSWORD));
    });
  });

  describe("secrets never leak", () => {
    let stub: StubServer;
    afterEach(async () => {
      await helper.unload();
      await stub?.close();
    });

    it("no log call, status, error, output or Catch message carries a password", async () => {
      stub = new StubServer();
      await stub.start();
      // Replies that tempt a leak: an error page echoing the request, a platform failure, a reset.
      stub.script(
        reply(`<html>pswd=${PASSWORD} ${PASSWORD}</html>`),
        reply("20110725160412,102"),
        reply(`oops ${PASSWORD}`, 500),
        reply("20110725160412,0\n123"),
      );
      const nodes: FlowNode[] = [
        { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
        { id: "b", type: "sms-balance", config: "cfg", wires: [["out"]] },
        { id: "r", type: "sms-receive", config: "cfg", path: "/leak", wires: [["out"], ["out"]] },
      ];
      const consoleLog = sinonStub(console, "log").callThrough();
      try {
        await load(
          flowWith({ url: stub.url, retries: 0 }, nodes),
          creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }),
        );
        const out = collect("out");
        const caught = collect("caught");
        for (let i = 0; i < 4; i++) helper.getNode("s").receive({ payload: `m${i}` } as never);
        helper.getNode("b").receive({} as never);
        helper.getNode("s").receive({ payload: "" } as never);
        await sleep(800);
        const everything = JSON.stringify({
          log: helper.log().args,
          out: out.msgs,
          caught: caught.msgs,
          status: ["s", "b", "r"].map((id) => (helper.getNode(id).status as unknown as { args: unknown }).args),
          error: ["s", "b", "r", "cfg"].map((id) =>
            (helper.getNode(id).error as unknown as { args: unknown[][] }).args.map((a) => String(a[0])),
          ),
          warn: ["s", "b", "r", "cfg"].map((id) => (helper.getNode(id).warn as unknown as { args: unknown }).args),
          console: consoleLog.args,
        });
        assert.ok(caught.msgs.length >= 3, `failures seen: ${caught.msgs.length}`);
        assert.ok(!everything.includes(PASSWORD), "account password leaked");
        assert.ok(!everything.includes(RECEIVER_PASSWORD), "receiver password leaked");
      } finally {
        consoleLog.restore();
      }
    });
  });
});
