// Hostile and broken pushes against sms-receive.
import assert from "node:assert/strict";
import express from "express";
import supertest from "supertest";
import { captured, collect, creds, flowWith, helper, load, RECEIVER_PASSWORD, sleep } from "../support/nr";

const AUTH = { receiver: "rcv", pswd: RECEIVER_PASSWORD };
const report = { ...AUTH, msgid: "77", reportTime: "1012241002", mobile: "13900210021", status: "DELIVRD" };
const mo = { ...AUTH, mobile: "13800138000", destcode: "106", msg: "x" };
type Payload = Record<string, unknown>;

describe("faults: push abuse", function () {
  this.timeout(60_000);
  let reports: ReturnType<typeof collect>;
  let inbound: ReturnType<typeof collect>;
  const app = () => supertest(captured.httpNode!);

  beforeEach(async () => {
    await load(
      flowWith({}, [
        { id: "r", type: "sms-receive", config: "cfg", path: "/p", partTimeout: 600, wires: [["out"], ["out2"]] },
      ]),
      creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }),
    );
    reports = collect("out");
    inbound = collect("out2");
  });
  afterEach(() => helper.unload());

  const malformed: Array<[string, Record<string, unknown>]> = [
    ["no params", { ...AUTH }],
    ["report without msgid", { ...report, msgid: undefined }],
    ["report with empty mobile", { ...report, mobile: "" }],
    ["report with empty status", { ...report, status: "" }],
    ["oversized msgid", { ...report, msgid: "9".repeat(101) }],
    ["oversized status", { ...report, status: "S".repeat(65) }],
    ["oversized inbound text", { ...mo, msg: "长".repeat(4001) }],
    ["oversized destcode", { ...mo, destcode: "1".repeat(33) }],
    ["isems without emshead", { ...mo, isems: "1" }],
    ["emshead with 0 parts", { ...mo, isems: "1", emshead: "5,0,1" }],
    ["emshead number > total", { ...mo, isems: "1", emshead: "5,3,4" }],
    ["emshead number 0", { ...mo, isems: "1", emshead: "5,3,0" }],
    ["emshead total huge", { ...mo, isems: "1", emshead: "5,100000,1" }],
    ["emshead non-numeric", { ...mo, isems: "1", emshead: "5,three,one" }],
    ["emshead with two fields", { ...mo, isems: "1", emshead: "5,3" }],
    ["isems not 0/1", { ...mo, isems: "2" }],
    ["a long-SMS part of 161 characters", { ...mo, isems: "1", emshead: "5,3,1", msg: "x".repeat(161) }],
  ];
  for (const [name, q] of malformed) {
    it(`400 for ${name}, nothing emitted`, async () => {
      const clean = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as Record<string, string>;
      const res = await app().post("/p").type("form").send(clean);
      assert.equal(res.status, 400);
      assert.match(res.text, /^Bad Request: .+/);
      await sleep(20);
      assert.equal(reports.msgs.length + inbound.msgs.length, 0);
    });
  }

  const badAuth: Array<[string, Record<string, unknown>]> = [
    ["wrong password", { ...report, pswd: "x" }],
    ["password with a prefix of the real one", { ...report, pswd: RECEIVER_PASSWORD.slice(0, 4) }],
    ["password with extra characters", { ...report, pswd: RECEIVER_PASSWORD + "x" }],
    ["no receiver", { ...report, receiver: undefined }],
    ["receiver and pswd swapped", { ...report, receiver: RECEIVER_PASSWORD, pswd: "rcv" }],
    ["credentials moved between fields", { ...report, receiver: "rcv" + "\u0000" + RECEIVER_PASSWORD, pswd: "" }],
  ];
  for (const [name, q] of badAuth) {
    it(`401 for ${name}, nothing emitted`, async () => {
      const clean = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as Record<string, string>;
      await app().get("/p").query(clean).expect(401);
      await sleep(20);
      assert.equal(reports.msgs.length, 0);
    });
  }

  it("413 for bodies over the limit (form and JSON), then normal pushes still work", async () => {
    await app()
      .post("/p")
      .type("form")
      .send({ ...report, pad: "x".repeat(70_000) })
      .expect(413);
    await app()
      .post("/p")
      .send({ ...report, pad: "x".repeat(70_000) })
      .expect(413);
    await app().post("/p").type("form").send(report).expect(200, "OK");
    await reports.next();
  });

  it("400 for an unreadable JSON body", async () => {
    await app().post("/p").set("content-type", "application/json").send("{not json").expect(400);
  });

  it("many extra params are no reason to refuse: 200 extra params are kept", async () => {
    const extra = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x${i}`, "1"]));
    await app()
      .post("/p")
      .type("form")
      .send({ ...report, ...extra })
      .expect(200, "OK");
    const [m] = await reports.next();
    assert.deepEqual((m.payload as Payload).extra, extra);
  });

  for (const depth of [40, 20_000]) {
    it(`JSON nested ${depth} levels deep: 400, nothing thrown, nothing emitted`, async () => {
      const deep = "[".repeat(depth) + "]".repeat(depth);
      const res = await app()
        .post("/p")
        .set("content-type", "application/json")
        .send(`{"receiver":"rcv","pswd":"${RECEIVER_PASSWORD}","msgid":"1","mobile":"1","status":"X","d":${deep}}`);
      assert.equal(res.status, 400);
      assert.match(res.text, /nested too deeply/);
      await sleep(20);
      assert.equal(reports.msgs.length, 0);
    });
  }

  it("a JSON array of more than 1,000 pushes is answered 413, nothing emitted", async () => {
    const outer = express();
    outer.use(express.json({ limit: "5mb" }));
    outer.use(captured.httpNode!);
    const list = Array.from({ length: 1001 }, (_, i) => ({ ...report, msgid: String(i) }));
    const res = await supertest(outer).post("/p").send(list);
    assert.equal(res.status, 413);
    assert.match(res.text, /1000/);
    await sleep(20);
    assert.equal(reports.msgs.length, 0);
  });

  it("an empty JSON array is nothing to take: 200 OK", async () => {
    await app().post("/p").send([]).expect(200, "OK");
  });

  it("a __proto__ param pollutes nothing and is kept as a plain key", async () => {
    await app()
      .post("/p")
      .set("content-type", "application/json")
      .send(
        `{"receiver":"rcv","pswd":"${RECEIVER_PASSWORD}","msgid":"1","mobile":"1","status":"X","__proto__":{"polluted":1}}`,
      )
      .expect(200, "OK");
    await app()
      .get("/p")
      .query(`receiver=rcv&pswd=${RECEIVER_PASSWORD}&msgid=2&mobile=1&status=X&__proto__=%C4`)
      .expect(200, "OK");
    const got = await reports.next(2);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const extra = (got[0].payload as Payload).extra as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(extra), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(extra, "__proto__")?.value, { polluted: 1 });
  });

  it("a duplicate storm: 200 identical reports at once, all answered OK, one emitted", async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, () => app().get("/p").query(report)));
    assert.ok(answers.every((r) => r.status === 200 && r.text === "OK"));
    await sleep(50);
    assert.equal(reports.msgs.length, 1);
  });

  it("a flood of never-completed long SMS: pending bounded at 1,000, the oldest emitted incomplete", async () => {
    for (let i = 0; i < 1500; i++) {
      await app()
        .get("/p")
        .query({ ...mo, msg: `first part of ${i}`, isems: "1", emshead: `${i},3,1` })
        .expect(200);
    }
    await sleep(50);
    assert.equal(inbound.msgs.length, 500);
    const payloads = inbound.msgs.map((m) => m.payload as Payload);
    assert.ok(payloads.every((p) => p.complete === false && JSON.stringify(p.missing) === "[2,3]"));
    assert.equal(payloads[0].text, "first part of 0", "oldest first");
    // On stop, the 1,000 still pending are emitted incomplete, not lost.
    const sendSpy = helper.getNode("r").send as unknown as { args: unknown[][]; thisValues: Array<{ id: string }> };
    const before = sendSpy.args.length;
    await helper.clearFlows();
    assert.equal(sendSpy.args.length - before, 1000);
  });
});

describe("faults: pushes from a source not on the allow-list", function () {
  this.timeout(60_000);
  afterEach(() => helper.unload());

  it("a flood of 500 (GET, POST, oversized): all 403, nothing emitted, one log line, the count on the status", async () => {
    await load(
      flowWith({}, [
        {
          id: "r",
          type: "sms-receive",
          config: "cfg",
          path: "/p",
          partTimeout: 600,
          allow: "10.0.0.0/8, 2001:db8::/32",
          wires: [["out"], ["out2"]],
        },
      ]),
      creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }),
    );
    const reports = collect("out");
    const inbound = collect("out2");
    const app = supertest(captured.httpNode!);
    const answers = await Promise.all(
      Array.from({ length: 500 }, (_, i) => {
        if (i % 3 === 0) return app.get("/p").query({ ...report, msgid: String(i) });
        if (i % 3 === 1) return app.post("/p").type("form").send(mo);
        return app
          .post("/p")
          .type("form")
          .send({ ...report, pad: "x".repeat(200_000) });
      }),
    );
    assert.deepEqual([...new Set(answers.map((r) => `${r.status} ${r.text}`))], ["403 Forbidden"]);
    await sleep(50);
    assert.equal(reports.msgs.length + inbound.msgs.length, 0);
    type Spy = { args: unknown[][]; thisValues: Array<{ id: string }> };
    const own = (m: "warn" | "status") => {
      const spy = helper.getNode("r")[m] as unknown as Spy;
      return spy.args.filter((_a, k) => spy.thisValues[k]?.id === "r").map((a) => a[0]);
    };
    assert.deepEqual(own("warn").map(String), ["sms-receive.errors.refused"]);
    const until = Date.now() + 8000;
    let last = own("status").at(-1) as { fill: string; text: string };
    while (last.text !== "sms-receive.status.countsRefused" && Date.now() < until) {
      await sleep(20);
      last = own("status").at(-1) as { fill: string; text: string };
    }
    assert.equal(last.text, "sms-receive.status.countsRefused");
    assert.equal(last.fill, "yellow");
  });
});
