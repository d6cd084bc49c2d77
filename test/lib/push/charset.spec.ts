import assert from "node:assert/strict";
import fc from "fast-check";
import {
  charsetOf,
  decodeText,
  decoderFor,
  firstValues,
  MAX_PARAMS,
  parseForm,
  repairUndecoded,
  TooManyParams,
} from "../../../src/lib/push/charset";
import type * as charsetModule from "../../../src/lib/push/charset";

/**
 * A copy of the module loaded anew: decoderFor keeps what it looked up in module state, which
 * outlives one test (and one run of the mutation tool), so only a fresh copy shows a first lookup.
 */
function freshCharset(): typeof charsetModule {
  const path = require.resolve("../../../src/lib/push/charset");
  const cached = require.cache[path];
  delete require.cache[path];
  try {
    return require(path) as typeof charsetModule;
  } finally {
    require.cache[path] = cached;
  }
}

const form = (s: string, charset: string | null = null) =>
  parseForm(Buffer.from(s, "latin1"), charset ? decoderFor(charset)! : null);

describe("lib/push/charset", () => {
  it("percent-encoded bytes that are not UTF-8 are read as GB18030 (SPEC A5); UTF-8 stays UTF-8", () => {
    assert.deepEqual({ ...form("msg=%C4%E3%BA%C3&b=%E4%BD%A0%E5%A5%BD") }, { msg: "你好", b: "你好" });
    // A four-byte GB18030 sequence (U+20000) and GBK's euro sign.
    assert.deepEqual({ ...form("a=%95%32%82%36&e=%80") }, { a: "\u{20000}", e: "€" });
  });

  it("a declared charset wins; GBK and GB2312 are read as GB18030", () => {
    assert.equal(decoderFor("gb2312")?.encoding, "gb18030");
    assert.equal(decoderFor(" GBK ")?.encoding, "gb18030");
    assert.equal(decoderFor("utf-8"), null);
    assert.equal(decoderFor("x-klingon"), undefined);
    assert.deepEqual({ ...form("m=%E9", "iso-8859-1") }, { m: "é" });
    const raw = Buffer.concat([Buffer.from("m="), Buffer.from("c4e3", "hex")]);
    assert.deepEqual({ ...parseForm(raw, decoderFor("gbk")!) }, { m: "你" });
  });

  it("reads the charset parameter of a Content-Type", () => {
    assert.equal(charsetOf("application/x-www-form-urlencoded; charset=GBK"), "GBK");
    assert.equal(charsetOf('application/json;charset="gb18030"'), "gb18030");
    assert.equal(charsetOf("application/json"), "");
    assert.equal(charsetOf(undefined), "");
  });

  it("forms: + is a space, %2B a plus, a repeated name keeps its first value (SPEC B4a), __proto__ a plain key", () => {
    const f = form("a=1+2%2B3&r=x&r=y&r=z&__proto__=p&flag&=v&bad=%zz%4");
    assert.equal(Object.getPrototypeOf(f), null);
    assert.deepEqual(Object.keys(f), ["a", "r", "__proto__", "flag", "", "bad"]);
    assert.deepEqual(
      Object.keys(f).map((k) => f[k]),
      ["1 2+3", "x", "p", "", "v", "%zz%4"],
    );
  });

  it("forms: at most 1000 params (SPEC B4a); more throw TooManyParams, repeats and empty ones included", () => {
    const params = (n: number, name: (i: number) => string) =>
      Array.from({ length: n }, (_, i) => `${name(i)}=1`).join("&");
    assert.equal(Object.keys(form(params(MAX_PARAMS, (i) => `p${i}`))).length, MAX_PARAMS);
    assert.throws(() => form(params(MAX_PARAMS + 1, (i) => `p${i}`)), TooManyParams);
    assert.throws(() => form(params(MAX_PARAMS + 1, () => "a")), TooManyParams);
    // Empty segments ("&&") are no params.
    assert.equal(Object.keys(form("&".repeat(50_000) + "a=1")).length, 1);
  });

  it("firstValues: arrays from another parser become their first value; nothing else changes", () => {
    const p = { a: ["1", "2"], b: "x" };
    assert.deepEqual(firstValues(p), { a: "1", b: "x" });
    const same = { a: "1" };
    assert.equal(firstValues(same), same);
  });

  it("property: UTF-8 forms read exactly as URLSearchParams reads them", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 8 }), (pairs) => {
        const text = new URLSearchParams(pairs).toString();
        const expected = Object.create(null) as Record<string, unknown>;
        for (const [k, v] of new URLSearchParams(text)) {
          if (expected[k] === undefined) expected[k] = v;
        }
        assert.deepEqual({ ...form(text) }, { ...expected });
      }),
    );
  });

  it("repairs what Express's parsers left undecoded, and leaves decoded text alone", () => {
    assert.equal(repairUndecoded("%C4%E3%BA%C3 a+b"), "你好 a+b");
    assert.equal(repairUndecoded("你好 %C4%E3"), "你好 你");
    assert.equal(repairUndecoded("50% off"), "50% off");
    assert.equal(repairUndecoded("plain"), "plain");
  });

  it("decodeText: invalid UTF-8 without a declared charset is GB18030, never an exception", () => {
    assert.equal(decodeText(Buffer.from("c4e3bac3", "hex")), "你好");
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => typeof decodeText(b) === "string"));
  });

  it("a declared charset read the first time: GBK labels as GB18030, UTF-8 with its fallback, others as declared", () => {
    const fresh = freshCharset();
    const read = (s: string, label: string) => {
      const d = fresh.decoderFor(label);
      assert.notEqual(d, undefined, label);
      return { ...fresh.parseForm(Buffer.from(s, "latin1"), d!) };
    };
    // A four-byte GB18030 sequence (U+20000): the runtime's own GBK decoder cannot read it.
    for (const label of ["gbk", "GBK", "gb2312", "x-gbk", "gb18030"]) {
      assert.deepEqual(read("a=%95%32%82%36&e=%80", label), { a: "\u{20000}", e: "€" }, label);
    }
    assert.equal(fresh.decoderFor("utf-8"), null);
    assert.deepEqual(read("m=%E4%BD%A0&g=%C4%E3", "utf-8"), { m: "你", g: "你" });
    assert.deepEqual(read("m=%E9", "iso-8859-1"), { m: "é" });
    assert.equal(fresh.decoderFor("x-klingon"), undefined);
  });

  it("reads only the parameter named charset", () => {
    assert.equal(charsetOf("application/x-www-form-urlencoded; charsets=GBK"), "");
    assert.equal(charsetOf("application/x-www-form-urlencoded; charset-x=GBK; charset=utf-8"), "utf-8");
  });

  it("forms: %XX needs two hex digits (0-9, a-f, A-F); anything else stays as it came", () => {
    assert.deepEqual(
      { ...form("a=%0A%09%4a%4A&b=%@0&c=%`1&d=%z1&e=%1z&f=%G0") },
      { a: "\n\tJJ", b: "%@0", c: "%`1", d: "%z1", e: "%1z", f: "%G0" },
    );
  });

  it("forms: a leading & is an empty param, for the count as for the values", () => {
    assert.deepEqual({ ...form("&a=1&b=2") }, { a: "1", b: "2" });
    const params = Array.from({ length: MAX_PARAMS + 1 }, (_, i) => `p${i}=1`).join("&");
    assert.throws(() => form(`&${params}`), TooManyParams);
    assert.throws(() => form(params), { message: `more than ${MAX_PARAMS} parameters` });
  });

  it("a declared charset whose ASCII bytes are not all text (ISO-2022-JP) is read as declared, escaped or not", () => {
    // The same text raw and percent-encoded: the shortcut for components of ASCII bytes alone must
    // not bypass the declared charset (its escape sequences are ASCII bytes).
    const jis = "\x1b$B$3$s$K$A$O\x1b(B";
    const raw = Buffer.from(`m=${jis}&p=${encodeURIComponent(jis)}`, "latin1");
    assert.deepEqual({ ...parseForm(raw, decoderFor("iso-2022-jp")!) }, { m: "こんにちは", p: "こんにちは" });
  });
});
