// A real Redis Sentinel setup for a test: a master, a replica and three sentinels (quorum 2) on
// free 127.0.0.1 ports, each in its own temp dir (a sentinel rewrites its config file), stopped by
// their pids. Failovers are real: the master SIGKILLed (the sentinels see it down after
// `down-after-milliseconds` 1000 and elect a leader), or asked for (`SENTINEL FAILOVER`).
//
// Pitfalls it deals with (see shared/background/state-and-brokers.md): a sentinel learns the
// replica from the master's INFO, about every 10 s, and the other sentinels from hello messages
// every 2 s; a failover asked before that does nothing (NOGOODSLAVE) and a killed master with
// sentinels that do not know each other is never failed over. `ready()` waits for both.
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { halt, rawCommand, removeDir, spawnRedis, tempDir, type Reply } from "./redis";
import { waitFor } from "./stub";

export interface SentinelDataNode {
  readonly port: number;
  readonly pid: number | null;
  readonly running: boolean;
  call(...args: string[]): Promise<Reply>;
}

export interface RedisSentinelSetup {
  /** the master set's name (`mymaster` unless given) */
  readonly name: string;
  /** the sentinels' list as SPEC B6a writes it: redis://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3 */
  readonly url: string;
  readonly sentinelPorts: readonly number[];
  /** both data nodes (their roles change with failovers) */
  readonly nodes: readonly SentinelDataNode[];
  /** the node every sentinel names as master now (throws if they disagree) */
  master(): Promise<SentinelDataNode>;
  /** one command to a sentinel (with the sentinel password when set) */
  sentinel(i: number, ...args: string[]): Promise<Reply>;
  /**
   * Waits until every sentinel agrees on the master, knows the other two sentinels, and lists a
   * connected replica with its link up (so a failover can happen). Bounded by `ms` (default 30 s).
   */
  ready(ms?: number): Promise<void>;
  /** SIGKILLs the master; returns it (restart it with `restartNode`) */
  killMaster(): Promise<SentinelDataNode>;
  /** `SENTINEL FAILOVER name` on a sentinel, retried while it answers NOGOODSLAVE/INPROG (bounded) */
  failover(): Promise<void>;
  /** waits until every sentinel names a master other than `old` and that node says role:master */
  waitNewMaster(old: SentinelDataNode, ms?: number): Promise<SentinelDataNode>;
  /** starts a killed node again on its port (the sentinels make it a replica of the new master) */
  restartNode(n: SentinelDataNode): Promise<void>;
  stop(): Promise<void>;
}

interface DataNode extends SentinelDataNode {
  child: ChildProcess | null;
  dir: string;
  start(replicaOf?: number): Promise<void>;
}

