import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { request } from "undici";
import { SmsClient } from "../../src/lib/platform/client";
import { SmsError } from "../../src/lib/errors";
import type { SimAccountConfig } from "../../src/simulator/accounts";
import { Simulator, splitParts, startSimulator } from "../../src/simulator/simulator";
import { PushReceiver } from "../support/receiver";
import { waitFor } from "../support/stub";

const OK_TEXT = "【朗宇信息】您好";

async function post(sim: Simulator, params: Record<string, string>, path = "/msg/HttpBatchSendSM") {
  const res = await request(sim.url + path, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.statusCode, body: await res.body.text() };
}

const send = (o: Record<string, string> = {}) => ({
  account: "demo",
  pswd: "demo",
  mobile: "13800138000",
  msg: OK_TEXT,
  needstatus: "true",
  ...o,
});

function code(body: string): number {
  return Number(body.split(/\r?\n/)[0].split(",")[1]);
}

describe("simulator", () => {
  let sim: Simulator;
  afterEach(async () => {
    await sim?.close();
  });

  it("answers a send with <time>,0 and a msgid, and decreases the balance by segments × numbers", async () => {
    sim = await startSimulator();
    const r = await post(sim, send({ mobile: "13800138000,13900139000", msg: "x".repeat(71) }));
    assert.match(r.body, /^\d{14},0\n\d{20}$/);
    assert.equal(sim.account("demo")!.products["1001"], 10000 - 2 * 2);
  });

  it("accepts GET too, and no msgid when needstatus=false", async () => {
    sim = await startSimulator();
    const q = new URLSearchParams(send({ needstatus: "false" }));
    const res = await request(`${sim.url}/msg/HttpBatchSendSM?${q}`);
    assert.match(await res.body.text(), /^\d{14},0$/);
  });

  const cases: Array<[number, Partial<SimAccountConfig>, Record<string, string>]> = [
    [101, {}, { account: "nobody" }],
    [102, {}, { pswd: "wrong" }],
    [104, { busy: true }, {}],
    [105, { sensitiveWords: ["赌博"] }, { msg: "【朗宇信息】赌博" }],
    [106, {}, { msg: "x".repeat(537) }],
    [107, {}, { mobile: "13800138000,12345" }],
    [108, {}, { mobile: "" }],
    [109, { products: { "1001": 1 } }, { mobile: "13800138000,13900139000" }],
    [110, { sendingHours: [0, 0] }, {}],
    [111, { monthlyLimit: 1 }, { mobile: "13800138000,13900139000" }],
    [112, {}, { product: "9999" }],
    [113, {}, { extno: "12a" }],
    [115, { reviewWords: ["贷款"] }, { msg: "【朗宇信息】贷款" }],
    [116, { signatureRequired: true }, { msg: "no signature" }],
    [117, { allowedIps: ["10.1.2.3"] }, {}],
    [118, { canSend: false }, {}],
    [119, { expired: true }, {}],
    [120, { whitelist: ["验证码"] }, { msg: "【朗宇信息】hello" }],
  ];
  for (const [want, rules, params] of cases) {
    it(`triggers send code ${want}`, async () => {
      sim = await startSimulator({ accounts: [{ account: "demo", password: "demo", ...rules }] });
      const r = await post(sim, send(params));
      assert.equal(r.status, 200);
      assert.match(r.body, /^\d{14},\d+$/, "no msgid on failure");
      assert.equal(code(r.body), want);
    });
  }

  it("triggers 103 when the account's request rate is exceeded", async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: "demo", rateLimit: 2 }] });
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(code((await post(sim, send())).body));
    assert.deepEqual(codes, [0, 0, 103]);
  });

  it("forceCode answers any code on purpose; old numbering is selectable", async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: "demo", forceCode: 107 }] });
    assert.equal(code((await post(sim, send())).body), 107);
    sim.configure({ account: "demo", forceCode: undefined, oldCodes: true, signatureRequired: true });
    assert.equal(code((await post(sim, send({ msg: "no sig" }))).body), 115);
  });

  it("reply variants: CRLF and a blank line between the lines", async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: "demo", lineEnding: "crlf" }] });
    assert.match((await post(sim, send())).body, /^\d{14},0\r\n\d+$/);
    sim.configure({ account: "demo", lineEnding: "blank" });
    assert.match((await post(sim, send())).body, /^\d{14},0\n\n\d+$/);
  });

  it("balance codes 0, 101, 102, 103", async () => {
    sim = await startSimulator();
    const q = (o: Record<string, string>) =>
      request(`${sim.url}/msg/QueryBalance?${new URLSearchParams(o)}`).then((r) => r.body.text());
    assert.match(await q({ account: "demo", pswd: "demo" }), /^\d{14},0\n1001,10000\n1002,500$/);
    assert.equal(code(await q({ account: "demo", pswd: "demo" })), 103);
    assert.equal(code(await q({ account: "x", pswd: "demo" })), 101);
    assert.equal(code(await q({ account: "demo", pswd: "x" })), 102);
  });

  it("rejects a body over the limit with 413", async () => {
    sim = await startSimulator({ maxBodyBytes: 1000 });
    const r = await post(sim, send({ msg: "x".repeat(2000) }));
    assert.equal(r.status, 413);
  });

  it("lists requests with the password masked, and resets", async () => {
    sim = await startSimulator();
    await post(sim, send());
    const list = (await (await request(`${sim.url}/sim/requests`)).body.json()) as Array<{
      params: { pswd: string };
      code: number;
    }>;
    assert.equal(list.length, 1);
    assert.equal(list[0].params.pswd, "***");
    await request(`${sim.url}/sim/reset`, { method: "POST" }).then((r) => r.body.text());
    assert.equal(sim.requests.length, 0);
    assert.equal(sim.account("demo")!.products["1001"], 10000);
  });

  describe("pushes to a real receiver", () => {
    let rx: PushReceiver;
    beforeEach(async () => {
      rx = await new PushReceiver().start();
    });
    afterEach(async () => {
      await sim?.close();
      await rx.close();
    });

    it("pushes one delivery report per number, with status rules", async () => {
      sim = await startSimulator({
        reportUrl: rx.url("/report"),
        receiver: "rcv",
        receiverPassword: "rpw",
        reportDelayMs: 10,
        accounts: [{ account: "demo", password: "demo", reportStatus: { "13900139000": "MBBLACK" } }],
      });
      const r = await post(sim, send({ mobile: "13800138000,13900139000" }));
      const msgid = r.body.split("\n")[1];
      await sim.idle();
      assert.equal(rx.pushes.length, 2);
      const byMobile = Object.fromEntries(rx.pushes.map((p) => [p.params.mobile, p.params]));
      assert.equal(byMobile["13800138000"].status, "DELIVRD");
      assert.equal(byMobile["13900139000"].status, "MBBLACK");
      for (const p of rx.pushes) {
        assert.equal(p.params.msgid, msgid);
        assert.equal(p.params.receiver, "rcv");
        assert.equal(p.params.pswd, "rpw");
        assert.match(p.params.reportTime, /^\d{10}$/);
      }
    });

    it("retries a push not answered OK, and can push duplicates on purpose", async () => {
      sim = await startSimulator({
        reportUrl: rx.url(),
        reportDelayMs: 1,
        pushRetryDelayMs: 10,
        accounts: [{ account: "demo", password: "demo", duplicateReports: 1 }],
      });
      rx.failNext = [500];
      await post(sim, send());
      await sim.idle();
      assert.equal(rx.pushes.length, 2, "one report pushed twice, after one failed try");
      assert.equal(sim.stats.pushFailed, 0);
      assert.equal(sim.pushes.filter((p) => p.attempts === 2).length, 1);
    });

    it("no reports when needstatus=false", async () => {
      sim = await startSimulator({ reportUrl: rx.url(), reportDelayMs: 1 });
      await post(sim, send({ needstatus: "false" }));
      await sim.idle();
      assert.equal(rx.pushes.length, 0);
    });

    it("injects a plain inbound SMS through /sim/mo", async () => {
      sim = await startSimulator({ moUrl: rx.url("/mo"), receiver: "r", receiverPassword: "p" });
      const res = await request(`${sim.url}/sim/mo`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ mobile: "13800138000", destcode: "106", text: "hi a=b&c%d 😀" }),
      });
      assert.deepEqual(await res.body.json(), { parts: 1, pushed: 1, id: null });
      await sim.idle();
      assert.equal(rx.pushes.length, 1);
      assert.equal(rx.pushes[0].params.msg, "hi a=b&c%d 😀");
      assert.equal(rx.pushes[0].params.isems, undefined);
      assert.match(rx.pushes[0].params.moTime, /^\d{10}$/);
    });

    it("splits a long inbound SMS into emshead parts of 67, shuffled and duplicated", async () => {
      sim = await startSimulator({ moUrl: rx.url("/mo") });
      const text = "长".repeat(150);
      const r = sim.injectMo({ mobile: "13800138000", text, shuffle: true, duplicate: [2], id: "42" });
      assert.deepEqual(r, { parts: 3, pushed: 4, id: "42" });
      await sim.idle();
      const heads = rx.pushes.map((p) => p.params.emshead).sort();
      assert.deepEqual(heads, ["42,3,1", "42,3,2", "42,3,2", "42,3,3"]);
      for (const p of rx.pushes) assert.equal(p.params.isems, "1");
      const parts = new Map(rx.pushes.map((p) => [p.params.emshead, p.params.msg]));
      assert.equal(parts.get("42,3,1")! + parts.get("42,3,2")! + parts.get("42,3,3")!, text);
    });

    it("can withhold a part", async () => {
      sim = await startSimulator({ moUrl: rx.url("/mo") });
      sim.injectMo({ mobile: "13800138000", text: "x".repeat(250), withhold: [3] });
      await sim.idle();
      assert.deepEqual(rx.pushes.map((p) => p.params.emshead.split(",")[2]).sort(), ["1", "2", "4"]);
    });
  });

  it("splitParts never cuts a surrogate pair", () => {
    const text = "a".repeat(66) + "😀" + "b".repeat(10);
    const parts = splitParts(text);
    assert.equal(parts[0], "a".repeat(66));
    assert.equal(parts.join(""), text);
  });

  it("the src/lib client works against it end to end", async () => {
    sim = await startSimulator();
    const client = new SmsClient({ url: sim.url, account: "demo", password: "demo", rate: 0 });
    try {
      const r = await client.send({ mobiles: ["13800138000"], text: OK_TEXT, needstatus: true });
      assert.match(r.msgid!, /^\d+$/);
      const b = await client.balance();
      assert.deepEqual(b.products, [
        { product: "1001", balance: 9999 },
        { product: "1002", balance: 500 },
      ]);
      const bad = new SmsClient({ url: sim.url, account: "demo", password: "nope", rate: 0 });
      await assert.rejects(
        bad.send({ mobiles: ["13800138000"], text: OK_TEXT, needstatus: true }),
        (e: SmsError) => e.code === 102,
      );
      await bad.close();
    } finally {
      await client.close();
    }
  });

  it("CLI: prints its URL, answers demo/demo, stops cleanly on SIGTERM", async () => {
    const cli = path.join(__dirname, "../../../dist/simulator/cli.js");
    const child = spawn(process.execPath, [cli, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    try {
      await waitFor(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out), 10_000, "simulator start");
      const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1];
      const ok = await request(`${url}/msg/HttpBatchSendSM`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(send()).toString(),
      });
      assert.match(await ok.body.text(), /^\d{14},0\n\d+$/);
      const bad = await request(`${url}/msg/HttpBatchSendSM`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(send({ pswd: "wrong" })).toString(),
      });
      assert.match(await bad.body.text(), /^\d{14},102$/);
    } finally {
      const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    }
  });
});
