// SPEC B4 "Who may push": sms-receive's `allow` and `trustProxy`, over real sockets. On Linux all
// of 127.0.0.0/8 is loopback, so binding the client to 127.0.0.x gives real, distinct IPv4 sources;
// the node's server listens on "::" (dual stack: IPv4 clients arrive as ::ffff:127.0.0.x, IPv6
// ones as ::1) unless a test says otherwise. The node runs with the package's real catalogs.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import fc from "fast-check";
import type { NodeAPI } from "node-red";
import receiveNode = require("../../src/nodes/sms-receive");
import { readTrustProxy } from "../../src/lib/push/allow";
import { readSourceRule, Refusals } from "../../src/nodes/receive-http";
import {
  ALL_NODES,
  captured,
  collect,
  creds,
  flowWith,
  helper,
  RECEIVER_PASSWORD,
  sleep,
  spiesSeen,
  type FlowNode,
} from "../support/nr";

const ROOT = path.resolve(__dirname, "../../..");
type Lang = "en-US" | "zh-CN";
type Catalog = Record<string, unknown>;
const catalog = (lang: Lang) =>
  JSON.parse(fs.readFileSync(path.join(ROOT, "locales", lang, "sms-receive.json"), "utf8")) as Catalog;

/** Node-RED's message lookup: dotted key, `__name__` placeholders. */
function translator(cat: Catalog) {
  return (key: string, params: Record<string, unknown> = {}): string => {
    const v = key.split(".").reduce<unknown>((o, k) => (o as Catalog | undefined)?.[k], cat);
    if (typeof v !== "string") return key;
    return v.replace(/__(\w+)__/g, (m, k: string) => (k in params ? String(params[k]) : m));
  };
}
const t = (lang: Lang, key: string, params?: Record<string, unknown>) => translator(catalog(lang))(key, params);

const receiver = (o: Record<string, unknown> = {}): FlowNode => ({
  id: "r",
  type: "sms-receive",
  config: "cfg",
  path: "/sms/push",
  partTimeout: 600,
  wires: [["out"], ["out2"]],
  ...o,
});

let seq = 0;
const report = (extra: Record<string, string> = {}) => ({
  msgid: String(++seq),
  reportTime: "1012241002",
  mobile: "13900210021",
  status: "DELIVRD",
  ...extra,
});

/** The settings object the helper gives the next load's nodes (RED.settings). */
const runtimeSettings = () => (helper as unknown as { settings(): Record<string, unknown> }).settings();

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