export async function startRedisSentinel(
  opts: { name?: string; password?: string; sentinelPassword?: string } = {},
): Promise<RedisSentinelSetup> {
  const name = opts.name ?? "mymaster";
  const data: DataNode[] = [];
  const sentinels: Array<{ port: number; dir: string; child: ChildProcess | null }> = [];
  const stop = async () => {
    await Promise.all([...data, ...sentinels].map((n) => halt(n.child)));
    for (const n of [...data, ...sentinels]) removeDir(n.dir);
  };

  const dataNode = (): DataNode => {
    const dir = tempDir("sentinel-data");
    const node: DataNode = {
      port: 0,
      dir,
      child: null,
      get pid() {
        const c = this.child;
        return c && c.exitCode === null && c.signalCode === null ? (c.pid ?? null) : null;
      },
      get running() {
        return this.pid !== null;
      },
      call: (...a) => rawCommand(node.port, a, { password: opts.password, timeoutMs: 5000 }).then((r) => r.value),
      start: async (replicaOf?: number) => {
        const s = await spawnRedis({
          port: node.port || undefined,
          password: opts.password,
          args: (p) => {
            const a = ["--port", String(p), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"];
            // Either node may be the master a replica syncs from: no 5 s wait before the sync.
            a.push("--daemonize", "no", "--loglevel", "warning", "--repl-diskless-sync-delay", "0");
            if (opts.password) a.push("--requirepass", opts.password, "--masterauth", opts.password);
            if (replicaOf) a.push("--replicaof", "127.0.0.1", String(replicaOf));
            return a;
          },
        });
        node.child = s.child;
        (node as { port: number }).port = s.port;
      },
    };
    data.push(node);
    return node;
  };

  const sentinelCall = (i: number, ...a: string[]) =>
    rawCommand(sentinels[i].port, a, { password: opts.sentinelPassword, timeoutMs: 5000 }).then((r) => r.value);

  /** the master address every sentinel gives now (null when they disagree or one has none) */
  const agreedMaster = async (): Promise<DataNode | null> => {
    let port: string | null = null;
    for (let i = 0; i < sentinels.length; i++) {
      const r = (await sentinelCall(i, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)) as string[] | null;
      if (!r) return null;
      if (port !== null && r[1] !== port) return null;
      port = r[1];
    }
    return data.find((n) => String(n.port) === port) ?? null;
  };

  /** flat [k, v, k, v] arrays (SENTINEL REPLICAS, SENTINEL SENTINELS) as maps */
  const records = (r: Reply): Array<Map<string, string>> =>
    ((r ?? []) as string[][]).map((flat) => {
      const m = new Map<string, string>();
      for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i], flat[i + 1]);
      return m;
    });

  try {
    const master = dataNode();
    await master.start();
    const replica = dataNode();
    await replica.start(master.port);
    for (let i = 0; i < 3; i++) {
      const dir = tempDir("sentinel");
      const conf = path.join(dir, "sentinel.conf");
      const s = await spawnRedis({
        password: opts.sentinelPassword,
        cwd: dir,
        args: (p) => {
          const lines = [
            `port ${p}`,
            "bind 127.0.0.1",
            "daemonize no",
            `dir ${dir}`,
            "loglevel warning",
            `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
            `sentinel down-after-milliseconds ${name} 1000`,
            `sentinel failover-timeout ${name} 5000`,
            `sentinel parallel-syncs ${name} 1`,
          ];
          if (opts.password) lines.push(`sentinel auth-pass ${name} ${opts.password}`);
          // Sentinels talk to each other too: with a password they need it for one another.
          if (opts.sentinelPassword)
            lines.push(`requirepass ${opts.sentinelPassword}`, `sentinel sentinel-pass ${opts.sentinelPassword}`);
          fs.writeFileSync(conf, lines.join("\n") + "\n");
          return [conf, "--sentinel"];
        },
      });
      sentinels.push({ port: s.port, dir, child: s.child });
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const setup: RedisSentinelSetup = {
    name,
    url: "redis://" + sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
    sentinelPorts: sentinels.map((s) => s.port),
    nodes: data,
    master: async () => {
      const m = await agreedMaster();
      if (!m) throw new Error("the sentinels do not agree on a master");
      return m;
    },
    sentinel: sentinelCall,
    ready: async (ms = 30_000) => {
      await waitFor(
        async () => {
          const m = await agreedMaster();
          if (!m || !m.running) return false;
          for (let i = 0; i < sentinels.length; i++) {
            const others = records(await sentinelCall(i, "SENTINEL", "SENTINELS", name));
            if (others.filter((o) => !/s_down|disconnected/.test(o.get("flags") ?? "")).length < 2) return false;
            const reps = records(await sentinelCall(i, "SENTINEL", "REPLICAS", name));
            const good = reps.some(
              (r) =>
                !/s_down|o_down|disconnected/.test(r.get("flags") ?? "") &&
                r.get("master-link-status") === "ok" &&
                data.some((n) => n !== m && n.running && String(n.port) === r.get("port")),
            );
            if (!good) return false;
          }
          return true;
        },
        ms,
        "the sentinels to agree on the master, know each other and a replica",
        100,
      );
    },
    killMaster: async () => {
      const m = (await setup.master()) as DataNode;
      const c = m.child;
      m.child = null;
      await halt(c, "SIGKILL");
      return m;
    },
    failover: async () => {
      const until = Date.now() + 30_000;
      for (;;) {
        try {
          await sentinelCall(0, "SENTINEL", "FAILOVER", name);
          return;
        } catch (e) {
          if (!/NOGOODSLAVE|INPROG/.test(String((e as Error).message)) || Date.now() > until) throw e;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
    waitNewMaster: async (old, ms = 30_000) => {
      let found: DataNode | null = null;
      await waitFor(
        async () => {
          const m = await agreedMaster();
          if (!m || m === old || !m.running) return false;
          const role = (await m.call("ROLE").catch(() => null)) as Reply[] | null;
          if (!role || role[0] !== "master") return false;
          found = m;
          return true;
        },
        ms,
        "a new master every sentinel agrees on",
        50,
      );
      return found!;
    },
    restartNode: async (n) => {
      const d = n as DataNode;
      if (d.running) return;
      await d.start();
    },
    stop,
  };
  return setup;
}
