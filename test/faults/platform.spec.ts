// Platform faults seen through sms-send and sms-balance in Node-RED: for each, the right code,
// the right number of requests (never a second one for a maybe-taken send) and a node that keeps
// working for the next message.
import assert from "node:assert/strict";
import { hang, refusedUrl, reply, reset, resetMidReply, StubServer, type Behaviour } from "../support/stub";
import { collect, flowWith, helper, load, sleep, type FlowNode } from "../support/nr";
import { ResetBeforeRequest, TlsPlatform } from "../support/tls-servers";

type Payload = Record<string, unknown>;
const OK = reply("20110725160412,0\n99001");
const send: FlowNode = { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] };
const balance: FlowNode = { id: "b", type: "sms-balance", config: "cfg", wires: [["out"]] };

interface Fault {
  name: string;
  behaviour: Behaviour[];
  code: string | number;
  unknown: boolean;
  requests: number;
}

const SEND_FAULTS: Fault[] = [
  {
    name: "slow beyond timeout",
    behaviour: [reply("20110725160412,0\n1", 200, 1200)],
    code: "TIMEOUT",
    unknown: true,
    requests: 1,
  },
  { name: "no answer at all", behaviour: [hang], code: "TIMEOUT", unknown: true, requests: 1 },
  // A FIN once the request was read (undici: UND_ERR_SOCKET, "other side closed").
  { name: "connection closed after the request", behaviour: [reset], code: "NETWORK", unknown: true, requests: 1 },
  { name: "reset mid-reply", behaviour: [resetMidReply], code: "NETWORK", unknown: true, requests: 1 },
  {
    name: "503 with an HTML page",
    behaviour: [reply("<html><h1>503 Service Unavailable</h1></html>", 503)],
    code: "HTTP_STATUS",
    unknown: true,
    requests: 1,
  },
  { name: "an empty body", behaviour: [reply("")], code: "BAD_RESPONSE", unknown: true, requests: 1 },
  { name: "garbage", behaviour: [reply("\u0000\u0001garbage;;;")], code: "BAD_RESPONSE", unknown: true, requests: 1 },
  { name: "a huge body", behaviour: [reply("1".repeat(1_000_000))], code: "BAD_RESPONSE", unknown: true, requests: 1 },
  {
    name: "old numbering 115 (= signature there)",
    behaviour: [reply("20110725160412,115")],
    code: 115,
    unknown: false,
    requests: 1,
  },
  { name: "unknown code 199", behaviour: [reply("20110725160412,199")], code: 199, unknown: false, requests: 1 },
  {
    name: "a 103 storm beyond the retries",
    behaviour: [reply("20110725160412,103")],
    code: 103,
    unknown: false,
    requests: 3,
  },
  {
    name: "104 busy beyond the retries",
    behaviour: [reply("20110725160412,104")],
    code: 104,
    unknown: false,
    requests: 3,
  },
];

