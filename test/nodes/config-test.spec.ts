// The "Test connection" admin route answers in the language the editor asks for (its own), not the
// server's: the zh-CN editor on an en-US Node-RED reads Chinese.
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { flowWith, helper, load } from "../support/nr";

describe("nodes/config-test: the 'Test connection' route", () => {
  let sim: Simulator;
  beforeEach(async () => {
    sim = await startSimulator({});
    await load(flowWith({ url: sim.url }, []));
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
  });
  const test = (body: Record<string, unknown>) => helper.request().post("/sms-config/test").send(body);

  it("a platform error in the editor's language, its code once (the editor shows the message alone)", async () => {
    const zh = await test({ url: sim.url, account: "demo", password: "nope", lang: "zh-CN" });
    assert.deepEqual(zh.body, { ok: false, code: 102, message: "平台错误 102：密码错" });
    const en = await test({ url: sim.url, account: "demo", password: "nope", lang: "en-US" });
    assert.equal(en.body.message, "Platform error 102: wrong password");
  });

  it("without a language (an older editor) it answers in English", async () => {
    const r = await test({ url: sim.url, account: "demo", password: "nope" });
    assert.equal(r.body.message, "Platform error 102: wrong password");
  });

  it("missing credentials and a bad URL: the route's own messages are translated too", async () => {
    const none = await test({ url: sim.url, account: "", password: "", lang: "zh-CN" });
    assert.deepEqual(none.body, { ok: false, code: "NO_CONFIG", message: "短信账号未设置账号名或密码" });
    const bad = await test({ url: "ftp://x", account: "demo", password: "demo", lang: "zh-CN" });
    assert.equal(bad.body.ok, false);
    assert.match(bad.body.message, /[\u4e00-\u9fff]/, bad.body.message);
    assert.doesNotMatch(bad.body.message, /\b(?:The|is not|valid)\b/, bad.body.message);
  });

  it("success: the products and their balances, for the editor to word", async () => {
    const r = await test({ url: sim.url, account: "demo", password: "demo", lang: "zh-CN" });
    assert.deepEqual(r.body, {
      ok: true,
      code: 0,
      products: [
        { product: "1001", balance: 10000 },
        { product: "1002", balance: 500 },
      ],
    });
  });
});
