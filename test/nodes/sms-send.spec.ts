import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { hang, reply, StubServer, refusedUrl, reset, waitFor } from "../support/stub";
import { collect, creds, flowWith, helper, load, sleep, PASSWORD, type FlowNode } from "../support/nr";

const send = (o: Record<string, unknown> = {}): FlowNode => ({
  id: "s",
  type: "sms-send",
  config: "cfg",
  mobile: "13800138000",
  needstatus: true,
  wires: [["out"]],
  ...o,
});

type Payload = Record<string, unknown> & { code: unknown; batch: { index: number; count: number } };

describe("nodes/sms-send (in Node-RED, against the simulator)", () => {
  let sim: Simulator;
  beforeEach(async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }] });
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
  });

  it("sends and outputs msgid, keeping the input's other properties", async () => {
    await load(flowWith({ url: sim.url, signature: "【朗宇信息】" }, [send()]));
    const out = collect("out");
    helper.getNode("s").receive({ payload: "您好", topic: "alarm", _custom: 42 } as never);
    const [m] = await out.next();
    const p = m.payload as Payload;
    assert.equal(p.code, 0);
    assert.equal(p.ok, true);
    assert.match(p.msgid as string, /^\d+$/);
    assert.equal(m.msgid, p.msgid);
    assert.match(p.resptime as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);
    assert.equal(p.mobiles, 1);
    assert.equal(p.segments, 1);
    assert.deepEqual(p.batch, { index: 1, count: 1 });
    assert.deepEqual(m.mobile, ["13800138000"]);
    assert.equal(m.topic, "alarm");
    assert.equal(m._custom, 42);
    assert.equal(sim.requests[0].params.msg, "【朗宇信息】您好");
  });

  it("msg overrides win over node properties (numbers and booleans as strings too)", async () => {
    await load(
      flowWith({ url: sim.url, product: "1001" }, [send({ product: "1001", extno: "1", needstatus: "true" })]),
    );
    const out = collect("out");
    helper.getNode("s").receive({
      payload: 12345,
      mobile: ["+86 139-0013-9000", 13700137000],
      needstatus: "false",
      product: "1002",
      extno: "77",
    } as never);
    const [m] = await out.next();
    const p = sim.requests[0].params;
    assert.equal(p.mobile, "13900139000,13700137000");
    assert.equal(p.msg, "12345");
    assert.equal(p.needstatus, "false");
    assert.equal(p.product, "1002");
    assert.equal(p.extno, "77");
    assert.equal(m.msgid, null);
    assert.equal((m.payload as Payload).msgid, null);
  });

  const localErrors: Array<[string, Record<string, unknown>, Record<string, unknown>?]> = [
    ["INVALID_PAYLOAD", { payload: { text: "x" } }],
    ["INVALID_MOBILE", { payload: "hi", mobile: "13800138000,123,abc" }],
    ["EMPTY_MESSAGE", { payload: "   " }],
    ["MESSAGE_TOO_LONG", { payload: "x".repeat(11) }, { maxLength: 10 }],
  ];
  for (const [code, msg, cfg] of localErrors) {
    it(`${code} reaches a Catch node and nothing is sent`, async () => {
      await load(flowWith({ url: sim.url, ...cfg }, [send()]));
      const caught = collect("caught");
      helper.getNode("s").receive(msg as never);
      const [m] = await caught.next();
      const p = m.payload as Payload;
      assert.equal(p.code, code);
      assert.equal(p.ok, false);
      assert.equal(p.outcomeUnknown, false);
      assert.ok((m.error as { message: string }).message.length > 0);
      if (code === "INVALID_MOBILE") {
        assert.deepEqual(p.invalid, ["123", "abc"]);
        assert.match((m.error as { message: string }).message, /123, abc/);
      }
      assert.equal(sim.requests.length, 0);
    });
  }

  it("NO_CONFIG reaches a Catch node when no account is selected", async () => {
    await load(flowWith({ url: sim.url }, [send({ config: "" })]));
    const caught = collect("caught");
    helper.getNode("s").receive({ payload: "hi" } as never);
    const [m] = await caught.next();
    assert.equal((m.payload as Payload).code, "NO_CONFIG");
  });

  it("NO_CONFIG when the account has no credentials", async () => {
    await load(flowWith({ url: sim.url }, [send()]), {});
    const caught = collect("caught");
    helper.getNode("s").receive({ payload: "hi" } as never);
    const [m] = await caught.next();
    assert.equal((m.payload as Payload).code, "NO_CONFIG");
  });

  it("a platform error reaches a Catch node with the numeric code", async () => {
    sim.configure({ account: "demo", products: { "1001": 0 } });
    await load(flowWith({ url: sim.url }, [send()]));
    const caught = collect("caught");
    const out = collect("out");
    helper.getNode("s").receive({ payload: "hi" } as never);
    const [m] = await caught.next();
    const p = m.payload as Payload;
    assert.equal(p.code, 109);
    assert.equal(p.ok, false);
    assert.match(p.description as string, /quota/);
    assert.match(p.resptime as string, /\+08:00$/);
    assert.equal(out.msgs.length, 0);
  });

  it("103 is retried and then succeeds", async () => {
    sim.configure({ account: "demo", rateLimit: 1 });
    await load(flowWith({ url: sim.url, rate: 0, retries: 3 }, [send()]));
    const out = collect("out");
    helper.getNode("s").receive({ payload: "a" } as never);
    helper.getNode("s").receive({ payload: "b" } as never);
    const msgs = await out.next(2);
    assert.ok(msgs.every((m) => (m.payload as Payload).code === 0));
    const codes = sim.requests.map((r) => r.code);
    assert.ok(codes.includes(103), `codes ${codes}`);
    assert.equal(codes.filter((c) => c === 0).length, 2);
  });

  it("a 50,001-number send makes two requests and two outputs, in order", async function () {
    this.timeout(30_000);
    sim.configure({ account: "demo", products: { "1001": 1_000_000 } });
    await load(flowWith({ url: sim.url }, [send()]));
    const out = collect("out");
    const numbers = Array.from({ length: 50_001 }, (_, i) => `139${String(i).padStart(8, "0")}`);
    helper.getNode("s").receive({ payload: "bulk", mobile: numbers.join(","), tag: "t" } as never);
    const msgs = await out.next(2, 20_000);
    assert.equal(sim.requests.length, 2);
    assert.equal(sim.requests[0].params.mobile.split(",").length, 50_000);
    assert.equal(sim.requests[1].params.mobile, numbers[50_000]);
    assert.deepEqual(
      msgs.map((m) => (m.payload as Payload).batch),
      [
        { index: 1, count: 2 },
        { index: 2, count: 2 },
      ],
    );
    assert.deepEqual(
      msgs.map((m) => (m.payload as Payload).mobiles),
      [50_000, 1],
    );
    assert.ok(msgs.every((m) => m.tag === "t"));
    assert.notEqual(msgs[0].msgid, msgs[1].msgid);
  });

  it("the first failing batch stops the rest and reports batch and unsent", async () => {
    sim.configure({ account: "demo", products: { "1001": 50_000 } });
    await load(flowWith({ url: sim.url }, [send()]));
    const out = collect("out");
    const caught = collect("caught");
    const numbers = Array.from({ length: 50_001 }, (_, i) => `139${String(i).padStart(8, "0")}`);
    sim.configure({ account: "demo", products: { "1001": 50_000 } });
    helper.getNode("s").receive({ payload: "bulk", mobile: numbers } as never);
    const [err] = await caught.next(1, 20_000);
    const p = err.payload as Payload;
    assert.equal(out.msgs.length, 1);
    assert.equal(p.code, 109);
    assert.deepEqual(p.batch, { index: 2, count: 2 });
    assert.deepEqual(p.unsent, [numbers[50_000]]);
    assert.match((err.error as { message: string }).message, /Batch 2 of 2.*\(1 number\(s\) not sent\)/);
  });

  describe("platform faults (stub server)", () => {
    let stub: StubServer;
    beforeEach(async () => {
      stub = new StubServer();
      await stub.start();
    });
    afterEach(() => stub.close());

    it("a reply slower than timeout: exactly one request and TIMEOUT", async () => {
      stub.script(reply("20110725160412,0\n1", 200, 1500));
      await load(flowWith({ url: stub.url, timeout: 300, retries: 3 }, [send()]));
      const caught = collect("caught");
      helper.getNode("s").receive({ payload: "hi" } as never);
      const [m] = await caught.next();
      const p = m.payload as Payload;
      assert.equal(p.code, "TIMEOUT");
      assert.equal(p.outcomeUnknown, true);
      assert.match((m.error as { message: string }).message, /may or may not have been sent/);
      await sleep(1500);
      assert.equal(stub.requests.length, 1);
    });

    for (const [name, behaviour, code] of [
      ["reset after sending", reset, "NETWORK"],
      ["HTTP 502", reply("<html>bad gateway</html>", 502), "HTTP_STATUS"],
      ["garbage", reply("<html>hello</html>"), "BAD_RESPONSE"],
    ] as const) {
      it(`${name}: ${code}, outcome unknown, one request`, async () => {
        stub.script(behaviour);
        await load(flowWith({ url: stub.url, retries: 3 }, [send()]));
        const caught = collect("caught");
        helper.getNode("s").receive({ payload: "hi" } as never);
        const [m] = await caught.next();
        assert.equal((m.payload as Payload).code, code);
        assert.equal((m.payload as Payload).outcomeUnknown, true);
        await sleep(100);
        assert.equal(stub.requests.length, 1);
      });
    }

    it("NETWORK with outcome known when the platform cannot be reached", async () => {
      await load(flowWith({ url: await refusedUrl(), retries: 0 }, [send()]));
      const caught = collect("caught");
      helper.getNode("s").receive({ payload: "hi" } as never);
      const [m] = await caught.next();
      assert.equal((m.payload as Payload).code, "NETWORK");
      assert.equal((m.payload as Payload).outcomeUnknown, false);
    });

    describe("payload.unsent: the numbers surely not sent, ready to resend", function () {
      this.timeout(30_000);
      const OK = reply("20110725160412,0\n1");
      // Entered with +86 so the test sees unsent holds the normalised numbers.
      const numbers = (n: number) => Array.from({ length: n }, (_, i) => `139${String(i).padStart(8, "0")}`);
      const entered = (list: string[]) => list.map((m) => `+86${m}`);

      async function failBatch(count: number, second: Parameters<StubServer["script"]>[0]) {
        const all = numbers(count);
        stub.script(OK, second);
        await load(flowWith({ url: stub.url, timeout: 400, retries: 1 }, [send()]));
        const out = collect("out");
        const caught = collect("caught");
        helper.getNode("s").receive({ payload: "bulk", mobile: entered(all) } as never);
        const [m] = await caught.next(1, 20_000);
        return { all, out, m, p: m.payload as Payload, message: (m.error as { message: string }).message };
      }

      it("the second of two batches times out: unsent is empty (its numbers may have the SMS)", async () => {
        const { out, p, message } = await failBatch(50_001, hang);
        assert.equal(out.msgs.length, 1);
        assert.equal(p.code, "TIMEOUT");
        assert.equal(p.outcomeUnknown, true);
        assert.deepEqual(p.batch, { index: 2, count: 2 });
        assert.deepEqual(p.unsent, []);
        assert.match(message, /Batch 2 of 2.*\(0 number\(s\) not sent\)/);
        assert.equal(stub.requests.length, 2);
      });

      it("the second of two batches is refused with 103 after the retries: unsent is that batch", async () => {
        const { all, p, message } = await failBatch(50_001, reply("20110725160412,103"));
        assert.equal(p.code, 103);
        assert.equal(p.outcomeUnknown, false);
        assert.deepEqual(p.unsent, [all[50_000]]);
        assert.match(message, /\(1 number\(s\) not sent\)/);
        assert.equal(stub.requests.length, 3);
      });

      it("three batches, the second times out: unsent is the third batch", async () => {
        const { all, out, p, message } = await failBatch(100_001, hang);
        assert.equal(out.msgs.length, 1);
        assert.equal(p.outcomeUnknown, true);
        assert.deepEqual(p.batch, { index: 2, count: 3 });
        assert.deepEqual(p.unsent, [all[100_000]]);
        assert.match(message, /Batch 2 of 3.*\(1 number\(s\) not sent\)/);
        assert.equal(stub.requests.length, 2);
      });

      it("three batches, the second refused: unsent is the second and third batches, in order", async () => {
        const { all, p } = await failBatch(100_001, reply("20110725160412,103"));
        assert.equal(p.outcomeUnknown, false);
        assert.deepEqual(p.unsent, all.slice(50_000));
      });
    });

    it("QUEUE_FULL beyond the account's queue", async () => {
      stub.script(reply("20110725160412,0\n1", 200, 200));
      await load(flowWith({ url: stub.url, rate: 2, queue: 1 }, [send()]));
      const caught = collect("caught");
      const out = collect("out");
      for (let i = 0; i < 3; i++) helper.getNode("s").receive({ payload: `m${i}` } as never);
      const [m] = await caught.next();
      assert.equal((m.payload as Payload).code, "QUEUE_FULL");
      await out.next(2);
      assert.equal(stub.requests.length, 2);
    });

    it("queued sends fail cleanly on redeploy; the one under way finishes", async () => {
      stub.script(reply("20110725160412,0\n1", 200, 300));
      const flow = flowWith({ url: stub.url, rate: 1 }, [send()]);
      await load(flow);
      const node = helper.getNode("s");
      const caught = collect("caught");
      const out = collect("out");
      for (let i = 0; i < 4; i++) node.receive({ payload: `m${i}` } as never);
      await sleep(100);
      // The redeploy stops the old nodes (and their Catch) before the new ones start, so the
      // errors of the cancelled sends are observed as the old node's error() calls.
      const errors = (node.error as unknown as { args: unknown[][] }).args;
      const before = errors.length;
      const sends = (node.send as unknown as { callCount: number }).callCount;
      await helper.setFlows(flow as never, "full", creds() as never);
      await sleep(400);
      assert.equal(
        (node.send as unknown as { callCount: number }).callCount - sends + out.msgs.length,
        1,
        "the send under way finished",
      );
      assert.equal(caught.msgs.length, 0);
      const ended = errors.slice(before).map((a) => String((a[0] as Error)?.message ?? a[0]));
      assert.equal(ended.length, 3, `three queued sends ended with an error: ${ended.join(" | ")}`);
      assert.ok(ended.every((r) => /not sent/.test(r)));
      assert.equal(stub.requests.length, 1);
    });
  });

  it("status: queued count, then the msgid; red ring with the code on failure", async () => {
    await load(flowWith({ url: sim.url }, [send()]));
    const node = helper.getNode("s");
    const out = collect("out");
    node.receive({ payload: "hi" } as never);
    const [m] = await out.next();
    const statusArgs = () =>
      (node.status as unknown as { args: Array<[Record<string, string>]> }).args.map((a) => a[0]);
    await waitFor(() => statusArgs().at(-1)?.fill === "green", 5000, "the green status");
    const statuses = statusArgs();
    assert.ok(statuses.some((s) => s.fill === "blue" && /queued/.test(s.text)));
    assert.deepEqual(statuses[statuses.length - 1], { fill: "green", shape: "dot", text: m.msgid });
    const caught = collect("caught");
    node.receive({ payload: "" } as never);
    await caught.next();
    await waitFor(() => statusArgs().at(-1)?.fill === "red", 5000, "the red status");
    const last = statusArgs().at(-1);
    assert.deepEqual(last, { fill: "red", shape: "ring", text: "EMPTY_MESSAGE" });
  });
});
