// fast-check: for any options and any sequence of alerts and clock steps, the guard decides as a
// plain sequential model of SPEC B8 does, and no number ever gets more than the cap per local day,
// nor the same (non-critical) alert twice within a window. On memory and on a real Redis.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Guard, type Decision, type Reason, type Released } from "../../../src/lib/alerts/guard";
import { Calendar, parseHours } from "../../../src/lib/alerts/hours";
import type { AccountState } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState } from "../../../src/lib/state/redis";
import { startRedis, type RedisServer } from "../../support/redis";
import { FakeClock, waitFor } from "../../support/stub";

const MIN = 60_000;
const H = 60 * MIN;
const NUMBERS = ["13800138000", "13900139000", "13700137000"];
const OFFSET = 480;

interface Opts {
  window: number;
  dailyCap: number;
  hours: string;
  outside: "hold" | "drop";
  holdMax: number;
}

type Cmd = { alert: { key: string; mobiles: string[]; critical: boolean } } | { step: number };

interface Held {
  key: string;
  mobiles: string[];
  at: number;
  id: number;
}

/** What one alert should give: the numbers sent, the reasons of the others, and `until`. */
interface Expect {
  send: string[];
  reasons: Record<string, Reason>;
  until?: number;
  heldSince?: number;
}

/** SPEC B8, sequentially and plainly. */
class Model {
  private readonly win = new Map<string, number>();
  private readonly count = new Map<string, number>();
  held: Held[] = [];

  constructor(
    private readonly o: Opts,
    private readonly cal: Calendar,
  ) {}

  admit(key: string, mobiles: string[], critical: boolean, now: number, heldSince?: number): Expect {
    const e: Expect = { send: [], reasons: {}, heldSince };
    const W = this.o.window * MIN;
    for (const m of mobiles) {
      const wk = `${key}\n${m}`;
      const ck = `${this.cal.dayKey(now)}\n${m}`;
      const wUntil = this.win.get(wk) ?? 0;
      let refused: [Reason, number] | null = null;
      if (W && !critical && wUntil > now) refused = ["window", this.cal.allowedFrom(wUntil)];
      else if (this.o.dailyCap && (this.count.get(ck) ?? 0) >= this.o.dailyCap) {
        const mid = this.cal.nextMidnight(now);
        refused = ["cap", critical ? mid : this.cal.allowedFrom(mid)];
      }
      if (refused) {
        e.reasons[m] = refused[0];
        e.until = Math.min(e.until ?? Infinity, refused[1]);
        continue;
      }
      e.send.push(m);
      if (W && (!critical || wUntil <= now)) this.win.set(wk, now + W);
      if (this.o.dailyCap) this.count.set(ck, (this.count.get(ck) ?? 0) + 1);
    }
    return e;
  }

  /** null: held; otherwise the decision, plus the held alerts pushed out */
  decide(
    a: { key: string; mobiles: string[]; critical: boolean },
    now: number,
    id: number,
  ): { e: Expect | null; overflow: Array<Held & Expect> } {
    if (a.critical || this.cal.inHours(now)) return { e: this.admit(a.key, a.mobiles, a.critical, now), overflow: [] };
    const until = this.cal.nextStart(now);
    const all = (mobiles: string[], r: Reason) => Object.fromEntries(mobiles.map((m) => [m, r]));
    if (this.o.outside === "drop") return { e: { send: [], reasons: all(a.mobiles, "hours"), until }, overflow: [] };
    this.held.push({ key: a.key, mobiles: a.mobiles, at: now, id });
    const out = this.held.splice(0, Math.max(0, this.held.length - this.o.holdMax));
    return { e: null, overflow: out.map((h) => ({ ...h, send: [], reasons: all(h.mobiles, "overflow"), until })) };
  }

  release(now: number): Array<Held & Expect> {
    if (!this.cal.inHours(now)) return [];
    return this.held.splice(0).map((h) => ({ ...h, ...this.admit(h.key, h.mobiles, false, now, h.at) }));
  }
}

const opts = fc.record({
  window: fc.constantFrom(0, 5, 30),
  dailyCap: fc.constantFrom(0, 1, 2, 3),
  hours: fc.constantFrom("", "22:00-07:00", "08:00-22:00", "23:30-00:30"),
  outside: fc.constantFrom("hold" as const, "drop" as const),
  holdMax: fc.constantFrom(0, 1, 3, 100),
});

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    arbitrary: fc
      .record({
        key: fc.constantFrom("a", "b", "c"),
        mobiles: fc.subarray(NUMBERS, { minLength: 1 }),
        critical: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      })
      .map((alert) => ({ alert })),
    weight: 2,
  },
  { arbitrary: fc.constantFrom(MIN, 7 * MIN, 31 * MIN, 3 * H, 9 * H, 17 * H).map((step) => ({ step })), weight: 1 },
);

