// Example 12 end to end: the alert repeats until the on-call number texts back 1 or ACK. Replies come
// as the platform sends them: the simulator's inbound SMS (POST /sim/mo) pushed over real HTTP to the
// flow's sms-receive path on Node-RED's HTTP node server. Imported as is, except what a test may set
// on import: the account points at the simulator, the tab's REPEAT_MINUTES is 0.005 (300 ms) and the
// 'every 10 s' inject looks every 0.1 s.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { captured, helper, sleep } from "../support/nr";
import {
  deployExample,
  nodeNamed,
  readExample,
  sendsTo,
  type ExampleRun,
  type FlowNode,
  type Msg,
} from "../support/example";
import { waitFor } from "../support/stub";

const FILE = "12 - Acknowledge an alert by reply.json";

const ONCALL = "13800138000";
const REPEAT_MS = 300;
const FIRST = "【朗宇信息】Alarm boiler-1: temperature 95°C. Reply 1 or ACK to acknowledge.";
const repeat = (n: number) =>
  `【朗宇信息】Repeat ${n}: Alarm boiler-1: temperature 95°C. Reply 1 or ACK to acknowledge.`;

describe('examples: "12 - Acknowledge an alert by reply" end to end', function () {
  this.timeout(30_000);
  let sim: Simulator;
  let server: http.Server;
  let moUrl: string;
  let flow: FlowNode[];
  let run: ExampleRun;
  let toGuard: Msg[];
  let other: Msg[];
  let failed: Msg[];

  /** Deploys the example; `env` and `creds` are what a user sets on the tab and in the account. */
  async function start(env: Record<string, string> = {}, receiver?: { receiver: string; receiverPassword: string }) {
    sim = await startSimulator({ reportDelayMs: 10_000, ...receiver });
    flow = readExample(FILE);
    flow.find((n) => n.type === "sms-config")!.url = sim.url;
    const tab = flow.find((n) => n.type === "tab")!;
    const vars = tab.env as Array<{ name: string; value: string }>;
    for (const [name, value] of Object.entries({ REPEAT_MINUTES: String(REPEAT_MS / 60_000), ...env }))
      vars.find((v) => v.name === name)!.value = value;
    named("every 10 s").repeat = "0.1";
    run = await deployExample(flow, { credentials: receiver });
    // Node-RED's HTTP node server on a real port, where the simulator pushes inbound SMS.
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    moUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${named("replies").path as string}`;
    sim.moUrl = moUrl;
    toGuard = received("daily cap");
    other = received("other replies");
    failed = received("failed");
  }
  afterEach(async () => {
    await helper.unload();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await sim?.close();
  });

  const named = (name: string) => nodeNamed(flow, name);
  const received = (name: string): Msg[] => run.received(name);
  const sends = () => sendsTo(sim.requests);
  const texts = () => sends().map((r) => r.params.msg);
  const alertTexts = () => texts().filter((t) => !t.includes("Acknowledged"));
  const pressAlert = () => helper.getNode(named("alert: boiler-1 95°C").id).receive({} as never);
  /** An inbound SMS as the platform pushes it (the simulator's admin route). */
  async function reply(mobile: string, text: string): Promise<void> {
    const r = await fetch(`${sim.url}/sim/mo`, { method: "POST", body: JSON.stringify({ mobile, text }) });
    assert.equal(r.status, 200, await r.text());
  }
  /** After the ACK: nothing more reaches the guard, and the simulator got exactly what did. */
  async function stopped(): Promise<void> {
    const count = toGuard.length;
    await sleep(4 * REPEAT_MS); // a negative check: no repeat comes any more
    assert.equal(toGuard.length, count, "no repeat after the ACK");
    await waitFor(() => alertTexts().length === count, 8000, `${count} alert SMS at the simulator`);
  }

  it("the alert repeats every REPEAT_MINUTES until the on-call number texts back ACK, who gets a confirmation", async () => {
    await start();
    const t0 = Date.now();
    pressAlert();
    await waitFor(() => sends().length >= 3, 10_000, "the alert and two repeats");
    // A repeat never comes before its interval: two of them take two intervals at least.
    assert.ok(Date.now() - t0 >= 2 * REPEAT_MS, `3 SMS after ${Date.now() - t0} ms`);
    assert.deepEqual(texts().slice(0, 3), [FIRST, repeat(2), repeat(3)]);
    for (const r of sends()) assert.equal(r.params.mobile, ONCALL);

    await reply(ONCALL, "ACK");
    await waitFor(() => texts().some((t) => t.includes("Acknowledged")), 8000, "the confirmation");
    const confirmation = sends().find((r) => r.params.msg.includes("Acknowledged"))!;
    assert.equal(confirmation.params.msg, "【朗宇信息】Acknowledged, no more repeats: boiler-1");
    assert.equal(confirmation.params.mobile, ONCALL);
    await stopped();
    assert.deepEqual(failed, []);
  });

  it("other replies and an ACK from another number change nothing; 1 from the on-call number (as +86, full-width) stops it", async () => {
    await start();
    pressAlert();
    await waitFor(() => sends().length === 1, 8000, "the alert");
    await reply(ONCALL, "hello");
    await reply("13900139000", "ACK");
    await reply(ONCALL, "ACK please");
    await waitFor(() => other.length === 3, 8000, "three other replies");
    assert.deepEqual(other.map((m) => [(m.payload as Msg).mobile, (m.payload as Msg).text]).sort(), [
      ["13800138000", "ACK please"],
      ["13800138000", "hello"],
      ["13900139000", "ACK"],
    ]);
    // Still open: it repeats after those replies.
    const n = sends().length;
    await waitFor(() => sends().length > n, 8000, "a repeat after the other replies");

    await reply("+8613800138000", " １ ");
    await waitFor(() => texts().some((t) => t.includes("Acknowledged")), 8000, "the confirmation");
    await stopped();
    assert.equal(texts().filter((t) => t.includes("Acknowledged")).length, 1);
  });

  it("the same alert again while open sends nothing more; a second alert is its own; one ACK closes both", async () => {
    await start({ REPEAT_MINUTES: "10" }); // no repeat within this test
    pressAlert();
    pressAlert();
    await waitFor(() => sends().length === 1, 8000, "the alert");
    const alert = { topic: "pump-2", payload: "Alarm pump-2: pressure low" };
    helper.getNode(named("open the alert").id).receive(alert as never);
    await waitFor(() => sends().length === 2, 8000, "the second alert");
    await sleep(200); // the second press sent nothing
    assert.deepEqual(texts(), [FIRST, "【朗宇信息】Alarm pump-2: pressure low. Reply 1 or ACK to acknowledge."]);

    await reply(ONCALL, "ack.");
    await waitFor(() => sends().length === 3, 8000, "the confirmation");
    assert.equal(texts()[2], "【朗宇信息】Acknowledged, no more repeats: boiler-1, pump-2");
    // Closed: the same alert again is new, and goes out at once.
    pressAlert();
    await waitFor(() => sends().length === 4, 8000, "the alert, open again");
    assert.equal(texts()[3], FIRST);
  });

  it("several on-call numbers in ONCALL_MOBILE: the alert goes to each, and a reply from any of them acknowledges", async () => {
    await start({ ONCALL_MOBILE: "13800138000, 13900139000", REPEAT_MINUTES: "10" });
    pressAlert();
    await waitFor(() => sends().length === 1, 8000, "the alert");
    assert.equal(sends()[0].params.mobile, "13800138000,13900139000");
    await reply("13900139000", "1");
    await waitFor(() => sends().length === 2, 8000, "the confirmation");
    assert.equal(sends()[1].params.msg, "【朗宇信息】Acknowledged, no more repeats: boiler-1");
    assert.equal(sends()[1].params.mobile, "13900139000");
  });

  it("an ACK with no open alert costs no SMS: it goes to 'other replies'", async () => {
    await start();
    await reply(ONCALL, "ACK");
    await waitFor(() => other.length === 1, 8000, "the reply in 'other replies'");
    await sleep(200); // nothing is sent
    assert.equal(sends().length, 0);
  });

  it("the comment's simulator command acknowledges the alert", async () => {
    await start();
    const info = named(
      "Acknowledge by reply: an alert repeats until the on-call number texts back 1 or ACK · 回复确认：告警重复发送，直到值班号码回复 1 或 ACK",
    ).info as string;
    const [, moUrl] = /`npx sms-simulator --mo-url (\S+)`/.exec(info)!;
    assert.equal(new URL(moUrl).pathname, named("replies").path);
    const [, simPath, body] = /`curl -X POST http:\/\/127\.0\.0\.1:18080(\S+) -d '([^']+)'`/.exec(info)!;
    pressAlert();
    await waitFor(() => sends().length === 2, 8000, "a repeat");
    assert.equal((await fetch(sim.url + simPath, { method: "POST", body })).status, 200);
    await waitFor(() => texts().some((t) => t.includes("Acknowledged")), 8000, "the confirmation");
    await stopped();
  });

  it("with receiver credentials in the account, a forged ACK (no or wrong credentials) is refused and the alert repeats on", async () => {
    await start({}, { receiver: "platform", receiverPassword: "Push-Secret-7q" });
    pressAlert();
    await waitFor(() => sends().length === 1, 8000, "the alert");
    const url = moUrl;
    const forged = new URLSearchParams({ mobile: ONCALL, msg: "ACK", destcode: "1065751600001", moTime: "2501151200" });
    assert.equal((await fetch(`${url}?${forged}`)).status, 401);
    forged.set("receiver", "platform");
    forged.set("pswd", "guessed");
    assert.equal((await fetch(`${url}?${forged}`)).status, 401);
    const n = sends().length;
    await waitFor(() => sends().length > n, 8000, "a repeat after the forged ACKs");
    assert.ok(!texts().some((t) => t.includes("Acknowledged")));
    assert.equal(other.length, 0, "the forged pushes emitted nothing");

    await reply(ONCALL, "ACK"); // the platform's push carries the credentials
    await waitFor(() => texts().some((t) => t.includes("Acknowledged")), 8000, "the confirmation");
    await stopped();
  });

  it("REPEAT_MINUTES that is not a number above 0 is an error in 'failed', and nothing is sent", async () => {
    await start({ REPEAT_MINUTES: "0" });
    pressAlert();
    await waitFor(() => failed.length === 1, 8000, "the error");
    assert.match(String((failed[0].error as Msg).message), /REPEAT_MINUTES must be a number of minutes above 0/);
    await sleep(300); // nothing is sent
    assert.equal(sends().length, 0);
  });
});
