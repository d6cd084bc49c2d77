// Reading an inbound SMS as an answer to pages (SPEC B11): full-width, case, surrounding spaces and
// punctuation ignored; anything else is not an answer.
import assert from "node:assert/strict";
import { parseReply } from "../../../src/lib/alerts/replies";

describe("lib/alerts: replies (reading an inbound SMS)", () => {
  const ack = (code: number) => ({ kind: "code", code, action: "ack" });
  const close = (code: number) => ({ kind: "code", code, action: "close" });
  const cases: Array<[string, unknown]> = [
    ["1", ack(1)],
    ["12", ack(12)],
    ["1a", ack(1)],
    ["1A", ack(1)],
    ["1 a", ack(1)],
    ["3c", close(3)],
    ["3C", close(3)],
    ["１", ack(1)],
    ["１ａ", ack(1)],
    ["２ｃ", close(2)],
    ["  1  ", ack(1)],
    ["1。", ack(1)],
    ["【1】", ack(1)],
    ['"2c"!', close(2)],
    ["007", ack(7)],
    ["-1-", ack(1)],
    ["a", { kind: "latest" }],
    ["A", { kind: "latest" }],
    ["ack", { kind: "latest" }],
    ["ACK!", { kind: "latest" }],
    ["Ack.", { kind: "latest" }],
    ["ok", { kind: "latest" }],
    ["OK", { kind: "latest" }],
    ["ＯＫ", { kind: "latest" }],
    ["收到", { kind: "latest" }],
    ["收到！", { kind: "latest" }],
    [" 确认。", { kind: "latest" }],
    ["aa", { kind: "all" }],
    ["AA", { kind: "all" }],
    ["ａａ", { kind: "all" }],
    ["全部确认", { kind: "all" }],
    ["全部确认!!", { kind: "all" }],
  ];
  for (const [text, want] of cases) {
    it(`${JSON.stringify(text)} → ${JSON.stringify(want)}`, () => {
      assert.deepEqual(parseReply(text), want);
    });
  }

  const none = [
    "",
    "0",
    "0a",
    "1b",
    "1ac",
    "a1",
    "ack 1",
    "okay",
    "好的",
    "收到了",
    "确认1",
    "1确认",
    "aaa",
    "hello",
    "1 2",
    "1.5",
    "1-2",
  ];
  it(`not answers: ${none.map((s) => JSON.stringify(s)).join(" ")}, and non-text`, () => {
    for (const t of none) assert.equal(parseReply(t), null, t);
    for (const v of [undefined, null, 1, {}, ["1"]]) assert.equal(parseReply(v), null, String(v));
    assert.equal(parseReply("1".padStart(500, " ")), null, "a long text is not an answer");
  });
});
