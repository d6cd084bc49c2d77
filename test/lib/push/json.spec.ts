import assert from "node:assert/strict";
import fc from "fast-check";
import { parseJson, quoteBigMsgids } from "../../../src/lib/push/json";

describe("lib/push/json", () => {
  it("a msgid integer beyond 2^53 comes out as a string of the same digits", () => {
    const v = parseJson('{"msgid": 16102517082223817, "mobile": "1"}') as Record<string, unknown>;
    assert.equal(v.msgid, "16102517082223817");
    const list = parseJson('[{"msgid":-123456789012345678},{"msgid":42},{"msgid":1.5e300}]') as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(
      list.map((x) => x.msgid),
      ["-123456789012345678", 42, 1.5e300],
    );
  });

  it("is not fooled by digits in strings, escaped quotes, other keys or deeper msgids", () => {
    const text =
      '{"a":"\\"msgid\\":12345678901234567890","msg\\u0069d":98765432109876543210,' +
      '"b":{"msgid":12345678901234567890},"c":[12345678901234567890],"d":"\\\\"}';
    const v = parseJson(text) as Record<string, unknown>;
    assert.equal(v.a, '"msgid":12345678901234567890');
    assert.equal(v.msgid, "98765432109876543210", "an escaped key is still msgid");
    assert.equal(typeof (v.b as Record<string, unknown>).msgid, "number");
    assert.equal(typeof (v.c as unknown[])[0], "number");
    assert.equal(v.d, "\\");
  });

  it("invalid JSON is left for JSON.parse to refuse", () => {
    for (const bad of ['{"msgid":12345678901234567890', '{"a":"unterminated', "[1,2", '{"msgid" 12345678901234567890}'])
      assert.throws(() => parseJson(bad), SyntaxError, bad);
  });

  it("property: anything without a big msgid parses exactly as JSON.parse does", () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const pushLevelBig = /"msgid":-?\d{16,}[,}\]]/.test(text);
        if (!pushLevelBig) assert.deepEqual(parseJson(text), JSON.parse(text));
        assert.doesNotThrow(() => JSON.parse(quoteBigMsgids(text)), text);
      }),
    );
  });

  it("property: a big msgid keeps its digits, everything else is unchanged", () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string().filter((k) => k !== "msgid"),
          fc.jsonValue(),
        ),
        fc.bigInt({ min: 2n ** 53n, max: 10n ** 30n }),
        (rest, id) => {
          const text = JSON.stringify(rest).replace(/^\{/, `{"msgid":${id}${Object.keys(rest).length ? "," : ""}`);
          const v = parseJson(text) as Record<string, unknown>;
          assert.equal(v.msgid, String(id));
          const { msgid: _m, ...others } = v;
          assert.deepEqual(others, JSON.parse(JSON.stringify(rest)));
        },
      ),
    );
  });

  it("a msgid after array and object members is still the push's own; other keys and deeper msgids stay numbers", () => {
    const big = "12345678901234567890";
    const one = parseJson(`{"a":[1,[2]],"b":{"c":{"d":3}},"msgid":${big},"n":${big}}`) as Record<string, unknown>;
    assert.equal(one.msgid, big);
    assert.equal(one.n, Number(big));
    const list = parseJson(`[{"a":[1],"b":{"c":2},"msgid":${big}},{"e":{"msgid":${big}}}]`) as Array<
      Record<string, Record<string, unknown>>
    >;
    assert.equal(list[0].msgid, big);
    assert.equal(list[1].e.msgid, Number(big));
  });

  it("a msgid that is a fraction starting with 0 is a number, as JSON.parse reads it", () => {
    const text = '{"msgid":0.12345678901234567,"m":-0.12345678901234567}';
    assert.deepEqual(parseJson(text), JSON.parse(text));
  });

  it("an unterminated string or a key with a bad escape ends the scan: the text is returned as it is", () => {
    // A scan that went back to the start of the body here would never end (SPEC B4a: no push
    // holds the event loop).
    for (const bad of [
      '{"msgid":12345678901234567890,"b":"x',
      '[[1234567890123456,"x',
      '{"a\\x":1,"msgid":12345678901234567890}',
    ]) {
      assert.equal(quoteBigMsgids(bad), bad);
      assert.throws(() => parseJson(bad), SyntaxError, bad);
    }
  });
});
