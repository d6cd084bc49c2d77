// SmsClient.sendBody: the form body of a send, byte for byte what URLSearchParams produced (the
// platform and any proxy in between see no difference), for any text: lone surrogates, CJK, emoji,
// the form's own & = + % and spaces.
import assert from "node:assert/strict";
import fc from "fast-check";
import { SmsClient, type SendRequest } from "../../../src/lib/platform/client";
import { FormHead, formBody } from "../../../src/lib/platform/form";

/** The body as URLSearchParams builds it: the reference. */
function reference(account: string, password: string, req: SendRequest): string {
  const p = new URLSearchParams();
  p.set("account", account);
  p.set("pswd", password);
  p.set("mobile", req.mobiles.join(","));
  p.set("msg", req.text);
  p.set("needstatus", req.needstatus ? "true" : "false");
  if (req.product) p.set("product", req.product);
  if (req.extno) p.set("extno", req.extno);
  return p.toString();
}

const SPECIAL = [
  ..."&=+% !~'()*-._?#/:;,@[]{}|\\^`\"<>\u0000\t\r\n\u007f",
  "中",
  "【",
  "】",
  "，",
  "😀",
  "👍🏽",
  "\ud800",
  "\udbff",
  "\udc00",
  "\udfff",
  "\ufffd",
  "\u00e9",
  "\u200b",
  "\ufeff",
];
/** Any UTF-16 code unit (lone surrogates included), Unicode code points, and the characters that matter to a form. */
const unit = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  fc.constantFrom(...SPECIAL),
);
const text = fc.string({ unit, maxLength: 80 });

