// The editor's bundle (scripts/resources.js → resources/cnsms-sms.js) in a context with only what a
// browser has (no Buffer, no require, no process): it loads, and its template preview and send
// plan give what the runtime's modules give for the same input.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { planSend, previewTemplate } from "../../src/lib/alerts/personalise";
import { parseTrackTimeout } from "../../src/lib/props";

const BUNDLE = path.join(__dirname, "../../../resources/cnsms-sms.js");

type Lib = {
  personalise: { planSend: typeof planSend; previewTemplate: typeof previewTemplate };
  props: { parseTrackTimeout: typeof parseTrackTimeout };
};

function browserLib(): Lib {
  const window: Record<string, unknown> = {};
  const ctx = vm.createContext({ window });
  vm.runInContext(fs.readFileSync(BUNDLE, "utf8"), ctx, { filename: "cnsms-sms.js" });
  return window.CnsmsSms as Lib;
}

describe("editor bundle (resources/cnsms-sms.js) without Node.js globals", () => {
  it("loads, and a non-text payload is named as the runtime names it (typeName without Buffer)", () => {
    const lib = browserLib();
    const attempt = (fn: () => unknown) => {
      try {
        fn();
        return "no error";
      } catch (e) {
        return (e as Error).message;
      }
    };
    const input = { payload: { text: "x" }, mobile: "13800138000" };
    assert.equal(
      attempt(() => lib.personalise.planSend(input)),
      "msg.payload must be the SMS text (a string or a number), got object",
    );
    assert.equal(
      attempt(() => lib.personalise.planSend(input)),
      attempt(() => planSend(input)),
    );
  });

  it("the template preview and the tracking timeout rule are the runtime's", () => {
    const lib = browserLib();
    const msg = { payload: { month: "3月" }, mobile: [{ mobile: "13800138000", name: "王先生" }] };
    for (const [source, opts] of [
      ["{{recipient.name}}您好，{{payload.month}}账单 <已出> & 请查收", { signature: "【朗宇信息】" }],
      ["{{recipient.nickname}}您好", { lang: "zh-CN" as const }],
      ["{{#payload}}{{month}}{{/payload}}".repeat(100), { maxLength: 200 }],
      ["{{#unclosed}}", {}],
    ] as const) {
      assert.deepEqual(
        JSON.parse(JSON.stringify(lib.personalise.previewTemplate(source, msg, opts))),
        JSON.parse(JSON.stringify(previewTemplate(source, msg, opts))),
        source,
      );
    }
    for (const v of ["", "60", "0.05", "0", "-1", "2880", "2881", "abc", 30])
      assert.equal(lib.props.parseTrackTimeout(v), parseTrackTimeout(v), String(v));
  });
});
