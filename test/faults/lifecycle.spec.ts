// Node-RED lifecycle: stops and redeploys while sends are queued or under way, and many
// redeploys without anything growing.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import supertest from "supertest";
import { reply, StubServer } from "../support/stub";
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

type Spy = { args: unknown[][]; thisValues: Array<{ id: string }> };

/** Per input index (msg._i): how it ended, from the node's own send and error calls. */
function endings(nodeId: string, sendSpy: Spy, errorSpy: Spy, n: number): number[] {
  const ends = new Array(n).fill(0);
  sendSpy.args.forEach((a, k) => {
    if (sendSpy.thisValues[k]?.id !== nodeId) return;
    const m = a[0] as { _i?: number };
    if (typeof m?._i === "number") ends[m._i]++;
  });
  errorSpy.args.forEach((a, k) => {
    if (errorSpy.thisValues[k]?.id !== nodeId) return;
    const m = a[1] as { _i?: number };
    if (typeof m?._i === "number") ends[m._i]++;
  });
  return ends;
}

function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

describe("faults: Node-RED lifecycle", function () {
  this.timeout(60_000);
  let stub: StubServer;
  beforeEach(async () => {
    stub = new StubServer();
    await stub.start();
  });
  afterEach(async () => {
    await helper.unload();
    await stub.close();
  });

  for (const how of ["redeploy", "stop"] as const) {
    it(`${how} with sends queued and one under way: every input ends exactly once`, async () => {
      stub.script(reply("20110725160412,0\n1", 200, 300));
      const flow = flowWith({ url: stub.url, rate: 2 }, [
        { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
      ]);
      await load(flow);
      const node = helper.getNode("s");
      const sendSpy = node.send as unknown as Spy;
      const errorSpy = node.error as unknown as Spy;
      const N = 6;
      for (let i = 0; i < N; i++) node.receive({ payload: `m${i}`, _i: i } as never);
      await sleep(120);
      if (how === "redeploy") await helper.setFlows(flow as never, "full", creds() as never);
      else await helper.clearFlows();
      await sleep(400);
      assert.deepEqual(endings("s", sendSpy, errorSpy, N), new Array(N).fill(1));
      assert.equal(stub.requests.length, 1, "queued sends never went out");
    });
  }

  it("50 redeploys grow no routes, timers, sockets or listeners", async () => {
    const send = reply("20110725160412,0\n1");
    const balance = reply("20130303180000,0\n1001,5");
    stub.script((req, res, rec) => (rec.path.endsWith("/QueryBalance") ? balance : send)(req, res, rec));
    const nodes: FlowNode[] = [
      { id: "s", type: "sms-send", config: "cfg", mobile: "13800138000", wires: [["out"]] },
      { id: "b", type: "sms-balance", config: "cfg", wires: [["out"]] },
      { id: "r", type: "sms-receive", config: "cfg", path: "/life", partTimeout: 600, wires: [["out"], ["out2"]] },
    ];
    const flow = flowWith({ url: stub.url }, nodes);
    await load(flow);
    const cycle = async () => {
      await helper.setFlows(flow as never, "full", creds() as never);
      const out = collect("out");
      helper.getNode("s").receive({ payload: "x" } as never);
      helper.getNode("b").receive({} as never);
      // A pending long SMS part: its timer must go away with the node.
      await supertest(captured.httpNode!)
        .get("/life")
        .query({ mobile: "13800138000", msg: "p", isems: "1", emshead: "1,2,1" });
      await out.next(2, 5000);
    };
    for (let i = 0; i < 5; i++) await cycle();
    await sleep(200);
    const before = resources();
    const listeners = process.listenerCount("warning") + process.listenerCount("exit");
    for (let i = 0; i < 50; i++) await cycle();
    await sleep(300);
    const after = resources();
    const stack = (captured.httpNode as unknown as { _router: { stack: Array<{ route?: { path: string } }> } })._router
      .stack;
    assert.equal(stack.filter((l) => l.route?.path === "/life").length, 2, "one GET and one POST route");
    for (const kind of ["Timeout", "TCPSocketWrap", "TCPWRAP"]) {
      assert.ok((after[kind] ?? 0) <= (before[kind] ?? 0) + 2, `${kind}: ${before[kind] ?? 0} → ${after[kind] ?? 0}`);
    }
    assert.equal(process.listenerCount("warning") + process.listenerCount("exit"), listeners);
  });

  describe("a push whose body is still arriving when sms-receive closes", () => {
    let server: http.Server;
    afterEach(async () => {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    });

    const auth = `receiver=rcv&pswd=${RECEIVER_PASSWORD}`;
    for (const [what, body] of [
      ["a long-SMS part", `${auth}&mobile=13800138000&msg=half&isems=1&emshead=9,2,1`],
      ["a delivery report", `${auth}&msgid=1&mobile=13900210021&status=DELIVRD`],
      [
        "a JSON array",
        JSON.stringify([{ receiver: "rcv", pswd: RECEIVER_PASSWORD, msgid: "1", mobile: "1", status: "X" }]),
      ],
    ] as const) {
      it(`${what}: Node-RED survives, the push is answered 503 (not taken, so the platform pushes it again), nothing emitted`, async () => {
        const rejections: unknown[] = [];
        const onRejection = (e: unknown) => rejections.push(e);
        process.on("unhandledRejection", onRejection);
        try {
          await load(
            flowWith({}, [{ id: "r", type: "sms-receive", config: "cfg", path: "/slow", wires: [["out"], ["out2"]] }]),
            creds({ receiver: "rcv", receiverPassword: RECEIVER_PASSWORD }),
          );
          const sendSpy = helper.getNode("r").send as unknown as Spy;
          // A real server, so the node reads the body itself (as with httpAdminRoot ≠ httpNodeRoot).
          server = http.createServer(captured.httpNode!);
          await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
          const arrived = new Promise<void>((r) => server.once("request", () => setImmediate(r)));
          const type = what === "a JSON array" ? "application/json" : "application/x-www-form-urlencoded";
          const req = http.request({
            host: "127.0.0.1",
            port: (server.address() as AddressInfo).port,
            method: "POST",
            path: "/slow",
            headers: { "content-type": type, "content-length": Buffer.byteLength(body) },
          });
          const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
            req.on("response", (res) => {
              let text = "";
              res.setEncoding("utf8");
              res.on("data", (c: string) => (text += c));
              res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
            });
            req.on("error", reject);
          });
          req.write(body.slice(0, 10));
          await arrived;
          await helper.clearFlows();
          req.end(body.slice(10));
          const got = await answer;
          await sleep(50);
          assert.deepEqual(rejections.map(String), [], "no unhandled rejection (Node-RED would exit)");
          assert.equal(got.status, 503, got.text);
          assert.match(got.text, /Service Unavailable/);
          assert.equal(sendSpy.args.filter((_a, k) => sendSpy.thisValues[k]?.id === "r").length, 0);
        } finally {
          process.off("unhandledRejection", onRejection);
        }
      });
    }
  });
});
