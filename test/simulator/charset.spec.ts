import assert from "node:assert/strict";
import fc from "fast-check";
import { declaredCharset, encodeText, formEncode, parseForm } from "../../src/simulator/charset";

const gb = new TextDecoder("gb18030");

describe("simulator charsets", () => {
  it("encodes 你好 in GB18030 as the SPEC's example bytes (%C4%E3%BA%C3)", () => {
    assert.equal(formEncode({ msg: "你好" }, "gb18030"), "msg=%C4%E3%BA%C3");
  });

  it("GB18030 round-trips through Node's decoder: two-byte, four-byte BMP and supplementary characters", () => {
    const samples = "你好【朗宇信息】€·—ü¥ÿ\u0080\u00a5\u3000\u9fa6\uffef😀𠀀";
    assert.equal(gb.decode(encodeText(samples, "gb18030")), samples);
    // U+E5E5 is the one character the GB18030 decoder never produces: a platform cannot send it.
    assert.equal(gb.decode(encodeText("\ue5e5", "gb18030")), "?");
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 20 }), (s) => {
        // Lone surrogates are not text; every real character must come back unchanged.
        assert.equal(gb.decode(encodeText(s, "gb18030")), s);
      }),
      { numRuns: 300 },
    );
  });

  it("GB18030 encodes every BMP character except a few private-use ones the decoder never produces", () => {
    let all = "";
    for (let c = 0; c < 0x10000; c++) if (c < 0xd800 || c > 0xdfff) all += String.fromCharCode(c);
    const back = [...gb.decode(encodeText(all, "gb18030"))];
    const lost = [...all].filter((ch, i) => back[i] !== ch);
    assert.equal(back.length, all.length);
    assert.ok(lost.length < 30, `lost ${lost.length}`);
    for (const ch of lost) assert.ok(ch >= "\ue000" && ch <= "\uf8ff", `U+${ch.charCodeAt(0).toString(16)}`);
  });

  it("gbk writes ? for a character that needs a four-byte code", () => {
    assert.deepEqual([...encodeText("a😀你", "gbk")], [0x61, 0x3f, 0xc4, 0xe3]);
  });

  it("the GB18030 form serializer escapes exactly what URLSearchParams escapes (ASCII is the same bytes)", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: "binary-ascii" }), fc.string({ unit: "binary-ascii" })), (d) => {
        assert.equal(formEncode(d, "gb18030"), new URLSearchParams(d).toString());
      }),
      { numRuns: 300 },
    );
  });

  it("parses a UTF-8 form as URLSearchParams does, and a GBK one in its charset", () => {
    // Node 20's URLSearchParams mangles raw non-ASCII between a malformed and a valid escape
    // ("%zz好%3D" reads as "%zz}="), so malformed escapes are compared on ASCII forms only.
    const token = fc.constantFrom("a", "B", "&", "=", "+", "你", "好", "%41", "%2B", "%26", "%3D", "%E4%BD%A0");
    const malformed = fc.constantFrom("a", "&", "=", "+", "%41", "%", "%4", "%zz", "%E4");
    const raw = fc.array(token, { maxLength: 20 }).map((t) => t.join(""));
    fc.assert(
      fc.property(raw, (s) => {
        assert.deepEqual(parseForm(Buffer.from(s), "utf-8"), Object.fromEntries(new URLSearchParams(s)));
      }),
      { numRuns: 500 },
    );
    const ascii = fc.array(malformed, { maxLength: 20 }).map((t) => t.join(""));
    fc.assert(
      fc.property(ascii, (s) => {
        assert.deepEqual(parseForm(Buffer.from(s), "utf-8"), Object.fromEntries(new URLSearchParams(s)));
      }),
      { numRuns: 500 },
    );
    const body = Buffer.concat([Buffer.from("msg=%C4%E3%BA%C3+"), Buffer.from([0xc4, 0xe3]), Buffer.from("&x")]);
    assert.deepEqual(parseForm(body, "gbk"), { msg: "你好 你", x: "" });
  });

  it("reads the declared charset of a content-type, refusing one Node cannot decode", () => {
    assert.equal(declaredCharset(undefined), "utf-8");
    assert.equal(declaredCharset("application/x-www-form-urlencoded"), "utf-8");
    assert.equal(declaredCharset("application/x-www-form-urlencoded; charset=GBK"), "gbk");
    assert.equal(declaredCharset('application/x-www-form-urlencoded;charset="gb2312"'), "gb2312");
    assert.throws(() => declaredCharset("text/plain; charset=klingon"), /unsupported charset klingon/);
  });
});
