// The offline steps of an example whose flow listens on a path of its own (acknowledge by reply:
// /sms/ack) against the running `npm start` demo, whose simulator pushes inbound SMS to the demo's
// /sms/demo: one curl to the simulator's /sim/mo with `moUrl` reaches the example's path, with the
// demo's receiver credentials, and nothing reaches the demo's path.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { captured, collect, creds, flowWith, helper, load, type FlowNode } from "../support/nr";

// What scripts/demo.js gives the simulator and the demo's account.
const RECEIVER = { receiver: "demo-receiver", receiverPassword: "demo-push-secret" };

describe("examples: an inbound SMS to an example's own path, against the npm start demo", () => {
  let sim: Simulator | undefined;
  let server: http.Server;
  let base: string;

  beforeEach(async () => {
    const receive = (id: string, path: string, to: string): FlowNode => ({
      id,
      type: "sms-receive",
      config: "cfg",
      path,
      wires: [[], [to]],
    });
    await load(
      flowWith({ url: "http://127.0.0.1:9" }, [
        receive("demo", "/sms/demo", "out"),
        receive("ack", "/sms/ack", "out2"),
      ]),
      creds(RECEIVER),
    );
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await helper.unload();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await sim?.close();
  });

  const mo = (body: Record<string, unknown>) =>
    fetch(`${sim!.url}/sim/mo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("with moUrl the reply reaches the example's path; the demo's own path gets nothing", async () => {
    sim = await startSimulator({ moUrl: `${base}/sms/demo`, reportDelayMs: 20, ...RECEIVER });
    const demo = collect("out");
    const ack = collect("out2");
    const res = await mo({ mobile: "13800138000", text: "ACK", moUrl: `${base}/sms/ack` });
    assert.equal(res.status, 200);
    const [m] = await ack.next();
    assert.deepEqual(
      [m.topic, (m.payload as { mobile: string }).mobile, (m.payload as { text: string }).text],
      ["mo", "13800138000", "ACK"],
    );
    await sim.idle();
    assert.equal(demo.msgs.length, 0);
    // Without it, the simulator's own MO URL as before (the demo's 'simulate inbound long SMS').
    assert.equal((await mo({ mobile: "13800138000", text: "hello" })).status, 200);
    await demo.next();
    assert.equal(ack.msgs.length, 1);
  });

  it("a simulator started without --mo-url takes the reply too; a moUrl that is no http(s) URL is a 400", async () => {
    sim = await startSimulator({ reportDelayMs: 20, ...RECEIVER });
    assert.equal((await mo({ mobile: "13800138000", text: "1" })).status, 409, "no MO URL at all");
    const ack = collect("out2");
    assert.equal((await mo({ mobile: "13800138000", text: "1", moUrl: `${base}/sms/ack` })).status, 200);
    assert.equal(((await ack.next())[0].payload as { text: string }).text, "1");
    const bad = await mo({ mobile: "13800138000", text: "1", moUrl: "ftp://x" });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /moUrl/);
  });
});
