// Receive throughput on Redis Cluster and Redis Sentinel against the memory state (SPEC B6a,
// issue 25): report pushes (a distinct msgid each, so every push is claimed and emitted) to three
// sms-receive nodes of one embedded Node-RED, one per account: memory, a 3-master cluster, and a
// master + replica + 3 sentinels. The three run in turn, several rounds, in the same process and
// the same minutes, so the ratios compare like with like. The figure is what run.ts reports for
// one Redis server: pushes answered and emitted per second (a state falling behind shows there).
//
// benchModes() runs all of it in a child process (a Node-RED runtime of its own, never the
// caller's), and returns the figures; `node build/bench/modes.js` prints them.
import { execFile, spawn } from "node:child_process";
import { startRedisCluster } from "../test/support/redis-cluster";
import { startRedisSentinel } from "../test/support/redis-sentinel";
import { startRuntime } from "./runtime";

export interface ModesResult {
  receive_memory_emitted_per_s: number;
  receive_cluster_emitted_per_s: number;
  receive_sentinel_emitted_per_s: number;
  receive_cluster_vs_memory: number;
  receive_sentinel_vs_memory: number;
  /** times a Redis state went local during the runs (its figures then are not Redis figures) */
  receive_modes_went_local: number;
}

interface AutocannonResult {
  requests: { average: number };
  latency: { p99: number };
  duration: number;
  "2xx": number;
  non2xx: number;
  errors: number;
}

