// One state per account for the whole process: every config node of the same account (and
// store) leases the same state, so they share the rate, the balance window and everything else,
// and a redeploy (old nodes close, new ones start) keeps it. It is freed a grace period after
// the last lease ends, so a redeploy is never mistaken for "no longer used".
import { createHash } from "node:crypto";
import type { Clock } from "../clock";
import type { RedisMode } from "./connect";
import { FailoverState } from "./failover";
import type { AccountState } from "./index";
import { MemoryState } from "./memory";
import { RedisState, RedisStateError } from "./redis";

export type StoreKind = "memory" | "redis";

export interface StateSpec {
  /** platform URL: its origin is part of the account's identity */
  url: string;
  account: string;
  store: StoreKind;
  redisUrl?: string;
  redisPrefix?: string;
  redisPassword?: string;
  /** single (default), sentinel or cluster */
  redisMode?: RedisMode;
  redisMaster?: string;
  redisSentinelPassword?: string;
  clock?: Clock;
}

export interface StateLease {
  readonly state: AccountState;
  /** why a `redis` state is local now (wrong URL or password, unreachable); null otherwise */
  problem(): RedisStateError | null;
  /** ends this lease; the state stays for the grace period in case a new lease comes (a redeploy) */
  release(): void;
}

interface Entry {
  state: AccountState;
  leases: number;
  timer: NodeJS.Timeout | null;
}

const entries = new Map<string, Entry>();

export const registry = {
  /** how long a state outlives its last lease (a redeploy re-leases well within it) */
  graceMs: 60_000,
  /** states held now (tests) */
  get size(): number {
    return entries.size;
  },
};

/** The account's identity: platform origin and account name. */
export function accountScope(url: string, account: string): string {
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    origin = url;
  }
  return `${origin}\n${account}`;
}

function registryKey(spec: StateSpec): string {
  const scope = accountScope(spec.url, spec.account);
  if (spec.store !== "redis") return `memory\n${scope}`;
  // The password is part of what makes a connection: a corrected one must give a new state.
  // Hashed, so no secret sits in a map key.
  const conn = createHash("sha256")
    .update(
      [
        spec.redisMode ?? "single",
        spec.redisUrl ?? "",
        // The master's name only names a connection through sentinels.
        spec.redisMode === "sentinel" ? spec.redisMaster || "mymaster" : "",
        spec.redisPassword ?? "",
        spec.redisSentinelPassword ?? "",
      ].join("\n"),
    )
    .digest("hex");
  return `redis\n${conn}\n${spec.redisPrefix ?? ""}\n${scope}`;
}

function create(spec: StateSpec): AccountState {
  const local = new MemoryState({ clock: spec.clock });
  if (spec.store !== "redis") return local;
  try {
    const redis = new RedisState({
      mode: spec.redisMode,
      url: spec.redisUrl ?? "",
      password: spec.redisPassword,
      master: spec.redisMaster,
      sentinelPassword: spec.redisSentinelPassword,
      prefix: spec.redisPrefix ?? "",
      scope: accountScope(spec.url, spec.account),
      clock: spec.clock,
    });
    return new FailoverState(redis, local);
  } catch (e) {
    const problem = e instanceof RedisStateError ? e : new RedisStateError("url");
    return new FailoverState(null, local, problem);
  }
}

export function leaseState(spec: StateSpec): StateLease {
  const key = registryKey(spec);
  let entry = entries.get(key);
  if (!entry) {
    entry = { state: create(spec), leases: 0, timer: null };
    entries.set(key, entry);
  }
  const e = entry;
  e.leases++;
  if (e.timer) clearTimeout(e.timer);
  e.timer = null;
  let released = false;
  return {
    state: e.state,
    problem: () => (e.state instanceof FailoverState ? e.state.problem : null),
    release: () => {
      if (released) return;
      released = true;
      if (--e.leases > 0) return;
      // Unref'd: a process that is ending anyway is not kept alive for it.
      e.timer = setTimeout(() => {
        if (e.leases > 0 || entries.get(key) !== e) return;
        entries.delete(key);
        void e.state.close();
      }, registry.graceMs);
      e.timer.unref();
    },
  };
}

/** Closes every state now (tests, and a process shutting down for good). */
export async function closeAllStates(): Promise<void> {
  const all = [...entries.values()];
  entries.clear();
  for (const e of all) if (e.timer) clearTimeout(e.timer);
  await Promise.all(all.map((e) => e.state.close()));
}
