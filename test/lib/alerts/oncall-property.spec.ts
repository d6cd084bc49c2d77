// fast-check: any sequence of alerts, resolves, flow acknowledgements, replies, clock steps and due
// steps, each on either of two instances, and races of two of them at once (a reply against the
// due step it would stop, a resolve against a step, the same alert on both instances, ...), gives
// the events and SMS of a plain sequential model of SPEC B11, and never a page after an
// acknowledgement. A race must match the model in one of its two orders. On memory (two handles
// on one state, each with its own locks, reply desk and inbox) and on a real redis-server (two
// RedisState objects on one prefix).
import assert from "node:assert/strict";
import fc from "fast-check";
import { inboxFor } from "../../../src/lib/alerts/inbox";
import { alertId, OnCall, OncallError, repliesFor, type Out } from "../../../src/lib/alerts/oncall";
import { parseReply } from "../../../src/lib/alerts/replies";
import { readPlan, Rota, type Plan } from "../../../src/lib/alerts/rota";
import type { Clock } from "../../../src/lib/clock";
import type { AccountState, DueHandler } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState } from "../../../src/lib/state/redis";
import { formatInstant } from "../../../src/lib/platform/time";
import { startRedis, type RedisServer } from "../../support/redis";
import { waitFor } from "../../support/stub";

const A = "13800138000";
const B = "13900139000";
const C = "13700137000";
const ROTA = [A, B, C];
const MIN = 60_000;
const HOUR = 60 * MIN;
const KEYS = ["k1", "k2", "k3"];

/** A clock whose time only moves when told; timers fire only when asked (`fire`). */
class StepClock implements Clock {
  private t = 1_700_000_000_000;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  };
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);
  jump(ms: number): void {
    this.t += ms;
  }
  fire(): void {
    for (let i = 0; i < 10_000; i++) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= this.t && (!next || e[1].at < next[1].at)) next = e;
      if (!next) return;
      this.timers.delete(next[0]);
      next[1].fn();
    }
  }
}

type Cmd =
  | { t: "fire"; key: string; text: string; on: 0 | 1 }
  | { t: "resolve"; key: string; on: 0 | 1 }
  | { t: "ack"; key: string; on: 0 | 1 }
  | { t: "reply"; from: string; text: string; on: 0 | 1 }
  | { t: "due"; key: string; on: 0 | 1 }
  | { t: "advance"; ms: number }
  | { t: "race"; ms: number; one: Cmd; two: Cmd };

// --- the model: SPEC B11, sequentially and plainly --------------------------------------------

interface MAlert {
  k: string;
  x: string;
  n: number;
  s: number;
  r: number;
  st: "o" | "e" | "a";
  at: number;
  p: Record<string, [number, number]>;
}

interface MItem {
  e: "acknowledged" | "closed";
  k: string;
  s: number;
  r: number;
  n: number;
  by: string;
  c: number;
  x: string;
  to: string[];
  at: number;
}

type Result = string[] | "MAX_OPEN";

class Model {
  alerts: Record<string, MAlert> = {};
  codes: Record<string, Record<number, string>> = {};
  outbox: MItem[] = [];
  private readonly rota: Rota;

  constructor(
    private readonly plan: Plan,
    rota?: Rota,
  ) {
    this.rota = rota ?? Rota.of(plan, 480);
  }

  clone(): Model {
    const m = new Model(this.plan, this.rota);
    m.alerts = structuredClone(this.alerts);
    m.codes = structuredClone(this.codes);
    m.outbox = structuredClone(this.outbox);
    return m;
  }

