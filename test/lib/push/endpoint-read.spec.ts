// How a push request becomes params (readParams: body limits, aborted bodies, the query re-read
// as GB18030, JSON sniffed without a content type) and what an inbound SMS is emitted as (a lone
// part of a long SMS, a reassembled one): SPEC B4, B4a, A5. Requests are real (node:http, and
// Express for the query Node-RED hands over) wherever Node-RED would hand a real one.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import express from "express";
import { CodeTable } from "../../../src/lib/platform/codes";
import { Batch, type MoMessage, PushEndpoint, readParams, type ReceiveOptions } from "../../../src/lib/push/endpoint";
import type { Params } from "../../../src/lib/push/parse";
import { formatInstant } from "../../../src/lib/platform/time";
import { MemoryState } from "../../../src/lib/state/memory";
import { waitFor } from "../../support/stub";

type Req = Parameters<typeof readParams>[0];

function endpoint(state: MemoryState, o: Partial<ReceiveOptions> = {}) {
  const mo: MoMessage[] = [];
  const replies: Array<{ mobile: string; text: string; destcode: string }> = [];
  const e = new PushEndpoint({
    state,
    scope: "r:/sms/push",
    codes: new CodeTable("en-US"),
    offsetMinutes: 480,
    mobileCheck: "cn",
    receiver: "",
    receiverPassword: "",
    reassemble: true,
    partTimeoutMs: 600_000,
    emitReport: () => undefined,
    emitMo: (m) => void mo.push(m),
    onMo: (r) => void replies.push(r),
    onError: (err) => assert.fail(String(err)),
    ...o,
  });
  return { e, mo, replies };
}

function push(e: PushEndpoint, p: Params): void {
  const r = e.handle(p);
  assert.equal(r.answer.status, 200, r.answer.body);
  r.emit?.();
}

const part = (emshead: string, msg: string): Params => ({
  mobile: "13900210021",
  destcode: "1065",
  msg,
  isems: "1",
  emshead,
  moTime: "2501021530",
});

/** Waits for the next whole second: receivedAt has whole seconds. */
async function nextSecond(): Promise<void> {
  const s = Math.floor(Date.now() / 1000);
  await waitFor(() => Math.floor(Date.now() / 1000) !== s, 2000, "the next second", 10);
}

