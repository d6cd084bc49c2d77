import assert from "node:assert/strict";
import { request } from "undici";
import { Simulator, startSimulator, type SimulatorOptions } from "../../src/simulator/simulator";
import { TIME_FORMATS, type TimeFormat } from "../../src/simulator/variants";
import { queryOf, rawRequest, WireReceiver, type WirePush } from "./wire";

const OK_TEXT = "【朗宇信息】您好";
const gb = new TextDecoder("gb18030");

const send = (o: Record<string, string> = {}) => ({
  account: "demo",
  pswd: "demo",
  mobile: "13800138000",
  msg: OK_TEXT,
  needstatus: "true",
  ...o,
});

async function post(sim: Simulator, params: Record<string, string>) {
  const res = await request(`${sim.url}/msg/HttpBatchSendSM`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.statusCode, body: await res.body.text() };
}

async function admin(sim: Simulator, path: string, body?: unknown) {
  const res = await request(sim.url + path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

const json = (p: WirePush): unknown => JSON.parse(p.body.toString("utf8"));
const form = (p: WirePush): Record<string, string> => Object.fromEntries(new URLSearchParams(p.body.toString()));

/** The instant a pushed time stands for (platform wall-clock forms are UTC+8). */
function instant(value: unknown, f: TimeFormat): number {
  if (f === "epochMs") return value as number;
  const s = String(value);
  if (f === "iso" || f === "isoUtc") return Date.parse(s);
  const d = s.replace(/\D/g, "");
  const full = f === "yyyyMMddHHmmss" || f === "yyyy-MM-dd HH:mm:ss" ? d : "20" + d;
  const n = (a: number, b: number) => Number(full.slice(a, b));
  return Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(8, 10), n(10, 12), n(12, 14) || 0) - 8 * 3600_000;
}

const SHAPES: Record<TimeFormat, RegExp> = {
  YYMMDDhhmm: /^\d{10}$/,
  YYMMDDhhmmss: /^\d{12}$/,
  yyyyMMddHHmmss: /^\d{14}$/,
  epochMs: /^\d{13}$/,
  "yyyy-MM-dd HH:mm:ss": /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/,
  iso: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$/,
  isoUtc: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
};

describe("simulator field variants (SPEC A5), checked on the wire", () => {
  let sim: Simulator | undefined;
  let rx: WireReceiver;
  beforeEach(async () => {
    rx = await new WireReceiver().start();
  });
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
    await rx.close();
  });

  const start = (o: SimulatorOptions = {}) =>
    startSimulator({ reportUrl: rx.url("/report"), moUrl: rx.url("/mo"), reportDelayMs: 1, ...o }).then(
      (s) => (sim = s),
    );

  it("default reports are still GET, UTF-8, YYMMDDhhmm, the number as submitted, no extra params", async () => {
    await start({ receiver: "r", receiverPassword: "p" });
    await post(sim!, send());
    await sim!.idle();
    assert.equal(rx.pushes.length, 1);
    const [p] = rx.pushes;
    assert.equal(p.method, "GET");
    assert.equal(p.body.length, 0);
    const q = queryOf(p);
    assert.deepEqual(Object.keys(q), ["receiver", "pswd", "msgid", "reportTime", "mobile", "status"]);
    assert.match(q.reportTime, /^\d{10}$/);
    assert.equal(q.mobile, "13800138000");
  });

  it("reportExtras: notifyTime (YYMMDDhhmmss), batchSeq, uid echoed from the send, price, chargeCount", async () => {
    await start({ accounts: [{ account: "demo", password: "demo", reportExtras: true }] });
    await post(sim!, send({ mobile: "13800138000,13900139000", uid: "order-7", msg: "x".repeat(71) }));
    await sim!.idle();
    assert.equal(rx.pushes.length, 2);
    for (const p of rx.pushes) {
      const q = queryOf(p);
      assert.match(q.notifyTime, /^\d{12}$/);
      assert.equal(q.uid, "order-7");
      assert.equal(q.price, "0.05");
      assert.equal(q.chargeCount, "2", "a 71-character text is billed as 2 parts");
      assert.match(q.batchSeq, /^\d+$/);
    }
    assert.equal(queryOf(rx.pushes[0]).batchSeq, queryOf(rx.pushes[1]).batchSeq, "one batchSeq per send");
  });

  for (const f of TIME_FORMATS) {
    it(`timeFormat ${f}: reportTime and moTime in that format, standing for the push time`, async () => {
      const before = Date.now();
      await start({ timeFormat: f, pushStyle: f === "epochMs" ? "json" : "get" });
      await post(sim!, send());
      sim!.injectMo({ mobile: "13800138000", text: "hi" });
      await sim!.idle();
      const after = Date.now();
      assert.equal(rx.pushes.length, 2);
      for (const p of rx.pushes) {
        const fields = f === "epochMs" ? (json(p) as Record<string, unknown>) : queryOf(p);
        const t = p.path === "/report" ? fields.reportTime : fields.moTime;
        if (f === "epochMs") assert.equal(typeof t, "number", "epoch ms is a JSON number");
        assert.match(String(t), SHAPES[f]);
        const resolution = f === "YYMMDDhhmm" ? 60_000 : f === "epochMs" || f.startsWith("iso") ? 1 : 1000;
        const at = instant(t, f);
        assert.ok(at > before - resolution && at <= after, `${String(t)} is not between ${before} and ${after}`);
      }
    });
  }

  it("mobileFormat 86 and +86 on reports and inbound SMS (+ percent-encoded on the wire)", async () => {
    await start({ mobileFormat: "+86", accounts: [{ account: "demo", password: "demo", mobileFormat: "86" }] });
    await post(sim!, send());
    sim!.injectMo({ mobile: "13900139000", text: "hi" });
    await sim!.idle();
    const report = rx.pushes.find((p) => p.path === "/report")!;
    const mo = rx.pushes.find((p) => p.path === "/mo")!;
    assert.equal(queryOf(report).mobile, "8613800138000", "the account's format replaces the simulator's");
    assert.match(mo.query, /(^|&)mobile=%2B8613900139000(&|$)/);
    assert.equal(queryOf(mo).mobile, "+8613900139000");
  });

  it("pushStyle form: POST x-www-form-urlencoded, params in the body only", async () => {
    await start({ pushStyle: "form", receiver: "r" });
    await post(sim!, send());
    sim!.injectMo({ mobile: "13800138000", text: "a=b&c 你好" });
    await sim!.idle();
    for (const p of rx.pushes) {
      assert.equal(p.method, "POST");
      assert.equal(p.query, "");
      assert.equal(p.headers["content-type"], "application/x-www-form-urlencoded");
      assert.equal(form(p).receiver, "r");
    }
    assert.equal(form(rx.pushes.find((p) => p.path === "/mo")!).msg, "a=b&c 你好");
    assert.equal(form(rx.pushes.find((p) => p.path === "/report")!).status, "DELIVRD");
  });

  it("pushStyle json: POST one JSON object per push", async () => {
    await start({ pushStyle: "json", receiver: "r", receiverPassword: "p" });
    const r = await post(sim!, send({ mobile: "13800138000,13900139000" }));
    const msgid = r.body.split("\n")[1];
    await sim!.idle();
    assert.equal(rx.pushes.length, 2);
    for (const p of rx.pushes) {
      assert.equal(p.method, "POST");
      assert.equal(p.headers["content-type"], "application/json");
      const o = json(p) as Record<string, unknown>;
      assert.equal(Array.isArray(o), false);
      assert.deepEqual(Object.keys(o), ["receiver", "pswd", "msgid", "reportTime", "mobile", "status"]);
      assert.equal(o.msgid, msgid);
      assert.equal(o.pswd, "p");
    }
  });

  it("batchReports: the reports of one send as JSON arrays of up to n per POST, recorded with their batch", async () => {
    await start({ accounts: [{ account: "demo", password: "demo", batchReports: 2 }], receiverPassword: "secret" });
    const mobiles = ["13800138000", "13800138001", "13800138002", "13800138003", "13800138004"];
    await post(sim!, send({ mobile: mobiles.join(",") }));
    await sim!.idle();
    assert.equal(rx.pushes.length, 3);
    const arrays = rx.pushes.map((p) => json(p) as Array<Record<string, unknown>>);
    for (const a of arrays) assert.ok(Array.isArray(a));
    assert.deepEqual(arrays.map((a) => a.length).sort(), [1, 2, 2]);
    assert.deepEqual(
      arrays
        .flat()
        .map((r) => r.mobile)
        .sort(),
      mobiles,
    );
    assert.equal(sim!.pushes.length, 3);
    for (const p of sim!.pushes) {
      assert.equal(p.style, "json-array");
      assert.ok(
        p.batch!.every((r) => r.pswd === "***"),
        "the push password is masked in the history",
      );
    }
  });

  it("extra params: nested objects stay nested in JSON, and go as JSON text in GET", async () => {
    const extra = { fee: { amount: 0.05, currency: "CNY" }, tags: ["a", "b"], region: "华东", n: 7 };
    await start({ extra, accounts: [{ account: "demo", password: "demo", pushStyle: "json" }] });
    await post(sim!, send());
    sim!.injectMo({ mobile: "13800138000", text: "hi" });
    await sim!.idle();
    const report = json(rx.pushes.find((p) => p.path === "/report")!) as Record<string, unknown>;
    assert.deepEqual(report.fee, extra.fee);
    assert.deepEqual(report.tags, extra.tags);
    assert.equal(report.n, 7);
    const mo = queryOf(rx.pushes.find((p) => p.path === "/mo")!);
    assert.equal(mo.fee, '{"amount":0.05,"currency":"CNY"}');
    assert.equal(mo.region, "华东");
    assert.equal(mo.n, "7");
  });

  it("an extra param never replaces a standard one", async () => {
    await start({ extra: { status: "FAKE", mobile: "1", custom: "x" } });
    await post(sim!, send());
    await sim!.idle();
    const q = queryOf(rx.pushes[0]);
    assert.equal(q.status, "DELIVRD");
    assert.equal(q.mobile, "13800138000");
    assert.equal(q.custom, "x");
  });

  it("msgidAsNumber: a 20-digit msgid as a bare JSON number, every digit kept", async () => {
    await start({ pushStyle: "json", msgidAsNumber: true, extra: { inner: { msgid: "123" } } });
    const r = await post(sim!, send());
    const msgid = r.body.split("\n")[1];
    assert.match(msgid, /^\d{20}$/);
    await sim!.idle();
    const raw = rx.pushes[0].body.toString();
    assert.ok(raw.includes(`"msgid":${msgid},`), raw);
    assert.ok(raw.includes(`"inner":{"msgid":"123"}`), "only the report's own msgid is a number");
  });

  it("pushCharset gb18030: texts percent-encoded in GB18030 (你好 = %C4%E3%BA%C3), emoji included", async () => {
    await start({ pushCharset: "gb18030" });
    sim!.injectMo({ mobile: "13800138000", text: "你好" });
    const long = "长短信😀".repeat(20);
    sim!.injectMo({ mobile: "13800138000", text: long, id: "9" });
    await sim!.idle();
    const plain = rx.pushes.find((p) => !p.query.includes("emshead"))!;
    assert.match(plain.query, /(^|&)msg=%C4%E3%BA%C3(&|$)/);
    // Decode the raw bytes of msg as GB18030 to check every character survived.
    const msgOf = (p: WirePush) => {
      const raw = /(?:^|&)msg=([^&]*)/.exec(p.query)![1].replace(/\+/g, "%20");
      return gb.decode(
        Buffer.from(
          raw.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
          "latin1",
        ),
      );
    };
    const parts = new Map(
      rx.pushes.filter((p) => p.query.includes("emshead")).map((p) => [queryOf(p).emshead, msgOf(p)]),
    );
    assert.deepEqual([...parts.keys()].sort(), ["9,2,1", "9,2,2"]);
    assert.equal(parts.get("9,2,1")! + parts.get("9,2,2"), long);
  });

  it("pushCharset gbk writes ? for an emoji; declareCharset names the charset on a form push", async () => {
    await start({ pushCharset: "gbk", pushStyle: "form", declareCharset: true });
    sim!.injectMo({ mobile: "13800138000", text: "你好😀" });
    await sim!.idle();
    const [p] = rx.pushes;
    assert.equal(p.headers["content-type"], "application/x-www-form-urlencoded; charset=gbk");
    assert.match(p.body.toString(), /(^|&)msg=%C4%E3%BA%C3%3F(&|$)/);
  });

  it("a URL check: GET and HEAD with no params at all (POST /sim/check)", async () => {
    await start();
    assert.equal((await admin(sim!, "/sim/check", { to: "report", method: "HEAD" })).status, 200);
    assert.equal((await admin(sim!, "/sim/check", { to: "mo" })).status, 200);
    await sim!.idle();
    const byMethod = Object.fromEntries(rx.pushes.map((p) => [p.method, p]));
    assert.equal(byMethod.HEAD.path, "/report");
    assert.equal(byMethod.GET.path, "/mo");
    for (const p of rx.pushes) {
      assert.equal(p.query, "");
      assert.equal(p.body.length, 0);
    }
    assert.deepEqual(
      sim!.pushes.map((p) => [p.kind, p.ok]),
      [
        ["check", true],
        ["check", true],
      ],
    );
    assert.equal((await admin(sim!, "/sim/check", { method: "PUT" })).status, 400);
  });

  it("push variants through the admin routes: /sim/config for all pushes, /sim/accounts per account, /sim/mo per SMS", async () => {
    await start();
    let r = await admin(sim!, "/sim/config", { timeFormat: "YYMMDDhhmmss", mobileFormat: "86" });
    assert.equal(r.status, 200, r.text);
    r = await admin(sim!, "/sim/accounts", { account: "demo", pushStyle: "json" });
    assert.equal(r.status, 200, r.text);
    const cfg = JSON.parse((await admin(sim!, "/sim/config")).text) as Record<string, unknown>;
    assert.equal(cfg.timeFormat, "YYMMDDhhmmss");
    await post(sim!, send());
    r = await admin(sim!, "/sim/mo", { mobile: "13800138000", text: "hi", pushStyle: "form", mobileFormat: "plain" });
    assert.equal(r.status, 200, r.text);
    await sim!.idle();
    const report = json(rx.pushes.find((p) => p.path === "/report")!) as Record<string, string>;
    assert.match(report.reportTime, /^\d{12}$/);
    assert.equal(report.mobile, "8613800138000");
    const mo = form(rx.pushes.find((p) => p.path === "/mo")!);
    assert.match(mo.moTime, /^\d{12}$/);
    assert.equal(mo.mobile, "13800138000");
    // null goes back to the platform default
    await admin(sim!, "/sim/config", { timeFormat: null });
    assert.equal(
      (JSON.parse((await admin(sim!, "/sim/config")).text) as Record<string, unknown>).timeFormat,
      undefined,
    );
  });

  it("inbound SMS as JSON with epoch-ms moTime", async () => {
    await start({ pushStyle: "json", timeFormat: "epochMs" });
    sim!.injectMo({ mobile: "13800138000", destcode: "106", text: "你好" });
    await sim!.idle();
    const o = json(rx.pushes[0]) as Record<string, unknown>;
    assert.equal(typeof o.moTime, "number");
    assert.equal(o.msg, "你好");
    assert.equal(o.destcode, "106");
  });
});