const RUNS = Number(process.env.BENCH_RUNS || 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface StateNode {
  state: { mode: string; onMode(fn: (mode: string) => void): () => void };
}

async function measure(log: (s: string) => void): Promise<ModesResult> {
  const [cluster, sentinel] = await Promise.all([startRedisCluster(), startRedisSentinel()]);
  const rt = await startRuntime();
  try {
    const account = { account: "demo", password: "demo", receiver: "rcv", receiverPassword: "push-secret" };
    const paths = { memory: "/sms/memory", cluster: "/sms/cluster", sentinel: "/sms/sentinel" } as const;
    type Kind = keyof typeof paths;
    const configs: Record<Kind, object> = {
      memory: {},
      cluster: { store: "redis", redisMode: "cluster", redisUrl: cluster.url, redisPrefix: "bench:" },
      sentinel: { store: "redis", redisMode: "sentinel", redisUrl: sentinel.url, redisPrefix: "bench:" },
    };
    const kinds = Object.keys(paths) as Kind[];
    const flow: object[] = [{ id: "t", type: "tab" }];
    for (const k of kinds) {
      flow.push(
        { id: `cfg-${k}`, type: "sms-config", ...configs[k], credentials: account },
        {
          id: `rx-${k}`,
          type: "sms-receive",
          z: "t",
          x: 1,
          y: 1,
          config: `cfg-${k}`,
          path: paths[k],
          wires: [[`out-${k}`], []],
        },
        { id: `out-${k}`, type: "junction", z: "t", x: 1, y: 1, wires: [] },
      );
    }
    await rt.deploy(flow);
    const states = (["cluster", "sentinel"] as const).map((k) => (rt.node(`cfg-${k}`) as unknown as StateNode).state);
    const until = Date.now() + 20_000;
    while (states.some((s) => s.mode !== "shared")) {
      if (Date.now() > until) throw new Error("modes bench: the Redis states did not connect");
      await new Promise((r) => setTimeout(r, 20));
    }
    let wentLocal = 0;
    const offModes = states.map((st) => st.onMode((mode) => void (mode === "local" && wentLocal++)));
    const emitted: Record<Kind, number> = { memory: 0, cluster: 0, sentinel: 0 };
    const offs = kinds.map((k) => rt.onReceive(`out-${k}`, () => emitted[k]++));

    const q = "receiver=rcv&pswd=push-secret&msgid=[<id>]&reportTime=1012241002&mobile=13900210021&status=DELIVRD";
    // The load generator runs in its own process, so it does not take CPU from the server's loop.
    const load = (path: string, duration: number) =>
      new Promise<AutocannonResult>((resolve, reject) => {
        const bin = require.resolve("autocannon/autocannon.js");
        execFile(
          process.execPath,
          [bin, "-c", "10", "-d", String(duration), "-I", "-j", `${rt.url}${path}?${q}`],
          { timeout: (duration + 30) * 1000, maxBuffer: 16 * 1024 * 1024 },
          (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout) as AutocannonResult)),
        );
      });
    // As run.ts: a run ends when every answered push has been emitted too.
    const run = async (k: Kind, duration: number) => {
      const before = emitted[k];
      const r = await load(paths[k], duration);
      const t0 = process.hrtime.bigint();
      const end = Date.now() + 60_000;
      while (emitted[k] - before < r["2xx"]) {
        if (Date.now() > end) throw new Error(`${paths[k]}: ${emitted[k] - before}/${r["2xx"]} emitted after 60 s`);
        await new Promise((res) => setImmediate(res));
      }
      const drain = Number(process.hrtime.bigint() - t0) / 1e9;
      return { r, emitted: r["2xx"] / (r.duration + drain) };
    };
    for (const k of kinds) await run(k, 2); // warm-up
    const runs: Record<Kind, Array<Awaited<ReturnType<typeof run>>>> = { memory: [], cluster: [], sentinel: [] };
    for (let i = 0; i < RUNS; i++) for (const k of kinds) runs[k].push(await run(k, 5));
    for (const off of [...offModes, ...offs]) off();
    await rt.deploy([]);
    const bad = kinds.flatMap((k) => runs[k]).reduce((n, x) => n + x.r.non2xx + x.r.errors, 0);
    if (bad) throw new Error(`modes bench: ${bad} non-2xx answers or errors`);
    const rate = (k: Kind) => median(runs[k].map((x) => x.emitted));
    const p99 = (k: Kind) => median(runs[k].map((x) => x.r.latency.p99));
    for (const k of kinds)
      log(`recv  ${k.padEnd(9)} ${rate(k).toFixed(0)} pushes answered and emitted /s  p99 ${p99(k)} ms`);
    const res: ModesResult = {
      receive_memory_emitted_per_s: Math.round(rate("memory")),
      receive_cluster_emitted_per_s: Math.round(rate("cluster")),
      receive_sentinel_emitted_per_s: Math.round(rate("sentinel")),
      receive_cluster_vs_memory: +(rate("cluster") / rate("memory")).toFixed(2),
      receive_sentinel_vs_memory: +(rate("sentinel") / rate("memory")).toFixed(2),
      receive_modes_went_local: wentLocal,
    };
    log(
      `recv  cluster ${res.receive_cluster_vs_memory}× memory, sentinel ${res.receive_sentinel_vs_memory}× memory (target ≥ 0.7 each)`,
    );
    if (wentLocal) log(`recv  WARNING: a Redis state went local ${wentLocal} time(s): the figures are mixed`);
    return res;
  } finally {
    await rt.stop().catch(() => undefined);
    await Promise.all([cluster.stop(), sentinel.stop()]);
  }
}

const RESULT = "MODES_RESULT ";

/** Runs the measurement in a child process; its lines go to `log`, its figures come back. */
export function benchModes(opts: { log: (s: string) => void }): Promise<ModesResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", __filename, "--child"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let buf = "";
    let result: ModesResult | null = null;
    child.stdout.on("data", (c: Buffer) => {
      buf += c.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const lineText = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (lineText.startsWith(RESULT)) result = JSON.parse(lineText.slice(RESULT.length)) as ModesResult;
        else if (lineText) opts.log(lineText);
      }
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      result ? resolve(result) : reject(new Error(`modes bench exited with ${code} and no figures`)),
    );
  });
}

if (require.main === module) {
  const child = process.argv.includes("--child");
  const out = (s: string) => process.stdout.write(s + "\n");
  (child ? measure(out) : benchModes({ log: out }))
    .then((r) => {
      out(child ? RESULT + JSON.stringify(r) : JSON.stringify(r, null, 2));
      // Node-RED leaves timers behind after stop: the figures are out, the process is done.
      process.exit(0);
    })
    .catch((e: unknown) => {
      process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
      process.exit(1);
    });
}
