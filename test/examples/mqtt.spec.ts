// Example 11 end to end: a real MQTT broker (Debian's mosquitto on a free 127.0.0.1 port), a
// sensor publishing over its own MQTT connection, Node-RED's core MQTT nodes in the test helper's
// Node-RED, the account pointed at the simulator. Time: the account state is leased here first
// with a FakeClock and the guard's clock hook is set to it, so a 30-minute window passes at once.
import assert from "node:assert/strict";
import guardNode = require("../../src/nodes/sms-guard");
import { systemClock } from "../../src/lib/clock";
import { closeAllStates, leaseState, type StateLease } from "../../src/lib/state/registry";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { startMosquitto, type Mosquitto, type Sensor } from "../support/mosquitto";
import { helper, sleep } from "../support/nr";
import { deployExample, readExample, sendsTo, type ExampleRun, type FlowNode } from "../support/example";
import { FakeClock, waitFor } from "../support/stub";

const FILE = "11 - MQTT sensor over a threshold to guard to SMS · MQTT 传感器超限经收敛发短信.json";

type Msg = Record<string, unknown> & { guard?: Record<string, unknown> };

const TOPIC = (sensor: string) => `sensors/${sensor}/temperature`;

describe('examples: "11 - MQTT sensor over a threshold to guard to SMS" end to end', function () {
  this.timeout(30_000);
  let broker: Mosquitto;
  let sensor: Sensor;
  let sim: Simulator;
  let clock: FakeClock;
  let lease: StateLease;
  let flow: FlowNode[];
  let run: ExampleRun;
  let readings: Msg[];
  let toSend: Msg[];
  let suppressed: Msg[];
  let failed: Msg[];

  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  beforeEach(async () => {
    sim = await startSimulator({ reportDelayMs: 10_000 });
    // The account's state, leased first with the fake clock: sms-config gets this same state.
    await closeAllStates();
    clock = new FakeClock();
    guardNode.clock = clock;
    lease = leaseState({ url: sim.url, account: "demo", store: "memory", clock });

    flow = readExample(FILE);
    flow.find((n) => n.type === "sms-config")!.url = sim.url;
    // The broker the user sets: here the test's mosquitto.
    const mqttBroker = flow.find((n) => n.type === "mqtt-broker")!;
    Object.assign(mqttBroker, { broker: "127.0.0.1", port: String(broker.port) });
    run = await deployExample(flow, { core: ["network/10-mqtt.js"] });
    readings = received("reading");
    toSend = received("send SMS");
    suppressed = received("suppressed");
    failed = received("failed");

    sensor = await broker.sensor();
    // Subscribed once a probe reading (under the threshold) comes through the broker to the flow.
    const until = Date.now() + 10_000;
    while (!readings.length) {
      if (Date.now() > until) throw new Error("the flow's mqtt in did not receive from the broker within 10 s");
      sensor.publish(TOPIC("probe"), "20");
      await sleep(50);
    }
  });
  afterEach(async () => {
    await sensor?.close();
    await helper.unload();
    lease.release();
    guardNode.clock = systemClock;
    await sim.close();
  });

  // A node is named "English · 中文"; the tests name it by its English part.
  const full = (en: string) => String(flow.find((n) => String(n.name ?? "").split(" · ")[0] === en)?.name ?? en);
  const received = (name: string): Msg[] => run.received(full(name));
  const sends = () => sendsTo(sim.requests);
  const texts = () => sends().map((r) => r.params.msg);

  /** Publishes readings and waits until the flow took them all and the guard decided each one over 80. */
  async function publish(name: string, values: Array<number | string>): Promise<void> {
    // Counted by topic: a late probe reading is not one of these.
    const taken = () => readings.filter((m) => m.topic === TOPIC(name)).length;
    const before = { readings: taken(), decided: toSend.length + suppressed.length };
    for (const v of values) sensor.publish(TOPIC(name), String(v));
    await waitFor(() => taken() === before.readings + values.length, 8000, `${values.length} readings`);
    const over = values.filter(
      (v) => Number(typeof v === "string" && v.startsWith("{") ? JSON.parse(v).temperature : v) > 80,
    );
    const decided = () => toSend.length + suppressed.length - before.decided;
    await waitFor(() => decided() === over.length, 8000, `the guard's decision on ${over.length} readings over 80`);
  }

  it("a flapping temperature: one SMS per sensor and 30-minute window, not one per reading", async () => {
    // boiler-1 crosses 80 °C five times in a row.
    await publish("boiler-1", [79, 81, 78, 82.5, 79.5, 85.2, 80, 90, 77, 81]);
    await waitFor(() => sends().length === 1, 8000, "one SMS");
    assert.equal(texts()[0], "【朗宇信息】Alarm boiler-1: temperature 81°C");
    assert.equal(sends()[0].params.mobile, "13800138000");
    assert.equal(suppressed.length, 4);
    for (const m of suppressed) assert.deepEqual(m.guard!.reasons, { "13800138000": "window" });
    assert.deepEqual(
      suppressed.map((m) => m.topic),
      Array(4).fill(TOPIC("boiler-1")),
    );

    // Another sensor is another alert: its own SMS, then its own window.
    await publish("boiler-2", [95, 96]);
    await waitFor(() => sends().length === 2, 8000, "boiler-2's SMS");
    assert.equal(texts()[1], "【朗宇信息】Alarm boiler-2: temperature 95°C");

    // Within the window, more flapping costs nothing; readings under the threshold never reach the guard.
    clock.advance(29 * 60_000);
    await publish("boiler-1", [83, 70, 84, 80]);
    await sleep(200); // nothing more arrives
    assert.equal(sends().length, 2);

    // The window is over: the next reading over 80 is one SMS again, and its flapping is held back again.
    clock.advance(60_000);
    await publish("boiler-1", [79, 88.4, 77, 86, 91]);
    await waitFor(() => sends().length === 3, 8000, "the next window's SMS");
    assert.equal(texts()[2], "【朗宇信息】Alarm boiler-1: temperature 88.4°C");
    await sleep(200); // nothing more arrives
    assert.equal(sends().length, 3);
    assert.deepEqual(failed, []);
  });

  it("readings at or under the threshold, or not numbers, send nothing", async () => {
    await publish("boiler-1", [80, 79.9, -5, "NaN", "hello", '{"humidity":40}']);
    await sleep(200); // nothing arrives
    assert.equal(sends().length, 0);
    assert.equal(suppressed.length, 0);
    assert.deepEqual(failed, []);
  });

  it('JSON readings with a "temperature" field are read as the comment says', async () => {
    await publish("boiler-3", ['{"temperature":85.2,"humidity":40}', '{"temperature":79}', '{"temperature":86}']);
    await waitFor(() => sends().length === 1, 8000, "the SMS");
    assert.equal(texts()[0], "【朗宇信息】Alarm boiler-3: temperature 85.2°C");
    assert.equal(suppressed.length, 1);
  });

  it("the comment's mosquitto_pub command, run a few times: the SMS the comment shows, once", async () => {
    const info = flow.find((n) => n.type === "comment")!.info as string;
    const [, topic, value] = /`mosquitto_pub -h 127\.0\.0\.1 -t (\S+) -m (\S+)`/.exec(info)!;
    assert.equal(topic, TOPIC("boiler-1"));
    await publish("boiler-1", [value, value, value]);
    await waitFor(() => sends().length === 1, 8000, "the SMS");
    assert.equal(texts()[0], "【朗宇信息】Alarm boiler-1: temperature 85.2°C");
    assert.ok(info.includes("`Alarm boiler-1: temperature 85.2°C`"), "the comment shows it");
    await sleep(200); // nothing more arrives
    assert.equal(sends().length, 1);
  });
});
