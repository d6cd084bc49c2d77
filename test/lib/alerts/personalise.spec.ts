import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import fc from "fast-check";
import {
  checkSigned,
  planSend,
  planSendAsync,
  previewTemplate,
  type PlanInput,
  type PlanOptions,
  type SendPlan,
} from "../../../src/lib/alerts/personalise";
import { compileTemplate } from "../../../src/lib/alerts/template";
import { SmsError } from "../../../src/lib/errors";
import { normaliseMobile } from "../../../src/lib/platform/numbers";
import { prepareSend } from "../../../src/lib/platform/prepare";
import { prepareText } from "../../../src/lib/platform/text";

function thrown(fn: () => unknown): SmsError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SmsError, `not an SmsError: ${String(e)}`);
    return e;
  }
  throw new Error("did not throw");
}

const num = (i: number) => `139${String(i).padStart(8, "0")}`;
const texts = (p: SendPlan) => p.requests.map((r) => [r.text, r.mobiles]);

describe("lib/alerts/personalise", () => {
  describe("the plain path (no template, no recipient objects) is prepareSend", () => {
    const inputs: [unknown, unknown, object][] = [
      ["您好", "13800138000,+8613800138000,13900139000", { signature: "【朗宇信息】" }],
      [42, ["13800138000", 13900139000], {}],
      ["hi", Array.from({ length: 50_001 }, (_, i) => num(i)), {}],
      ["hi", Array.from({ length: 7 }, (_, i) => num(i)), { batchSize: 3 }],
      ["12345", "12345678", { mobileCheck: "digits" }],
    ];
    for (const [payload, mobile, opts] of inputs) {
      it(`same requests as prepareSend for ${JSON.stringify(payload)}, ${String(mobile).slice(0, 40)}`, () => {
        const p = prepareSend(payload, mobile, opts);
        const plan = planSend({ payload, mobile }, opts);
        assert.equal(plan.personalised, false);
        assert.deepEqual(
          plan.requests,
          p.batches.map((mobiles) => ({ text: p.text, length: p.length, segments: p.segments, mobiles })),
        );
        assert.equal(plan.count, p.count);
        assert.equal(plan.texts, 1);
        assert.equal(plan.parts, p.count * p.segments);
      });
    }

    const failing: [unknown, unknown, object][] = [
      [{}, "13800138000", {}],
      [null, "13800138000", {}],
      [" ", "13800138000", {}],
      ["x".repeat(11), "13800138000", { maxLength: 10 }],
      ["hi", "", {}],
      ["hi", { a: 1 }, {}],
      ["hi", "13800138000,123,abc", { lang: "zh-CN" }],
      ["hi", [], {}],
    ];
    for (const [payload, mobile, opts] of failing) {
      it(`same error as prepareSend for ${JSON.stringify(payload)}, ${JSON.stringify(mobile)}`, () => {
        const want = thrown(() => prepareSend(payload, mobile, opts));
        const got = thrown(() => planSend({ payload, mobile }, opts));
        assert.deepEqual([got.code, got.message, got.details], [want.code, want.message, want.details]);
      });
    }
  });

  describe("a template with plain numbers", () => {
    it("renders once against the msg and sends that text to every number", () => {
      const msg = { topic: "boiler", payload: { temperature: 93 }, mobile: "13800138000,13900139000" };
      const plan = planSend(
        { payload: msg.payload, mobile: msg.mobile, template: "{{topic}} {{payload.temperature}}°C", msg },
        { signature: "【监控】" },
      );
      assert.deepEqual(texts(plan), [["【监控】boiler 93°C", ["13800138000", "13900139000"]]]);
    });

    it("takes a compiled template too, and does not need a text payload", () => {
      const t = compileTemplate("{{payload.v}}");
      const plan = planSend({
        payload: { v: "ok" },
        mobile: "13800138000",
        template: t,
        msg: { payload: { v: "ok" } },
      });
      assert.equal(plan.requests[0].text, "ok");
    });

    it("an empty template means no template: the payload is the text", () => {
      const plan = planSend({ payload: "plain", mobile: "13800138000", template: "", msg: {} });
      assert.equal(plan.requests[0].text, "plain");
    });

    it("a missing variable is a TEMPLATE error naming it and no recipient", () => {
      const e = thrown(() =>
        planSend({ payload: {}, mobile: "13800138000", template: "{{recipient.name}}: {{payload.v}}", msg: {} }),
      );
      assert.equal(e.code, "TEMPLATE");
      assert.deepEqual(e.details.variables, ["recipient.name", "payload.v"]);
      assert.equal(e.details.recipients, undefined);
      assert.doesNotMatch(e.message, /msg\.mobile/);
    });

    it("an empty rendering is EMPTY_MESSAGE, as for a plain text", () => {
      const e = thrown(() =>
        planSend({ payload: "", mobile: "13800138000", template: "{{payload}}", msg: { payload: " " } }),
      );
      assert.equal(e.code, "EMPTY_MESSAGE");
    });

    it("a template that is not a string is a TEMPLATE error", () => {
      const e = thrown(() => planSend({ payload: "x", mobile: "13800138000", template: 42, msg: {} }));
      assert.equal(e.code, "TEMPLATE");
    });
  });

  describe("personalised sends (msg.mobile as recipient objects)", () => {
    const recipients = [
      { mobile: "13800138000", name: "王伟", reading: 120 },
      { mobile: "+86 139 0013 9000", name: "李娜", reading: 87 },
      { mobile: 13700137000, name: "王伟", reading: 120 },
    ];
    const msg = { payload: { month: "3月" }, mobile: recipients };
    const template = "{{recipient.name}}：{{payload.month}}读数 {{recipient.reading}}";

    it("renders each recipient's text with recipient and the msg, groups equal texts in order of first appearance", () => {
      const plan = planSend({ payload: msg.payload, mobile: msg.mobile, template, msg }, { signature: "【水务】" });
      assert.equal(plan.personalised, true);
      assert.deepEqual(texts(plan), [
        ["【水务】王伟：3月读数 120", ["13800138000", "13700137000"]],
        ["【水务】李娜：3月读数 87", ["13900139000"]],
      ]);
      assert.deepEqual(
        plan.requests.map((r) => r.recipients),
        [[0, 2], [1]],
      );
      assert.equal(plan.count, 3);
      assert.equal(plan.texts, 2);
      assert.equal(plan.parts, 3);
    });

    it("recipient shadows a msg.recipient, and a missing recipient field never falls back to it", () => {
      const view = {
        recipient: { name: "from msg", extra: "msg extra" },
        mobile: [{ mobile: "13800138000", name: "r" }],
      };
      const plan = planSend({ payload: "", mobile: view.mobile, template: "{{recipient.name}}", msg: view });
      assert.equal(plan.requests[0].text, "r");
      const e = thrown(() =>
        planSend({ payload: "", mobile: view.mobile, template: "{{recipient.extra}}", msg: view }),
      );
      assert.equal(e.code, "TEMPLATE");
    });

    it("a variable missing for some recipients is a TEMPLATE error naming it and every such recipient (index and number)", () => {
      const list = [
        { mobile: "13800138000", name: "a" },
        { mobile: "13900139000" },
        { mobile: "13700137000", name: "c" },
        { mobile: "bad", name: null },
      ];
      for (const lang of ["en-US", "zh-CN"] as const) {
        const e = thrown(() =>
          planSend({ payload: "", mobile: list, template: "Hi {{recipient.name}}", msg: {} }, { lang }),
        );
        assert.equal(e.code, "TEMPLATE");
        assert.equal(e.details.variable, "recipient.name");
        assert.deepEqual(e.details.recipients, [1, 3]);
        assert.deepEqual(e.details.problems, [
          { variable: "recipient.name", within: [], kind: "missing", index: 1, mobile: "13900139000" },
          { variable: "recipient.name", within: [], kind: "missing", index: 3, mobile: "bad" },
        ]);
        assert.match(
          e.message,
          lang === "en-US"
            ? /\{\{recipient\.name\}\}, for 2 recipient\(s\): msg\.mobile\[1\] \(13900139000\), msg\.mobile\[3\] \(bad\); nothing was sent/
            : /涉及 2 个接收人：msg\.mobile\[1\]（13900139000）, msg\.mobile\[3\]（bad）/,
        );
      }
    });

    it("an invalid or missing number is INVALID_MOBILE naming the recipients; the others are not planned", () => {
      const list = [
        { mobile: "13800138000", name: "a" },
        { mobile: "123", name: "b" },
        { name: "c" },
        { mobile: "  ", name: "d" },
      ];
      const e = thrown(() => planSend({ payload: "", mobile: list, template: "{{recipient.name}}", msg: {} }));
      assert.equal(e.code, "INVALID_MOBILE");
      assert.deepEqual(e.details.invalid, ["123", "", ""]);
      assert.deepEqual(e.details.recipients, [1, 2, 3]);
      assert.match(
        e.message,
        /3 recipient\(s\) without a valid mobile number: msg\.mobile\[1\] \(123\), msg\.mobile\[2\], msg\.mobile\[3\]; nothing was sent/,
      );
    });

    it("numbers are normalised by the account's mobileCheck", () => {
      const list = [{ mobile: "+86 138-0013-8000" }, { mobile: "0044 20 7946 0000" }];
      assert.equal(thrown(() => planSend({ payload: "x", mobile: list, msg: {} })).code, "INVALID_MOBILE");
      const plan = planSend({ payload: "x", mobile: list, msg: {} }, { mobileCheck: "digits" });
      assert.deepEqual(plan.requests[0].mobiles, ["8613800138000", "00442079460000"]);
    });

    it("an empty or over-long text names the recipients; the signature counts", () => {
      const list = [
        { mobile: "13800138000", t: "ok" },
        { mobile: "13900139000", t: " " },
        { mobile: "13700137000", t: "x".repeat(9) },
        { mobile: "13600136000", t: "x".repeat(7) },
      ];
      const empty = thrown(() =>
        planSend({ payload: "", mobile: list.slice(0, 2), template: "{{recipient.t}}", msg: {} }),
      );
      assert.equal(empty.code, "EMPTY_MESSAGE");
      assert.deepEqual(empty.details.recipients, [1]);
      assert.match(empty.message, /empty for 1 recipient\(s\): msg\.mobile\[1\] \(13900139000\)/);
      const long = thrown(() =>
        planSend(
          { payload: "", mobile: [list[0], list[2], list[3]], template: "{{recipient.t}}", msg: {} },
          { signature: "【签】", maxLength: 10 },
        ),
      );
      assert.equal(long.code, "MESSAGE_TOO_LONG");
      assert.deepEqual(long.details.recipients, [1]);
      assert.match(
        long.message,
        /longer than 10 characters \(signature included\) for 1 recipient\(s\): msg\.mobile\[1\] \(13700137000\) \(longest 12\)/,
      );
    });

    it("template problems come first, then text problems, then numbers", () => {
      const list = [{ mobile: "1" }, { mobile: "13800138000", t: "" }, { mobile: "13900139000", t: "x" }];
      assert.equal(
        thrown(() => planSend({ payload: "", mobile: list, template: "{{recipient.t}}", msg: {} })).code,
        "TEMPLATE",
      );
      const list2 = [
        { mobile: "1", t: "x" },
        { mobile: "13800138000", t: "" },
      ];
      assert.equal(
        thrown(() => planSend({ payload: "", mobile: list2, template: "{{recipient.t}}", msg: {} })).code,
        "EMPTY_MESSAGE",
      );
    });

    it("a repeated number: the same text is dropped (counted), a different text is its own SMS", () => {
      const list = [
        { mobile: "13800138000", n: "a" },
        { mobile: "+8613800138000", n: "a" },
        { mobile: "13800138000", n: "b" },
        { mobile: "13900139000", n: "a" },
        { mobile: "13800138000", n: "b" },
      ];
      const plan = planSend({ payload: "", mobile: list, template: "{{recipient.n}}", msg: {} });
      assert.deepEqual(texts(plan), [
        ["a", ["13800138000", "13900139000"]],
        ["b", ["13800138000"]],
      ]);
      assert.deepEqual(
        plan.requests.map((r) => r.recipients),
        [[0, 3], [2]],
      );
      assert.equal(plan.duplicates, 2);
    });

    it("a mixed array: plain numbers are recipients without fields", () => {
      const list = [{ mobile: "13800138000", name: "Li" }, "13900139000", 13700137000];
      const plan = planSend({
        payload: "",
        mobile: list,
        template: "Hi{{#recipient.name}} {{.}}{{/recipient.name}}",
        msg: {},
      });
      assert.deepEqual(texts(plan), [
        ["Hi Li", ["13800138000"]],
        ["Hi", ["13900139000", "13700137000"]],
      ]);
      const e = thrown(() => planSend({ payload: "", mobile: list, template: "Hi {{recipient.name}}", msg: {} }));
      assert.deepEqual(e.details.recipients, [1, 2]);
    });

    it("without a template every recipient gets the payload; a bad payload is refused as in a plain send", () => {
      const list = [{ mobile: "13800138000" }, { mobile: "13900139000" }, { mobile: "13800138000" }];
      const plan = planSend({ payload: "notice", mobile: list, msg: {} });
      assert.deepEqual(texts(plan), [["notice", ["13800138000", "13900139000"]]]);
      assert.equal(plan.duplicates, 1);
      assert.equal(thrown(() => planSend({ payload: { a: 1 }, mobile: list, msg: {} })).code, "INVALID_PAYLOAD");
      assert.equal(thrown(() => planSend({ payload: " ", mobile: list, msg: {} })).code, "EMPTY_MESSAGE");
    });

    it("3 texts for 100,000 recipients: requests of at most 50,000, texts in order of first appearance", () => {
      const names = ["B", "A", "C"];
      const list = Array.from({ length: 100_000 }, (_, i) => ({ mobile: num(i), g: names[i % 3] }));
      const plan = planSend({ payload: "", mobile: list, template: "group {{recipient.g}}", msg: {} });
      assert.deepEqual(
        plan.requests.map((r) => [r.text, r.mobiles.length]),
        [
          ["group B", 33_334],
          ["group A", 33_333],
          ["group C", 33_333],
        ],
      );
      const big = Array.from({ length: 100_000 }, (_, i) => ({ mobile: num(i), g: i < 10 ? "first" : names[i % 2] }));
      const plan2 = planSend({ payload: "", mobile: big, template: "{{recipient.g}}", msg: {} });
      assert.deepEqual(
        plan2.requests.map((r) => [r.text, r.mobiles.length]),
        [
          ["first", 10],
          ["B", 49_995],
          ["A", 49_995],
        ],
      );
      const one = planSend({ payload: "same", mobile: list, msg: {} });
      assert.deepEqual(
        one.requests.map((r) => r.mobiles.length),
        [50_000, 50_000],
      );
      assert.deepEqual(one.requests[1].recipients?.slice(0, 2), [50_000, 50_001]);
    });

    it("validates every recipient before returning: a bad last one of 100,000 means no plan at all", () => {
      const list: object[] = Array.from({ length: 100_000 }, (_, i) => ({ mobile: num(i), n: "x" }));
      list[99_999] = { mobile: num(99_999) };
      const e = thrown(() => planSend({ payload: "", mobile: list, template: "{{recipient.n}}", msg: {} }));
      assert.deepEqual(e.details.recipients, [99_999]);
    });

    it("property: rendering then grouping never loses or duplicates a recipient", () => {
      const recipient = fc.record({
        mobile: fc.oneof(
          fc.integer({ min: 0, max: 30 }).map((i) => num(i)),
          fc.integer({ min: 0, max: 30 }).map((i) => `+86 ${num(i)}`),
        ),
        name: fc.constantFrom("张三", "李四", "王五", "A&B", "<x>"),
        n: fc.integer({ min: 0, max: 3 }),
      });
      fc.assert(
        fc.property(
          fc.array(recipient, { minLength: 1, maxLength: 60 }),
          fc.integer({ min: 1, max: 7 }),
          (list, batchSize) => {
            const template = "{{recipient.name}} {{#recipient.n}}n={{recipient.n}}{{/recipient.n}}";
            const plan = planSend({ payload: "", mobile: list, template, msg: {} }, { batchSize });
            const expected = new Map<string, number>(); // "number|text" → first recipient index
            list.forEach((r, i) => {
              const mobile = r.mobile.replace(/^\+86 /, "");
              const text = `${r.name} ${r.n ? `n=${r.n}` : ""}`;
              if (!expected.has(`${mobile}|${text}`)) expected.set(`${mobile}|${text}`, i);
            });
            const seen = new Map<string, number>();
            for (const req of plan.requests) {
              assert.ok(req.mobiles.length >= 1 && req.mobiles.length <= batchSize);
              req.mobiles.forEach((m, k) => {
                const key = `${m}|${req.text}`;
                assert.ok(!seen.has(key), `twice: ${key}`);
                seen.set(key, req.recipients![k]);
              });
            }
            assert.deepEqual(seen, expected);
            assert.equal(plan.count, expected.size);
            assert.equal(plan.duplicates, list.length - expected.size);
            // Texts in order of first appearance, each text's requests next to each other.
            const order = [...new Set([...expected.keys()].map((k) => k.slice(k.indexOf("|") + 1)))];
            const requestTexts = plan.requests.map((r) => r.text).filter((t, i, a) => i === 0 || a[i - 1] !== t);
            assert.deepEqual(requestTexts, order);
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe("texts rendered after their signature", () => {
    // Whitespace of every kind trim() knows, the signatures and pieces of them ("签签" overlaps itself).
    const piece = fc.constantFrom(
      "",
      " ",
      "\t",
      "\n",
      "\u3000",
      "\ufeff",
      "\u00a0",
      "x",
      "您好",
      "【签】",
      "【",
      "签】",
      "😀",
    );
    const text = fc.array(piece, { maxLength: 6 }).map((p) => p.join(""));
    const signature = fc.constantFrom("", " ", "【签】", " 【签】 ", "签", "\u3000【签】", "签签");

    it("checkSigned gives what prepareText gives for the text alone", () => {
      fc.assert(
        fc.property(text, signature, fc.integer({ min: 0, max: 12 }), (t, sig, maxLength) => {
          const trimmed = sig.trim();
          assert.deepEqual(checkSigned(trimmed + t, trimmed, maxLength), prepareText(t, { signature: sig, maxLength }));
        }),
        { numRuns: 3000 },
      );
      assert.deepEqual(checkSigned("【签】x", "【签】"), prepareText("x", { signature: "【签】" }));
    });

    it("property: a personalised plan is each recipient's text, prepared alone, grouped in order of first appearance", () => {
      const recipient = fc.record({
        mobile: fc.constantFrom("13800138000", "+86 13900139000", "13700137000", "12345", ""),
        t: text,
      });
      fc.assert(
        fc.property(
          fc.array(recipient, { minLength: 1, maxLength: 12 }),
          signature,
          fc.integer({ min: 1, max: 12 }),
          (list, sig, maxLength) => {
            const opts = { signature: sig, maxLength, batchSize: 2 };
            let plan: SendPlan | undefined;
            let error: SmsError | undefined;
            try {
              plan = planSend({ payload: "", mobile: list, template: "{{recipient.t}}", msg: {} }, opts);
            } catch (e) {
              error = e as SmsError;
            }
            // The model: every text prepared on its own (prepareText), the failures in their order.
            const checks = list.map((r) => prepareText(r.t, { signature: sig, maxLength }));
            const numbers = list.map((r) => normaliseMobile(r.mobile.replace(/\s/g, ""), "cn"));
            const refused = (reason: string) => checks.flatMap((c, i) => (!c.ok && c.reason === reason ? [i] : []));
            const invalid = numbers.flatMap((n, i) => (n === null ? [i] : []));
            if (refused("EMPTY_MESSAGE").length) {
              assert.equal(error?.code, "EMPTY_MESSAGE");
              assert.deepEqual(error.details.recipients, refused("EMPTY_MESSAGE"));
            } else if (refused("MESSAGE_TOO_LONG").length) {
              assert.equal(error?.code, "MESSAGE_TOO_LONG");
              assert.deepEqual(error.details.recipients, refused("MESSAGE_TOO_LONG"));
            } else if (invalid.length) {
              assert.equal(error?.code, "INVALID_MOBILE");
              assert.deepEqual(error.details.recipients, invalid);
            } else {
              assert.equal(error, undefined);
              const groups = new Map<string, { text: string; mobiles: string[]; recipients: number[] }>();
              list.forEach((r, i) => {
                const c = checks[i];
                assert.ok(c.ok);
                // Grouped by the final text (SPEC B9a): "【" and "【签】【" are one SMS with signature 【签】.
                const g = groups.get(c.text) ?? { text: c.text, mobiles: [], recipients: [] };
                groups.set(c.text, g);
                if (!g.mobiles.includes(numbers[i]!)) {
                  g.mobiles.push(numbers[i]!);
                  g.recipients.push(i);
                }
              });
              const expected = [...groups.values()].flatMap((g) =>
                Array.from({ length: Math.ceil(g.mobiles.length / 2) }, (_, k) => ({
                  text: g.text,
                  length: g.text.length,
                  segments: (prepareText(g.text) as { segments: number }).segments,
                  mobiles: g.mobiles.slice(2 * k, 2 * k + 2),
                  recipients: g.recipients.slice(2 * k, 2 * k + 2),
                })),
              );
              assert.deepEqual(
                plan!.requests.map((q) => ({ ...q })),
                expected,
              );
            }
          },
        ),
        { numRuns: 1500 },
      );
    });
  });

  describe("within bounds (SPEC B9a)", () => {
    it("rendering stops past maxLength for every recipient: a 100,000-item list is read only up to it, and each recipient is named", () => {
      let reads = 0;
      const item = {
        get v() {
          reads++;
          return "ab";
        },
      };
      const items = Array.from({ length: 100_000 }, () => item);
      const list = Array.from({ length: 20 }, (_, i) => ({ mobile: num(i) }));
      for (const lang of ["en-US", "zh-CN"] as const) {
        reads = 0;
        const e = thrown(() =>
          planSend(
            {
              payload: {},
              mobile: list,
              template: "{{#payload.items}}{{v}}{{/payload.items}}",
              msg: { payload: { items } },
            },
            { signature: "【朗宇】", lang },
          ),
        );
        assert.equal(e.code, "MESSAGE_TOO_LONG");
        assert.equal(e.outcomeUnknown, false);
        assert.deepEqual(e.details.recipients, [...list.keys()]);
        // 700 characters and the signature's 4: the 351st item takes each text past them.
        assert.equal(reads, 20 * 351);
        assert.match(
          e.message,
          lang === "en-US"
            ? /longer than 700 characters \(signature included\) for 20 recipient\(s\): msg\.mobile\[0\] \(13900000000\).*rendering was stopped there and nothing was sent/
            : /20 个接收人的短信内容超过 700 个字符（含签名）：msg\.mobile\[0\]（13900000000）.*已停止渲染，短信未发送/,
        );
      }
    });

    it("a text just over maxLength still gives its length; one cut short names the limit only", () => {
      // Cut past maxLength + the signature's 3: 9 characters and the signature are 12, and rendered in full.
      const list = [
        { mobile: num(1), t: "x".repeat(9) },
        { mobile: num(2), t: "ok" },
      ];
      const opts = { maxLength: 10, signature: "【签】" };
      const exact = thrown(() => planSend({ payload: "", mobile: list, template: "{{recipient.t}}", msg: {} }, opts));
      assert.match(exact.message, /\(longest 12\)/);
      list[0].t = "x".repeat(100_000);
      const cut = thrown(() => planSend({ payload: "", mobile: list, template: "{{recipient.t}}", msg: {} }, opts));
      assert.equal(cut.code, "MESSAGE_TOO_LONG");
      assert.doesNotMatch(cut.message, /longest/);
      assert.match(cut.message, /longer than 10 characters/);
      assert.deepEqual(cut.details.recipients, [0]);
    });

    it("a plain send's template stops past maxLength too: MESSAGE_TOO_LONG, in both languages", () => {
      const msg = { payload: { big: "字".repeat(100_000) } };
      for (const [lang, text] of [
        ["en-US", /^The SMS text is longer than 700 characters \(signature included\); rendering was stopped there$/],
        ["zh-CN", /^短信内容超过 700 个字符（含签名），已停止渲染$/],
      ] as const) {
        const e = thrown(() =>
          planSend({ payload: msg.payload, mobile: num(1), template: "{{payload.big}}", msg }, { lang }),
        );
        assert.equal(e.code, "MESSAGE_TOO_LONG");
        assert.match(e.message, text);
      }
    });

    it("a text of 1,000 spaces is empty, not too long (the empty check comes first, as for any text)", () => {
      const list = [{ mobile: num(1), t: " ".repeat(1000) }];
      const e = thrown(() =>
        planSend({ payload: "", mobile: list, template: "{{recipient.t}}", msg: {} }, { maxLength: 10 }),
      );
      assert.equal(e.code, "EMPTY_MESSAGE");
      const plain = thrown(() =>
        planSend(
          { payload: "", mobile: num(1), template: "{{payload}}", msg: { payload: " ".repeat(1000) } },
          { maxLength: 10 },
        ),
      );
      assert.equal(plain.code, "EMPTY_MESSAGE");
    });

    it("one person never gets the same SMS twice: recipients are grouped by their final text, signature applied (issue 22)", () => {
      const list = [
        { mobile: "13800138000", text: "【朗宇】您好，明天停水" },
        { mobile: "+86 138 0013 8000", text: "您好，明天停水" },
        { mobile: "13900139000", text: "您好，明天停水" },
      ];
      const plan = planSend(
        { payload: "", mobile: list, template: "{{recipient.text}}", msg: {} },
        { signature: "【朗宇】" },
      );
      assert.deepEqual(plan.requests, [
        {
          text: "【朗宇】您好，明天停水",
          length: 11,
          segments: 1,
          mobiles: ["13800138000", "13900139000"],
          recipients: [0, 2],
        },
      ]);
      assert.equal(plan.duplicates, 1);
      assert.equal(plan.texts, 1);
    });

    it("texts equal in their first 70 (or 699) characters are different SMS: each recipient gets its own", () => {
      for (const head of [70, 699]) {
        const base = "您".repeat(head);
        const list = [
          { mobile: num(1), t: base + "甲" },
          { mobile: num(2), t: base + "乙" },
          { mobile: num(3), t: base + "甲" },
        ];
        const plan = planSend({ payload: "", mobile: list, template: "{{recipient.t}}", msg: {} });
        assert.deepEqual(texts(plan), [
          [base + "甲", [num(1), num(3)]],
          [base + "乙", [num(2)]],
        ]);
      }
    });

    describe("a value that is not a number or a string is an error of its kind, never a network one", () => {
      const cases: Array<[string, unknown, string, RegExp]> = [
        [
          "{ mobile: { toString: 1 } } (issue 22)",
          [{ mobile: { toString: 1 } }],
          "INVALID_MOBILE",
          /msg\.mobile\[0\] \(\[object\]\)/,
        ],
        [
          "a recipient whose mobile getter throws",
          [
            Object.defineProperty({}, "mobile", {
              enumerable: true,
              get() {
                throw new Error("boom");
              },
            }),
          ],
          "INVALID_MOBILE",
          /msg\.mobile\[0\]; nothing was sent/,
        ],
        ["a nested list", [["13800138000"]], "INVALID_MOBILE", /\[array\]/],
        ["a function", [() => "13800138000"], "INVALID_MOBILE", /\[function\]/],
        [
          "an object whose toString throws, among numbers",
          [
            "13800138000",
            {
              toString() {
                throw new Error("no");
              },
            },
          ],
          "INVALID_MOBILE",
          // an object in the list is a recipient: this one has no mobile
          /msg\.mobile\[1\]; nothing was sent/,
        ],
        // a bigint holds digits as a number does; a symbol is named
        [
          "a symbol and a bigint",
          ["13800138000", Symbol("x"), 13900139000n],
          "INVALID_MOBILE",
          /: Symbol\(x\); nothing/,
        ],
      ];
      for (const [name, mobile, code, text] of cases) {
        it(`${name}: ${code}, outcome known`, async () => {
          // (A template that reads the value itself, {{recipient.mobile}}, is a TEMPLATE error first.)
          for (const template of [undefined, "{{payload}}"]) {
            const input = { payload: "hi", mobile, template, msg: { payload: "hi" } };
            const e = thrown(() => planSend(input));
            assert.equal(e.code, code);
            assert.equal(e.outcomeUnknown, false);
            assert.match(e.message, text);
            const a = await planSendAsync(input, {}, { pause: () => Promise.resolve() }).then(
              () => assert.fail("planned"),
              (x: unknown) => x as SmsError,
            );
            assert.deepEqual([a.code, a.message], [e.code, e.message]);
          }
        });
      }

      it("a list that cannot be read (a proxy whose traps throw) is INVALID_MOBILE naming it", () => {
        const mobile = new Proxy(["13800138000"], {
          get() {
            throw new Error("trap");
          },
        });
        const e = thrown(() => planSend({ payload: "hi", mobile, msg: {} }));
        assert.equal(e.code, "INVALID_MOBILE");
        assert.equal(e.outcomeUnknown, false);
        assert.match(e.message, /^msg\.mobile could not be read \(trap\); nothing was sent$/);
      });

      it("a list of more than 10,000,000 places is INVALID_MOBILE at once, however empty (an array given only a length)", async () => {
        const mobile: unknown[] = [];
        mobile.length = 1_000_000_000;
        for (const lang of ["en-US", "zh-CN"] as const) {
          const e = thrown(() => planSend({ payload: "hi", mobile, msg: {} }, { lang }));
          assert.equal(e.code, "INVALID_MOBILE");
          assert.match(e.message, lang === "en-US" ? /1000000000 places: at most 10000000/ : /1000000000 个位置/);
        }
        // Within the bound, a long sparse list is read in slices: its one number is sent.
        const sparse: unknown[] = [];
        sparse.length = 300_000;
        sparse[299_999] = { mobile: "13800138000" };
        let pauses = 0;
        const plan = await planSendAsync(
          { payload: "hi", mobile: sparse, msg: {} },
          {},
          {
            pause: () => (pauses++, Promise.resolve()),
            sliceMs: 0,
          },
        ).catch((x: unknown) => x as SmsError);
        // The holes are recipients without a number: named as such.
        assert.ok(plan instanceof SmsError && plan.code === "INVALID_MOBILE", String(plan));
        assert.ok(pauses > 100, `${pauses} pauses`);
      });

      it("an entry too long to be a number is invalid as it is, and named cut short", () => {
        const long = "1".repeat(1_000_000);
        const e = thrown(() => planSend({ payload: "hi", mobile: [long, long, "13800138000"] }));
        assert.equal(e.code, "INVALID_MOBILE");
        assert.deepEqual(e.details.invalid, ["1".repeat(256) + "…", "1".repeat(256) + "…"]);
      });
    });

    describe("what mutation testing found untested (npm run mutate)", () => {
      it("a number payload is the text of a personalised send too; NaN is INVALID_PAYLOAD", () => {
        const list = [{ mobile: num(1) }, { mobile: num(2) }];
        assert.deepEqual(texts(planSend({ payload: 42, mobile: list, msg: {} })), [["42", [num(1), num(2)]]]);
        for (const payload of [NaN, Infinity, "42" as unknown as number]) {
          const plan = (() => {
            try {
              return planSend({ payload, mobile: list, msg: {} });
            } catch (e) {
              return e as SmsError;
            }
          })();
          if (typeof payload === "string") assert.deepEqual(texts(plan as SendPlan), [["42", [num(1), num(2)]]]);
          else assert.equal((plan as SmsError).code, "INVALID_PAYLOAD");
        }
      });

      it("without a template, a bad payload is refused with the plain send's own error, not per recipient", () => {
        const list = [{ mobile: num(1) }, { mobile: num(2) }];
        for (const [payload, opts] of [
          [" ", {}],
          ["x".repeat(11), { maxLength: 10 }],
          ["x".repeat(8), { maxLength: 10, signature: "【签】" }],
        ] as const) {
          const want = thrown(() => prepareSend(payload, num(1), opts));
          const got = thrown(() => planSend({ payload, mobile: list, msg: {} }, opts));
          assert.deepEqual([got.code, got.message, got.details], [want.code, want.message, want.details]);
        }
      });

      it("parts (what the platform bills) are numbers × segments, plain and personalised", () => {
        const long = "长".repeat(100); // 2 segments
        const plain = planSend({ payload: long, mobile: [num(1), num(2), num(3)] });
        assert.deepEqual([plain.count, plain.parts], [3, 6]);
        const list = [
          { mobile: num(1), t: long },
          { mobile: num(2), t: "短" },
          { mobile: num(3), t: long + "长".repeat(40) }, // 140: 3 segments
        ];
        const plan = planSend({ payload: "", mobile: list, template: "{{recipient.t}}", msg: {} });
        assert.deepEqual([plan.count, plan.parts], [3, 2 + 1 + 3]);
      });

      it("a batch size under 1 is refused (an error naming it), never an endless loop", () => {
        assert.throws(
          () => planSend({ payload: "x", mobile: [{ mobile: num(1) }], msg: {} }, { batchSize: 0 }),
          /batchSize must be >= 1/,
        );
      });

      it("a null template is no template", () => {
        assert.deepEqual(texts(planSend({ payload: "x", mobile: num(1), template: null, msg: {} })), [["x", [num(1)]]]);
      });

      it("a template failure for a recipient without a number names it with an empty mobile", () => {
        const e = thrown(() =>
          planSend({ payload: "", mobile: [{ name: "a" }, { mobile: num(1) }], template: "{{recipient.x}}", msg: {} }),
        );
        assert.deepEqual(
          (e.details.problems as { index: number; mobile: string }[]).map((p) => [p.index, p.mobile]),
          [
            [0, ""],
            [1, num(1)],
          ],
        );
      });

      it("an empty or long text names a recipient whose number is invalid by the entry as given", () => {
        const list = [
          { mobile: "123", t: " " },
          { mobile: num(1), t: "ok" },
        ];
        const e = thrown(() => planSend({ payload: "", mobile: list, template: "{{recipient.t}}", msg: {} }));
        assert.equal(e.code, "EMPTY_MESSAGE");
        assert.match(e.message, /msg\.mobile\[0\] \(123\);/);
      });

      it("a TEMPLATE error keeps the first 100 problems in its details, and counts every recipient", () => {
        const list = Array.from({ length: 150 }, (_, i) => ({ mobile: num(i) }));
        const e = thrown(() => planSend({ payload: "", mobile: list, template: "{{recipient.x}}", msg: {} }));
        assert.equal((e.details.problems as unknown[]).length, 100);
        assert.equal((e.details.recipients as number[]).length, 150);
        assert.match(e.message, /for 150 recipient\(s\): msg\.mobile\[0\] \(13900000000\),.* … \(\+140\)/);
      });
    });

    describe("planSendAsync: the same plan in slices, with pauses between them", () => {
      /** A clock that moves 1 ms per reading: a slice of 5 ms is 5 readings. */
      function ticking() {
        let t = 0;
        let pauses = 0;
        return {
          pause: { pause: () => (pauses++, Promise.resolve()), sliceMs: 5, now: () => t++ },
          pauses: () => pauses,
        };
      }
      async function both(input: PlanInput, opts: PlanOptions = {}) {
        let sync: SendPlan | SmsError;
        try {
          sync = planSend(input, opts);
        } catch (e) {
          sync = e as SmsError;
        }
        const clock = ticking();
        const async = await planSendAsync(input, opts, clock.pause).catch((e: unknown) => e as SmsError);
        return { sync, async, pauses: clock.pauses() };
      }
      const same = (a: SendPlan | SmsError, b: SendPlan | SmsError) =>
        a instanceof SmsError
          ? assert.deepEqual(
              [b instanceof SmsError, (b as SmsError).code, (b as SmsError).message],
              [true, a.code, a.message],
            )
          : assert.deepEqual(b, a);

      it("100,000 recipients: pauses, and the plan planSend gives", async () => {
        const list = Array.from({ length: 100_000 }, (_, i) => ({ mobile: num(i % 60_000), n: i % 7 }));
        const r = await both(
          { payload: "", mobile: list, template: "第{{recipient.n}}组", msg: {} },
          { signature: "【签】" },
        );
        same(r.sync, r.async);
        assert.ok(r.pauses > 100, `${r.pauses} pauses`);
        const bad = [...list, { mobile: "1" }];
        const e = await both({ payload: "", mobile: bad, template: "第{{recipient.n}}组", msg: {} });
        same(e.sync, e.async);
        assert.ok(e.async instanceof SmsError);
      });

      it("100,000 plain numbers as a list and as one string: pauses, and the plan planSend gives", async () => {
        const numbers = Array.from({ length: 100_000 }, (_, i) => num(i % 70_000));
        for (const mobile of [numbers, numbers.join(",\n"), numbers.join("；") + "，12345"]) {
          const r = await both({ payload: "通知", mobile });
          same(r.sync, r.async);
          assert.ok(r.pauses > 10, `${r.pauses} pauses`);
        }
      });

      it("property: on random inputs, planSendAsync gives what planSend gives", async () => {
        const entry = fc.oneof(
          fc.integer({ min: 0, max: 20 }).map((i) => num(i)),
          fc.constantFrom("+86 138 0013 8000", "12345", "", " ", "１３８００１３８０００", null, 42, true),
        );
        const element = fc.oneof(
          entry,
          fc.record({ mobile: entry, t: fc.constantFrom("a", "b", " ", "【签】a", "x".repeat(30)) }),
        );
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              fc.array(element, { maxLength: 40 }),
              fc.array(entry, { maxLength: 40 }).map((a) => a.join(",")),
            ),
            fc.constantFrom(undefined, "", "{{recipient.t}}", "{{payload}}!", "{{#recipient.t}}{{.}}{{/recipient.t}}"),
            fc.constantFrom("", "【签】"),
            fc.integer({ min: 1, max: 40 }),
            async (mobile, template, signature, maxLength) => {
              const r = await both(
                { payload: "hi", mobile, template, msg: { payload: "hi" } },
                { signature, maxLength, batchSize: 3 },
              );
              same(r.sync, r.async);
            },
          ),
          { numRuns: 300 },
        );
      });
    });
  });

  describe("preview (the editor's sample rendering)", () => {
    it("gives the text, its length and parts with the signature, and the variables", () => {
      const p = previewTemplate("{{payload.v}} 度", { payload: { v: 42 } }, { signature: "【测试】" });
      assert.deepEqual(p, {
        ok: true,
        text: "【测试】42 度",
        length: 8,
        segments: 1,
        variables: [{ name: "payload.v", kind: "value", within: [] }],
      });
    });

    it("renders the first recipient of a personalised sample msg", () => {
      const p = previewTemplate("Hi {{recipient.name}}", { mobile: [{ mobile: "13800138000", name: "Li" }] });
      assert.equal(p.ok && p.text, "Hi Li");
    });

    it("returns errors instead of throwing, and the variables it could read", () => {
      const missing = previewTemplate("{{payload.v}}", { payload: {} }, { lang: "zh-CN" });
      assert.equal(missing.ok, false);
      assert.equal(!missing.ok && missing.code, "TEMPLATE");
      assert.deepEqual(missing.variables, [{ name: "payload.v", kind: "value", within: [] }]);
      const syntax = previewTemplate("{{#a}}", {});
      assert.equal(!syntax.ok && syntax.code, "TEMPLATE");
      assert.deepEqual(syntax.variables, []);
      const long = previewTemplate("{{payload}}", { payload: "x".repeat(20) }, { maxLength: 10 });
      assert.equal(!long.ok && long.code, "MESSAGE_TOO_LONG");
      assert.equal(!long.ok && long.length, 20);
    });
  });

  describe("runs without Node (the editor bundles it)", () => {
    // A bare CommonJS loader in a fresh context: no Buffer, no process, no Node module; only our
    // compiled lib files and mustache. Whatever the editor bundle runs must work here.
    function load(entry: string): Record<string, unknown> {
      const context = vm.createContext({ console });
      const cache = new Map<string, { exports: Record<string, unknown> }>();
      const mustache = require.resolve("mustache");
      const requireFrom = (dir: string) => (id: string) => {
        let file: string;
        if (id === "mustache") file = mustache;
        else if (id.startsWith(".")) file = require.resolve(path.resolve(dir, id));
        else throw new Error(`the editor bundle would need ${id}`);
        let mod = cache.get(file);
        if (!mod) {
          mod = { exports: {} };
          cache.set(file, mod);
          const wrapper = vm.runInContext(
            `(function (exports, require, module) {${fs.readFileSync(file, "utf8")}\n})`,
            context,
          ) as (e: object, r: (id: string) => unknown, m: object) => void;
          wrapper(mod.exports, requireFrom(path.dirname(file)), mod);
        }
        return mod.exports;
      };
      return requireFrom(__dirname)(entry) as Record<string, unknown>;
    }

    it("compiles, previews and plans a personalised send with no Node global in reach", () => {
      const lib = load("../../../src/lib/alerts/personalise") as {
        planSend: typeof planSend;
        previewTemplate: typeof previewTemplate;
      };
      const preview = lib.previewTemplate("{{recipient.name}} {{payload.v}}", {
        payload: { v: 1 },
        mobile: [{ mobile: "13800138000", name: "Li" }],
      });
      assert.equal(preview.ok && preview.text, "Li 1");
      const plan = lib.planSend({
        payload: {},
        mobile: [{ mobile: "13800138000", name: "Li" }, "13900139000"],
        template: "Hi{{#recipient.name}} {{.}}{{/recipient.name}}",
        msg: {},
      });
      // Arrays from another realm: compare their contents, not their prototypes.
      assert.equal(plan.requests.map((r) => r.text).join("|"), "Hi Li|Hi");
      const failed = lib.previewTemplate("{{#a}}", {}, { lang: "zh-CN" });
      assert.equal(!failed.ok && failed.code, "TEMPLATE");
    });
  });
});
