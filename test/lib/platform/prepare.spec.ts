import assert from "node:assert/strict";
import { SmsError } from "../../../src/lib/errors";
import { prepareSend } from "../../../src/lib/platform/prepare";

function code(fn: () => unknown): SmsError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SmsError);
    return e;
  }
  throw new Error("did not throw");
}

describe("lib/platform/prepare", () => {
  it("builds text with signature, segments and batches", () => {
    const p = prepareSend("您好", "13800138000,+8613800138000,13900139000", { signature: "【朗宇信息】" });
    assert.equal(p.text, "【朗宇信息】您好");
    assert.equal(p.segments, 1);
    assert.deepEqual(p.batches, [["13800138000", "13900139000"]]);
    assert.equal(p.count, 2);
  });

  it("takes numbers typed in full width or pasted with invisible characters, as the editor counts them", () => {
    const p = prepareSend("hi", "１３８００１３８０００，＋８６１３９００１３９０００；\u200b13700137000\ufeff");
    assert.deepEqual(p.batches, [["13800138000", "13900139000", "13700137000"]]);
    const e = code(() => prepareSend("hi", "１２３，13800138000"));
    assert.deepEqual(e.details.invalid, ["123"]);
  });

  it("turns a number payload into text", () => {
    assert.equal(prepareSend(42, "13800138000").text, "42");
  });

  it("each local error has its code, in the asked language", () => {
    assert.equal(code(() => prepareSend({}, "13800138000")).code, "INVALID_PAYLOAD");
    assert.equal(code(() => prepareSend(null, "13800138000")).code, "INVALID_PAYLOAD");
    assert.equal(code(() => prepareSend(" ", "13800138000")).code, "EMPTY_MESSAGE");
    assert.equal(code(() => prepareSend("x".repeat(11), "13800138000", { maxLength: 10 })).code, "MESSAGE_TOO_LONG");
    assert.equal(code(() => prepareSend("hi", "")).code, "INVALID_MOBILE");
    assert.equal(code(() => prepareSend("hi", { a: 1 })).code, "INVALID_MOBILE");
    const e = code(() => prepareSend("hi", "13800138000,123,abc", { lang: "zh-CN" }));
    assert.equal(e.code, "INVALID_MOBILE");
    assert.deepEqual(e.details.invalid, ["123", "abc"]);
    assert.match(e.message, /2 个手机号码无效：123, abc/);
  });

  it("splits 50,001 numbers into two batches", () => {
    const nums = Array.from({ length: 50_001 }, (_, i) => `139${String(i).padStart(8, "0")}`);
    const p = prepareSend("hi", nums);
    assert.deepEqual(
      p.batches.map((b) => b.length),
      [50_000, 1],
    );
  });
  it('a number payload that is no finite number (NaN, Infinity) is INVALID_PAYLOAD, never the text "NaN"', () => {
    for (const payload of [NaN, Infinity, -Infinity]) {
      const e = code(() => prepareSend(payload, "13800138000"));
      assert.equal(e.code, "INVALID_PAYLOAD");
      assert.match(e.message, /got number/);
    }
    assert.equal(prepareSend(0, "13800138000").text, "0");
  });
});
