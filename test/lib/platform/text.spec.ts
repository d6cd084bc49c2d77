import assert from "node:assert/strict";
import fc from "fast-check";
import { applySignature, prepareText, segmentCount, textLength } from "../../../src/lib/platform/text";

describe("lib/platform/text", () => {
  it("counts UTF-16 code units: CJK and ASCII 1, emoji 2", () => {
    assert.equal(textLength("abc"), 3);
    assert.equal(textLength("你好"), 2);
    assert.equal(textLength("😀"), 2);
    assert.equal(textLength("【朗宇信息】您好"), 8);
  });

  it("segments: <=70 → 1, else ceil(n/67)", () => {
    assert.equal(segmentCount(0), 0);
    assert.equal(segmentCount(1), 1);
    assert.equal(segmentCount(70), 1);
    assert.equal(segmentCount(71), 2);
    assert.equal(segmentCount(134), 2);
    assert.equal(segmentCount(135), 3);
    assert.equal(segmentCount(700), 11);
  });

  it("prepends the signature only when it is missing", () => {
    assert.equal(applySignature("您好", "【朗宇信息】"), "【朗宇信息】您好");
    assert.equal(applySignature("您好【朗宇信息】", "【朗宇信息】"), "您好【朗宇信息】");
    assert.equal(applySignature("hi", ""), "hi");
  });

  it("rejects empty and over-long text, counting the signature", () => {
    assert.deepEqual(prepareText("   "), { ok: false, reason: "EMPTY_MESSAGE" });
    assert.deepEqual(prepareText("", { signature: "【x】" }), { ok: false, reason: "EMPTY_MESSAGE" });
    const r = prepareText("a".repeat(10), { signature: "【sig】", maxLength: 14 });
    assert.deepEqual(r, { ok: false, reason: "MESSAGE_TOO_LONG", length: 15, max: 14 });
    const ok = prepareText("a".repeat(66), { signature: "【sig】" });
    assert.deepEqual(ok, { ok: true, text: "【sig】" + "a".repeat(66), length: 71, segments: 2 });
  });

  it("property: segments cover the length and are minimal", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), (n) => {
        const s = segmentCount(n);
        if (n <= 70) return s === 1;
        return s * 67 >= n && (s - 1) * 67 < n;
      }),
    );
  });

  it("property: the final text always contains the signature and respects maxLength", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 120 }),
        fc.constantFrom("", "【朗宇信息】", "【A】"),
        fc.integer({ min: 1, max: 200 }),
        (text, sig, max) => {
          const r = prepareText(text, { signature: sig, maxLength: max });
          if (r.ok) {
            assert.ok(r.text.includes(sig));
            assert.ok(r.length <= max);
            assert.equal(r.segments, segmentCount(r.length));
          } else if (r.reason === "EMPTY_MESSAGE") assert.equal(text.trim(), "");
          else assert.ok(r.length > max);
        },
      ),
    );
  });
  it("a signature given with spaces around it is found in a text that holds it without them", () => {
    assert.equal(applySignature("【签】您好", " 【签】 "), "【签】您好");
    assert.equal(applySignature("您好", " 【签】 "), "【签】您好");
  });
});
