// A real 3-master Redis Cluster for a test: three redis-server processes on free 127.0.0.1 ports
// (client port and cluster bus port both picked free: never port+10000, which may be taken or past
// 65535), each in its own temp dir (nodes.conf is per dir), stopped by their pids. The slots are
// assigned and the nodes introduced by hand (what `redis-cli --cluster create` does), so the
// support needs nothing but redis-server. `moveSlot` moves the slot of a key to another master
// while traffic flows, exactly as `redis-cli --cluster reshard` moves each slot (SETSLOT
// IMPORTING/MIGRATING, MIGRATE key by key, SETSLOT NODE): clients see MOVED and ASK meanwhile.
import type { ChildProcess } from "node:child_process";
import { freePort } from "./packed";
import { halt, rawCommand, removeDir, scanWithoutTtl, spawnRedis, tempDir, type Reply } from "./redis";
import { waitFor } from "./stub";

export interface ClusterNode {
  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  readonly id: string;
  readonly pid: number | null;
  call(...args: string[]): Promise<Reply>;
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[];
  /** the seed-node list of SPEC B6a: redis://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 (with the password) */
  readonly url: string;
  slotOf(key: string): Promise<number>;
  /** the master serving `key`'s slot now (as the first node sees it) */
  ownerOf(key: string): Promise<ClusterNode>;
  /**
   * Moves the slot of `key` to `to` (default: the next master), while clients keep going: each
   * key migrated alone with `pauseMs` between keys, so clients meet ASK (keys already moved) and,
   * after the switch, MOVED. Resolves when every node agrees on the new owner.
   */
  moveSlot(
    key: string,
    opts?: { to?: ClusterNode; pauseMs?: number },
  ): Promise<{ slot: number; from: ClusterNode; to: ClusterNode }>;
  /** every key (under `prefix`) on every master whose PTTL is -1 */
  keysWithoutTtl(prefix?: string): Promise<string[]>;
  stop(): Promise<void>;
}

interface Running extends ClusterNode {
  child: ChildProcess | null;
  nodeId: string;
}

const RANGES: Array<[number, number]> = [
  [0, 5460],
  [5461, 10922],
  [10923, 16383],
];

export async function startRedisCluster(opts: { password?: string } = {}): Promise<RedisCluster> {
  const nodes: Running[] = [];
  const call = (n: { port: number }, ...args: string[]) =>
    rawCommand(n.port, args, { password: opts.password, timeoutMs: 5000 }).then((r) => r.value);
  const stop = async () => {
    await Promise.all(nodes.map((n) => halt(n.child)));
    for (const n of nodes) removeDir(n.dir);
  };
  try {
    for (let i = 0; i < 3; i++) {
      const dir = tempDir("cluster");
      const busPort = await freePort();
      const node: Running = {
        port: 0,
        busPort,
        dir,
        child: null,
        nodeId: "",
        get id() {
          return this.nodeId;
        },
        get pid() {
          const c = this.child;
          return c && c.exitCode === null && c.signalCode === null ? (c.pid ?? null) : null;
        },
        call: (...a) => call(node, ...a),
      };
      nodes.push(node);
      const s = await spawnRedis({
        password: opts.password,
        cwd: dir,
        args: (p) => {
          const a = ["--port", String(p), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"];
          a.push("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", String(busPort));
          a.push("--cluster-node-timeout", "1000", "--daemonize", "no", "--loglevel", "warning");
          if (opts.password) a.push("--requirepass", opts.password, "--masterauth", opts.password);
          return a;
        },
      });
      node.child = s.child;
      (node as { port: number }).port = s.port;
      node.nodeId = (await call(node, "CLUSTER", "MYID")) as string;
    }
    // What `redis-cli --cluster create` does: distinct config epochs, the slots, then the meeting.
    for (let i = 0; i < 3; i++) {
      await call(nodes[i], "CLUSTER", "SET-CONFIG-EPOCH", String(i + 1));
      await call(nodes[i], "CLUSTER", "ADDSLOTSRANGE", String(RANGES[i][0]), String(RANGES[i][1]));
    }
    for (const n of nodes.slice(1))
      await call(nodes[0], "CLUSTER", "MEET", "127.0.0.1", String(n.port), String(n.busPort));
    await waitFor(
      async () => {
        for (const n of nodes) {
          const info = (await call(n, "CLUSTER", "INFO")) as string;
          if (!/cluster_state:ok/.test(info) || !/cluster_known_nodes:3\b/.test(info)) return false;
          if (!/cluster_slots_ok:16384\b/.test(info)) return false;
        }
        return true;
      },
      15_000,
      "cluster_state:ok on all three nodes",
      20,
    );
  } catch (e) {
    await stop();
    throw e;
  }

  const slotOf = async (key: string) => Number(await call(nodes[0], "CLUSTER", "KEYSLOT", key));
  /** the owner of `slot` as `asSeenBy` says (CLUSTER NODES: "id addr flags master ... 0-5460 6000") */
  const owner = async (slot: number, asSeenBy: Running = nodes[0]) => {
    const text = (await call(asSeenBy, "CLUSTER", "NODES")) as string;
    for (const line of text.split("\n")) {
      const f = line.trim().split(" ");
      if (f.length < 9) continue;
      for (const r of f.slice(8)) {
        if (r.startsWith("[")) continue; // a migrating/importing marker
        const [lo, hi = lo] = r.split("-").map(Number);
        if (slot >= lo && slot <= hi) return nodes.find((n) => n.nodeId === f[0]) ?? null;
      }
    }
    return null;
  };

  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : "";
  return {
    nodes,
    url: `redis://${auth}` + nodes.map((n) => `127.0.0.1:${n.port}`).join(","),
    slotOf,
    ownerOf: async (key) => {
      const o = await owner(await slotOf(key));
      if (!o) throw new Error(`no owner for the slot of ${key}`);
      return o;
    },
    moveSlot: async (key, o = {}) => {
      const slot = await slotOf(key);
      const from = await owner(slot);
      if (!from) throw new Error(`no owner for slot ${slot}`);
      const to = (o.to as Running | undefined) ?? nodes[(nodes.indexOf(from) + 1) % nodes.length];
      if (to === from) throw new Error("moveSlot: the slot is there already");
      const s = String(slot);
      await call(to, "CLUSTER", "SETSLOT", s, "IMPORTING", from.nodeId);
      await call(from, "CLUSTER", "SETSLOT", s, "MIGRATING", to.nodeId);
      for (let round = 0; round < 100_000; round++) {
        const keys = (await call(from, "CLUSTER", "GETKEYSINSLOT", s, "1")) as string[];
        if (!keys.length) break;
        const migrate = ["MIGRATE", "127.0.0.1", String(to.port), "", "0", "5000"];
        if (opts.password) migrate.push("AUTH", opts.password);
        await call(from, ...migrate, "KEYS", ...keys);
        if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
      }
      // The new owner first, then the old one (it starts answering MOVED), then the third.
      for (const n of [to, from, ...nodes.filter((x) => x !== to && x !== from)]) {
        await call(n, "CLUSTER", "SETSLOT", s, "NODE", to.nodeId);
      }
      await waitFor(
        async () => {
          for (const n of nodes) if ((await owner(slot, n)) !== to) return false;
          return true;
        },
        10_000,
        `every node agrees slot ${slot} moved`,
        20,
      );
      return { slot, from, to };
    },
    keysWithoutTtl: async (prefix = "") => {
      const out: string[] = [];
      for (const n of nodes) out.push(...(await scanWithoutTtl((...a) => call(n, ...a), prefix)));
      return out;
    },
    stop,
  };
}