describe("simulator reading requests", () => {
  let sim: Simulator;
  afterEach(async () => {
    await sim?.close();
  });

  const sendBody = (contentType: string, body: Buffer) =>
    request(`${sim.url}/msg/HttpBatchSendSM`, { method: "POST", headers: { "content-type": contentType }, body }).then(
      async (r) => ({ status: r.statusCode, text: await r.body.text() }),
    );
  const formPrefix = "account=demo&pswd=demo&mobile=13800138000&needstatus=true&msg=";

  for (const label of ["gbk", "GB18030", "gb2312"]) {
    it(`reads a form body in its declared charset (${label}): percent-encoded and raw bytes`, async () => {
      sim = await startSimulator();
      // 【朗宇信息】你好 in GBK: percent-encoded signature, raw bytes for 你好
      const sig = "%A1%BE%C0%CA%D3%EE%D0%C5%CF%A2%A1%BF";
      const body = Buffer.concat([Buffer.from(formPrefix + sig), Buffer.from([0xc4, 0xe3, 0xba, 0xc3])]);
      const r = await sendBody(`application/x-www-form-urlencoded; charset=${label}`, body);
      assert.match(r.text, /^\d{14},0\n\d+$/);
      assert.equal(sim.requests[0].params.msg, "【朗宇信息】你好");
    });
  }

  it("a UTF-8 body with a literal % before Chinese text is read as sent", async () => {
    sim = await startSimulator();
    const r = await sendBody(
      "application/x-www-form-urlencoded",
      Buffer.from(formPrefix + encodeURIComponent("【朗宇信息】") + "%zz好%3D"),
    );
    assert.match(r.text, /,0\n/);
    assert.equal(sim.requests[0].params.msg, "【朗宇信息】%zz好=");
  });

  it("answers 400 naming a charset it cannot decode", async () => {
    sim = await startSimulator();
    const r = await sendBody("application/x-www-form-urlencoded; charset=klingon", Buffer.from(formPrefix + "x"));
    assert.equal(r.status, 400);
    assert.match(r.text, /klingon/);
  });

  it("refuses an unknown account rule (a typo) with 400 naming it, and a rule of the wrong type", async () => {
    sim = await startSimulator();
    let r = await requestJson(sim, "/sim/accounts", { account: "demo", rateLimt: 2 });
    assert.equal(r.status, 400);
    assert.match(r.text, /rateLimt/);
    r = await requestJson(sim, "/sim/accounts", { account: "demo", rateLimit: "2" });
    assert.equal(r.status, 400);
    assert.match(r.text, /rateLimit must be a whole number/);
    r = await requestJson(sim, "/sim/accounts", { account: "demo", timeFormat: "yyyy" });
    assert.equal(r.status, 400);
    assert.match(r.text, /timeFormat must be one of YYMMDDhhmm/);
    assert.equal(sim.account("demo")!.rateLimit, 0, "nothing of a refused change applied");
    r = await requestJson(sim, "/sim/accounts", { account: "demo", rateLimit: 2, forceCode: null });
    assert.equal(r.status, 200, r.text);
    assert.equal(sim.account("demo")!.rateLimit, 2);
    assert.throws(() => sim.configure({ account: "demo", busyy: true } as never), /unknown setting busyy/);
  });

  it("refuses unknown settings on /sim/config and /sim/mo too", async () => {
    sim = await startSimulator({ moUrl: "http://127.0.0.1:9/mo" });
    let r = await requestJson(sim, "/sim/config", { reportURL: "http://x" });
    assert.equal(r.status, 400);
    assert.match(r.text, /reportURL/);
    r = await requestJson(sim, "/sim/mo", { mobile: "13800138000", text: "hi", shufle: true });
    assert.equal(r.status, 400);
    assert.match(r.text, /shufle/);
  });

  it("answers a request line with raw (unencoded) UTF-8 as a lenient Java server does", async () => {
    sim = await startSimulator();
    const port = Number(new URL(sim.url).port);
    const line = `GET /msg/HttpBatchSendSM?account=demo&pswd=demo&mobile=13800138000&needstatus=true&msg=${OK_TEXT} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const out = await rawRequest(Number(port), [Buffer.from(line, "utf8")]);
    assert.match(out, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(out, /\r\nconnection: close\r\n/i);
    assert.match(out.split("\r\n\r\n")[1], /^\d{14},0\n\d+$/);
    assert.equal(sim.requests[0].params.msg, OK_TEXT);
  });

  it("raw UTF-8 in the request line of a POST whose body follows in later packets", async () => {
    sim = await startSimulator();
    const port = Number(new URL(sim.url).port);
    // Far beyond one 64 KiB socket read, so the body surely arrives after the refused packet.
    const body = Buffer.from(
      `pad=${"p".repeat(200_000)}&mobile=13800138000&needstatus=true&msg=${encodeURIComponent(OK_TEXT)}`,
    );
    const head = Buffer.from(
      `POST /msg/HttpBatchSendSM?account=demo&pswd=demo&note=备注 HTTP/1.1\r\nHost: x\r\n` +
        `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`,
      "utf8",
    );
    const out = await rawRequest(port, [head, body]);
    assert.match(out.split("\r\n\r\n")[1], /^\d{14},0\n\d+$/);
    assert.equal(sim.requests[0].params.note, "备注");
    assert.equal(sim.requests[0].params.msg, OK_TEXT);
  });

  it("a request Node's parser refuses for another reason still gets 400", async () => {
    sim = await startSimulator();
    const out = await rawRequest(Number(new URL(sim.url).port), [Buffer.from("GET /a b c\r\n\r\n")]);
    assert.match(out, /^HTTP\/1\.1 400 Bad Request\r\n/);
  });
});

function requestJson(sim: Simulator, path: string, body: unknown) {
  return request(sim.url + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.statusCode, text: await r.body.text() }));
}
