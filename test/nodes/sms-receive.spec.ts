import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import supertest from "supertest";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import {
  captured,
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

const receiver = (o: Record<string, unknown> = {}): FlowNode => ({
  id: "r",
  type: "sms-receive",
  config: "cfg",
  path: "/sms/push",
  reassemble: true,
  partTimeout: 600,
  wires: [["out"], ["out2"]],
  ...o,
});
const AUTH = { receiver: "rcv", pswd: RECEIVER_PASSWORD };
const report = { ...AUTH, msgid: "1234567890100", reportTime: "1012241002", mobile: "13900210021", status: "DELIVRD" };
type Payload = Record<string, unknown>;

function app() {
  return supertest(captured.httpNode!);
}

function routesFor(path: string): number {
  const stack = (captured.httpNode as unknown as { _router: { stack: Array<{ route?: { path: string } }> } })._router
    .stack;
  return stack.filter((l) => l.route?.path === path).length;
}

describe("nodes/sms-receive (real HTTP on RED.httpNode)", () => {
  afterEach(() => helper.unload());

  async function start(
    o: Record<string, unknown> = {},
    c = creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }),
  ) {
    await load(flowWith({}, [receiver(o)]), c);
    return { reports: collect("out"), mo: collect("out2") };
  }

  it("a GET report: 200 OK at once, output 1 with the SPEC shape, extra params kept", async () => {
    const { reports, mo } = await start();
    const res = await app()
      .get("/sms/push")
      .query({ ...report, notifyTime: "101224100259", batchSeq: "3" });
    assert.equal(res.status, 200);
    assert.equal(res.text, "OK");
    const [m] = await reports.next();
    assert.equal(m.topic, "report");
    assert.equal(m.msgid, "1234567890100");
    const p = m.payload as Payload;
    assert.equal(p.msgid, "1234567890100");
    assert.equal(p.mobile, "13900210021");
    assert.equal(p.status, "DELIVRD");
    assert.equal(p.delivered, true);
    assert.equal(p.description, "delivered");
    assert.equal(p.reportTime, "2010-12-24T10:02:00+08:00");
    assert.equal(p.reportTimeRaw, "1012241002");
    assert.match(p.receivedAt as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);
    assert.deepEqual(p.extra, { notifyTime: "101224100259", batchSeq: "3" });
    assert.ok(!JSON.stringify(m).includes(RECEIVER_PASSWORD));
    assert.equal(mo.msgs.length, 0);
  });

  it("a failed status is not delivered; an unreadable time is null with the raw kept", async () => {
    const { reports } = await start();
    await app()
      .get("/sms/push")
      .query({ ...report, status: "UNDELIV", reportTime: "garbage" })
      .expect(200);
    const [m] = await reports.next();
    const p = m.payload as Payload;
    assert.equal(p.delivered, false);
    assert.match(p.description as string, /UNDELIV/);
    assert.equal(p.reportTime, null);
    assert.equal(p.reportTimeRaw, "garbage");
  });

  it("POST form and POST JSON are accepted", async () => {
    const { reports } = await start();
    await app().post("/sms/push").type("form").send(report).expect(200, "OK");
    await app()
      .post("/sms/push")
      .send({ ...report, msgid: "2" })
      .expect(200, "OK");
    const msgs = await reports.next(2);
    assert.deepEqual(
      msgs.map((m) => m.msgid),
      ["1234567890100", "2"],
    );
  });

  it("a body already parsed by Node-RED's own middleware is accepted", async () => {
    const { reports } = await start();
    const outer = express();
    outer.use(express.urlencoded({ extended: true }));
    outer.use(captured.httpNode!);
    await supertest(outer).post("/sms/push").type("form").send(report).expect(200, "OK");
    const [m] = await reports.next();
    assert.equal(m.msgid, "1234567890100");
  });

  it("401 on wrong or missing receiver credentials, nothing emitted", async () => {
    const { reports, mo } = await start();
    await app()
      .get("/sms/push")
      .query({ ...report, pswd: "wrong" })
      .expect(401);
    await app()
      .get("/sms/push")
      .query({ ...report, receiver: "other" })
      .expect(401);
    const { receiver: _r, pswd: _p, ...bare } = report;
    await app().get("/sms/push").query(bare).expect(401);
    await sleep(50);
    assert.equal(reports.msgs.length + mo.msgs.length, 0);
  });

  it("no credentials configured: pushes are accepted without them", async () => {
    const { reports } = await start({}, creds());
    const { receiver: _r, pswd: _p, ...bare } = report;
    await app().get("/sms/push").query(bare).expect(200, "OK");
    await reports.next();
  });

  it("400 with a reason for malformed pushes", async () => {
    await start();
    for (const [q, reason] of [
      [{ ...AUTH }, /neither a delivery report/],
      [{ ...report, msgid: "" }, /missing msgid/],
      [{ ...report, mobile: "1".repeat(100) }, /mobile too long/],
      [{ ...AUTH, mobile: "13800138000", msg: "x", isems: "1", emshead: "9,3,4" }, /number must be 1..total/],
      [{ ...AUTH, mobile: "13800138000", msg: "x", isems: "1", emshead: "9,0,0" }, /total must be/],
      [{ ...AUTH, mobile: "13800138000", msg: "x", isems: "1", emshead: "a,b" }, /id,total,number/],
    ] as const) {
      const res = await app().get("/sms/push").query(q);
      assert.equal(res.status, 400, JSON.stringify(q));
      assert.match(res.text, reason);
    }
  });

  it("413 for a body over the limit", async () => {
    await start();
    const res = await app()
      .post("/sms/push")
      .type("form")
      .send({ ...report, filler: "x".repeat(100_000) });
    assert.equal(res.status, 413);
  });

  it("the same report pushed again is answered OK and emitted once", async () => {
    const { reports } = await start();
    for (let i = 0; i < 3; i++) await app().get("/sms/push").query(report).expect(200, "OK");
    await app()
      .get("/sms/push")
      .query({ ...report, status: "UNDELIV" })
      .expect(200);
    await reports.next(2);
    await sleep(50);
    assert.deepEqual(
      reports.msgs.map((m) => (m.payload as Payload).status),
      ["DELIVRD", "UNDELIV"],
    );
  });

  it("a plain inbound SMS on output 2; text with = & % and emoji intact", async () => {
    const { mo, reports } = await start();
    const text = "a=b&c=50% 你好 😀+1";
    await app()
      .get("/sms/push")
      .query({
        ...AUTH,
        moTime: "1208212205",
        destcode: "1065751600001",
        mobile: "13800210021",
        msg: text,
        carrier: "cm",
      })
      .expect(200, "OK");
    const [m] = await mo.next();
    assert.equal(m.topic, "mo");
    const p = m.payload as Payload;
    assert.equal(p.text, text);
    assert.equal(p.mobile, "13800210021");
    assert.equal(p.destcode, "1065751600001");
    assert.equal(p.moTime, "2012-08-21T22:05:00+08:00");
    assert.equal(p.moTimeRaw, "1208212205");
    assert.equal(p.parts, 1);
    assert.equal(p.complete, true);
    assert.deepEqual(p.missing, []);
    assert.deepEqual(p.extra, { carrier: "cm" });
    assert.equal(reports.msgs.length, 0);
  });

  it("a 3-part message pushed shuffled with a duplicate part gives one complete message", async () => {
    const { mo } = await start();
    const parts = ["第一段=&%", "second 😀 ", "third"];
    for (const n of [3, 1, 3, 2, 1]) {
      await app()
        .get("/sms/push")
        .query({
          ...AUTH,
          mobile: "13800138000",
          destcode: "106",
          msg: parts[n - 1],
          isems: "1",
          emshead: `77,3,${n}`,
          moTime: "1208212205",
        })
        .expect(200, "OK");
    }
    await mo.next(1);
    await sleep(50);
    assert.equal(mo.msgs.length, 1);
    const p = mo.msgs[0].payload as Payload;
    assert.equal(p.text, parts.join(""));
    assert.equal(p.parts, 3);
    assert.equal(p.complete, true);
    assert.deepEqual(p.missing, []);
  });

  it("a withheld part gives one partial message after partTimeout", async () => {
    const { mo } = await start({ partTimeout: "0.3" });
    for (const n of [1, 3]) {
      await app()
        .get("/sms/push")
        .query({ ...AUTH, mobile: "13800138000", destcode: "106", msg: `<${n}>`, isems: "1", emshead: `5,3,${n}` })
        .expect(200);
    }
    await sleep(100);
    assert.equal(mo.msgs.length, 0);
    const [m] = await mo.next(1, 2000);
    const p = m.payload as Payload;
    assert.equal(p.complete, false);
    assert.deepEqual(p.missing, [2]);
    assert.equal(p.text, "<1><3>");
    assert.equal(p.parts, 2);
  });

  it("on close, pending partial messages are emitted as incomplete", async () => {
    const { mo } = await start();
    await app()
      .get("/sms/push")
      .query({ ...AUTH, mobile: "13800138000", msg: "head", isems: "1", emshead: "8,2,1" })
      .expect(200);
    const node = helper.getNode("r");
    const sendSpy = node.send as unknown as { args: unknown[][] };
    const before = sendSpy.args.length;
    await helper.clearFlows();
    const sent = sendSpy.args.slice(before).map((a) => (a[0] as Array<{ payload: Payload } | null>)[1]?.payload);
    assert.equal(sent.length + mo.msgs.length, 1);
    const p = (sent[0] ?? mo.msgs[0].payload) as Payload;
    assert.equal(p.complete, false);
    assert.deepEqual(p.missing, [2]);
  });

  it("50 redeploys leave one handler, not 51", async () => {
    const flow = flowWith({}, [receiver()]);
    await load(flow, creds());
    for (let i = 0; i < 50; i++) await helper.setFlows(flow as never, "full", creds() as never);
    assert.equal(routesFor("/sms/push"), 2, "one GET and one POST route");
    await helper.clearFlows();
    assert.equal(routesFor("/sms/push"), 0);
  });

  it("a second sms-receive on the same path reports a clear error", async () => {
    await load(flowWith({}, [receiver(), receiver({ id: "r2", wires: [[], []] })]), creds());
    // error() is one spy on Node.prototype: pick the calls made by the two receive nodes.
    const spy = helper.getNode("r").error as unknown as { args: unknown[][]; thisValues: Array<{ id: string }> };
    const all = spy.args.filter((_a, i) => ["r", "r2"].includes(spy.thisValues[i]?.id)).map((a) => String(a[0]));
    assert.equal(all.length, 1, all.join(" | "));
    assert.match(all[0], /pathInUse/);
    assert.equal(routesFor("/sms/push"), 2);
  });

  describe("end to end with the simulator", () => {
    let sim: Simulator;
    let server: http.Server;
    afterEach(async () => {
      await sim?.close();
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    });

    it("the simulator pushes reports for a real send into this node", async () => {
      sim = await startSimulator({
        accounts: [{ account: "demo", password: PASSWORD }],
        receiver: "rcv",
        receiverPassword: RECEIVER_PASSWORD,
        reportDelayMs: 20,
      });
      await load(
        flowWith({ url: sim.url }, [
          receiver(),
          { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000,13900139000", wires: [["sent"]] },
          { id: "sent", type: "helper" },
        ]),
        creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }),
      );
      server = http.createServer(captured.httpNode!);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      sim.reportUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms/push`;
      const sent = collect("sent");
      const reports = collect("out");
      helper.getNode("s").receive({ payload: "hello" } as never);
      const [s] = await sent.next();
      const got = await reports.next(2);
      await sim.idle();
      assert.deepEqual(got.map((m) => m.msgid).sort(), [s.msgid, s.msgid]);
      assert.deepEqual(got.map((m) => (m.payload as Payload).mobile).sort(), ["13800138000", "13900139000"]);
      assert.ok(got.every((m) => (m.payload as Payload).delivered === true));
      assert.equal(sim.stats.pushOk, 2);
    });

    it("the simulator's long inbound SMS, shuffled and duplicated, arrives as one message", async () => {
      sim = await startSimulator({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD });
      await load(flowWith({}, [receiver()]), creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }));
      server = http.createServer(captured.httpNode!);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      sim.moUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms/push`;
      const mo = collect("out2");
      const text = "长短信😀=&%".repeat(30);
      sim.injectMo({ mobile: "13800138000", text, shuffle: true, duplicate: true });
      const [m] = await mo.next();
      await sim.idle();
      await sleep(50);
      assert.equal(mo.msgs.length, 1);
      assert.equal((m.payload as Payload).text, text);
      assert.equal((m.payload as Payload).complete, true);
    });
  });
});
