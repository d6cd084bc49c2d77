import assert from "node:assert/strict";
import { SmsError } from "../../../src/lib/errors";
import { MAX_LIST_LENGTH, type Pacer, type Steps } from "../../../src/lib/platform/numbers";
import {
  hasRecipientObjects,
  hasRecipientObjectsSteps,
  mobileEntry,
  pickRecipients,
  prepareMobiles,
  prepareSend,
} from "../../../src/lib/platform/prepare";

function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

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

  describe("what mutation testing found untested (platform triage)", () => {
    it("batchSize splits the numbers into requests of that size", () => {
      const p = prepareSend("hi", "13800138000,13900139000,13700137000", { batchSize: 2 });
      assert.deepEqual(p.batches, [["13800138000", "13900139000"], ["13700137000"]]);
      assert.equal(p.count, 3);
    });

    it("each error says what is wrong, with details.invalid empty when no entry is to blame", () => {
      assert.match(code(() => prepareSend("x".repeat(11), "13800138000", { maxLength: 10 })).message, /11 .* 10 /);
      const type = code(() => prepareSend("hi", { a: 1 }));
      assert.match(type.message, /got object/);
      assert.deepEqual(type.details, { invalid: [] });
      const none = code(() => prepareSend("hi", " , "));
      assert.equal(none.code, "INVALID_MOBILE");
      assert.deepEqual(none.details, { invalid: [] });
      assert.equal(code(() => prepareSend("hi", null)).code, "INVALID_MOBILE");
    });

    it(`a list longer than ${MAX_LIST_LENGTH.toLocaleString("en")} places is refused before it is read`, () => {
      const e = code(() => prepareMobiles(new Array(MAX_LIST_LENGTH + 1)));
      assert.equal(e.code, "INVALID_MOBILE");
      assert.equal(
        e.message,
        `msg.mobile is a list of ${MAX_LIST_LENGTH + 1} places: at most ${MAX_LIST_LENGTH} are read; nothing was sent`,
      );
      assert.deepEqual(e.details, { invalid: [] });
    });

    it(`a list of exactly ${MAX_LIST_LENGTH.toLocaleString("en")} places is read`, () => {
      const list = new Array<string>(MAX_LIST_LENGTH).fill("13800138000");
      list[MAX_LIST_LENGTH - 1] = "13900139000";
      assert.deepEqual(prepareMobiles(list), ["13800138000", "13900139000"]);
    });

    it("prepareMobiles checks mainland numbers and answers in English unless told otherwise", () => {
      assert.deepEqual(prepareMobiles("+8613800138000"), ["13800138000"]);
      const e = code(() => prepareMobiles("12345"));
      assert.deepEqual(e.details.invalid, ["12345"]);
      assert.match(e.message, /^1 invalid mobile number\(s\): 12345; nothing was sent$/);
      assert.deepEqual(prepareMobiles("12345", "digits"), ["12345"]);
    });

    it('a recipient object gives its mobile; one without, or whose mobile cannot be read, is an invalid entry ""', () => {
      const list = [
        { mobile: "+8613800138000", name: "a" },
        "13900139000",
        { mobile: 13700137000 },
        { mobile: "13800138000" },
      ];
      assert.deepEqual(prepareMobiles(list), ["13800138000", "13900139000", "13700137000"]);
      const throwing = {
        get mobile(): string {
          throw new Error("getter");
        },
      };
      for (const [i, bad] of [{ name: "no mobile" }, { mobile: null }, throwing, { mobile: "  " }].entries()) {
        const e = code(() => prepareMobiles([{ mobile: "13800138000" }, bad]));
        assert.deepEqual(e.details.invalid, [""], `case ${i}`);
      }
      // In a personalised list a blank or null element is an invalid entry, as the recipient is missing.
      assert.deepEqual(code(() => prepareMobiles([{ mobile: "13800138000" }, null])).details.invalid, [""]);
    });

    it("a list with no recipient object is a list of numbers: blank elements are skipped, null is named", () => {
      assert.deepEqual(prepareMobiles(["13800138000", "  "]), ["13800138000"]);
      assert.deepEqual(code(() => prepareMobiles(["13800138000", null])).details.invalid, ["null"]);
      assert.deepEqual(code(() => prepareMobiles([["13800138000"]])).details.invalid, ["[array]"]);
    });

    it("mobileEntry: none for undefined and null, the folded entry otherwise", () => {
      assert.equal(mobileEntry(undefined), null);
      assert.equal(mobileEntry(null), null);
      assert.equal(mobileEntry("１３８００１３８０００"), "13800138000");
      assert.equal(mobileEntry(13800138000), "13800138000");
    });

    it("hasRecipientObjects: an array holding at least one object (not null, not an array)", () => {
      assert.equal(hasRecipientObjects(["13800138000", { mobile: "13900139000" }]), true);
      assert.equal(hasRecipientObjects(["13800138000", null, ["13900139000"]]), false);
      assert.equal(hasRecipientObjects("13800138000"), false);
      assert.equal(hasRecipientObjects({ mobile: "13800138000" }), false);
      const steps = (v: unknown) => runToEnd(hasRecipientObjectsSteps(v, null));
      assert.equal(steps(["13800138000", { mobile: "13900139000" }]), true);
      assert.equal(steps(["13800138000", null, ["13900139000"]]), false);
      assert.equal(steps([]), false);
      assert.equal(steps("13800138000"), false);
      assert.equal(steps({ length: 1, 0: { mobile: "13800138000" } }), false);
    });

    it("hasRecipientObjectsSteps pauses only where the pacer says, once per 1,024 elements", () => {
      const list = new Array<string>(2048).fill("13800138000");
      const pauses = (due: boolean) => {
        const steps = hasRecipientObjectsSteps(list, { due: () => due } satisfies Pacer);
        for (let n = 0; ; n++) if (steps.next().done) return n;
      };
      assert.equal(pauses(false), 0);
      assert.equal(pauses(true), 2);
    });

    it("pickRecipients keeps, in list order, the elements whose normalised number was kept", () => {
      const a = { mobile: "+86 138 0013 8000", name: "a" };
      const b = { mobile: "13900139000", name: "b" };
      const list = [b, a, { name: "no mobile" }, "13700137000", "13600136000", null];
      assert.deepEqual(pickRecipients(list, ["13800138000", "13700137000", "13900139000"], "cn"), [
        b,
        a,
        "13700137000",
      ]);
      assert.deepEqual(pickRecipients(list, [], "cn"), []);
      assert.deepEqual(pickRecipients([{ mobile: "12345" }], ["12345"], "cn"), []);
    });

    // A personalised list with holes (an array built by index in a function node) reached the
    // number check as undefined entries (map skips holes): a TypeError, which sms-guard reported
    // as NETWORK, not INVALID_MOBILE (SPEC B9a). sms-send's planSend names the hole as an invalid
    // entry "", as here.
    it("a personalised list with holes is INVALID_MOBILE, never a TypeError", () => {
      const list: unknown[] = [];
      list[0] = { mobile: "13800138000" };
      list[2] = { mobile: "13900139000" };
      const e = code(() => prepareMobiles(list));
      assert.equal(e.code, "INVALID_MOBILE");
      assert.deepEqual(e.details.invalid, [""]);
    });
  });
});
