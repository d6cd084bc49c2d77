import assert from "node:assert/strict";
import fc from "fast-check";
import { parseEmshead, parsePush, type MoPush, type ReportPush } from "../../../src/lib/push/parse";

describe("lib/push/parse", () => {
  const report = {
    receiver: "admin",
    pswd: "12345",
    msgid: "12345",
    reportTime: "1012241002",
    mobile: "13900210021",
    status: "DELIVRD",
  };

  it("reads a delivery report and keeps extra params", () => {
    const r = parsePush({ ...report, notifyTime: "101224100259", batchSeq: "7" });
    assert.ok(r.ok);
    const p = r.push as ReportPush;
    assert.equal(p.kind, "report");
    assert.equal(p.msgid, "12345");
    assert.equal(p.status, "DELIVRD");
    assert.equal(p.reportTimeRaw, "1012241002");
    assert.deepEqual(p.extra, { notifyTime: "101224100259", batchSeq: "7" });
  });

  it("keeps extra params of any JSON type as they came, and never refuses because of them (SPEC B4)", () => {
    const extra = {
      notifyTime: "101224100259",
      uid: 7,
      price: 0.05,
      charged: true,
      nothing: null,
      carrier: { name: "cm", codes: [1, { b: "c" }] },
      tags: ["x", "y"],
      long: "v".repeat(5000),
      ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x${i}`, String(i)])),
    };
    const r = parsePush({ ...report, ...extra });
    assert.ok(r.ok, JSON.stringify(r).slice(0, 200));
    assert.deepEqual((r.push as ReportPush).extra, extra);
    const mo = parsePush({ mobile: "13800210021", msg: "hi", ...extra });
    assert.ok(mo.ok);
    assert.deepEqual((mo.push as MoPush).extra, extra);
  });

  it("a __proto__ param is kept as a plain key, never as a prototype", () => {
    const params = JSON.parse('{"mobile":"13800210021","msg":"hi","__proto__":{"polluted":1}}') as Record<
      string,
      unknown
    >;
    const r = parsePush(params);
    assert.ok(r.ok);
    const extra = (r.push as MoPush).extra;
    assert.equal(Object.getPrototypeOf(extra), Object.prototype);
    assert.equal((extra as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(Object.getOwnPropertyDescriptor(extra, "__proto__")?.value, { polluted: 1 });
  });

  it("refuses extra params nested deeper than 32 levels (Node-RED's message cloning would overflow)", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 40; i++) deep = [deep];
    const r = parsePush({ ...report, deep });
    assert.ok(!r.ok && /nested too deeply/.test(r.reason), JSON.stringify(r).slice(0, 100));
    let ok: unknown = "x";
    for (let i = 0; i < 31; i++) ok = { a: ok };
    assert.ok(parsePush({ ...report, ok }).ok);
  });

  it("a long-SMS part holds at most 160 characters; a plain inbound SMS up to 4,000", () => {
    const part = { mobile: "13800210021", isems: "1", emshead: "9,2,1" };
    assert.ok(parsePush({ ...part, msg: "长".repeat(160) }).ok);
    const over = parsePush({ ...part, msg: "a".repeat(161) });
    assert.ok(!over.ok && /msg too long for a long-SMS part \(161 > 160\)/.test(over.reason), JSON.stringify(over));
    assert.ok(parsePush({ mobile: "13800210021", msg: "长".repeat(4000) }).ok);
  });

  it("names the missing field of a report", () => {
    for (const f of ["msgid", "mobile"] as const) {
      const r = parsePush({ ...report, [f]: "" });
      assert.deepEqual(r, { ok: false, reason: `missing ${f}` });
    }
    assert.deepEqual(parsePush({ ...report, status: " " }), { ok: false, reason: "missing status" });
    const long = parsePush({ ...report, msgid: "1".repeat(500) });
    assert.ok(!long.ok && /msgid too long/.test(long.reason));
    const obj = parsePush({ ...report, mobile: { a: 1 } });
    assert.ok(!obj.ok && /mobile must be text/.test(obj.reason));
  });

  it("reads a plain inbound SMS (msg may be empty)", () => {
    const r = parsePush({
      receiver: "admin",
      pswd: "x",
      moTime: "1208212205",
      destcode: "1065751600001",
      mobile: "13800210021",
      msg: "hello",
    });
    assert.ok(r.ok);
    const p = r.push as MoPush;
    assert.equal(p.kind, "mo");
    assert.equal(p.text, "hello");
    assert.equal(p.ems, null);
    const empty = parsePush({ mobile: "13800210021", msg: "" });
    assert.ok(empty.ok && (empty.push as MoPush).text === "");
  });

  it("reads a long-SMS part and checks emshead", () => {
    const r = parsePush({ mobile: "13800210021", msg: "hello", isems: "1", emshead: "255,5,5", destcode: "1065" });
    assert.ok(r.ok);
    assert.deepEqual((r.push as MoPush).ems, { id: "255", total: 5, number: 5 });
    for (const [head, reason] of [
      ["255,5,6", /number must be 1..total/],
      ["255,5,0", /number must be 1..total/],
      ["255,0,0", /total must be/],
      ["1,99999,1", /total must be/],
      ["a,b,c", /id,total,number/],
      ["1,2", /id,total,number/],
    ] as const) {
      const bad = parsePush({ mobile: "13800210021", msg: "x", isems: "1", emshead: head });
      assert.ok(!bad.ok && reason.test(bad.reason), head);
    }
    const missing = parsePush({ mobile: "13800210021", msg: "x", isems: "1" });
    assert.ok(!missing.ok && /missing emshead/.test(missing.reason));
    const badFlag = parsePush({ mobile: "13800210021", msg: "x", isems: "yes" });
    assert.ok(!badFlag.ok);
  });

  it("anything else is malformed with a reason", () => {
    assert.ok(!parsePush({}).ok);
    assert.ok(!parsePush({ mobile: "138" }).ok);
    assert.ok(!parsePush(null as never).ok);
    assert.ok(!parsePush([] as never).ok);
  });

  it("uses the first value of a repeated param", () => {
    const r = parsePush({ ...report, status: ["DELIVRD", "UNDELIV"] });
    assert.ok(r.ok && (r.push as ReportPush).status === "DELIVRD");
  });

  it("property: emshead parses iff 1 <= number <= total <= 255", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 400 }),
        fc.integer({ min: 0, max: 400 }),
        fc.stringMatching(/^[0-9]{1,6}$/),
        (total, number, id) => {
          const r = parseEmshead(`${id},${total},${number}`);
          const valid = total >= 1 && total <= 255 && number >= 1 && number <= total;
          assert.equal(!("error" in r), valid);
          if (valid) assert.deepEqual(r, { id, total, number });
        },
      ),
    );
  });

  it("property: text with any characters survives, extra never holds receiver or pswd", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 200 }),
        fc.dictionary(fc.stringMatching(/^x[a-z]{1,7}$/), fc.string({ maxLength: 20 }), { maxKeys: 5 }),
        (text, extra) => {
          const r = parsePush({ ...extra, receiver: "r", pswd: "secret-p", mobile: "13800210021", msg: text });
          assert.ok(r.ok);
          const p = r.push as MoPush;
          assert.equal(p.text, text);
          assert.ok(!("pswd" in p.extra) && !("receiver" in p.extra));
        },
      ),
    );
  });
});
