import assert from "node:assert/strict";
import {
  BALANCE_CODES,
  CodeTable,
  parseCodeOverrides,
  REPORT_STATUSES,
  SEND_CODES,
} from "../../../src/lib/platform/codes";

describe("lib/platform/codes", () => {
  it("has every SPEC send code (107 included) in both languages", () => {
    const codes = [0, ...Array.from({ length: 20 }, (_, i) => 101 + i)].filter((c) => c !== 114);
    for (const c of codes) {
      assert.ok(SEND_CODES[c]?.["en-US"], `en ${c}`);
      assert.ok(SEND_CODES[c]?.["zh-CN"], `zh ${c}`);
    }
    assert.match(new CodeTable("en-US").send(107), /invalid mobile/);
  });

  it("has the balance codes and report statuses in both languages", () => {
    for (const c of [0, 101, 102, 103]) assert.ok(BALANCE_CODES[c]["en-US"] && BALANCE_CODES[c]["zh-CN"]);
    for (const s of ["DELIVRD", "MBBLACK", "ROUTEERR", "REJECT", "DISTURB", "EMSERR", "SIGNERR", "KEYWORD"]) {
      assert.ok(REPORT_STATUSES[s]["en-US"] && REPORT_STATUSES[s]["zh-CN"], s);
    }
  });

  it("unknown codes and gateway statuses get a generic text showing the code", () => {
    assert.match(new CodeTable("en-US").send(199), /199/);
    assert.match(new CodeTable("zh-CN").send(199), /未知代码 199/);
    assert.match(new CodeTable("en-US").status("UNDELIV"), /UNDELIV.*not delivered/);
    assert.match(new CodeTable("zh-CN").status("ERR:104"), /ERR:104/);
  });

  it("speaks Chinese when asked", () => {
    assert.equal(new CodeTable("zh-CN").send(102), "密码错");
    assert.equal(new CodeTable("zh-CN").balance(103), "查询过快（建议每10秒查询一次）");
  });

  it("can be overridden per account (older numbering)", () => {
    const o = parseCodeOverrides(
      '{"115":"signature missing (v1.3)","balance:103":{"zh-CN":"太快"},"UNDELIV":"not delivered"}',
    );
    assert.ok(o);
    const en = new CodeTable("en-US", o!);
    assert.equal(en.send(115), "signature missing (v1.3)");
    assert.equal(en.send(116), SEND_CODES[116]["en-US"]);
    assert.equal(en.balance(103), "太快");
    assert.equal(en.status("UNDELIV"), "not delivered");
    assert.equal(parseCodeOverrides("{bad json"), null);
    assert.equal(parseCodeOverrides("[1]"), null);
    assert.deepEqual(parseCodeOverrides(""), {});
  });

  it("114, the older numbering of automatic review, is named in both languages (not an unknown code)", () => {
    assert.equal(new CodeTable("en-US").send(114), "automatic review rejected (older platform numbering)");
    assert.equal(new CodeTable("zh-CN").send(114), "自动审核驳回（旧版平台编号）");
  });
});
