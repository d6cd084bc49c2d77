// The two places a tracker's state can live, for the tracking specs: this process (memory) and a
// real redis-server (two RedisState handles on one prefix = two Node-RED instances).
import type { AccountState } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState } from "../../../src/lib/state/redis";
import { startRedis, type RedisServer } from "../../support/redis";
import { FakeClock, waitFor } from "../../support/stub";

export interface Env {
  readonly name: "memory" | "redis";
  readonly clock: FakeClock;
  readonly state: AccountState;
  /** the same account's state in another instance (redis); the same state (memory) */
  readonly twin: AccountState;
  /** lets deadlines that are due now fire (memory: the clock's timers; redis: a poll) */
  fire(): Promise<void>;
  /** keys held in the state now (redis: under this env's prefix) */
  keys(): Promise<string[]>;
  redis?: RedisServer;
}

export interface EnvMaker {
  readonly name: "memory" | "redis";
  make(): Promise<Env>;
  /** per test */
  cleanup(): Promise<void>;
}

export function memoryEnv(): EnvMaker {
  const open: MemoryState[] = [];
  return {
    name: "memory",
    async make() {
      const clock = new FakeClock();
      const state = new MemoryState({ clock });
      open.push(state);
      return {
        name: "memory",
        clock,
        state,
        twin: state,
        fire: async () => {
          clock.advance(0);
          await Promise.resolve();
        },
        keys: async () => {
          // The memory state sweeps expired keys when it next writes one: make it write (and drop) one.
          state.claimNow("\u0000sweep", 0);
          state.takeNow("\u0000sweep");
          return Array.from({ length: state.size.keys }, (_, i) => String(i));
        },
      };
    },
    async cleanup() {
      await Promise.all(open.splice(0).map((s) => s.close()));
    },
  };
}

let prefixes = 0;

/** One redis-server for the whole describe block (`before`/`after` registered here). */
export function redisEnv(): EnvMaker {
  let redis: RedisServer | undefined;
  const open: RedisState[] = [];
  before(async function () {
    this.timeout(20_000);
    redis = await startRedis();
  });
  after(() => redis?.stop());
  return {
    name: "redis",
    async make() {
      const clock = new FakeClock();
      const prefix = `trk${++prefixes}:`;
      const mk = () => {
        const s = new RedisState({ url: redis!.url, prefix, scope: "http://p\nacct", clock });
        open.push(s);
        return s;
      };
      const state = mk();
      const twin = mk();
      await waitFor(() => state.mode === "shared" && twin.mode === "shared", 5000, "Redis connected");
      return {
        name: "redis",
        clock,
        state,
        twin,
        redis,
        fire: async () => {
          await state.poll();
          await twin.poll();
        },
        keys: async () =>
          (await redis!.command("KEYS", `${prefix}*`)).split("\r\n").filter((l) => l.startsWith(prefix)),
      };
    },
    async cleanup() {
      await Promise.all(open.splice(0).map((s) => s.close()));
    },
  };
}
