// How long one sms-send input holds the event loop (SPEC B9a: a large send must not stall
// Node-RED; > 50 ms is a stall). A measurement, not a test (speed targets live in benchmarks):
//   npm run build && npm run build:test && node --expose-gc build/test/fuzz/send-stall.js
// (STALL_RUNS: runs per case, median shown, default 3; STALL_ONLY: a pattern of case names.)
// sms-send runs in a real Node-RED (the test helper) in this process; the simulator runs in a
// child process, so that its own parsing of 50,000-number bodies is not counted. A 1 ms interval
// timer notes the longest gap between its ticks from the input until its last output or Catch.
import { fork, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { startSimulator } from "../../src/simulator/simulator";
import { collect, flowWith, helper, load, PASSWORD } from "../support/nr";

interface Case {
  name: string;
  template?: string;
  msg: () => Record<string, unknown>;
  /** outputs, or 0 for one Catch */
  outputs: number;
}

const SIG = "【朗宇信息】";
const number = (i: number) => `1${3 + (i % 7)}${String(i).padStart(9, "0")}`;
const NAMES = ["王先生", "李女士", "张先生"];
const recipients = (n: number, names = NAMES) =>
  Array.from({ length: n }, (_, i) => ({ mobile: number(i), name: names[i % names.length] }));

const CASES: Case[] = [
  {
    name: "personalised 50,000 recipients, 3 texts",
    template: "{{recipient.name}}您好，{{payload.notice}}",
    msg: () => ({ payload: { notice: "明天停水" }, mobile: recipients(50_000) }),
    outputs: 3,
  },
  {
    name: "personalised 100,000 recipients, 3 texts",
    template: "{{recipient.name}}您好，{{payload.notice}}",
    msg: () => ({ payload: { notice: "明天停水" }, mobile: recipients(100_000) }),
    outputs: 3,
  },
  {
    name: "personalised 5,000 recipients, a text each",
    template: "{{recipient.name}}您好，{{payload.notice}}",
    msg: () => ({
      payload: { notice: "明天停水" },
      mobile: recipients(
        5_000,
        Array.from({ length: 5_000 }, (_, i) => `用户${i}`),
      ),
    }),
    outputs: 5_000,
  },
  {
    name: "plain 100,000 numbers in one string",
    msg: () => ({ payload: "明天停水", mobile: Array.from({ length: 100_000 }, (_, i) => number(i)).join(",") }),
    outputs: 2,
  },
  {
    name: "50,000 recipients, a template of 100,000 characters each (refused)",
    template: "{{recipient.name}}：{{payload.notice}}",
    msg: () => ({ payload: { notice: "停水".repeat(50_000) }, mobile: recipients(50_000) }),
    outputs: 0,
  },
];

async function simulator(): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(__filename, ["simulator"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const url = await new Promise<string>((resolve, reject) => {
    child.once("message", (m) => resolve(String(m)));
    child.once("exit", (code) => reject(new Error(`simulator exited (${code})`)));
  });
  return { url, child };
}

async function measure(url: string, c: Case): Promise<{ maxBlockMs: number; totalMs: number }> {
  const send = { id: "s", type: "sms-send", config: "cfg", template: c.template ?? "", wires: [["out"]] };
  await load(flowWith({ url, signature: SIG, rate: 0, timeout: 60_000 }, [send]));
  const out = collect("out");
  const caught = collect("caught");
  const msg = c.msg();
  global.gc?.();
  let last = performance.now();
  let maxBlockMs = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    maxBlockMs = Math.max(maxBlockMs, now - last);
    last = now;
  }, 1);
  const t0 = performance.now();
  last = t0;
  helper.getNode("s").receive(msg as never);
  if (c.outputs) await out.next(c.outputs, 300_000);
  else await caught.next(1, 300_000);
  const totalMs = performance.now() - t0;
  clearInterval(probe);
  // The gap still open when the last output came counts too.
  maxBlockMs = Math.max(maxBlockMs, performance.now() - last);
  if (caught.msgs.length && c.outputs) throw new Error(`${c.name}: failed: ${JSON.stringify(caught.msgs[0].payload)}`);
  await helper.unload();
  return { maxBlockMs: +maxBlockMs.toFixed(1), totalMs: Math.round(totalMs) };
}

async function main(): Promise<void> {
  if (process.argv[2] === "simulator") {
    const sim = await startSimulator({
      port: 0,
      accounts: [{ account: "demo", password: PASSWORD, products: { "1001": 1e12 } }],
      historySize: 10,
    });
    process.send!(sim.url);
    process.on("disconnect", () => void sim.close().then(() => process.exit(0)));
    return;
  }
  const { url, child } = await simulator();
  try {
    const runs = Number(process.env.STALL_RUNS ?? 3);
    // STALL_ONLY: a pattern of the cases to run (code from before issue 22 dies of the last one).
    const only = new RegExp(process.env.STALL_ONLY ?? "");
    for (const c of CASES.filter((k) => only.test(k.name))) {
      const results = [];
      for (let i = 0; i < runs; i++) results.push(await measure(url, c));
      const blocks = results.map((r) => r.maxBlockMs).sort((a, b) => a - b);
      const totals = results.map((r) => r.totalMs).sort((a, b) => a - b);
      process.stdout.write(
        `${c.name}: longest block ${blocks[Math.floor(runs / 2)]} ms (runs: ${blocks.join(", ")}), ` +
          `total ${totals[Math.floor(runs / 2)]} ms\n`,
      );
    }
  } finally {
    child.disconnect();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${String((e as Error)?.stack ?? e)}\n`);
  process.exit(1);
});
