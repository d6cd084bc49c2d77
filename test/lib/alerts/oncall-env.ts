// Two on-call "instances" over one account state, for the on-call specs: on memory (two handles on
// one MemoryState, each with its own locks, reply desk and inbox, as two processes sharing a state
// would have) and on a real redis-server (two RedisState objects on one prefix). Deadlines are
// fired by hand (`settle`), and every handler's work is awaited, so a test sees everything a
// deadline or a reply produced before it looks.
import { inboxFor } from "../../../src/lib/alerts/inbox";
import { OnCall, repliesFor, type OncallOptions, type Out } from "../../../src/lib/alerts/oncall";
import type { AccountState, DueHandler } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState } from "../../../src/lib/state/redis";
import { startRedis, type RedisServer } from "../../support/redis";
import { FakeClock, waitFor } from "../../support/stub";

export const A = "13800138000";
export const B = "13900139000";
export const C = "13700137000";
export const MIN = 60_000;

/** What left an instance, in order: output 1 (notify) or output 2 (events), and which instance. */
export interface Seen {
  on: 0 | 1;
  out: Out;
}

export interface Instance {
  readonly state: AccountState;
  readonly oncall: OnCall;
  /** an inbound SMS reaching this instance (as its sms-receive would hand it over) */
  reply(mobile: string, text: string): Promise<void>;
}

export interface Env {
  readonly name: "memory" | "redis";
  readonly clock: FakeClock;
  readonly a: Instance;
  readonly b: Instance;
  /** everything emitted by either instance's deadlines and inputs, in order */
  readonly seen: Seen[];
  readonly errors: unknown[];
  /** fires due deadlines (on either instance) until nothing more happens */
  settle(): Promise<void>;
  /** runs an input on an instance and records what it emitted */
  input(on: 0 | 1, fn: (o: OnCall) => Promise<Out[]>): Promise<Out[]>;
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

/** A state whose deadline handlers are tracked (their promises awaited by `settle`). */
function tracked(real: AccountState, work: Set<Promise<unknown>>, pick?: () => number): AccountState {
  const handlers = new Map<string, DueHandler[]>();
  const onDue = (kind: string, handler: DueHandler) => {
    const wrapped: DueHandler = (id) => {
      const p = Promise.resolve(handler(id));
      work.add(p);
      void p.finally(() => work.delete(p)).catch(() => undefined);
      return p;
    };
    if (!pick) return real.onDue(kind, wrapped);
    // Memory: one handler per kind in the state; it hands each deadline to one of the instances.
    let list = handlers.get(kind);
    if (!list) {
      handlers.set(kind, (list = []));
      real.onDue(kind, (id) => {
        const l = handlers.get(kind)!;
        return l.length ? l[pick() % l.length](id) : Promise.reject(new Error("no handler"));
      });
    }
    list.push(wrapped);
    return () => {
      const i = list!.indexOf(wrapped);
      if (i >= 0) list!.splice(i, 1);
    };
  };
  return new Proxy(real, {
    get(t, p) {
      if (p === "onDue") return onDue;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

export interface EnvMaker {
  readonly name: "memory" | "redis";
  make(opts: Omit<OncallOptions, "state" | "scope" | "clock"> & { scope?: string }, pick?: () => number): Promise<Env>;
}

function build(
  name: "memory" | "redis",
  clock: FakeClock,
  states: [AccountState, AccountState],
  opts: Omit<OncallOptions, "state" | "scope" | "clock"> & { scope?: string },
  fire: () => Promise<void>,
  keys: () => Promise<string[]>,
  close: () => Promise<void>,
  work: Set<Promise<unknown>>,
): Env {
  const seen: Seen[] = [];
  const errors: unknown[] = [];
  const instances = states.map((state, i) => {
    const oncall = new OnCall({ ...opts, scope: opts.scope ?? "oc1", state, clock });
    oncall.listen({
      emit: (outs) => seen.push(...outs.map((out) => ({ on: i as 0 | 1, out }))),
      error: (e) => errors.push(e),
    });
    return {
      state,
      oncall,
      reply: async (mobile: string, text: string) => {
        await inboxFor(state).deliver({ mobile, text, destcode: "10690000" });
        await repliesFor(state).last;
      },
    };
  });
  const settle = async () => {
    for (let round = 0; round < 50; round++) {
      await fire();
      // Handler work may itself schedule more (an outbox "now"): go on until quiet.
      for (let i = 0; i < 5 && !work.size; i++) await new Promise((r) => setImmediate(r));
      if (!work.size) return;
      await Promise.allSettled([...work]);
    }
  };
  return {
    name,
    clock,
    a: instances[0],
    b: instances[1],
    seen,
    errors,
    settle,
    input: async (on, fn) => {
      const outs = await fn(instances[on].oncall);
      seen.push(...outs.map((out) => ({ on, out })));
      return outs;
    },
    keys,
    close,
  };
}

export function memoryEnv(): EnvMaker {
  return {
    name: "memory",
    async make(opts, pick = () => 0) {
      const clock = new FakeClock();
      const real = new MemoryState({ clock });
      const work = new Set<Promise<unknown>>();
      const states: [AccountState, AccountState] = [tracked(real, work, pick), tracked(real, work, pick)];
      return build(
        "memory",
        clock,
        states,
        opts,
        async () => {
          clock.advance(0);
          await Promise.resolve();
        },
        async () => {
          real.claimNow("\u0000sweep", 0);
          real.takeNow("\u0000sweep");
          return Array.from({ length: real.size.keys }, (_, i) => String(i));
        },
        () => real.close(),
        work,
      );
    },
  };
}

let prefixes = 0;

/** One redis-server for the whole describe block (`before`/`after` registered here). */
export function redisEnv(): EnvMaker & { server(): RedisServer } {
  let redis: RedisServer | undefined;
  before(async function () {
    this.timeout(20_000);
    redis = await startRedis();
  });
  after(() => redis?.stop());
  return {
    name: "redis",
    server: () => redis!,
    async make(opts) {
      const clock = new FakeClock();
      const prefix = `oc${++prefixes}:`;
      const work = new Set<Promise<unknown>>();
      const reals = [0, 1].map(() => new RedisState({ url: redis!.url, prefix, scope: "http://p\nacct", clock }));
      await waitFor(() => reals.every((s) => s.mode === "shared"), 5000, "Redis connected");
      const states: [AccountState, AccountState] = [tracked(reals[0], work), tracked(reals[1], work)];
      return build(
        "redis",
        clock,
        states,
        opts,
        async () => {
          await Promise.all(reals.map((s) => s.poll()));
        },
        async () => (await redis!.command("KEYS", `${prefix}*`)).split("\r\n").filter((l) => l.startsWith(prefix)),
        async () => {
          await Promise.all(reals.map((s) => s.close()));
        },
        work,
      );
    },
  };
}

/** The notify msgs among what was seen. */
export function notifies(seen: Seen[]) {
  return seen.flatMap((s) => (s.out.port === 0 ? [s.out.msg] : []));
}

/** The events among what was seen. */
export function events(seen: Seen[]) {
  return seen.flatMap((s) => (s.out.port === 1 ? [s.out.msg.payload] : []));
}