describe("SmsClient.sendBody (form encoding)", () => {
  it("is byte for byte what URLSearchParams gives, for arbitrary strings in every field", () => {
    fc.assert(
      fc.property(
        text,
        text,
        fc.array(text, { maxLength: 5 }),
        text,
        fc.boolean(),
        fc.option(text, { nil: undefined }),
        fc.option(text, { nil: undefined }),
        (account, password, mobiles, msg, needstatus, product, extno) => {
          const req: SendRequest = { mobiles, text: msg, needstatus, product, extno };
          assert.equal(SmsClient.sendBody(account, password, req), reference(account, password, req));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("long values (beyond the encoder's kept buffers) too", () => {
    const long = fc
      .tuple(fc.string({ unit, minLength: 1, maxLength: 40 }), fc.integer({ min: 21_000, max: 40_000 }))
      // Each one also holds what encodeURIComponent writes differently, and a lone surrogate.
      .map(([s, n]) => s.repeat(Math.ceil(n / s.length)) + " !'()~*\ud800x");
    fc.assert(
      fc.property(long, text, (msg, account) => {
        const req: SendRequest = { mobiles: [msg], text: msg, needstatus: true, extno: msg };
        assert.equal(SmsClient.sendBody(account, msg, req), reference(account, msg, req));
      }),
      { numRuns: 40 },
    );
  });

  it("the cases that differ between encodeURIComponent and a form, one by one", () => {
    for (const s of [
      " ",
      "!",
      "~",
      "'",
      "(",
      ")",
      "*",
      "+",
      "%20",
      "a b+c",
      "\ud83d",
      "x\udc00y",
      "😀\ud800",
      "【朗宇信息】您好",
    ]) {
      const req: SendRequest = {
        mobiles: ["13800138000", "13900139000"],
        text: s,
        needstatus: true,
        product: s,
        extno: s,
      };
      assert.equal(SmsClient.sendBody(s, s, req), reference(s, s, req), JSON.stringify(s));
    }
  });

  it("a client's body (account and password encoded once) is sendBody with them", async () => {
    // A client refuses a password with a lone surrogate (its redactor cannot encode it).
    const wellFormed = text.filter((s) => {
      try {
        encodeURIComponent(s);
        return true;
      } catch {
        return false;
      }
    });
    const clients: SmsClient[] = [];
    try {
      fc.assert(
        fc.property(
          wellFormed,
          wellFormed,
          fc.array(text, { maxLength: 3 }),
          text,
          fc.boolean(),
          (account, password, mobiles, msg, needstatus) => {
            const client = new SmsClient({ url: "http://127.0.0.1:9", account, password });
            clients.push(client);
            const req: SendRequest = { mobiles, text: msg, needstatus, product: "1001", extno: "" };
            assert.equal(client.body(req), reference(account, password, req));
            assert.equal(
              client.body({ ...req, text: msg + "x" }),
              reference(account, password, { ...req, text: msg + "x" }),
            );
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it("an account or password longer than the encoder's kept buffer", () => {
    const req: SendRequest = { mobiles: ["13800138000"], text: "您好", needstatus: true };
    const long = "中".repeat(30_000);
    assert.equal(SmsClient.sendBody("demo", long, req), reference("demo", long, req));
    assert.equal(SmsClient.sendBody(long, "pw", req), reference(long, "pw", req));
  });

  it("bodies around the size the encoder writes in place, up to the last byte", () => {
    // 9 bytes per CJK character: around 21,800 of them fill the encoder's kept 192 KiB.
    for (let n = 21_780; n <= 21_860; n++) {
      for (const msg of ["中".repeat(n), "a" + "中".repeat(n - 1), "中".repeat(n - 1) + "~"]) {
        const req: SendRequest = { mobiles: ["13800138000"], text: msg, needstatus: true, product: "1001" };
        assert.equal(SmsClient.sendBody("demo", "demo", req), reference("demo", "demo", req), `${n}`);
      }
    }
  });

  it("a 50,000-number request", () => {
    const mobiles = Array.from({ length: 50_000 }, (_, i) => `139${String(i).padStart(8, "0")}`);
    const req: SendRequest = { mobiles, text: "【朗宇信息】您好 a&b=c+d%e", needstatus: false, product: "1001" };
    assert.equal(SmsClient.sendBody("demo", "pw&=", req), reference("demo", "pw&=", req));
  });
  it("the UTF-8 boundaries, byte for byte (what mutation testing found untested): U+007F/0080, U+07FF/0800, surrogates at the end", () => {
    const req = (text: string): SendRequest => ({ mobiles: ["13800138000"], text, needstatus: true });
    for (const text of [
      "\u007f\u0080",
      "\u0080",
      "\u07ff\u0800",
      "\ud7ff\ue000\uffff",
      "x\udbff",
      "\ud83d",
      "\ud83d\ude00\ud83d",
    ]) {
      assert.equal(SmsClient.sendBody("a", "p", req(text)), reference("a", "p", req(text)), JSON.stringify(text));
    }
  });

  describe("what mutation testing found untested (platform triage)", () => {
    /** URLSearchParams' body for these fields in order: the reference. */
    const form = (fields: [string, string][]): string => new URLSearchParams(fields).toString();
    // 192 KiB, the buffer the encoder writes bodies in; a CJK character is 9 bytes (%E4%B8%AD).
    const KEPT = 192 * 1024;

    it("a body of exactly the kept buffer's size, and one up to 4 bytes past it, is exact", () => {
      // "head=" + 2 + "&msg=" + 21,844 CJK characters: 196,608 bytes for a 2-character head value.
      for (const headValue of ["ab", "abc", "abcd", "abcde", "abcdef"]) {
        const head = new FormHead([["head", headValue]]);
        const msg = "中".repeat(21_844);
        const size = head.text.length + 5 + 9 * msg.length;
        assert.equal(
          formBody(head, ["msg"], [msg]),
          form([
            ["head", headValue],
            ["msg", msg],
          ]),
          `${size - KEPT} bytes past`,
        );
      }
    });

    it("a list value is counted with its separators: a list of wide items is exact", () => {
      const head = new FormHead([["a", "b"]]);
      const items = new Array<string>(10_000).fill("中中");
      assert.equal(
        formBody(head, ["mobile"], [items]),
        form([
          ["a", "b"],
          ["mobile", items.join(",")],
        ]),
      );
    });

    it("with no head, the body starts with its first field, not '&' (short and long bodies)", () => {
      const head = new FormHead([]);
      assert.equal(formBody(head, ["a", "b"], ["1", "x y"]), "a=1&b=x+y");
      const long = "中".repeat(30_000);
      assert.equal(
        formBody(head, ["a", "b"], [long, "2"]),
        form([
          ["a", long],
          ["b", "2"],
        ]),
      );
    });
  });
});