describe("nodes/sms-receive: who may push (SPEC B4, real sockets)", function () {
  this.timeout(30_000);
  let server: http.Server | undefined;
  let port = 0;
  let reports: ReturnType<typeof collect>;
  let inbound: ReturnType<typeof collect>;

  afterEach(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server!.close(r));
      server = undefined;
    }
    delete runtimeSettings().httpNodeMiddleware;
    await helper.unload();
  });

  async function start(
    props: Record<string, unknown>,
    o: { lang?: Lang; credentials?: Record<string, unknown>; host?: string } = {},
  ) {
    const lang = o.lang ?? "en-US";
    const _ = translator(catalog(lang));
    const localised = (RED: NodeAPI) =>
      (receiveNode as unknown as (r: NodeAPI) => void)(Object.create(RED, { _: { value: _ } }) as NodeAPI);
    const nodes = ALL_NODES.map((m) => (m === receiveNode ? localised : m));
    await helper.load(nodes as never, flowWith({}, [receiver(props)]) as never, (o.credentials ?? creds()) as never);
    spiesSeen.push(helper.log() as unknown as { args: unknown[][] });
    reports = collect("out");
    inbound = collect("out2");
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server!.listen(0, o.host ?? "::", r));
    port = (server.address() as AddressInfo).port;
  }

  /** One request from `from` (a local address to bind) to the node; bounded. */
  function push(
    o: {
      from?: string;
      to?: string;
      query?: Record<string, string>;
      headers?: http.OutgoingHttpHeaders;
      method?: string;
      body?: string;
    } = {},
  ): Promise<Reply> {
    const query = new URLSearchParams(o.query ?? report()).toString();
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: o.to ?? "127.0.0.1",
          port,
          localAddress: o.from,
          method: o.method ?? "GET",
          path: `/sms/push${query ? "?" + query : ""}`,
          headers: o.headers,
          agent: false,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error("no answer within 10 s")));
      req.on("error", reject);
      req.end(o.body);
    });
  }

  type Spy = { args: unknown[][]; thisValues: Array<{ id: string }> };
  const calls = (method: "warn" | "status" | "error", id = "r") => {
    const spy = helper.getNode(id)[method] as unknown as Spy;
    return spy.args.filter((_a, k) => spy.thisValues[k]?.id === id).map((a) => a[0]);
  };
  const statuses = () => calls("status") as Array<{ fill: string; shape: string; text: string }>;
  async function statusBecomes(text: string) {
    const until = Date.now() + 8000;
    while (statuses().at(-1)?.text !== text) {
      if (Date.now() > until) assert.fail(`status never became "${text}": ${JSON.stringify(statuses().at(-1))}`);
      await sleep(20);
    }
    return statuses().at(-1)!;
  }
  const emitted = () => reports.msgs.length + inbound.msgs.length;

  it("an IPv4 source on the list pushes; another gets a bare 403, emits nothing, and is counted and logged", async () => {
    await start({ allow: "127.0.0.1" });
    assert.equal((await push({ from: "127.0.0.1" })).status, 200);
    await reports.next(1);
    const refused = await push({ from: "127.0.0.2" });
    assert.equal(refused.status, 403);
    assert.equal(refused.body, "Forbidden", "no detail that helps a caller");
    assert.equal(refused.headers.connection, "close");
    // Even the URL probe (no params) and inbound SMS are refused.
    assert.equal((await push({ from: "127.0.0.2", query: {} })).status, 403);
    const mo = { mobile: "13800138000", destcode: "106", msg: "ACK" };
    assert.equal((await push({ from: "127.0.0.2", query: mo })).status, 403);
    await sleep(50);
    assert.equal(emitted(), 1);
    const s = await statusBecomes(t("en-US", "sms-receive.status.countsRefused", { reports: 1, mo: 0, refused: 3 }));
    assert.equal(s.fill, "yellow");
    // One log line for the first refusal, with the address; the next ones within the minute only count.
    const lines = calls("warn").map(String);
    assert.deepEqual(lines, [t("en-US", "sms-receive.errors.refused", { count: 1, source: "127.0.0.2" })]);
  });

  for (const lang of ["en-US", "zh-CN"] as const) {
    it(`wrong or missing receiver credentials: 401, nothing emitted, counted on the status, logged once a minute (${lang})`, async () => {
      await start({}, { lang, credentials: creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }) });
      const wrong = await push({ query: { ...report(), receiver: "rcv", pswd: "not-the-push-password" } });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body, "Unauthorized");
      assert.equal((await push({ query: report() })).status, 401);
      assert.equal((await push({ query: { ...report(), receiver: "rcv", pswd: RECEIVER_PASSWORD } })).status, 200);
      await reports.next(1);
      await sleep(50);
      assert.equal(emitted(), 1);
      const counts = t(lang, "sms-receive.status.counts", { reports: 1, mo: 0 });
      const s = await statusBecomes(counts + t(lang, "sms-receive.status.unauthorized", { count: 2 }));
      assert.equal(s.fill, "yellow");
      // One line for the first, the next within the minute only counted; never the password given.
      const lines = calls("warn").map(String);
      assert.deepEqual(lines, [t(lang, "sms-receive.errors.unauthorized", { count: 1 })]);
      assert.doesNotMatch(lines[0], /not-the-push-password/);
      assert.match(lines[0], lang === "en-US" ? /Push password/ : /推送密码/);
    });
  }

  it("on an IPv4-only server the plain address matches, also a rule written as IPv4-mapped IPv6", async () => {
    await start({ allow: "::ffff:127.0.0.1" }, { host: "127.0.0.1" });
    assert.equal((await push({ from: "127.0.0.1" })).status, 200);
    assert.equal((await push({ from: "127.0.0.2" })).status, 403);
    await reports.next(1);
    await sleep(50);
    assert.equal(emitted(), 1);
  });

  // [allow, sources let in, sources refused]: the edges of each range with real client addresses.
  const edges: Array<[string, string[], string[]]> = [
    ["127.0.0.5/32", ["127.0.0.5"], ["127.0.0.4", "127.0.0.6"]],
    ["127.0.0.2/31", ["127.0.0.2", "127.0.0.3"], ["127.0.0.1", "127.0.0.4"]],
    ["127.0.0.0/24", ["127.0.0.1", "127.0.0.255"], ["127.0.1.0", "127.1.0.1"]],
    ["0.0.0.0/0", ["127.0.0.1", "127.9.9.9"], ["::1"]],
    ["::1", ["::1"], ["127.0.0.1"]],
    ["::1/128", ["::1"], ["127.0.0.1"]],
    ["::/127", ["::1"], ["127.0.0.1"]],
    ["::2/127", [], ["::1"]],
    ["::/96", ["::1"], ["127.0.0.1"]],
    // IPv4 is ::ffff:0:0/96, which lies inside ::/64.
    ["::/64", ["::1", "127.0.0.1"], []],
    ["0:0:0:1::/64", [], ["::1"]],
    ["::/0", ["::1", "127.0.0.1"], []],
    ["::ffff:127.0.0.0/120", ["127.0.0.1", "127.0.0.255"], ["127.0.1.1", "::1"]],
  ];
  for (const [allow, allowed, refused] of edges) {
    it(`allow ${allow}: ${allowed.join(", ") || "-"} in; ${refused.join(", ") || "-"} refused`, async () => {
      await start({ allow });
      for (const from of allowed) {
        const to = from.includes(":") ? "::1" : "127.0.0.1";
        assert.equal((await push({ from, to })).status, 200, from);
      }
      for (const from of refused) {
        const to = from.includes(":") ? "::1" : "127.0.0.1";
        assert.equal((await push({ from, to })).status, 403, from);
      }
      if (allowed.length) await reports.next(allowed.length);
      await sleep(50);
      assert.equal(emitted(), allowed.length);
    });
  }

  it("trustProxy 0: X-Forwarded-For is ignored, a spoofed header changes nothing", async () => {
    await start({ allow: "127.0.0.2", trustProxy: 0 });
    for (const xff of ["127.0.0.2", "127.0.0.2, 127.0.0.2", "::ffff:127.0.0.2"]) {
      const res = await push({ from: "127.0.0.1", headers: { "x-forwarded-for": xff } });
      assert.equal(res.status, 403, xff);
    }
    assert.equal((await push({ from: "127.0.0.2", headers: { "x-forwarded-for": "198.51.100.66" } })).status, 200);
    await reports.next(1);
    await sleep(50);
    assert.equal(emitted(), 1);
  });

  it("trustProxy 1 (nginx in front): the rightmost X-Forwarded-For entry is the source", async () => {
    await start({ allow: "203.0.113.7, 127.0.0.1", trustProxy: "1" });
    const via = (xff?: string) =>
      push({ from: "127.0.0.1", headers: xff === undefined ? {} : { "x-forwarded-for": xff } });
    assert.equal((await via("203.0.113.7")).status, 200);
    assert.equal((await via("198.51.100.1, 203.0.113.7")).status, 200, "entries the caller wrote are not trusted…");
    assert.equal((await via("203.0.113.7, 198.51.100.1")).status, 403, "…and cannot let it in");
    assert.equal((await via("203.0.113.7:5678")).status, 200, "a port the load balancer appended");
    // No header: the source is unknown, not the proxy (127.0.0.1 is on the list, and still refused).
    assert.equal((await via()).status, 403);
    assert.equal((await via("198.51.100.1")).status, 403);
    await reports.next(3);
    await sleep(50);
    assert.equal(emitted(), 3);
  });

  it("trustProxy 2 (a load balancer, then nginx): the second entry from the right", async () => {
    await start({ allow: "203.0.113.7, 2001:db8::/32", trustProxy: 2 });
    const via = (xff: string | string[]) => push({ from: "127.0.0.1", headers: { "x-forwarded-for": xff } });
    assert.equal((await via("203.0.113.7, 10.0.0.5")).status, 200);
    assert.equal((await via("6.6.6.6, 203.0.113.7, 10.0.0.5")).status, 200);
    assert.equal((await via(["203.0.113.7", "10.0.0.5"])).status, 200, "one header line per proxy");
    assert.equal((await via("[2001:db8::7]:443, 10.0.0.5")).status, 200);
    assert.equal((await via("203.0.113.7, 10.0.0.5, 10.0.0.6")).status, 403);
    assert.equal((await via("10.0.0.5, 203.0.113.7")).status, 403);
    assert.equal((await via("203.0.113.7")).status, 403, "one entry is too few");
    await reports.next(4);
    await sleep(50);
    assert.equal(emitted(), 4);
  });

  it("garbage in X-Forwarded-For is refused, crashes nothing, lets nothing in by accident, echoes nothing", async () => {
    // Every real address is on the list: only reading the header wrong could decide.
    await start({ allow: "0.0.0.0/0, ::/0", trustProxy: 1 });
    const garbage = [
      "",
      ",",
      " , ",
      "garbage",
      "203.0.113.7 garbage",
      "203.0.113.7:abc",
      "[203.0.113.7",
      "[::1]x",
      "unknown",
      "203.0.113.7%eth0",
      "1.2.3.4.5",
      "::ffff:999.1.1.1",
      "%",
      "203.0.113.7, ",
      "x".repeat(8000),
      "=?utf-8?q?evil?=\tinjected",
    ];
    for (const xff of garbage) {
      const res = await push({ from: "127.0.0.1", headers: { "x-forwarded-for": xff } });
      assert.equal(res.status, 403, JSON.stringify(xff.slice(0, 40)));
      assert.equal(res.body, "Forbidden");
    }
    assert.equal((await push({ from: "127.0.0.1", headers: { "x-forwarded-for": "203.0.113.7" } })).status, 200);
    await reports.next(1);
    await sleep(50);
    assert.equal(emitted(), 1);
    const lines = calls("warn").map(String);
    assert.deepEqual(lines, [
      t("en-US", "sms-receive.errors.refused", { count: 1, source: t("en-US", "sms-receive.status.unknownSource") }),
    ]);
    assert.ok(!lines.some((l) => /garbage|evil|injected|xxxx/.test(l)));
  });

  it("the source is checked first: a refused POST gets 403 before its body arrives", async () => {
    await start({ allow: "127.0.0.2" });
    const partial = (from: string) => {
      let answered: Reply | null = null;
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          localAddress: from,
          method: "POST",
          path: "/sms/push",
          headers: { "content-type": "application/x-www-form-urlencoded", "content-length": "200" },
          agent: false,
        },
        (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d));
          res.on("end", () => (answered = { status: res.statusCode!, body, headers: res.headers }));
        },
      );
      req.on("error", () => {});
      req.write("msgid=1&mobile=1");
      return { req, answered: () => answered as Reply | null };
    };
    const refused = partial("127.0.0.1");
    const until = Date.now() + 8000;
    while (!refused.answered() && Date.now() < until) await sleep(10);
    assert.equal(refused.answered()?.status, 403);
    assert.equal(refused.answered()?.headers.connection, "close");
    refused.req.destroy();
    // The same request from the allowed source waits for its body, as a push must.
    const waiting = partial("127.0.0.2");
    await sleep(200);
    assert.equal(waiting.answered(), null);
    waiting.req.destroy();
  });

  it("the source is checked before httpNodeMiddleware and receiver credentials", async () => {
    let reached = 0;
    runtimeSettings().httpNodeMiddleware = (_q: unknown, _s: unknown, next: () => void) => {
      reached++;
      next();
    };
    await start(
      { allow: "127.0.0.2" },
      { credentials: creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }) },
    );
    const good = { receiver: "rcv", pswd: RECEIVER_PASSWORD };
    assert.equal((await push({ from: "127.0.0.1", query: report(good) })).status, 403, "credentials do not help");
    assert.equal(reached, 0, "a refused request reaches no middleware");
    assert.equal((await push({ from: "127.0.0.2", query: report({ ...good, pswd: "wrong" }) })).status, 401);
    assert.equal((await push({ from: "127.0.0.2", query: report(good) })).status, 200, "both checks pass");
    assert.equal(reached, 2);
    await reports.next(1);
  });

  it("headers an httpNodeMiddleware sets (CORS) stay on the answer; its content type is ours", async () => {
    runtimeSettings().httpNodeMiddleware = (_q: unknown, res: http.ServerResponse, next: () => void) => {
      res.setHeader("access-control-allow-origin", "*");
      res.setHeader("content-type", "text/html");
      next();
    };
    await start({}, { credentials: creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }) });
    const ok = await push({ query: report({ receiver: "rcv", pswd: RECEIVER_PASSWORD }) });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, "OK");
    assert.equal(ok.headers["access-control-allow-origin"], "*");
    assert.equal(ok.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(ok.headers["content-length"], "2");
    const refused = await push({ query: report({ receiver: "rcv", pswd: "wrong" }) });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers["access-control-allow-origin"], "*");
    assert.equal(refused.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(Number(refused.headers["content-length"]), Buffer.byteLength(refused.body));
    await reports.next(1);
  });

  it("refusals are logged at most once a minute, each line with the count since the last one", () => {
    let now = 1_000_000;
    const lines: Array<[number, string | null]> = [];
    const refusals = new Refusals(
      (count, source) => lines.push([count, source]),
      60_000,
      () => now,
    );
    refusals.add("::ffff:203.0.113.9");
    for (let i = 0; i < 99; i++) refusals.add("198.51.100.1");
    now += 59_999;
    refusals.add("198.51.100.1");
    assert.deepEqual(lines, [[1, "203.0.113.9"]]);
    now += 1;
    refusals.add("garbage\nline");
    assert.deepEqual(lines, [
      [1, "203.0.113.9"],
      [101, null],
    ]);
    assert.equal(refusals.total, 102);
  });

  describe("the open-endpoint warning", () => {
    const open = (lang: Lang) => t(lang, "sms-receive.errors.open", { path: "/sms/push" });

    for (const lang of ["en-US", "zh-CN"] as const) {
      it(`any source and no receiver credentials: one warning at start (${lang}), not one per push`, async () => {
        await start({}, { lang });
        assert.equal((await push({ from: "127.0.0.2" })).status, 200);
        assert.equal((await push({ from: "::1", to: "::1" })).status, 200);
        await reports.next(2);
        assert.deepEqual(calls("warn").map(String), [open(lang)]);
        assert.match(open(lang), lang === "en-US" ? /forged/ : /伪造/);
      });
    }

    it("no warning with an allow-list, none with receiver credentials, none with both", async () => {
      const withCreds = creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD });
      for (const [props, credentials] of [
        [{ allow: "127.0.0.1" }, creds()],
        [{}, withCreds],
        [{}, creds({ receiverPassword: RECEIVER_PASSWORD })],
        [{ allow: "127.0.0.1" }, withCreds],
      ] as const) {
        await start(props, { credentials });
        assert.deepEqual(calls("warn"), [], JSON.stringify(props));
        server!.closeAllConnections();
        await new Promise((r) => server!.close(r));
        server = undefined;
        await helper.unload();
      }
    });
  });

  describe("settings that cannot be used are an error at start, never 'allow all'", () => {
    for (const lang of ["en-US", "zh-CN"] as const) {
      it(`malformed allow entries: red status, one clear error naming them (${lang}), no push taken`, async () => {
        await start({ allow: "127.0.0.1, 10.0.0.0/33 example.com" }, { lang });
        const entries = '"10.0.0.0/33", "example.com"';
        assert.deepEqual(calls("error").map(String), [t(lang, "sms-receive.errors.allow", { entries })]);
        // A key: the editor shows it in its own language (as for the other start problems).
        assert.deepEqual(statuses().at(-1), { fill: "red", shape: "ring", text: "sms-receive.status.allow" });
        // Not even the source the list does name gets in.
        assert.equal((await push({ from: "127.0.0.1" })).status, 404);
        assert.equal((await push({ from: "127.0.0.2" })).status, 404);
        await sleep(50);
        assert.equal(emitted(), 0);
      });

      it(`an unreadable trustProxy: red status, one clear error (${lang}), no push taken`, async () => {
        await start({ allow: "127.0.0.1", trustProxy: "two" }, { lang });
        assert.deepEqual(calls("error").map(String), [
          t(lang, "sms-receive.errors.trustProxy", { value: "two", max: 10 }),
        ]);
        assert.equal(statuses().at(-1)?.fill, "red");
        assert.equal(statuses().at(-1)?.text, "sms-receive.status.trustProxy");
        assert.equal((await push({ from: "127.0.0.1" })).status, 404);
      });
    }

    it("fixed and redeployed, the node takes pushes again", async () => {
      await start({ allow: "127.0.0.1/40" });
      assert.equal((await push({ from: "127.0.0.1" })).status, 404);
      server!.closeAllConnections();
      await new Promise((r) => server!.close(r));
      await helper.unload();
      await start({ allow: "127.0.0.1/32" });
      assert.equal((await push({ from: "127.0.0.1" })).status, 200);
      assert.equal((await push({ from: "127.0.0.2" })).status, 403);
    });
  });

  describe("editor", () => {
    const html = fs.readFileSync(path.join(ROOT, "nodes/sms-receive.html"), "utf8");
    type Validate = (this: unknown, v: unknown, opt?: object) => unknown;
    function editorDefaults(): Record<string, { value: unknown; validate?: Validate }> {
      const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1];
      let def: { defaults: Record<string, { value: unknown; validate?: Validate }> } | undefined;
      const RED = {
        nodes: { registerType: (_t: string, d: typeof def) => (def = d) },
        settings: {},
        _: (k: string) => k,
      };
      new Function("RED", "$", script)(RED, () => ({}));
      return def!.defaults;
    }
    const fakeNode = { _: (key: string, params?: object) => `${key}${params ? JSON.stringify(params) : ""}` };
    /** What the runtime says of a value, in the validator's terms. */
    const runtimeSays = (allow: unknown, trustProxy: unknown, key: "allow" | "trustProxy") => {
      const r = readSourceRule(key === "allow" ? allow : "", key === "trustProxy" ? trustProxy : 0);
      return "problem" in r ? fakeNode._(`sms-receive.errors.${r.problem.key}`, r.problem.params) : true;
    };

    it("defaults: allow empty (any source), trustProxy 0", () => {
      const d = editorDefaults();
      assert.equal(d.allow.value, "");
      assert.equal(d.trustProxy.value, 0);
    });

    it("the allow validator says what the runtime does, with the catalog's message", () => {
      const validate = editorDefaults().allow.validate!;
      assert.equal(validate.length, 2, "a Node-RED 3+ validator (v, opt) that may return a message");
      const examples = [
        "",
        "47.92.0.0/16, 127.0.0.1",
        "::1，10.0.0.0/8\n2001:db8::/32",
        "1.2.3.4/33",
        "01.2.3.4",
        "fe80::1%eth0",
        "example.com, 1.2.3, x, y, z, w, v",
        "::ffff:1.2.3.4/104",
        "1.2.3.4/",
        "1:2:3:4:5:6:7:8:9",
        "a".repeat(100),
      ];
      for (const v of examples) assert.deepEqual(validate.call(fakeNode, v, {}), runtimeSays(v, 0, "allow"), v);
      const piece = fc.oneof(
        fc.ipV4(),
        fc.ipV6(),
        fc.ipV4Extended(),
        fc.string({ maxLength: 12 }),
        fc.constantFrom("::", "::ffff:1.2.3.4", "1::", "1:2:3:4:5:6:7::", "::1.2.3.4", "1.2.3.04", "%eth0"),
      );
      const entry = fc.tuple(piece, fc.option(fc.oneof(fc.nat({ max: 140 }).map(String), fc.string({ maxLength: 4 }))));
      const text = fc
        .array(
          fc.tuple(
            entry.map(([a, p]) => (p === null ? a : `${a}/${p}`)),
            fc.constantFrom(", ", " ", ",", "，", "\n", "\t "),
          ),
          { maxLength: 6 },
        )
        .map((parts) => parts.map(([e, sep]) => e + sep).join(""));
      fc.assert(
        fc.property(text, (v) => {
          assert.deepEqual(validate.call(fakeNode, v, {}), runtimeSays(v, 0, "allow"));
        }),
        { numRuns: 3000 },
      );
      assert.equal(validate.call(fakeNode, "nonsense"), false, "called the Node-RED 2 way, a boolean");
      assert.equal(validate.call(fakeNode, "127.0.0.1"), true);
    });

    it("the trustProxy validator says what the runtime does", () => {
      const validate = editorDefaults().trustProxy.validate!;
      for (const v of ["", "0", 0, 1, "2", " 3 ", "10", "11", "-1", "1.5", "one", "1e1", "0x1", undefined]) {
        assert.deepEqual(validate.call(fakeNode, v, {}), runtimeSays("", v, "trustProxy"), String(v));
      }
      fc.assert(
        fc.property(fc.oneof(fc.string({ maxLength: 4 }), fc.integer({ min: -3, max: 30 })), (v) => {
          assert.deepEqual(validate.call(fakeNode, v, {}), runtimeSays("", v, "trustProxy"));
          assert.equal(validate.call(fakeNode, v) === true, readTrustProxy(v) !== null);
        }),
      );
    });

    it("an unnamed node is labelled with its palette name (as the other nodes); the bad entries are listed after the sentence", () => {
      const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)![1];
      let def: { label: (this: object) => string } | undefined;
      const RED = {
        nodes: { registerType: (_t: string, d: typeof def) => (def = d) },
        settings: {},
        _: (k: string) => k,
      };
      new Function("RED", "$", script)(RED, () => ({}));
      const _ = (k: string) => t("en-US", k);
      assert.equal(def!.label.call({ name: "", path: "/sms/push", _ }), "receive SMS");
      assert.equal(def!.label.call({ name: "replies", path: "/sms/push", _ }), "replies");
      const entries = '"300.1.1.1", "47.92.0.0/33"';
      // One sentence for one entry or several: the list comes after a colon, never as the subject.
      assert.match(
        t("en-US", "sms-receive.errors.allow", { entries }),
        /^Not an IPv4\/IPv6 address or CIDR range in Allow from: "300\.1\.1\.1", "47\.92\.0\.0\/33" \(/,
      );
      assert.match(
        t("zh-CN", "sms-receive.errors.allow", { entries }),
        /以下条目不是 IPv4\/IPv6 地址或 CIDR 网段："300\.1\.1\.1"/,
      );
    });

    it("the status names what it counts, without jargon (no 'R 6 · MO 2')", () => {
      assert.equal(t("en-US", "sms-receive.status.counts", { reports: 6, mo: 2 }), "reports 6 · SMS 2");
      assert.equal(t("zh-CN", "sms-receive.status.counts", { reports: 6, mo: 2 }), "回执 6 · 短信 2");
    });

    it("the form has both fields, and every new text is in en-US and zh-CN", () => {
      assert.match(html, /id="node-input-allow"/);
      assert.match(html, /id="node-input-trustProxy"/);
      for (const lang of ["en-US", "zh-CN"] as const) {
        for (const key of [
          "label.allow",
          "label.trustProxy",
          "tip.allow",
          "tip.allowPlaceholder",
          "status.allow",
          "status.trustProxy",
          "status.countsRefused",
          "status.unknownSource",
          "errors.allow",
          "errors.trustProxy",
          "errors.open",
          "errors.refused",
        ]) {
          assert.notEqual(t(lang, `sms-receive.${key}`), `sms-receive.${key}`, `${lang} ${key}`);
        }
        const help = fs.readFileSync(path.join(ROOT, "locales", lang, "sms-receive.html"), "utf8");
        for (const must of ["X-Forwarded-For", "nginx", "403", "::ffff:"])
          assert.ok(help.includes(must), `${lang}: ${must}`);
      }
    });
  });
});