  private keepMs = () => this.plan.keep * HOUR;
  private forgotten = (a: MAlert, now: number) => a.st !== "o" && now >= a.at + this.keepMs();
  private ev(
    e: string,
    a: { k: string; s: number; r: number; n: number },
    to: string[],
    by: string | null,
    at: number,
  ) {
    return `E|${e}|${a.k}|${a.s + 1}|${a.r + 1}|${to.join(",")}|${by}|${formatInstant(at, 480)}|${a.n}`;
  }
  private sms(
    kind: string,
    a: { k: string; s: number; r: number; n: number },
    to: string[],
    text: string,
    code: number | null,
  ) {
    return `N|${kind}|${a.k}|${to.join(",")}|${text}|${code}|${a.s + 1}|${a.r + 1}|${a.n}`;
  }

  private forget(k: string): void {
    const a = this.alerts[k];
    for (const m of Object.keys(a.p)) delete this.codes[m][a.p[m][0]];
    delete this.alerts[k];
  }

  private page(a: MAlert, now: number): string[] {
    const step = this.plan.steps[a.s];
    const targets = this.rota.targets(step.to, now);
    const byCode = new Map<number, string[]>();
    for (const m of targets) {
      if (!a.p[m]) {
        const table = (this.codes[m] ??= {});
        let c = 1;
        while (table[c] !== undefined) c++;
        table[c] = a.k;
        a.p[m] = [c, now];
      } else a.p[m][1] = now;
      const c = a.p[m][0];
      byCode.set(c, [...(byCode.get(c) ?? []), m]);
    }
    const outs = [...byCode].map(([c, to]) => this.sms("page", a, to, `${a.x} Reply ${c} to ack`, c));
    a.at = now + step.wait * MIN;
    outs.push(this.ev(a.s === 0 && a.r === 0 ? "notified" : "escalated", a, targets, null, now));
    return outs;
  }

  fire(k: string, x: string, now: number): Result {
    const old = this.alerts[k];
    if (old && this.forgotten(old, now)) this.forget(k);
    const a = this.alerts[k];
    if (a) {
      a.n++;
      a.x = x;
      return [];
    }
    if (Object.keys(this.alerts).length >= this.plan.maxOpen) return "MAX_OPEN";
    const b: MAlert = { k, x, n: 1, s: 0, r: 0, st: "o", at: now, p: {} };
    this.alerts[k] = b;
    return [this.ev("opened", b, [], null, now), ...this.page(b, now)];
  }

  resolve(k: string, now: number): Result {
    const a = this.alerts[k];
    if (!a) return [];
    if (this.forgotten(a, now)) {
      this.forget(k);
      return [];
    }
    this.forget(k);
    const to = this.plan.resolvedNotify === "none" ? [] : Object.keys(a.p);
    const outs = to.length ? [this.sms("resolved", a, to, `Resolved ${a.x}`, null)] : [];
    return [...outs, this.ev("resolved", a, to, null, now)];
  }

  ack(k: string, now: number): Result {
    const a = this.alerts[k];
    if (!a || a.st === "a" || this.forgotten(a, now)) return [];
    a.st = "a";
    a.at = now;
    return [this.ev("acknowledged", a, [], null, now)];
  }

  reply(from: string, text: string, now: number): Result {
    const r = parseReply(text);
    const table = this.codes[from] ?? {};
    if (!r) return [];
    const codes = Object.keys(table)
      .map(Number)
      .sort((x, y) => x - y);
    // An alert past its keep is not remembered: a reply does nothing to it (its code is freed
    // when it is cleaned up, by its deadline or its key's next alert).
    const live = (c: number) => !this.forgotten(this.alerts[table[c]], now);
    let chosen: number[];
    if (r.kind === "code") chosen = table[r.code] !== undefined && live(r.code) ? [r.code] : [];
    else {
      const open = codes.filter((c) => this.alerts[table[c]].st !== "a" && live(c));
      if (r.kind === "all") chosen = open;
      else {
        let best: number | null = null;
        for (const c of open) {
          const t = this.alerts[table[c]].p[from][1];
          if (
            best === null ||
            t > this.alerts[table[best]].p[from][1] ||
            (t === this.alerts[table[best]].p[from][1] && c > best)
          )
            best = c;
        }
        chosen = best === null ? [] : [best];
      }
    }
    for (const c of chosen) {
      const k = table[c];
      const a = this.alerts[k];
      if (r.kind === "code" && r.action === "close") {
        this.forget(k);
        this.outbox.push({
          e: "closed",
          k,
          s: a.s,
          r: a.r,
          n: a.n,
          by: from,
          c,
          x: a.x,
          to: Object.keys(a.p),
          at: now,
        });
      } else {
        if (a.st === "a") continue;
        a.st = "a";
        a.at = now;
        this.outbox.push({ e: "acknowledged", k, s: a.s, r: a.r, n: a.n, by: from, c, x: a.x, to: [], at: now });
      }
    }
    return [];
  }

