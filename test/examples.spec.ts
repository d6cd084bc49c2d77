import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startSimulator, type Simulator } from "../src/simulator/simulator";
import { ALL_NODES, coreNode, helper, sleep } from "./support/nr";

const dir = path.join(__dirname, "../../examples");
const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json"));

const CORE = [
  "common/20-inject.js",
  "common/21-debug.js",
  "common/90-comment.js",
  "function/15-change.js",
  "function/10-switch.js",
  "function/10-function.js",
  "network/21-httprequest.js",
].map(coreNode);

type Flow = Array<Record<string, unknown> & { id: string; type: string }>;

function read(f: string): Flow {
  return JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as Flow;
}

/** Loads an example as a user imports it, its account pointed at the simulator. */
async function loadExample(f: string, simUrl: string): Promise<Flow> {
  const flow = read(f);
  const cfg = flow.find((n) => n.type === "sms-config")!;
  cfg.url = simUrl;
  await helper.load(
    [...ALL_NODES, ...CORE] as never,
    flow as never,
    { [cfg.id]: { account: "demo", password: "demo" } } as never,
  );
  return flow;
}

describe("examples/", () => {
  let sim: Simulator;
  beforeEach(async () => {
    sim = await startSimulator({ reportDelayMs: 10_000 });
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
  });

  it("every node type of the package appears in an example (Flow Library N02)", () => {
    const types = new Set(files.flatMap((f) => read(f).map((n) => n.type)));
    for (const t of ["sms-send", "sms-balance", "sms-receive"]) assert.ok(types.has(t), t);
  });

  for (const f of files) {
    it(`"${f}" starts in Node-RED with a comment node and no credentials inside`, async () => {
      const flow = await loadExample(f, sim.url);
      assert.ok(
        flow.some((n) => n.type === "comment"),
        "has a comment node",
      );
      assert.ok(!JSON.stringify(flow).includes('"credentials"'));
      for (const n of flow.filter((n) => n.type !== "tab"))
        assert.ok(helper.getNode(n.id), `${n.type} ${n.id} started`);
    });
  }

  it('"01 - Send an alert" sends the alert text through the simulator', async () => {
    const flow = await loadExample("01 - Send an alert.json", sim.url);
    const inject = flow.find((n) => n.type === "inject")!;
    helper.getNode(inject.id).receive({} as never);
    for (let i = 0; i < 100 && sim.requests.length === 0; i++) await sleep(20);
    assert.equal(sim.requests.length, 1);
    assert.equal(sim.requests[0].code, 0);
    assert.equal(sim.requests[0].params.msg, "【朗宇信息】Alarm boiler-1: temperature 85°C");
  });
});