function compare(cal: Calendar, what: string, d: Released | Decision, e: Expect): void {
  assert.deepEqual(d.send?.mobile ?? [], e.send, `${what}: sent`);
  assert.deepEqual(d.suppressed?.guard.reasons ?? {}, e.reasons, `${what}: reasons`);
  assert.equal(d.suppressed?.guard.until, e.until === undefined ? undefined : cal.iso(e.until), `${what}: until`);
  const since = e.heldSince === undefined || !e.send.length ? undefined : cal.iso(e.heldSince);
  assert.equal(d.send?.guard.heldSince, since, `${what}: since`);
}

async function run(state: AccountState, clock: FakeClock, o: Opts, start: number, cmds: Cmd[]): Promise<void> {
  clock.advance(start);
  const cal = new Calendar(OFFSET, parseHours(o.hours));
  const model = new Model(o, cal);
  const guard = new Guard({ state, scope: "prop", clock, offsetMinutes: OFFSET, ...o });
  const sends: Array<{ key: string; mobile: string; at: number; critical: boolean }> = [];
  const record = (key: string, r: { send?: { mobile: string[] } }, critical: boolean) => {
    for (const mobile of r.send?.mobile ?? []) sends.push({ key, mobile, at: clock.now(), critical });
  };
  let id = 0;
  for (const c of cmds) {
    if ("step" in c) {
      clock.advance(c.step);
      const got = await guard.release();
      const want = model.release(clock.now());
      assert.deepEqual(
        got.map((r) => r.msg.id),
        want.map((h) => h.id),
        "released in arrival order",
      );
      got.forEach((r, i) => {
        compare(cal, `released ${String(r.msg.id)}`, r, want[i]);
        record(r.key, r, false);
      });
      continue;
    }
    const a = c.alert;
    const msg = { id: ++id, topic: a.key, ...(a.critical ? { priority: "critical" } : {}) };
    const d = await guard.decide({ msg, mobiles: a.mobiles });
    const m = model.decide(a, clock.now(), id);
    assert.equal(d.held, m.e === null, `alert ${id}: held`);
    if (m.e) compare(cal, `alert ${id}`, d, m.e);
    assert.deepEqual(
      d.overflow.map((r) => r.msg.id),
      m.overflow.map((h) => h.id),
      `alert ${id}: overflow`,
    );
    d.overflow.forEach((r, i) => compare(cal, `overflow ${String(r.msg.id)}`, r, m.overflow[i]));
    record(a.key, d, a.critical);
    assert.equal(guard.held, model.held.length, `alert ${id}: held count`);
  }

  // The promises of SPEC B8, checked on what was sent (not on the model).
  if (o.dailyCap) {
    const perDay = new Map<string, number>();
    for (const s of sends) {
      const k = `${s.mobile} ${cal.dayKey(s.at)}`;
      perDay.set(k, (perDay.get(k) ?? 0) + 1);
      assert.ok(perDay.get(k)! <= o.dailyCap, `${k}: over the cap`);
    }
  }
  if (o.window) {
    const last = new Map<string, number>();
    for (const s of sends.filter((x) => !x.critical)) {
      const k = `${s.key} ${s.mobile}`;
      const prev = last.get(k);
      assert.ok(prev === undefined || s.at - prev >= o.window * MIN, `${k}: twice within the window`);
      last.set(k, s.at);
    }
  }
}

const property = (make: (clock: FakeClock) => Promise<{ state: AccountState; close(): Promise<void> }>) =>
  fc.asyncProperty(
    opts,
    fc.integer({ min: 0, max: 24 * H }),
    fc.array(cmd, { maxLength: 60, size: "max" }),
    async (o, start, cmds) => {
      const clock = new FakeClock();
      const { state, close } = await make(clock);
      try {
        await run(state, clock, o, start, cmds);
      } finally {
        await close();
      }
    },
  );

describe("lib/alerts: guard property (a sequential model of SPEC B8)", function () {
  this.timeout(120_000);

  it("memory: decisions equal the model's; never over the cap per local day, never twice within a window", async () => {
    await fc.assert(
      property(async (clock) => {
        const state = new MemoryState({ clock });
        return { state, close: () => state.close() };
      }),
      { numRuns: 500 },
    );
  });

  describe("with a real redis-server", () => {
    let server: RedisServer;
    let n = 0;
    before(async () => {
      server = await startRedis();
    });
    after(() => server?.stop());

    it("redis: decisions equal the model's; never over the cap per local day, never twice within a window", async () => {
      await fc.assert(
        property(async (clock) => {
          const state = new RedisState({ url: server.url, prefix: `prop${++n}:`, scope: "acct", clock });
          await waitFor(() => state.mode === "shared", 5000, "Redis connected");
          return { state, close: () => state.close() };
        }),
        { numRuns: 40 },
      );
    });
  });
});