  /** A due deadline of the alert `k` (or the outbox, "o", taking `items` of it). */
  due(k: string, now: number, items = Infinity): string[] {
    if (k === "o") {
      const out: string[] = [];
      for (const it of this.outbox.splice(0, items)) {
        const rec = { k: it.k, s: it.s, r: it.r, n: it.n };
        if (it.e === "acknowledged") {
          out.push(this.sms("confirm", rec, [it.by], `Acknowledged ${it.x}`, it.c));
          out.push(this.ev("acknowledged", rec, [], it.by, it.at));
        } else {
          out.push(this.sms("confirm", rec, [it.by], `Closed ${it.x}`, it.c));
          const others = this.plan.resolvedNotify === "none" ? [] : it.to.filter((m) => m !== it.by);
          if (others.length) out.push(this.sms("resolved", rec, others, `Resolved ${it.x}`, null));
          out.push(this.ev("closed", rec, others, it.by, it.at));
        }
      }
      return out;
    }
    const a = this.alerts[k];
    if (!a) return [];
    if (a.st === "o") {
      if (now < a.at) return [];
      if (a.s + 1 < this.plan.steps.length) a.s++;
      else if (a.r < this.plan.repeat) {
        a.s = 0;
        a.r++;
      } else {
        a.st = "e";
        a.at = now;
        return [this.ev("exhausted", a, [], null, now)];
      }
      return this.page(a, now);
    }
    if (now >= a.at + this.keepMs()) this.forget(k);
    return [];
  }

  apply(c: Cmd, now: number): Result {
    switch (c.t) {
      case "fire":
        return this.fire(c.key, c.text, now);
      case "resolve":
        return this.resolve(c.key, now);
      case "ack":
        return this.ack(c.key, now);
      case "reply":
        return this.reply(c.from, c.text, now);
      case "due":
        return this.due(c.key, now);
      default:
        throw new Error(`not a single command: ${c.t}`);
    }
  }

  /** Nothing is left due: every step due by `now` ran, the outbox went out. */
  settledAt(now: number): boolean {
    if (this.outbox.length) return false;
    return Object.values(this.alerts).every((a) => (a.st === "o" ? a.at > now : now < a.at + this.keepMs()));
  }
}

function show(o: Out): string {
  if (o.port === 0) {
    const m = o.msg;
    const i = m.oncall;
    return `N|${i.kind}|${i.key}|${m.mobile.join(",")}|${m.payload}|${i.code}|${i.step}|${i.round}|${i.count}`;
  }
  const p = o.msg.payload;
  return `E|${p.event}|${p.key}|${p.step}|${p.round}|${p.to.join(",")}|${p.by}|${p.at}|${p.count}`;
}

// --- two instances on one state -----------------------------------------------------------------

interface Unit {
  id: string;
  outs: string[];
}

interface Harness {
  clock: StepClock;
  oc: [OnCall, OnCall];
  states: [AccountState, AccountState];
  /** handler runs (one at a time) and what each emitted, in order */
  units: Unit[];
  errors: unknown[];
  paused: boolean;
  settle(): Promise<void>;
  close(): Promise<void>;
}

