// sms-receive against what arrives from the internet (SPEC B4, B4a, B11 replies): every inbound SMS
// reaches the account's inbox once; pushes built to stall, corrupt, repeat or exhaust; the
// credential rule when only one of the two is configured. Real HTTP on Node-RED's httpNode.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { inboxFor, type Inbound } from "../../src/lib/alerts/inbox";
import type { SmsConfigNode } from "../../src/nodes/common";
import {
  captured,
  collect,
  creds,
  flowWith,
  helper,
  load,
  RECEIVER_PASSWORD,
  sleep,
  type FlowNode,
} from "../support/nr";
import { waitFor } from "../support/stub";
import { watchLoop, type Stall } from "./receive-stalls";

const receiver = (o: Record<string, unknown> = {}): FlowNode => ({
  id: "r",
  type: "sms-receive",
  config: "cfg",
  path: "/sms/push",
  reassemble: true,
  partTimeout: 600,
  wires: [["out"], ["out2"]],
  ...o,
});
const AUTH = { receiver: "rcv", pswd: RECEIVER_PASSWORD };
const MO = { mobile: "13900210021", destcode: "10690001", moTime: "1012241002", msg: "1" };
type Payload = Record<string, unknown>;

describe("nodes/sms-receive: hostile pushes, replies to the inbox (real HTTP)", function () {
  this.timeout(60_000);
  let server: http.Server | null = null;
  let base = "";

  afterEach(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server!.close(r));
      server = null;
    }
    await helper.unload();
  });

  async function start(o: Record<string, unknown> = {}, c: Record<string, unknown> = creds(AUTH_CREDS)) {
    await load(flowWith({}, [receiver(o)]), c);
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { reports: collect("out"), mo: collect("out2"), caught: collect("caught") };
  }
  const state = () => (helper.getNode("cfg") as unknown as SmsConfigNode).state;
  const post = (body: string, type: string, path = "/sms/push") =>
    fetch(`${base}${path}`, { method: "POST", headers: { "content-type": type }, body });
  const get = (params: Record<string, string>) => fetch(`${base}/sms/push?${new URLSearchParams(params)}`);

  describe("inbound SMS reach the account's inbox (SPEC B11 replies)", () => {
    it("each inbound SMS once, after dedupe and reassembly; a duplicate part is not handed again", async () => {
      const { mo } = await start();
      const seen: Inbound[] = [];
      const off = inboxFor(state()).listen((m) => void seen.push(m));
      try {
        assert.equal((await get({ ...AUTH, ...MO })).status, 200);
        const part = (n: number, msg: string) => ({ ...AUTH, ...MO, isems: "1", emshead: `7,2,${n}`, msg });
        assert.equal((await get(part(2, "world"))).status, 200);
        assert.equal((await get(part(2, "world"))).status, 200);
        assert.equal((await get(part(1, "hello "))).status, 200);
        await mo.next(2);
        await waitFor(() => seen.length >= 2, 5000, "two inbound SMS in the inbox");
        await sleep(100);
        assert.deepEqual(seen, [
          { mobile: "13900210021", text: "1", destcode: "10690001" },
          { mobile: "13900210021", text: "hello world", destcode: "10690001" },
        ]);
        assert.equal(mo.msgs.length, 2);
      } finally {
        off();
      }
    });

    it("with 'Join long SMS parts' off, each part is emitted but none is read as a reply (a part is not what the person sent)", async () => {
      const { mo } = await start({ reassemble: false });
      const seen: Inbound[] = [];
      const off = inboxFor(state()).listen((m) => void seen.push(m));
      try {
        const part = (n: number, msg: string) => ({ ...AUTH, ...MO, isems: "1", emshead: `8,2,${n}`, msg });
        assert.equal((await get(part(1, "ok"))).status, 200);
        assert.equal((await get(part(2, "1a"))).status, 200);
        assert.equal((await get({ ...AUTH, ...MO, msg: "2a" })).status, 200);
        await mo.next(3);
        await waitFor(() => seen.length >= 1, 5000, "the plain SMS in the inbox");
        await sleep(100);
        assert.deepEqual(seen, [{ mobile: "13900210021", text: "2a", destcode: "10690001" }]);
      } finally {
        off();
      }
    });

    it("a long SMS that went out incomplete (its wait over) is emitted but not read as a reply", async () => {
      const { mo } = await start({ partTimeout: 1 });
      const seen: Inbound[] = [];
      const off = inboxFor(state()).listen((m) => void seen.push(m));
      try {
        const part = (n: number, msg: string) => ({ ...AUTH, ...MO, isems: "1", emshead: `9,2,${n}`, msg });
        assert.equal((await get(part(1, "ok"))).status, 200);
        const [out] = await mo.next(1, 10_000);
        assert.equal((out.payload as Payload).complete, false);
        assert.equal((await get({ ...AUTH, ...MO, msg: "2a" })).status, 200);
        await waitFor(() => seen.length >= 1, 5000, "the plain SMS in the inbox");
        await sleep(100);
        assert.deepEqual(seen, [{ mobile: "13900210021", text: "2a", destcode: "10690001" }]);
      } finally {
        off();
      }
    });

    it("a listener that fails is logged, never thrown: the push is answered and emitted", async () => {
      const { mo } = await start();
      const off = inboxFor(state()).listen(() => Promise.reject(new Error("listener broke")));
      try {
        assert.equal((await get({ ...AUTH, ...MO })).status, 200);
        await mo.next(1);
        // error() is one spy on Node.prototype; the helper's catalog may give the key, not the text.
        const spy = helper.getNode("r").error as unknown as { args: unknown[][]; thisValues: Array<{ id: string }> };
        const logged = () =>
          spy.args.some((a, i) => spy.thisValues[i]?.id === "r" && /internal|listener broke/.test(String(a[0])));
        await waitFor(logged, 5000, "the logged error");
      } finally {
        off();
      }
    });

    it("a forged push (wrong credentials) reaches nobody", async () => {
      const { mo } = await start();
      const seen: Inbound[] = [];
      const off = inboxFor(state()).listen((m) => void seen.push(m));
      try {
        assert.equal((await get({ ...MO, receiver: "rcv", pswd: "guess" })).status, 401);
        await sleep(100);
        assert.equal(seen.length + mo.msgs.length, 0);
      } finally {
        off();
      }
    });
  });

  describe("pushes built to stall (SPEC B4a)", () => {
    it("a chunked body that goes past 64 KiB and never ends: 413 at once, the connection closed, nothing emitted", async () => {
      const { reports, mo } = await start();
      const url = new URL(base);
      const sock = net.connect(Number(url.port), "127.0.0.1");
      let got = "";
      let closed = false;
      sock.on("data", (d) => (got += d.toString("latin1")));
      sock.on("error", () => undefined);
      sock.on("close", () => (closed = true));
      await new Promise<void>((r) => sock.once("connect", () => r()));
      sock.write(
        "POST /sms/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
      );
      const chunk = "a".repeat(8 * 1024);
      // 72 KiB, then the request stays open: no terminating chunk ever comes.
      for (let i = 0; i < 9 && !sock.destroyed; i++) sock.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      try {
        await waitFor(() => got.includes("\r\n\r\n"), 10_000, "an answer before the body ends");
        assert.match(got, /^HTTP\/1\.1 413 /);
        await waitFor(() => closed, 10_000, "the connection closed (the rest is not read)");
      } finally {
        sock.destroy();
      }
      assert.equal(reports.msgs.length + mo.msgs.length, 0);
    });

    it("64 KB of 'a&a&a…' as text/plain, wrong credentials: answered at once, the loop never held 50 ms", async () => {
      const { reports, mo } = await start();
      const body = "a&".repeat(32 * 1024);
      assert.equal(body.length, 64 * 1024);
      const { result, maxMs, ours } = await loopDelayDuring(async () => {
        const r = await post(`receiver=rcv&pswd=wrong&${body}`.slice(0, 64 * 1024), "text/plain");
        return { status: r.status, text: await r.text() };
      });
      assert.ok([400, 401].includes(result.status), `${result.status} ${result.text}`);
      assert.deepEqual(ours, [], `event loop held (monitorEventLoopDelay: ${maxMs.toFixed(1)} ms)`);
      assert.equal(reports.msgs.length + mo.msgs.length, 0);
    });

    it("a JSON array of 1000 elements under a query of 1000 params, wrong credentials: refused, the loop never held 50 ms", async () => {
      const { reports, mo } = await start();
      const query = Array.from({ length: 1000 }, (_, i) => `a${i}=1`).join("&");
      const body = JSON.stringify(Array.from({ length: 1000 }, () => ({})));
      const { result, maxMs, ours } = await loopDelayDuring(async () => {
        const r = await post(body, "application/json", `/sms/push?${query}`);
        return { status: r.status, text: await r.text() };
      });
      assert.ok([400, 401].includes(result.status), `${result.status} ${result.text}`);
      assert.deepEqual(ours, [], `event loop held (monitorEventLoopDelay: ${maxMs.toFixed(1)} ms)`);
      assert.equal(reports.msgs.length + mo.msgs.length, 0);
    });

    it("1000 repeats of one name with wrong credentials: 401, fast; one more param: 400 naming the limit", async () => {
      const { reports, mo } = await start();
      const repeats = Array.from({ length: 998 }, () => "a=1").join("&");
      const { result, maxMs, ours } = await loopDelayDuring(async () => {
        const r = await post(`receiver=rcv&pswd=wrong&${repeats}`, "application/x-www-form-urlencoded");
        return r.status;
      });
      assert.equal(result, 401);
      assert.deepEqual(ours, [], `event loop held (monitorEventLoopDelay: ${maxMs.toFixed(1)} ms)`);
      const over = await post(`receiver=rcv&pswd=${RECEIVER_PASSWORD}&${repeats}&b=1`, "text/plain");
      assert.equal(over.status, 400);
      assert.match(await over.text(), /more than 1000 parameters/);
      // The query is counted on the raw string (Express's parser drops params beyond its limit).
      const q = await fetch(`${base}/sms/push?${Array.from({ length: 1001 }, (_, i) => `p${i}=1`).join("&")}`);
      assert.equal(q.status, 400);
      await sleep(50);
      assert.equal(reports.msgs.length + mo.msgs.length, 0);
    });

    it("a JSON body of many short strings and a 16-digit number: read in linear time", async () => {
      await start();
      const junk = Array.from({ length: 6000 }, (_, i) => `"${i % 10}"`).join(",");
      const body = `{"receiver":"rcv","pswd":"wrong","msgid":1234567890123456789,"x":[${junk}]}`;
      assert.ok(body.length < 64 * 1024);
      const { result, maxMs, ours } = await loopDelayDuring(async () => (await post(body, "application/json")).status);
      assert.equal(result, 401);
      assert.deepEqual(ours, [], `event loop held (monitorEventLoopDelay: ${maxMs.toFixed(1)} ms)`);
    });

    it("a name given twice keeps its first value: in the body, the query and a parsed form", async () => {
      const { mo } = await start();
      const good = `receiver=rcv&pswd=${RECEIVER_PASSWORD}`;
      const moForm = "mobile=13900210021&msg=first&msg=second";
      assert.equal((await post(`${good}&pswd=wrong&${moForm}`, "text/plain")).status, 200);
      assert.equal(
        (await post(`receiver=rcv&pswd=wrong&pswd=${RECEIVER_PASSWORD}&${moForm}`, "text/plain")).status,
        401,
      );
      assert.equal((await fetch(`${base}/sms/push?${good}&pswd=wrong&${moForm}`)).status, 200);
      assert.equal(
        (await fetch(`${base}/sms/push?receiver=rcv&pswd=x&pswd=${RECEIVER_PASSWORD}&${moForm}`)).status,
        401,
      );
      await mo.next(2);
      assert.deepEqual(
        mo.msgs.map((m) => (m.payload as Payload).text),
        ["first", "first"],
      );
    });
  });

  describe("text as sent (SPEC B4a)", () => {
    const TEXT = "优惠50%，链接 x.cn/s?q=%C4%E3 或 100%AB级";

    it("a JSON inbound SMS with percent signs and escapes comes out unchanged (Node-RED's parser and ours)", async () => {
      const { mo } = await start();
      const body = JSON.stringify({ ...AUTH, mobile: "13900210021", msg: TEXT });
      // Node-RED's own JSON parser reads it first when httpAdminRoot and httpNodeRoot are both "/".
      const express = (await import("express")).default;
      const outer = express();
      outer.use(express.json());
      outer.use(captured.httpNode!);
      const parsedFirst = http.createServer(outer);
      await new Promise<void>((r) => parsedFirst.listen(0, "127.0.0.1", r));
      try {
        const port = (parsedFirst.address() as AddressInfo).port;
        const r1 = await fetch(`http://127.0.0.1:${port}/sms/push`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        assert.equal(r1.status, 200);
      } finally {
        parsedFirst.closeAllConnections();
        await new Promise((r) => parsedFirst.close(r));
      }
      assert.equal((await post(body, "application/json")).status, 200);
      await mo.next(2);
      assert.deepEqual(
        mo.msgs.map((m) => (m.payload as Payload).text),
        [TEXT, TEXT],
      );
    });

    it("a form value's GBK escapes are still repaired", async () => {
      const { mo } = await start();
      const r = await post(
        `receiver=rcv&pswd=${RECEIVER_PASSWORD}&mobile=13900210021&msg=%C4%E3%BA%C3`,
        "application/x-www-form-urlencoded",
      );
      assert.equal(r.status, 200);
      const [m] = await mo.next(1);
      assert.equal((m.payload as Payload).text, "你好");
    });
  });

  describe("a JSON array with bad elements (SPEC B4a)", () => {
    it("the valid ones emitted once and OK (a re-push emits nothing new); the bad ones counted, logged and at Catch", async () => {
      const { mo, reports, caught } = await start({}, creds());
      const arr = [
        { mobile: "13900210021", msg: "one" },
        { mobile: "13900210021" },
        "not an object",
        { msgid: "77", mobile: "13900210021", status: "DELIVRD", reportTime: "1012241002" },
      ];
      const seen: Inbound[] = [];
      const off = inboxFor(state()).listen((m) => void seen.push(m));
      try {
        const r = await post(JSON.stringify(arr), "application/json");
        assert.equal(r.status, 200);
        assert.equal(await r.text(), "OK");
        await mo.next(1);
        await reports.next(1);
        const [c] = await caught.next(1);
        // To Catch with each bad element's index and reason (the log line says the same).
        assert.deepEqual(c.payload, {
          count: 2,
          rejected: ["[1] neither a delivery report (status) nor an inbound SMS (mobile, msg)", "[2] not an object"],
        });
        assert.match(String((c.error as { message: string }).message), /badElements|malformed/);
        const statuses = (helper.getNode("r") as unknown as { status: { args: Array<[{ text: string }]> } }).status
          .args;
        await waitFor(
          () => statuses.some((a) => /badElements|malformed/.test(String(a[0]?.text))),
          5000,
          "the status counting the malformed ones",
        );
        // The platform got OK: it does not push again. Had it (a 400), the inbound SMS in it would
        // have come out twice: it has no id to de-duplicate on.
        assert.deepEqual(
          seen.map((m) => m.text),
          ["one"],
        );
      } finally {
        off();
      }
    });

    it("an array with no valid element: 400 naming the bad elements, nothing emitted", async () => {
      const { mo, reports } = await start({}, creds());
      const r = await post(JSON.stringify([{ mobile: "1" }, 5]), "application/json");
      assert.equal(r.status, 400);
      assert.match(await r.text(), /\[0\].*\[1\] not an object/);
      await sleep(50);
      assert.equal(mo.msgs.length + reports.msgs.length, 0);
    });
  });

  describe("one of the two receiver credentials configured (the rule: either set means checked)", () => {
    for (const [label, configured, right] of [
      ["password only", { receiverPassword: RECEIVER_PASSWORD }, { pswd: RECEIVER_PASSWORD }],
      ["receiver only", { receiver: "rcv" }, { receiver: "rcv" }],
    ] as const) {
      it(`${label}: a forged push is refused (401), the right one taken`, async () => {
        const { reports } = await start({}, creds(configured));
        const push = { msgid: "9", mobile: "13900210021", status: "DELIVRD", reportTime: "1012241002" };
        assert.equal((await get({ ...push })).status, 401);
        assert.equal((await get({ ...push, receiver: "x", pswd: "y" })).status, 401);
        assert.equal((await post(JSON.stringify(push), "application/json")).status, 401);
        assert.equal((await get({ ...push, ...right })).status, 200);
        await reports.next(1);
        await sleep(50);
        assert.equal(reports.msgs.length, 1);
      });
    }
  });
});

const AUTH_CREDS = { receiver: "rcv", receiverPassword: RECEIVER_PASSWORD };

/** Runs `fn`, with the event loop watched (SPEC B4a: never held over 50 ms by us). */
async function loopDelayDuring<T>(fn: () => Promise<T>): Promise<{ result: T; maxMs: number; ours: Stall[] }> {
  const loop = watchLoop(50);
  try {
    const result = await fn();
    // One more turn of the loop, so a stall right at the end is sampled too.
    await sleep(20);
    const r = loop.stop();
    return { result, maxMs: r.maxMs, ours: r.ours };
  } catch (e) {
    loop.stop();
    throw e;
  }
}