describe("faults: platform, through the nodes", function () {
  this.timeout(30_000);
  let stub: StubServer;
  beforeEach(async () => {
    stub = new StubServer();
    await stub.start();
  });
  afterEach(async () => {
    await helper.unload();
    await stub.close();
  });

  for (const f of SEND_FAULTS) {
    it(`sms-send, ${f.name}: ${f.code}, ${f.requests} request(s), then the next message is sent`, async () => {
      // retries 2 → at most 3 requests for a retry-safe code; timeouts short for the slow cases.
      await load(flowWith({ url: stub.url, timeout: 400, retries: 2 }, [send]));
      stub.script(...f.behaviour);
      const caught = collect("caught");
      const out = collect("out");
      helper.getNode("s").receive({ payload: "first" } as never);
      const [m] = await caught.next(1, 15_000);
      const p = m.payload as Payload;
      assert.equal(p.code, f.code);
      assert.equal(p.outcomeUnknown, f.unknown);
      if (f.unknown) assert.match((m.error as { message: string }).message, /may or may not have been sent/);
      await sleep(f.name.includes("slow") ? 1000 : 100);
      assert.equal(stub.requests.length, f.requests);
      stub.script(OK);
      helper.getNode("s").receive({ payload: "second" } as never);
      const [ok] = await out.next(1, 10_000);
      assert.equal(ok.msgid, "99001");
      assert.equal(stub.requests.length, f.requests + 1);
    });
  }

  it("sms-send, a reset (RST) after the platform read the request: NETWORK ECONNRESET, outcome unknown, never retried", async () => {
    // A real TCP reset, not a close: the socket is destroyed with RST once the whole request was
    // read, so the client sees ECONNRESET after writing it, the case "never retry a send that may
    // have been taken" is about (ECONNRESET before the request was written is retried).
    const rst: Behaviour = (req) => {
      req.socket.resetAndDestroy();
    };
    await load(flowWith({ url: stub.url, timeout: 2000, retries: 3 }, [send]));
    stub.script(rst);
    const caught = collect("caught");
    helper.getNode("s").receive({ payload: "first" } as never);
    const [m] = await caught.next(1, 10_000);
    const p = m.payload as Payload;
    assert.equal(p.code, "NETWORK");
    assert.equal(p.reason, "ECONNRESET");
    assert.equal(p.outcomeUnknown, true);
    assert.deepEqual(p.unsent, []);
    assert.match((m.error as { message: string }).message, /may or may not have been sent/);
    // A retry would come after the first backoff (500 ms ± 20 %): none did.
    await sleep(800);
    assert.equal(stub.requests.length, 1);
    assert.equal(stub.requests[0].form.get("msg"), "first");
  });

  it("sms-send, a 103 storm that clears: retried with backoff, sent once", async () => {
    await load(flowWith({ url: stub.url, retries: 3 }, [send]));
    stub.script(reply("20110725160412,103"), reply("20110725160412,103"), OK);
    const out = collect("out");
    helper.getNode("s").receive({ payload: "x" } as never);
    await out.next(1, 10_000);
    const gaps = stub.requests.slice(1).map((r, i) => r.at - stub.requests[i].at);
    assert.equal(stub.requests.length, 3);
    assert.ok(gaps[0] >= 350 && gaps[1] >= 700, `backoff 500 ms ±20 %, then doubled: ${gaps}`);
  });

  for (const [name, body] of [
    ["CRLF", "20110725160412,0\r\n99001\r\n"],
    ["a blank line", "20110725160412,0\n\n99001"],
  ]) {
    it(`sms-send, ${name} reply variant: success`, async () => {
      await load(flowWith({ url: stub.url }, [send]));
      stub.script(reply(body));
      const out = collect("out");
      helper.getNode("s").receive({ payload: "x" } as never);
      const [m] = await out.next();
      assert.equal(m.msgid, "99001");
    });
  }

  it("sms-send, connection refused: NETWORK, nothing sent, retried, node keeps working", async () => {
    await load(flowWith({ url: await refusedUrl(), retries: 1 }, [send]));
    const caught = collect("caught");
    helper.getNode("s").receive({ payload: "x" } as never);
    const [m] = await caught.next(1, 10_000);
    assert.equal((m.payload as Payload).code, "NETWORK");
    assert.equal((m.payload as Payload).outcomeUnknown, false);
    helper.getNode("s").receive({ payload: "y" } as never);
    await caught.next(2, 10_000);
  });

  it("sms-send, an https platform with a self-signed certificate: NETWORK, nothing sent, not retried", async () => {
    const platform = new TlsPlatform("self-signed");
    try {
      await load(flowWith({ url: await platform.start(), retries: 2 }, [send]));
      const caught = collect("caught");
      helper.getNode("s").receive({ payload: "x" } as never);
      const [m] = await caught.next(1, 10_000);
      const p = m.payload as Payload;
      assert.equal(p.code, "NETWORK");
      assert.equal(p.outcomeUnknown, false);
      assert.equal(p.reason, "DEPTH_ZERO_SELF_SIGNED_CERT");
      assert.match((m.error as { message: string }).message, /certificate; nothing was sent/);
      await sleep(100);
      assert.equal(platform.connections, 1);
      assert.equal(platform.requests, 0);
    } finally {
      await helper.unload();
      await platform.close();
    }
  });

  it("sms-send, a reset during the TLS handshake: NETWORK, nothing sent, retried", async () => {
    const server = new ResetBeforeRequest();
    try {
      await load(flowWith({ url: await server.start(), retries: 1 }, [send]));
      const caught = collect("caught");
      helper.getNode("s").receive({ payload: "x" } as never);
      const [m] = await caught.next(1, 10_000);
      assert.equal((m.payload as Payload).code, "NETWORK");
      assert.equal((m.payload as Payload).outcomeUnknown, false);
      assert.equal(server.connections, 2);
    } finally {
      await helper.unload();
      await server.close();
    }
  });

  it("sms-send, DNS failure: NETWORK, outcome known", async () => {
    await load(flowWith({ url: "http://no-such-sms-platform.invalid", retries: 0 }, [send]));
    const caught = collect("caught");
    helper.getNode("s").receive({ payload: "x" } as never);
    const [m] = await caught.next(1, 15_000);
    assert.equal((m.payload as Payload).code, "NETWORK");
    assert.equal((m.payload as Payload).outcomeUnknown, false);
    assert.match(String((m.payload as Payload).reason), /ENOTFOUND|EAI_AGAIN/);
  });

  const BALANCE_FAULTS: Array<[string, Behaviour, string | number]> = [
    ["503 HTML", reply("<html>down</html>", 503), "HTTP_STATUS"],
    ["garbage", reply("hello"), "BAD_RESPONSE"],
    ["empty", reply(""), "BAD_RESPONSE"],
    ["reset", reset, "NETWORK"],
    ["103 too often", reply("20130303180000,103"), 103],
  ];
  for (const [name, behaviour, code] of BALANCE_FAULTS) {
    it(`sms-balance, ${name}: ${code}, one request; a second query inside the 10 s window makes none`, async () => {
      await load(flowWith({ url: stub.url, timeout: 500, retries: 2 }, [balance]));
      stub.script(behaviour);
      const caught = collect("caught");
      helper.getNode("b").receive({} as never);
      const [m] = await caught.next(1, 10_000);
      assert.equal((m.payload as Payload).code, code);
      assert.equal(stub.requests.length, 1);
      // Inside the 10 s window the same failure is answered without a second query.
      helper.getNode("b").receive({} as never);
      await caught.next(2);
      assert.equal(stub.requests.length, 1);
    });
  }
});