function harness(
  reals: [AccountState, AccountState],
  clock: StepClock,
  plan: Record<string, unknown>,
  memory: boolean,
): Harness {
  const units: Unit[] = [];
  const errors: unknown[] = [];
  let queue: Promise<unknown> = Promise.resolve();
  let current: Unit | null = null;
  const inflight = new Set<Promise<unknown>>();
  const held: Array<() => void> = [];
  const h = { paused: false } as Harness;
  const memoryHandlers = new Map<string, DueHandler[]>();
  let turn = 0;
  // Every handler run of either instance goes through one queue (one at a time), so what each
  // emitted is known; while paused, runs wait (a race is going on).
  const serial =
    (handler: DueHandler): DueHandler =>
    (id) => {
      const p = (async () => {
        if (h.paused) await new Promise<void>((r) => held.push(r));
        const run = queue.then(async () => {
          current = { id, outs: [] };
          units.push(current);
          try {
            await handler(id);
          } finally {
            current = null;
          }
        });
        queue = run.catch(() => undefined);
        return run;
      })();
      inflight.add(p);
      void p.finally(() => inflight.delete(p)).catch(() => undefined);
      return p;
    };
  const wrap = (real: AccountState): AccountState =>
    new Proxy(real, {
      get(t, p) {
        if (p === "onDue") {
          return (kind: string, handler: DueHandler) => {
            if (!memory) return real.onDue(kind, serial(handler));
            // Memory: one handler per kind in the state; it hands each deadline to the instances in turn.
            let list = memoryHandlers.get(kind);
            if (!list) {
              memoryHandlers.set(kind, (list = []));
              real.onDue(kind, (id) => {
                const l = memoryHandlers.get(kind)!;
                return l[turn++ % l.length](id);
              });
            }
            list.push(serial(handler));
            return () => undefined;
          };
        }
        const v = Reflect.get(t, p, t) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  const states = reals.map(wrap) as [AccountState, AccountState];
  const oc = states.map((state) => {
    const o = new OnCall({ ...plan, state, scope: "prop", clock });
    o.listen({
      emit: (outs) => {
        if (!current) throw new Error("an emit outside a handler run");
        current.outs.push(...outs.map(show));
      },
      error: (e) => errors.push(e),
    });
    return o;
  }) as [OnCall, OnCall];
  Object.assign(h, {
    clock,
    oc,
    states,
    units,
    errors,
    settle: async () => {
      h.paused = false;
      held.splice(0).forEach((r) => r());
      for (let round = 0; round < 100; round++) {
        clock.fire();
        if (!memory) await Promise.all((reals as unknown as RedisState[]).map((s) => s.poll()));
        for (let i = 0; i < 3 && !inflight.size; i++) await new Promise((r) => setImmediate(r));
        if (!inflight.size) return;
        await Promise.allSettled([...inflight]);
      }
      throw new Error("deadlines kept coming");
    },
    close: async () => {
      await Promise.all(reals.map((s) => s.close()));
    },
  });
  return h;
}

async function run(h: Harness, c: Cmd): Promise<Result> {
  const o = h.oc[c.t === "advance" || c.t === "race" ? 0 : c.on];
  try {
    switch (c.t) {
      case "fire":
        return (await o.fire(c.key, c.text)).map(show);
      case "resolve":
        return (await o.resolve(c.key)).map(show);
      case "ack":
        return (await o.acknowledge(c.key)).map(show);
      case "due":
        return (await o.due(alertId(c.key))).map(show);
      case "reply": {
        const state = h.states[c.on];
        await inboxFor(state).deliver({ mobile: c.from, text: c.text, destcode: "1069" });
        await repliesFor(state).last;
        return [];
      }
      default:
        throw new Error(c.t);
    }
  } catch (e) {
    if (e instanceof OncallError && e.code === "MAX_OPEN") return "MAX_OPEN";
    throw e;
  }
}

/** Applies the settle's handler runs to each candidate model; keeps those that agree. */
function replay(models: Model[], units: Unit[], now: number): Model[] {
  return models.filter((m) => {
    for (const u of units) {
      const k = u.id === "o" ? "o" : u.id.slice(1);
      // An outbox run takes what was there when it ran: as many items as it told events.
      const items = u.outs.filter((s) => s.startsWith("E|")).length;
      const want = m.due(k, now, u.id === "o" ? items : Infinity);
      if (JSON.stringify(want) !== JSON.stringify(u.outs)) return false;
    }
    return m.settledAt(now);
  });
}

async function check(h: Harness, planInput: Record<string, unknown>, cmds: Cmd[]): Promise<void> {
  const plan = readPlan(planInput);
  let models = [new Model(plan)];
  const log: string[] = [];
  const trail: string[] = [];
  for (const c of cmds) {
    h.clock.jump(1000);
    const before = h.units.length;
    if (c.t === "advance") {
      h.clock.jump(c.ms);
      trail.push(`advance ${c.ms}`);
    } else if (c.t === "race") {
      // The clock moves without firing anything: the steps that came due race with the commands.
      h.clock.jump(c.ms);
      h.paused = true;
      const now = h.clock.now();
      const [one, two] = await Promise.all([run(h, c.one), run(h, c.two)]);
      trail.push(`race ${c.ms} ${JSON.stringify(c.one)} ${JSON.stringify(c.two)} -> ${JSON.stringify([one, two])}`);
      const next: Model[] = [];
      for (const m of models) {
        for (const order of [
          [c.one, c.two],
          [c.two, c.one],
        ]) {
          const cand = m.clone();
          const got = order.map((x) => cand.apply(x, now));
          const want = order[0] === c.one ? got : [got[1], got[0]];
          if (JSON.stringify(want) === JSON.stringify([one, two])) next.push(cand);
        }
      }
      assert.ok(next.length, `race: no order of the two gives what happened\n${trail.join("\n")}`);
      models = next;
      log.push(...[one, two].flatMap((r) => (r === "MAX_OPEN" ? [] : r)));
    } else {
      const now = h.clock.now();
      const got = await run(h, c);
      trail.push(`${JSON.stringify(c)} -> ${JSON.stringify(got)}`);
      models = models.filter((m) => JSON.stringify(m.apply(c, now)) === JSON.stringify(got));
      assert.ok(models.length, `differs from the model\n${trail.join("\n")}`);
      if (got !== "MAX_OPEN") log.push(...got);
    }
    await h.settle();
    const units = h.units.slice(before);
    trail.push(...units.map((u) => `  due ${u.id}: ${JSON.stringify(u.outs)}`));
    models = replay(models, units, h.clock.now());
    assert.ok(models.length, `deadlines differ from the model\n${trail.join("\n")}`);
    for (const u of units) log.push(...u.outs);
  }
  assert.deepEqual(h.errors, []);
  // Never a page decided after an acknowledgement (or a resolve, a close) of that alert: each
  // page goes with its notified/escalated event, whose time is the decision's; an alert's end is
  // told with the time it was taken (a reply's event leaves later, through the outbox).
  const ev = log.filter((l) => l.startsWith("E|")).map((l) => l.split("|"));
  for (const [, kind, key, , , , , at] of ev) {
    if (kind !== "notified" && kind !== "escalated") continue;
    for (const [, k2, key2, , , , , ta] of ev) {
      if (key2 !== key || !(k2 === "acknowledged" || k2 === "closed" || k2 === "resolved") || !(ta < at)) continue;
      const reopened = ev.some(([, k3, key3, , , , , to]) => key3 === key && k3 === "opened" && to >= ta && to <= at);
      assert.ok(reopened, `a page for ${key} at ${at}, after it was ${k2} at ${ta}`);
    }
  }
}

// --- generators ----------------------------------------------------------------------------------

const on = fc.constantFrom(0 as const, 1 as const);
const key = fc.constantFrom(...KEYS);
const single: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("fire" as const), key, text: fc.constantFrom("t0", "t1"), on }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant("resolve" as const), key, on }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("ack" as const), key, on }), weight: 1 },
  {
    arbitrary: fc.record({
      t: fc.constant("reply" as const),
      from: fc.constantFrom(...ROTA),
      text: fc.constantFrom("1", "2", "3", "1c", "2c", "a", "aa", "ok", "hi"),
      on,
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ t: fc.constant("due" as const), key, on }), weight: 1 },
);
const span = fc.constantFrom(1000, 30_000, 61_000, 2 * MIN, 5 * MIN, 17 * MIN, 61 * MIN, 3 * HOUR);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: single, weight: 6 },
  { arbitrary: fc.record({ t: fc.constant("advance" as const), ms: span }), weight: 3 },
  {
    // A race: mostly a due step on one instance against something else on the other.
    arbitrary: fc.record({
      t: fc.constant("race" as const),
      ms: span,
      one: fc.oneof(fc.record({ t: fc.constant("due" as const), key, on: fc.constant(0 as const) }), single),
      two: single,
    }),
    weight: 3,
  },
);
const planArb = fc.record({
  rota: fc.constant(ROTA),
  rotate: fc.constantFrom("none", "daily"),
  handover: fc.constantFrom("09:00", "06:30"),
  rotaStart: fc.constant("2023-11-13"),
  steps: fc.array(
    fc.record({
      to: fc.constantFrom<"oncall" | "next" | "all" | string[]>("oncall", "next", "all", [C]),
      wait: fc.constantFrom(1, 2, 5),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  repeat: fc.integer({ min: 0, max: 2 }),
  keep: fc.constantFrom(1, 2),
  resolvedNotify: fc.constantFrom("notified", "none"),
  maxOpen: fc.integer({ min: 2, max: 4 }),
});

/** FC_SEED (and FC_PATH) replay a failure fast-check reported. */
function seeded(): { seed?: number; path?: string } {
  const seed = Number(process.env.FC_SEED);
  return Number.isInteger(seed) ? { seed, path: process.env.FC_PATH || undefined } : {};
}

describe("lib/alerts: oncall property (a sequential model of SPEC B11, two instances, races)", function () {
  this.timeout(300_000);

  it("memory: the model's events and SMS in every interleaving; never a page after an acknowledgement", async () => {
    await fc.assert(
      fc.asyncProperty(planArb, fc.array(cmd, { minLength: 5, maxLength: 40 }), async (plan, cmds) => {
        const clock = new StepClock();
        const real = new MemoryState({ clock });
        const h = harness([real, real], clock, plan, true);
        try {
          await check(h, plan, cmds);
        } finally {
          await h.close();
        }
      }),
      { numRuns: 300, ...seeded() },
    );
  });

  describe("with a real redis-server", () => {
    let server: RedisServer;
    let n = 0;
    before(async () => {
      server = await startRedis();
    });
    after(() => server?.stop());

    it("redis: the model's events and SMS in every interleaving; never a page after an acknowledgement", async () => {
      await fc.assert(
        fc.asyncProperty(planArb, fc.array(cmd, { minLength: 5, maxLength: 30 }), async (plan, cmds) => {
          const clock = new StepClock();
          const prefix = `ocp${++n}:`;
          const reals = [0, 1].map(() => new RedisState({ url: server.url, prefix, scope: "acct", clock })) as [
            RedisState,
            RedisState,
          ];
          await waitFor(() => reals.every((s) => s.mode === "shared"), 5000, "Redis connected");
          const h = harness(reals, clock, plan, false);
          try {
            await check(h, plan, cmds);
          } finally {
            await h.close();
          }
        }),
        { numRuns: 30, ...seeded() },
      );
    });
  });
});