describe("lib/push/endpoint: what an inbound SMS is emitted as", function () {
  this.timeout(30_000);

  it("reassembly off: a lone part says which parts are missing, carries its emshead, and is no reply", async () => {
    const state = new MemoryState();
    const { e, mo, replies } = endpoint(state, { reassemble: false });
    push(e, part("7,3,2", "middle"));
    await waitFor(() => mo.length === 1, 5000, "the part emitted");
    assert.equal(mo[0].topic, "mo");
    assert.equal(mo[0].payload.text, "middle");
    assert.equal(mo[0].payload.parts, 1);
    assert.equal(mo[0].payload.complete, false);
    assert.deepEqual(mo[0].payload.missing, [1, 3]);
    assert.deepEqual(mo[0].payload.emshead, { id: "7", total: 3, number: 2 });
    assert.deepEqual(replies, [], "a part of a long SMS is not what the person sent");
    // A long SMS of one part is the whole message: complete, and read as a reply.
    push(e, part("8,1,1", "ACK"));
    await waitFor(() => mo.length === 2, 5000, "the one-part SMS emitted");
    assert.equal(mo[1].payload.complete, true);
    assert.deepEqual(mo[1].payload.missing, []);
    assert.deepEqual(mo[1].payload.emshead, { id: "8", total: 1, number: 1 });
    assert.deepEqual(replies, [{ mobile: "13900210021", text: "ACK", destcode: "1065" }]);
    // A plain SMS: complete, no emshead, a reply.
    push(e, { mobile: "13900210022", destcode: "1066", msg: "1" });
    assert.equal(mo.length, 3);
    assert.equal(mo[2].payload.complete, true);
    assert.deepEqual(mo[2].payload.missing, []);
    assert.equal("emshead" in mo[2].payload, false);
    assert.deepEqual(replies[1], { mobile: "13900210022", text: "1", destcode: "1066" });
    assert.equal(e.stats.mo, 3, "the count on the node's status");
    await e.close(false);
    await state.close();
  });

  it("without an onMo hook, plain SMS, lone parts and reassembled SMS are still emitted", async () => {
    const state = new MemoryState();
    const { e, mo } = endpoint(state, { onMo: undefined, reassemble: false });
    push(e, { mobile: "13900210021", msg: "plain" });
    push(e, part("9,1,1", "one part"));
    const r = endpoint(state, { onMo: undefined, scope: "r:/other" });
    push(r.e, part("5,2,1", "a"));
    push(r.e, part("5,2,2", "b"));
    await waitFor(() => mo.length === 2 && r.mo.length === 1, 5000, "all three emitted");
    assert.equal(r.mo[0].payload.text, "ab");
    await e.close(false);
    await r.e.close(false);
    await state.close();
  });

  it("reassembled: receivedAt is the latest part's receipt (not the first nor the last by number), topic mo", async () => {
    const state = new MemoryState();
    const { e, mo, replies } = endpoint(state);
    // Parts 1, 3, 2 each in its own second: the message was whole here when part 2 came.
    await nextSecond();
    push(e, part("42,3,1", "a"));
    await nextSecond();
    push(e, part("42,3,3", "c"));
    await nextSecond();
    const before = e.stats.mo;
    const from = formatInstant(Date.now(), 480);
    push(e, part("42,3,2", "b"));
    const to = formatInstant(Date.now(), 480);
    await waitFor(() => mo.length === 1, 5000, "the whole SMS emitted");
    const at = mo[0].payload.receivedAt;
    assert.equal(mo[0].topic, "mo");
    assert.equal(mo[0].payload.text, "abc");
    assert.equal(mo[0].payload.complete, true);
    assert.equal(mo[0].payload.parts, 3);
    // Part 2 was pushed last: the message was whole then.
    assert.ok(at === from || at === to, `${at} is neither ${from} nor ${to}`);
    assert.equal(e.stats.mo, before + 1);
    assert.deepEqual(replies, [{ mobile: "13900210021", text: "abc", destcode: "1065" }]);
    await e.close(false);
    await state.close();
  });

  it("adopt() emits the parts pending under the old path as incomplete; close(false) leaves them pending", async () => {
    const state = new MemoryState();
    const old = endpoint(state, { scope: "r:/old" });
    push(old.e, part("3,2,1", "first half"));
    await waitFor(() => state.size.pendingMessages === 1, 5000, "the part pending");
    await old.e.close(false);
    assert.equal(old.mo.length, 0, "a redeploy does not emit what is pending");
    assert.equal(state.size.pendingMessages, 1);
    const now = endpoint(state, { scope: "r:/new" });
    assert.equal(await now.e.adopt("r:/old"), 1);
    assert.equal(now.mo.length, 1);
    assert.equal(now.mo[0].payload.text, "first half");
    assert.equal(now.mo[0].payload.complete, false);
    assert.deepEqual(now.mo[0].payload.missing, [2]);
    assert.deepEqual(now.replies, [], "an incomplete SMS is no reply");
    await now.e.close(false);
    await state.close();
  });

  it("a closed endpoint no longer takes its path's part deadlines: the node started later emits them", async () => {
    const state = new MemoryState();
    const old = endpoint(state, { partTimeoutMs: 100 });
    push(old.e, part("4,2,1", "half"));
    await waitFor(() => state.size.pendingMessages === 1, 5000, "the part pending");
    await old.e.close(false);
    // Past the deadline while no node handles the path.
    await new Promise((r) => setTimeout(r, 300));
    const next = endpoint(state, { partTimeoutMs: 100 });
    await waitFor(() => next.mo.length === 1, 5000, "the late part emitted by the running node");
    assert.equal(old.mo.length, 0);
    assert.equal(next.mo[0].payload.complete, false);
    await next.e.close(false);
    await state.close();
  });
});

interface Served {
  url: string;
  /** each request's req.isPaused() once its params were read */
  paused: boolean[];
  /** what readParams resolved to, per request */
  results: unknown[];
  close: () => Promise<void>;
}

type Prepare = (req: http.IncomingMessage) => Promise<void> | void;

function answer(res: http.ServerResponse, r: Awaited<ReturnType<typeof readParams>>): void {
  if ("answer" in r) {
    res.writeHead(r.answer.status, { connection: "close" }).end(r.answer.body);
    return;
  }
  const p = r.params;
  const body = p instanceof Batch ? { batch: p.items, shared: p.shared } : { params: p };
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
}

