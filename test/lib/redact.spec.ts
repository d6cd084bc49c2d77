import assert from "node:assert/strict";
import fc from "fast-check";
import { excerpt, redactor } from "../../src/lib/redact";

describe("lib/redact", () => {
  it("masks the secret raw, URL-encoded and as a pswd= value", () => {
    const r = redactor(["p@ss word&1"]);
    assert.equal(r("x p@ss word&1 y"), "x *** y");
    assert.equal(r("a=p%40ss%20word%261"), "a=***");
    assert.equal(r("account=a&pswd=whatever&x=1"), "account=a&pswd=***&x=1");
  });

  it("property: no output contains the secret", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 3, maxLength: 20 }),
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        (secret, a, b) => {
          fc.pre(!secret.includes("*"));
          const out = redactor([secret])(a + secret + b);
          return !out.includes(secret);
        },
      ),
    );
  });

  it("excerpts are one short printable line", () => {
    assert.equal(excerpt("a\r\nb"), "a\\nb");
    assert.equal(excerpt("x".repeat(100)).length, 81);
  });
  it("a secret with a lone surrogate (not encodable as a URI) is still masked, and nothing throws", () => {
    const secret = "Pw\uD800-lone-77";
    const r = redactor([secret]);
    assert.equal(r(`password ${secret} there`), "password *** there");
  });
});
