// sms-receive against what arrives from the internet (SPEC B4, B4a, B11 replies): every inbound SMS
// reaches the account's inbox once; pushes built to stall, corrupt, repeat or exhaust; the
// credential rule when only one of the two is configured. Real HTTP on Node-RED's httpNode.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
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
import { collectGarbage, waitFor } from "../support/stub";

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
});

const AUTH_CREDS = { receiver: "rcv", receiverPassword: RECEIVER_PASSWORD };

/** The longest event-loop delay (ms) while `fn` runs, from a clean heap (SPEC B4a: never over 50). */
async function loopDelayDuring<T>(fn: () => Promise<T>): Promise<{ result: T; maxMs: number }> {
  collectGarbage();
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  try {
    const result = await fn();
    // One more turn of the loop, so a stall right at the end is sampled too.
    await sleep(20);
    return { result, maxMs: h.max / 1e6 };
  } finally {
    h.disable();
  }
}
