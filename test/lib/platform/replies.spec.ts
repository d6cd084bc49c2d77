import assert from "node:assert/strict";
import fc from "fast-check";
import { parseBalanceReply, parseSendReply, ReplyFormatError } from "../../../src/lib/platform/replies";

describe("lib/platform/replies", () => {
  it("reads a send success with msgid", () => {
    assert.deepEqual(parseSendReply("20110725160412,0\n1234567890100"), {
      resptime: "20110725160412",
      code: 0,
      msgid: "1234567890100",
    });
  });

  it("tolerates CRLF, a blank line, trailing whitespace and a trailing newline", () => {
    const want = { resptime: "20161025170822", code: 0, msgid: "16102517082223817" };
    for (const body of [
      "20161025170822,0\r\n16102517082223817",
      "20161025170822,0\n\n16102517082223817",
      "20161025170822,0\r\n\r\n16102517082223817\r\n",
      "20161025170822,0  \n16102517082223817 \t\n\n",
      "\uFEFF20161025170822,0\n16102517082223817",
    ]) {
      assert.deepEqual(parseSendReply(body), want, JSON.stringify(body));
    }
  });

  it("reads a failure and a success without msgid", () => {
    assert.deepEqual(parseSendReply("20161025170822,101"), { resptime: "20161025170822", code: 101, msgid: null });
    assert.deepEqual(parseSendReply("20161025170822,0\n"), { resptime: "20161025170822", code: 0, msgid: null });
  });

  it("rejects HTML, empty and garbage replies with a short excerpt", () => {
    for (const body of [
      "",
      "\n\n",
      "<html><body>502 Bad Gateway</body></html>",
      "OK",
      "0",
      "20110725160412,0\nmsg id with spaces",
      "a,b\nc",
      "20110725160412,0\n1\n2",
    ]) {
      assert.throws(() => parseSendReply(body), ReplyFormatError, JSON.stringify(body));
    }
    try {
      parseSendReply("x".repeat(5000));
    } catch (e) {
      // The error keeps the whole reply (the client masks secrets in it, then cuts); its message is short.
      assert.equal((e as ReplyFormatError).body.length, 5000);
      assert.ok((e as ReplyFormatError).message.length <= "unreadable reply: ".length + 81);
    }
  });

  it("reads a balance reply with several products, CRLF tolerated", () => {
    assert.deepEqual(parseBalanceReply("20130303180000,0\r\n1234567,1000\r\n1234531,2000\r\n"), {
      resptime: "20130303180000",
      code: 0,
      products: [
        { product: "1234567", balance: 1000 },
        { product: "1234531", balance: 2000 },
      ],
    });
    assert.deepEqual(parseBalanceReply("20130303180000,103"), { resptime: "20130303180000", code: 103, products: [] });
    assert.throws(() => parseBalanceReply("20130303180000,0\n<html>"), ReplyFormatError);
  });

  it("property: well-formed replies parse whatever the line endings", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^\d{14}$/),
        fc.integer({ min: 0, max: 200 }),
        fc.option(fc.stringMatching(/^[0-9A-Za-z]{1,30}$/), { nil: undefined }),
        fc.constantFrom("\n", "\r\n", "\n\n", "\r\n\r\n"),
        fc.constantFrom("", " ", "\n", "\r\n"),
        (ts, code, msgid, nl, tail) => {
          const body = `${ts},${code}` + (msgid ? nl + msgid : "") + tail;
          assert.deepEqual(parseSendReply(body), { resptime: ts, code, msgid: msgid ?? null });
        },
      ),
    );
  });

  it("property: any input either parses or throws ReplyFormatError, never anything else", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        for (const fn of [parseSendReply, parseBalanceReply]) {
          try {
            fn(s);
          } catch (e) {
            assert.ok(e instanceof ReplyFormatError);
            assert.equal(e.body, s);
            assert.ok(e.message.length <= "unreadable reply: ".length + 81);
          }
        }
      }),
    );
  });

  describe("what mutation testing found untested (platform triage)", () => {
    it("a status line is read whole: anything after the code, or a 7-digit code, is unreadable, never a success", () => {
      for (const body of [
        "20110725160412,0x",
        "20110725160412,0<html>",
        "20110725160412,1000000",
        "20110725160412x,0",
        "2011072516\uFEFF0412,0",
      ]) {
        assert.throws(() => parseSendReply(body), ReplyFormatError, JSON.stringify(body));
        assert.throws(() => parseBalanceReply(body), ReplyFormatError, JSON.stringify(body));
      }
      // Only a BOM at the very start is dropped: one inside a msgid is no msgid.
      assert.throws(() => parseSendReply("20110725160412,0\n123\uFEFF456"), ReplyFormatError);
      assert.deepEqual(parseSendReply("20110725160412 , 0\n1234567890100"), {
        resptime: "20110725160412",
        code: 0,
        msgid: "1234567890100",
      });
    });

    it("a product line is read whole: its decimals, spaces around the comma; nothing before or after", () => {
      assert.deepEqual(parseBalanceReply("20130303180000,0\n1234567 , 12.34\n1234531,2.5\n1234500,-3").products, [
        { product: "1234567", balance: 12.34 },
        { product: "1234531", balance: 2.5 },
        { product: "1234500", balance: -3 },
      ]);
      for (const line of ["ab cd,100", "1234567,1000abc", "1234567,10.", "x 1234567,1000"]) {
        assert.throws(() => parseBalanceReply(`20130303180000,0\n${line}`), ReplyFormatError, line);
      }
    });
  });
});
