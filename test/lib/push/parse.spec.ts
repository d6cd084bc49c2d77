import assert from "node:assert/strict";
import fc from "fast-check";
import { MAX_PARAMS } from "../../../src/lib/push/charset";
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

  describe("what an inbound push is read as (from mutation testing)", () => {
    const mo = { mobile: "13800210021", msg: "hi" };

    it("keeps the named inbound params out of extra", () => {
      const r = parsePush({
        ...mo,
        moTime: "1012241002",
        destcode: "10",
        isems: "0",
        emshead: "",
        receiver: "a",
        pswd: "b",
      });
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual((r.push as MoPush).extra, {});
      assert.equal((r.push as MoPush).destcode, "10");
      assert.equal((r.push as MoPush).moTimeRaw, "1012241002");
    });

    it("reads numbers and booleans as text, null as absent; refuses an object as receiver or pswd", () => {
      const rep = parsePush({ ...report, msgid: 12345, mobile: 13900210021 });
      assert.ok(rep.ok, JSON.stringify(rep));
      assert.equal((rep.push as ReportPush).msgid, "12345");
      assert.equal((rep.push as ReportPush).mobile, "13900210021");
      const m = parsePush({ ...mo, msg: true, destcode: null });
      assert.ok(m.ok, JSON.stringify(m));
      assert.equal((m.push as MoPush).text, "true");
      assert.equal((m.push as MoPush).destcode, "");
      assert.deepEqual(parsePush({ ...report, receiver: { a: 1 } }), {
        ok: false,
        reason: "receiver/pswd must be text",
      });
      assert.deepEqual(parsePush({ ...report, pswd: { a: 1 } }), { ok: false, reason: "receiver/pswd must be text" });
      assert.deepEqual(parsePush({ ...report, pswd: ["x"], receiver: [{}] }), {
        ok: false,
        reason: "receiver/pswd must be text",
      });
    });

    it("trims the ids it matches on (msgid, mobile, status, destcode, isems, emshead), keeps the raw mobile", () => {
      const rep = parsePush({ ...report, msgid: " 12345 ", mobile: " 13900210021 ", status: " DELIVRD " });
      assert.ok(rep.ok);
      const p = rep.push as ReportPush;
      assert.deepEqual(
        [p.msgid, p.mobile, p.mobileRaw, p.status],
        ["12345", "13900210021", " 13900210021 ", "DELIVRD"],
      );
      const m = parsePush({ ...mo, mobile: " 13800210021 ", destcode: " 10 ", isems: " 1 ", emshead: "ab,2,1" });
      assert.ok(m.ok, JSON.stringify(m));
      const q = m.push as MoPush;
      assert.deepEqual([q.mobile, q.destcode, q.ems], ["13800210021", "10", { id: "ab", total: 2, number: 1 }]);
      assert.deepEqual(parsePush({ ...mo, isems: "1", emshead: "  " }), {
        ok: false,
        reason: "missing emshead (isems=1)",
      });
    });

    it("isems: 0 or empty is a plain SMS, anything but 1 is refused", () => {
      const plain = parsePush({ ...mo, isems: "0", emshead: "ab,2,1" });
      assert.ok(plain.ok);
      assert.equal((plain.push as MoPush).ems, null);
      assert.deepEqual(parsePush({ ...mo, isems: "2" }), { ok: false, reason: "isems must be 0 or 1" });
    });

    it("emshead: the whole value, spaces around the commas allowed, totals 1..255", () => {
      assert.deepEqual(parseEmshead(" ab , 2 , 1 "), { id: "ab", total: 2, number: 1 });
      assert.deepEqual(parseEmshead("ab,1,1"), { id: "ab", total: 1, number: 1 });
      assert.deepEqual(parseEmshead("ab,255,255"), { id: "ab", total: 255, number: 255 });
      for (const bad of ["x!ab,2,1", "ab,2,1x", "ab!,2,1", "ab,2x,1"]) {
        assert.ok("error" in parseEmshead(bad), bad);
      }
    });

    it("refuses an empty mobile, an over-long text, and pushes that are neither kind", () => {
      assert.deepEqual(parsePush({ mobile: "", msg: "x" }), { ok: false, reason: "missing mobile" });
      assert.equal(parsePush({ ...mo, msg: "x".repeat(4001) }).ok, false);
      const neither = { ok: false, reason: "neither a delivery report (status) nor an inbound SMS (mobile, msg)" };
      assert.deepEqual(parsePush({ msg: "x" }), neither);
      assert.deepEqual(parsePush("x" as unknown as Record<string, unknown>), { ok: false, reason: "no parameters" });
    });

    it("takes up to MAX_PARAMS params, refuses one more", () => {
      const many = (n: number) => ({
        ...mo,
        ...Object.fromEntries(Array.from({ length: n - 2 }, (_, i) => [`x${i}`, "v"])),
      });
      assert.ok(parsePush(many(MAX_PARAMS)).ok);
      assert.deepEqual(parsePush(many(MAX_PARAMS + 1)), { ok: false, reason: `more than ${MAX_PARAMS} parameters` });
    });

    it("counts the bytes of extra params (what pending long SMS may hold)", () => {
      const bytes = (extra: Record<string, unknown>) => {
        const r = parsePush({ ...mo, ...extra });
        assert.ok(r.ok);
        return (r.push as MoPush).extraBytes;
      };
      assert.equal(bytes({}), 0);
      assert.equal(bytes({ a: "xy" }), 2 + 16 + 4);
      assert.equal(bytes({ n: 1 }), 2 + 16);
      assert.equal(bytes({ o: { k: "v" } }), 2 + 32 + 16 + 2 + 16 + 2);
      assert.equal(bytes({ ab: { kk: "v" }, c: "d" }), 4 + 70 + 2 + 18);
    });

    it("a __proto__ param is an own enumerable key of extra (it reaches the message)", () => {
      const params = JSON.parse('{"mobile":"13800210021","msg":"hi","__proto__":{"x":1}}') as Record<string, unknown>;
      const r = parsePush(params);
      assert.ok(r.ok);
      assert.deepEqual(Object.keys((r.push as MoPush).extra), ["__proto__"]);
    });
  });
});
