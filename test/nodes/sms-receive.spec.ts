import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import express from "express";
import fc from "fast-check";
import supertest from "supertest";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { readPartTimeout } from "../../src/lib/push/endpoint";
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
    const { mo } = await start({ partTimeout: "1" });
    for (const n of [1, 3]) {
      await app()
        .get("/sms/push")
        .query({ ...AUTH, mobile: "13800138000", destcode: "106", msg: `<${n}>`, isems: "1", emshead: `5,3,${n}` })
        .expect(200);
    }
    await sleep(100);
    assert.equal(mo.msgs.length, 0);
    const [m] = await mo.next(1, 5000);
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

  it("a path differing only in case or a trailing slash is the same path for Express: also in use", async () => {
    await load(
      flowWith({}, [
        receiver(),
        receiver({ id: "r2", path: "/SMS/push", wires: [[], []] }),
        receiver({ id: "r3", path: "/sms/push/", wires: [[], []] }),
      ]),
      creds(),
    );
    const spy = helper.getNode("r").error as unknown as { args: unknown[][]; thisValues: Array<{ id: string }> };
    const ids = spy.thisValues.filter((t, i) => /pathInUse/.test(String(spy.args[i][0])) && t).map((t) => t.id);
    assert.deepEqual(ids.sort(), ["r2", "r3"]);
  });

  describe("field variants (SPEC A5, B4)", () => {
    const cn = (y: number, mo: number, d: number, h: number, mi: number, s = 0) =>
      String(Date.UTC(y, mo - 1, d, h - 8, mi, s));

    it("reads every listed time format, emitted in the configured offset without fractions", async () => {
      const { reports } = await start();
      const times: Array<[string, string]> = [
        ["1012241002", "2010-12-24T10:02:00+08:00"],
        ["101224100259", "2010-12-24T10:02:59+08:00"],
        ["20101224100259", "2010-12-24T10:02:59+08:00"],
        [cn(2010, 12, 24, 10, 2, 59), "2010-12-24T10:02:59+08:00"],
        ["2010-12-24 10:02:59", "2010-12-24T10:02:59+08:00"],
        ["2010-12-24T02:02:59.123Z", "2010-12-24T10:02:59+08:00"],
        ["2010-12-24T03:02:59.5+01:00", "2010-12-24T10:02:59+08:00"],
      ];
      for (const [t] of times) {
        await app()
          .get("/sms/push")
          .query({ ...report, reportTime: t })
          .expect(200, "OK");
      }
      const got = await reports.next(times.length);
      assert.deepEqual(
        got.map((m) => [(m.payload as Payload).reportTimeRaw, (m.payload as Payload).reportTime]),
        times,
      );
    });

    it("an epoch-ms time sent as a JSON number is read; the raw keeps its digits", async () => {
      const { mo } = await start();
      await app()
        .post("/sms/push")
        .send({ ...AUTH, mobile: "13800138000", msg: "hi", moTime: Number(cn(2012, 8, 21, 22, 5)) })
        .expect(200, "OK");
      const [m] = await mo.next();
      assert.equal((m.payload as Payload).moTime, "2012-08-21T22:05:00+08:00");
      assert.equal((m.payload as Payload).moTimeRaw, cn(2012, 8, 21, 22, 5));
    });

    it("mobile is normalised as sms-send does, the pushed value kept in mobileRaw", async () => {
      const { reports, mo } = await start();
      await app()
        .get("/sms/push")
        .query({ ...report, mobile: "+8613900210021" })
        .expect(200, "OK");
      // The same report with the number as submitted is a duplicate.
      await app().get("/sms/push").query(report).expect(200, "OK");
      await app()
        .get("/sms/push")
        .query({ ...report, msgid: "2", mobile: "12345" })
        .expect(200, "OK");
      await app()
        .get("/sms/push")
        .query({ ...AUTH, mobile: "8613800138000", msg: "hi" })
        .expect(200, "OK");
      // Parts of one long SMS, echoed with and without the country prefix, still join.
      for (const [n, mobile] of [
        [1, "0086 138-0013-8000"],
        [2, "13800138000"],
      ] as const) {
        await app()
          .get("/sms/push")
          .query({ ...AUTH, mobile, msg: `<${n}>`, isems: "1", emshead: `4,2,${n}` })
          .expect(200, "OK");
      }
      const r = await reports.next(2);
      const m = await mo.next(2);
      await sleep(50);
      assert.deepEqual(
        r.map((x) => [(x.payload as Payload).mobile, (x.payload as Payload).mobileRaw]),
        [
          ["13900210021", "+8613900210021"],
          ["12345", "12345"],
        ],
      );
      assert.equal(reports.msgs.length, 2);
      assert.deepEqual(
        m.map((x) => [(x.payload as Payload).mobile, (x.payload as Payload).mobileRaw, (x.payload as Payload).text]),
        [
          ["13800138000", "8613800138000", "hi"],
          ["13800138000", "0086 138-0013-8000", "<1><2>"],
        ],
      );
    });

    it("with mobileCheck digits, numbers are normalised the digits way", async () => {
      await load(flowWith({ mobileCheck: "digits" }, [receiver()]), creds());
      const reports = collect("out");
      const { receiver: _r, pswd: _p, ...bare } = report;
      await app()
        .get("/sms/push")
        .query({ ...bare, mobile: "+44 20 7946 0000" })
        .expect(200, "OK");
      const [m] = await reports.next();
      assert.equal((m.payload as Payload).mobile, "442079460000");
      assert.equal((m.payload as Payload).mobileRaw, "+44 20 7946 0000");
    });

    it("extra params of any JSON type are kept in extra as they came, never a reason to refuse", async () => {
      const { reports } = await start();
      const extra = {
        notifyTime: "101224100259",
        uid: 7,
        price: 0.05,
        charged: true,
        none: null,
        carrier: { name: "cm", hops: [1, { at: "x" }] },
        ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x${i}`, String(i)])),
      };
      await app()
        .post("/sms/push")
        .send({ ...report, ...extra })
        .expect(200, "OK");
      const [m] = await reports.next();
      assert.deepEqual((m.payload as Payload).extra, extra);
    });

    for (const via of ["the node reads the body", "Node-RED's own parser read it"] as const) {
      it(`a JSON array of reports (${via}): each valid one emitted once, OK when all were valid`, async () => {
        const { reports } = await start();
        const outer = express();
        if (via !== "the node reads the body") outer.use(express.json());
        outer.use(captured.httpNode!);
        const list = [report, { ...report, msgid: "2" }, report, { ...report, msgid: "3", status: "UNDELIV" }];
        await supertest(outer).post("/sms/push").send(list).expect(200, "OK");
        await reports.next(3);
        await sleep(50);
        assert.deepEqual(
          reports.msgs.map((x) => x.msgid),
          ["1234567890100", "2", "3"],
        );
      });
    }

    it("a JSON array with bad elements: OK, the valid ones emitted once (SPEC B4a); none valid: 400 naming them by index", async () => {
      const { reports } = await start();
      // Credentials once in the URL count for every element, also one that is not an object.
      const list = [report, { ...report, msgid: "" }, { ...report, msgid: "5" }, "nonsense", { ...AUTH }];
      // A 400 would make the platform push the whole array again (SPEC B4a): OK when any is valid.
      await app().post("/sms/push").query(AUTH).send(list).expect(200, "OK");
      await reports.next(2);
      await sleep(50);
      assert.deepEqual(
        reports.msgs.map((x) => x.msgid),
        ["1234567890100", "5"],
      );
      // Pushed again all the same: the valid ones are duplicates now.
      await app().post("/sms/push").query(AUTH).send(list).expect(200, "OK");
      await sleep(50);
      assert.equal(reports.msgs.length, 2);
      const res = await app()
        .post("/sms/push")
        .query(AUTH)
        .send([{ ...report, msgid: "" }, "nonsense", { ...AUTH }]);
      assert.equal(res.status, 400);
      assert.match(res.text, /^Bad Request: /);
      assert.match(res.text, /\[0\] missing msgid/);
      assert.match(res.text, /\[1\] not an object/);
      assert.match(res.text, /\[2\] neither a delivery report/);
    });

    it("receiver credentials may come once in the URL for a whole array; one wrong element refuses all", async () => {
      const { reports } = await start();
      const { receiver: _r, pswd: _p, ...bare } = report;
      await app()
        .post("/sms/push")
        .query(AUTH)
        .send([bare, { ...bare, msgid: "2" }])
        .expect(200, "OK");
      await reports.next(2);
      await app()
        .post("/sms/push")
        .send([report, { ...report, msgid: "9", pswd: "wrong" }])
        .expect(401);
      await sleep(50);
      assert.equal(reports.msgs.length, 2);
    });

    const gbk = "%C4%E3%BA%C3"; // 你好 in GB18030
    // Bytes sent as they are: superagent would encode a Buffer with a form type as a form of its bytes.
    const asIs = ((b: Buffer) => b) as unknown as (body: unknown) => string;
    it("percent-encoded GB18030 in a GET query is decoded; UTF-8 still is", async () => {
      const { mo } = await start();
      const q = `receiver=rcv&pswd=${RECEIVER_PASSWORD}&mobile=13800138000&destcode=106`;
      await app().get(`/sms/push?${q}&msg=${gbk}&note=${gbk}`).expect(200, "OK");
      await app().get(`/sms/push?${q}&msg=%E4%BD%A0%E5%A5%BD+%25C4`).expect(200, "OK");
      const got = await mo.next(2);
      assert.equal((got[0].payload as Payload).text, "你好");
      assert.deepEqual((got[0].payload as Payload).extra, { note: "你好" });
      assert.equal((got[1].payload as Payload).text, "你好 %C4");
    });

    for (const via of ["the node reads the body", "Node-RED's own parser read it"] as const) {
      it(`percent-encoded GB18030 in a POST form is decoded (${via})`, async () => {
        const { mo } = await start();
        const outer = express();
        if (via !== "the node reads the body") outer.use(express.urlencoded({ extended: true }));
        outer.use(captured.httpNode!);
        await supertest(outer)
          .post("/sms/push")
          .type("form")
          .send(`receiver=rcv&pswd=${RECEIVER_PASSWORD}&mobile=13800138000&msg=${gbk}+a%2Bb`)
          .expect(200, "OK");
        const [m] = await mo.next();
        assert.equal((m.payload as Payload).text, "你好 a+b");
      });
    }

    it("a declared charset is applied to a POST body the node reads (form and JSON); an unknown one is 415", async () => {
      const { mo } = await start();
      const gbBytes = Buffer.from("c4e3bac3", "hex");
      const form = Buffer.concat([
        Buffer.from(`receiver=rcv&pswd=${RECEIVER_PASSWORD}&mobile=13800138000&msg=`),
        gbBytes,
      ]);
      await app()
        .post("/sms/push")
        .set("content-type", "application/x-www-form-urlencoded; charset=GBK")
        .serialize(asIs)
        .send(form)
        .expect(200, "OK");
      const json = Buffer.concat([
        Buffer.from(`{"receiver":"rcv","pswd":"${RECEIVER_PASSWORD}","mobile":"13900139000","msg":"`),
        gbBytes,
        Buffer.from('"}'),
      ]);
      await app()
        .post("/sms/push")
        .set("content-type", 'application/json; charset="gb18030"')
        .serialize(asIs)
        .send(json)
        .expect(200, "OK");
      const got = await mo.next(2);
      assert.deepEqual(
        got.map((m) => [(m.payload as Payload).mobile, (m.payload as Payload).text]),
        [
          ["13800138000", "你好"],
          ["13900139000", "你好"],
        ],
      );
      const res = await app()
        .post("/sms/push")
        .set("content-type", "application/x-www-form-urlencoded; charset=x-klingon")
        .serialize(asIs)
        .send(form);
      assert.equal(res.status, 415);
      assert.match(res.text, /x-klingon/);
    });

    it("a msgid sent as a JSON number keeps every digit; digits inside strings do not fool it", async () => {
      const { reports } = await start();
      const body =
        `{"receiver":"rcv","pswd":"${RECEIVER_PASSWORD}","note":"\\"msgid\\":99999999999999999999",` +
        `"msgid":16102517082223817,"mobile":"13900210021","status":"DELIVRD",` +
        `"batch":{"msgid":12345678901234567890}}`;
      await app().post("/sms/push").set("content-type", "application/json").send(body).expect(200, "OK");
      const list = `[{"receiver":"rcv","pswd":"${RECEIVER_PASSWORD}","msgid":161025170822238170001,"mobile":"1","status":"X"},
        {"receiver":"rcv","pswd":"${RECEIVER_PASSWORD}","msgid":42,"mobile":"1","status":"X"}]`;
      await app().post("/sms/push").set("content-type", "application/json").send(list).expect(200, "OK");
      const got = await reports.next(3);
      assert.equal(got[0].msgid, "16102517082223817");
      assert.equal((got[0].payload as Payload).msgid, "16102517082223817");
      const extra = (got[0].payload as Payload).extra as Payload;
      assert.equal(extra.note, '"msgid":99999999999999999999');
      assert.equal(typeof (extra.batch as Payload).msgid, "number", "only the push's own msgid is read as text");
      assert.deepEqual(
        got.slice(1).map((m) => m.msgid),
        ["161025170822238170001", "42"],
      );
    });

    it("a GET or HEAD with no params at all is answered 200 OK and emits nothing", async () => {
      const { reports, mo } = await start();
      await app().get("/sms/push").expect(200, "OK");
      await app().get("/sms/push?").expect(200, "OK");
      const head = await app().head("/sms/push");
      assert.equal(head.status, 200);
      // A probe without params reveals nothing; with params, credentials are still required.
      await app().get("/sms/push").query({ msgid: "1" }).expect(401);
      await sleep(50);
      assert.equal(reports.msgs.length + mo.msgs.length, 0);
    });
  });

  describe("bounded long-SMS memory", () => {
    it("a part longer than 160 characters is refused with the reason", async () => {
      const { mo } = await start();
      const q = { ...AUTH, mobile: "13800138000", isems: "1", emshead: "3,2,1" };
      const res = await app()
        .get("/sms/push")
        .query({ ...q, msg: "x".repeat(161) });
      assert.equal(res.status, 400);
      assert.match(res.text, /msg too long for a long-SMS part \(161 > 160\)/);
      await app()
        .get("/sms/push")
        .query({ ...q, msg: "长".repeat(160) })
        .expect(200, "OK");
      await sleep(50);
      assert.equal(mo.msgs.length, 0);
    });

    it("parts with large extra params: pending memory stays bounded, the oldest flushed incomplete", async () => {
      const { mo } = await start();
      const pad = "p".repeat(60_000); // about 120 KB in memory per part; the bound is 8 MiB
      const N = 100;
      for (let i = 0; i < N; i++) {
        await app()
          .post("/sms/push")
          .type("form")
          .send({ ...AUTH, mobile: "13800138000", msg: `first part of ${i}`, isems: "1", emshead: `${i},2,1`, pad })
          .expect(200, "OK");
      }
      await mo.next(N - 70);
      const flushed = mo.msgs.map((m) => m.payload as Payload);
      assert.ok(flushed.length < N - 30, `${flushed.length} flushed`);
      assert.ok(flushed.every((p) => p.complete === false && JSON.stringify(p.missing) === "[2]"));
      assert.deepEqual(
        flushed.map((p) => p.text),
        flushed.map((_p, i) => `first part of ${i}`),
        "oldest first",
      );
      assert.equal((flushed[0].extra as Payload).pad, pad);
      // On stop, the rest are emitted incomplete: none lost.
      const spy = helper.getNode("r").send as unknown as { args: unknown[][]; thisValues: Array<{ id: string }> };
      const before = spy.args.filter((_a, k) => spy.thisValues[k]?.id === "r").length;
      await helper.clearFlows();
      const after = spy.args.filter((_a, k) => spy.thisValues[k]?.id === "r").length;
      assert.equal(after - before + flushed.length, N);
    });
  });

  describe("settings that cannot be used as given", () => {
    type Spy = { args: unknown[][]; thisValues: Array<{ id: string }> };
    const calls = (method: "warn" | "status" | "error", id = "r") => {
      const spy = helper.getNode(id)[method] as unknown as Spy;
      return spy.args.filter((_a, k) => spy.thisValues[k]?.id === id).map((a) => a[0]);
    };
    const lastStatus = () => calls("status").at(-1) as { fill: string; shape: string; text: string };
    // With receiver credentials the endpoint is not open to anyone, so no warning says so.
    const withReceiverCreds = creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD });

    it("a config id that does not resolve: said on the status and once in the log", async () => {
      await load(flowWith({}, [receiver({ config: "no-such-config" })]), creds());
      const warns = calls("warn").map(String);
      assert.equal(warns.filter((w) => /sms-receive\.errors\.noConfig/.test(w)).length, 1, warns.join(" | "));
      assert.deepEqual([lastStatus().fill, lastStatus().shape], ["yellow", "ring"]);
      assert.match(lastStatus().text, /sms-receive\.status\.noConfig/);
      // It still takes pushes (no receiver check, +08:00) and keeps saying so.
      const reports = collect("out");
      const { receiver: _r, pswd: _p, ...bare } = report;
      await app().get("/sms/push").query(bare).expect(200, "OK");
      const [m] = await reports.next();
      assert.equal((m.payload as Payload).reportTime, "2010-12-24T10:02:00+08:00");
      await sleep(300);
      assert.match(lastStatus().text, /sms-receive\.status\.noConfig/);
      assert.equal(lastStatus().fill, "yellow");
    });

    it("no account selected at all is not a warning", async () => {
      await load(flowWith({}, [receiver({ config: "" })]), creds());
      assert.equal(calls("warn").filter((w) => /noConfig/.test(String(w))).length, 0);
      assert.doesNotMatch(String(lastStatus().text), /noConfig/);
    });

    for (const [given, key, used] of [
      ["3000000", "partTimeoutClamped", 86_400],
      ["86401", "partTimeoutClamped", 86_400],
      ["0", "partTimeoutClamped", 1],
      ["-5", "partTimeoutClamped", 1],
      ["soon", "partTimeoutUnreadable", 600],
    ] as const) {
      it(`part wait "${given}" is used as ${used} s, with a status and one log line`, async () => {
        await load(flowWith({}, [receiver({ partTimeout: given })]), creds());
        const warns = calls("warn").map(String);
        assert.equal(warns.filter((w) => w.includes(`sms-receive.errors.${key}`)).length, 1, warns.join(" | "));
        assert.deepEqual([lastStatus().fill, lastStatus().shape], ["yellow", "ring"]);
        assert.match(lastStatus().text, /sms-receive\.status\.partTimeout/);
        assert.deepEqual(readPartTimeout(given).seconds, used);
      });
    }

    it("a part wait over 2,147,483 s does not overflow the timer (no TimeoutOverflowWarning)", async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.name);
      process.on("warning", onWarning);
      try {
        await load(flowWith({}, [receiver({ partTimeout: "3000000" })]), creds());
        const mo = collect("out2");
        await app()
          .get("/sms/push")
          .query({ ...AUTH, mobile: "13800138000", msg: "<1>", isems: "1", emshead: "6,2,1" })
          .expect(200, "OK");
        await sleep(200);
        assert.deepEqual(warnings, []);
        assert.equal(mo.msgs.length, 0, "the part waits");
      } finally {
        process.off("warning", onWarning);
      }
    });

    it("a flow without a part wait (hand-written, or older) uses 600 s quietly", async () => {
      const { partTimeout: _p, ...withoutPartTimeout } = receiver();
      await load(flowWith({}, [withoutPartTimeout as FlowNode]), withReceiverCreds);
      assert.deepEqual(calls("warn"), []);
      assert.equal(lastStatus().fill, "grey");
      assert.deepEqual(readPartTimeout(undefined), { seconds: 600, problem: null });
      assert.deepEqual(readPartTimeout(null), { seconds: 600, problem: null });
    });

    it("a valid part wait is quiet", async () => {
      await load(flowWith({}, [receiver({ partTimeout: "60" })]), withReceiverCreds);
      assert.equal(calls("warn").length, 0);
      assert.equal(lastStatus().fill, "grey");
    });
  });

  describe("editor and catalogs", () => {
    const root = path.resolve(__dirname, "../../..");
    const html = fs.readFileSync(path.join(root, "nodes/sms-receive.html"), "utf8");
    const catalog = (lang: string) =>
      JSON.parse(fs.readFileSync(path.join(root, `locales/${lang}/sms-receive.json`), "utf8")) as Record<
        string,
        unknown
      >;

    /** The node definition the editor gets, from the HTML's own script. */
    function editorDefinition(): { defaults: Record<string, { validate?: (v: unknown, opt?: object) => unknown }> } {
      const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1];
      let def: unknown;
      const RED = {
        nodes: { registerType: (_t: string, d: unknown) => (def = d) },
        validators: {
          number: () => (v: unknown) => !isNaN(Number(v)),
          regex: (re: RegExp) => (v: string) => re.test(v),
        },
        settings: {},
        _: (k: string) => k,
      };
      new Function("RED", "$", script)(RED, () => ({}));
      return def as never;
    }
    const fakeNode = { _: (key: string, params?: object) => `${key}${params ? JSON.stringify(params) : ""}` };
    const runtimeSays = (v: string) => {
      const r = readPartTimeout(v);
      return r.problem ? fakeNode._(`sms-receive.errors.${r.problem.key}`, r.problem.params) : true;
    };

    it("the part wait validator says what the runtime does, with the catalog's message", () => {
      const validate = editorDefinition().defaults.partTimeout.validate!;
      assert.equal(validate.length, 2, "a Node-RED 3+ validator (v, opt) that may return a message");
      for (const v of ["600", "1", "86400", "0.5", "0", "86401", "3000000", "-5", "abc", " 60 ", "1e3", "Infinity"]) {
        assert.deepEqual(validate.call(fakeNode, v, {}), runtimeSays(v), v);
      }
      fc.assert(
        fc.property(fc.oneof(fc.string(), fc.double().map(String), fc.integer().map(String)), (v) => {
          assert.deepEqual(validate.call(fakeNode, v, {}), runtimeSays(v));
        }),
      );
      // Called the Node-RED 2 way (no opt), it answers a boolean.
      assert.equal(validate.call(fakeNode, "abc"), false);
      assert.equal(validate.call(fakeNode, "60"), true);
    });

    it("the path validator explains itself", () => {
      const validate = editorDefinition().defaults.path.validate!;
      assert.equal(validate.call(fakeNode, "/sms/push", {}), true);
      assert.equal(validate.call(fakeNode, "sms push", {}), "sms-receive.errors.path");
      assert.equal(validate.call(fakeNode, "sms"), false);
    });

    it("every key is in en-US and zh-CN with the same placeholders, and every key the node uses exists", () => {
      const flat = (o: unknown, pre = ""): Record<string, string> =>
        Object.entries(o as Record<string, unknown>).reduce(
          (acc, [k, v]) => ({ ...acc, ...(typeof v === "string" ? { [pre + k]: v } : flat(v, `${pre}${k}.`)) }),
          {} as Record<string, string>,
        );
      const en = flat(catalog("en-US"));
      const zh = flat(catalog("zh-CN"));
      assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
      const holes = (s: string) => (s.match(/__\w+__/g) ?? []).sort();
      for (const k of Object.keys(en)) assert.deepEqual(holes(zh[k]), holes(en[k]), k);
      const src = fs.readFileSync(path.join(root, "src/nodes/sms-receive.ts"), "utf8") + html;
      for (const [, key] of src.matchAll(/"(sms-receive\.[a-zA-Z.]*[a-zA-Z])"/g)) assert.ok(key in en, key);
      for (const key of ["partTimeoutClamped", "partTimeoutUnreadable"])
        assert.ok(`sms-receive.errors.${key}` in en, key);
    });
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