/** A real server on 127.0.0.1 answering each request with what readParams read of it. */
async function serve(kind: "http" | "express", prepare?: Prepare): Promise<Served> {
  const paused: boolean[] = [];
  const results: unknown[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void (async () => {
      await prepare?.(req);
      const r = await readParams(req as Req);
      paused.push(req.isPaused());
      results.push(r);
      answer(res, r);
    })().catch((e: unknown) => res.writeHead(500).end(String(e)));
  };
  let server: http.Server;
  if (kind === "express") {
    const app = express();
    app.all("/sms/push", handler);
    server = http.createServer(app);
  } else server = http.createServer(handler);
  const sockets = new Set<net.Socket>();
  server.on("connection", (s) => (sockets.add(s), s.on("close", () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/sms/push`,
    paused,
    results,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

async function request(
  url: string,
  o: { method?: string; type?: string; body?: string } = {},
): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = {};
  if (o.type) headers["content-type"] = o.type;
  const res = await fetch(url, { method: o.method ?? (o.body === undefined ? "GET" : "POST"), headers, body: o.body });
  return { status: res.status, body: await res.text() };
}

const paramsOf = (r: { status: number; body: string }): Params => {
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { params: Params }).params;
};

/** Writes raw bytes (a request Node's client would not send as it is) and reads the whole answer. */
function raw(url: string, bytes: Buffer, end = true): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), "127.0.0.1", () => (end ? s.end(bytes) : s.write(bytes)));
    const got: Buffer[] = [];
    s.on("data", (c: Buffer) => got.push(c));
    s.on("error", reject);
    s.on("close", () => resolve(Buffer.concat(got).toString("utf8")));
  });
}

const MO = "mobile=13900210021&msg=hi";

describe("lib/push/endpoint: readParams, which bytes become params (SPEC B4, B4a, A5)", function () {
  this.timeout(30_000);

  it("a declared body over 64 KiB is 413 before any byte of it arrives", async () => {
    const s = await serve("http");
    try {
      const head = `POST /sms/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${64 * 1024 + 1}\r\n\r\n`;
      const got = await Promise.race([
        raw(s.url, Buffer.from(head), false),
        new Promise<string>((r) => setTimeout(() => r("no answer within 5 s"), 5000)),
      ]);
      assert.match(got, /^HTTP\/1\.1 413 /);
      assert.match(got, /\r\n11\r\nPayload Too Large\r\n/, "the body (chunked)");
    } finally {
      await s.close();
    }
  });

  it("a streamed body over 64 KiB is 413 and is not read further", async () => {
    const s = await serve("http");
    try {
      const body = Buffer.alloc(256 * 1024, 0x61);
      const got = await new Promise<number>((resolve, reject) => {
        const { port } = new URL(s.url);
        const req = http.request(
          { host: "127.0.0.1", port, path: "/sms/push", method: "POST", headers: { "transfer-encoding": "chunked" } },
          (res) => (res.resume(), resolve(res.statusCode ?? 0)),
        );
        req.on("error", reject);
        req.write(body.subarray(0, 100 * 1024));
        // The rest may never be read: the server answers without it.
      });
      assert.equal(got, 413);
      assert.deepEqual(s.paused, [true], "the rest of the body is left unread");
    } finally {
      await s.close();
    }
  });

  it("a body the client aborts is unreadable (400), never left waiting", async () => {
    const s = await serve("http");
    const { port } = new URL(s.url);
    try {
      // A few bytes of a larger body, then the client goes away.
      const c = net.connect(Number(port), "127.0.0.1", () =>
        c.write("POST /sms/push HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nmobile=1390"),
      );
      c.on("error", () => undefined);
      await waitFor(() => s.paused.length === 0 && c.bytesWritten > 0, 5000, "the head sent");
      await new Promise((r) => setTimeout(r, 50));
      c.destroy();
      // The answer cannot reach the aborted client: what readParams resolved to is read on the server.
      await waitFor(() => s.results.length === 1, 5000, "readParams resolved for the aborted request");
      assert.deepEqual(s.results[0], { answer: { status: 400, body: "Bad Request: unreadable body" } });
    } finally {
      await s.close();
    }
  });

  it("a request destroyed on the server side mid-body (a timeout, a middleware) resolves unreadable too", async () => {
    // Node then emits 'close' without 'error': waiting for 'end' would hold the request forever.
    const s = await serve("http", (req) => void req.once("data", () => setImmediate(() => req.destroy())));
    const { port } = new URL(s.url);
    const c = net.connect(Number(port), "127.0.0.1", () =>
      c.write("POST /sms/push HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nmobile=1390"),
    );
    c.on("error", () => undefined);
    try {
      await waitFor(() => s.results.length === 1, 5000, "readParams resolved for the destroyed request");
      assert.deepEqual(s.results[0], { answer: { status: 400, body: "Bad Request: unreadable body" } });
    } finally {
      c.destroy();
      await s.close();
    }
  });

  it("an unreadable JSON body is 400 with its reason; a JSON body that is not an object or array is 400", async () => {
    const s = await serve("http");
    try {
      for (const body of ['{"mobile":', "null", '"text"', "5"]) {
        const r = await request(s.url, { type: "application/json", body });
        assert.deepEqual(r, { status: 400, body: "Bad Request: unreadable body" }, body);
      }
    } finally {
      await s.close();
    }
  });

  it("without a content type, JSON is sniffed past leading whitespace; anything else is a form", async () => {
    const s = await serve("http");
    try {
      const obj = await request(s.url, { method: "POST", body: ' \t\r\n{"mobile":"13900210021","msg":"hi"}' });
      assert.deepEqual(paramsOf(obj), { mobile: "13900210021", msg: "hi" });
      const arr = await request(s.url, { method: "POST", body: '\n[{"mobile":"13900210021","msg":"hi"}]' });
      assert.equal(arr.status, 200);
      assert.deepEqual(JSON.parse(arr.body), { batch: [{ mobile: "13900210021", msg: "hi" }], shared: {} });
      // fetch gives a string body text/plain: a text type is neither JSON nor form, so it is sniffed too.
      const form = await request(s.url, { method: "POST", body: MO });
      assert.deepEqual(paramsOf(form), { mobile: "13900210021", msg: "hi" });
      // An empty body without a type: the URL's params.
      const blank = await request(s.url + "?" + MO, { method: "POST", body: "" });
      assert.deepEqual(paramsOf(blank), { mobile: "13900210021", msg: "hi" });
      // A form whose first name starts with a brace is still a form.
      const braced = await request(s.url, { type: "application/x-www-form-urlencoded", body: "{x}=1&" + MO });
      assert.deepEqual(paramsOf(braced), { "{x}": "1", mobile: "13900210021", msg: "hi" });
    } finally {
      await s.close();
    }
  });

  it("a charset label that cannot be decoded is 415, its echo bounded to 40 characters", async () => {
    const s = await serve("http");
    try {
      const label = "x".repeat(100);
      const r = await request(s.url, { type: `application/x-www-form-urlencoded; charset=${label}`, body: MO });
      assert.deepEqual(r, { status: 415, body: `Unsupported Media Type: charset "${"x".repeat(40)}"` });
    } finally {
      await s.close();
    }
  });

  it("a body a middleware read away: its parsed value when it kept one, else an empty body of its type", async () => {
    // A middleware that reads the stream and keeps the params (without body-parser's _body flag).
    const kept = await serve("http", async (req) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.url?.includes("keep")) (req as Req).body = JSON.parse(Buffer.concat(chunks).toString()) as unknown;
    });
    try {
      const json = '{"mobile":"13900210021","msg":"hi"}';
      const r = await request(kept.url + "?keep=1", { type: "application/json", body: json });
      assert.deepEqual(paramsOf(r), { keep: "1", mobile: "13900210021", msg: "hi" });
      // Nothing kept: the body is gone, and an empty JSON body is unreadable (the platform pushes again).
      const gone = await request(kept.url + "?x=1", { type: "application/json", body: json });
      assert.deepEqual(gone, { status: 400, body: "Bad Request: unreadable body" });
      const form = await request(kept.url + "?" + MO, { type: "application/x-www-form-urlencoded", body: "a=1" });
      assert.deepEqual(paramsOf(form), { mobile: "13900210021", msg: "hi" });
    } finally {
      await kept.close();
    }
  });

  it("GET: no query is a probe (OK, nothing emitted); a query's params are read on a bare node:http server", async () => {
    const s = await serve("http");
    try {
      assert.deepEqual(await request(s.url), { status: 200, body: "OK" });
      assert.deepEqual(paramsOf(await request(s.url + "?" + MO)), { mobile: "13900210021", msg: "hi" });
      assert.deepEqual(paramsOf(await request(s.url + "?msg=%C4%E3%BA%C3&mobile=1")), { msg: "你好", mobile: "1" });
    } finally {
      await s.close();
    }
  });

  it("the query holds at most 1,000 params: empty ones between '&'s do not count, one more is 400", async () => {
    const s = await serve("http");
    try {
      const names = Array.from({ length: 1000 }, (_, i) => `a${i}=1`);
      // Empty params at the start, in the middle and at the end.
      const q = "&" + names.slice(0, 500).join("&") + "&&" + names.slice(500).join("&") + "&";
      const ok = paramsOf(await request(`${s.url}?${q}`));
      assert.equal(Object.keys(ok).length, 1000);
      const over = await request(`${s.url}?${q}b=1`);
      assert.deepEqual(over, { status: 400, body: "Bad Request: more than 1000 parameters" });
    } finally {
      await s.close();
    }
  });

  it("Express's query (Node-RED's) is taken as it parsed it, unless a value stayed percent-encoded (GBK)", async () => {
    const s = await serve("express");
    try {
      // Decoded: Express's own reading (brackets are objects and arrays), first values only.
      const nested = paramsOf(await request(`${s.url}?${MO}&x[y]=1&t[]=1&t[]=2&o[0][k]=v`));
      assert.deepEqual(nested, { mobile: "13900210021", msg: "hi", x: { y: "1" }, t: "1", o: { k: "v" } });
      // GBK bytes in a value Express kept as it came: the query is read again from the URL.
      const gbk = paramsOf(await request(`${s.url}?mobile=1&msg=%C4%E3%BA%C3`));
      assert.deepEqual(gbk, { mobile: "1", msg: "你好" });
      // The same in a name given twice (Express gives an array): the first value, decoded.
      const twice = paramsOf(await request(`${s.url}?mobile=1&msg=%C4%E3%BA%C3&msg=x`));
      assert.deepEqual(twice, { mobile: "1", msg: "你好" });
      // ...and in a name.
      const name = paramsOf(await request(`${s.url}?mobile=1&%C4%E3=x`));
      assert.deepEqual(name, { mobile: "1", 你: "x" });
    } finally {
      await s.close();
    }
  });
});

/** A request as Node-RED hands it over when its own body parsers already read the body. */
function parsedReq(body: unknown, type: string, url = "/sms/push"): Req {
  return { method: "POST", url, headers: { "content-type": type }, body, _body: true } as unknown as Req;
}

describe("lib/push/endpoint: readParams on bodies Node-RED already parsed (SPEC B4)", function () {
  it("a text or raw body (string, Buffer) is read as its content type says; the URL's params under it", async () => {
    const form = "application/x-www-form-urlencoded";
    assert.deepEqual(await readParams(parsedReq(MO, form)), { params: { mobile: "13900210021", msg: "hi" } });
    assert.deepEqual(await readParams(parsedReq(Buffer.from("msg=%C4%E3%BA%C3"), form, "/sms/push?mobile=1")), {
      params: { mobile: "1", msg: "你好" },
    });
    assert.deepEqual(await readParams(parsedReq('{"msg":"x"}', "text/plain", "/sms/push?mobile=1")), {
      params: { mobile: "1", msg: "x" },
    });
  });

  it("an object body: merged over the URL's params; a form's GBK values repaired, its nested values kept", async () => {
    const form = "application/x-www-form-urlencoded";
    const r = await readParams(
      parsedReq({ msg: "%C4%E3%BA%C3", extra: { a: "1" }, n: ["x", "y"] }, form, "/sms/push?mobile=1&msg=q"),
    );
    assert.deepEqual(r, { params: { mobile: "1", msg: "你好", extra: { a: "1" }, n: "x" } });
    const json = await readParams(parsedReq({ msg: "%C4%E3" }, "application/json", "/sms/push?mobile=1"));
    assert.deepEqual(json, { params: { mobile: "1", msg: "%C4%E3" } }, "a JSON body's text as sent");
  });

  it("a form array body: each object element repaired, other elements left as they are (refused later)", async () => {
    const r = await readParams(parsedReq([null, 7, { msg: "%C4%E3%BA%C3" }], "application/x-www-form-urlencoded"));
    assert.ok("params" in r && r.params instanceof Batch);
    assert.deepEqual((r.params as Batch).items, [null, 7, { msg: "你好" }]);
  });

  it("a body that is no object, array or text: the URL's params only", async () => {
    for (const body of [null, 5, true]) {
      assert.deepEqual(await readParams(parsedReq(body, "application/json")), { params: {} }, String(body));
      assert.deepEqual(await readParams(parsedReq(body, "application/json", "/sms/push?mobile=1")), {
        params: { mobile: "1" },
      });
    }
  });

  it("an object body of 1,000 keys is taken; 1,001 is 400", async () => {
    const body: Params = {};
    for (let i = 0; i < 1000; i++) body[`k${i}`] = "1";
    const ok = await readParams(parsedReq(body, "application/json"));
    assert.ok("params" in ok && Object.keys(ok.params).length === 1000);
    body.k1000 = "1";
    assert.deepEqual(await readParams(parsedReq(body, "application/json")), {
      answer: { status: 400, body: "Bad Request: more than 1000 parameters" },
    });
  });
});
