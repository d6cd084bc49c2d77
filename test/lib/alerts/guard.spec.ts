// The alert guard's core (SPEC B8), every scenario on the memory state and on a real Redis, with
// the account in +08:00 while the machine runs UTC and time moved by a FakeClock.
import assert from "node:assert/strict";
import {
  alertKey,
  Guard,
  messagesFor,
  type GuardOptions,
  type Msg,
  type Released,
} from "../../../src/lib/alerts/guard";
import { GuardConfigError } from "../../../src/lib/alerts/hours";
import type { AccountState } from "../../../src/lib/state/index";
import { MemoryState } from "../../../src/lib/state/memory";
import { RedisState } from "../../../src/lib/state/redis";
import { startRedis, type RedisServer } from "../../support/redis";
import { FakeClock, waitFor } from "../../support/stub";

const A = "13800138000";
const B = "13900139000";
const C = "13700137000";

interface Rig {
  clock: FakeClock;
  state: AccountState;
  /** another handle on the same state: another instance with Redis, the same process with memory */
  twin(): Promise<AccountState>;
  cleanup(): Promise<void>;
}

type Backend = { name: string; make(clock: FakeClock): Promise<Rig> };

const memory: Backend = {
  name: "memory",
  make: async (clock) => {
    const state = new MemoryState({ clock });
    return { clock, state, twin: async () => state, cleanup: () => state.close() };
  },
};

function redisBackend(server: () => RedisServer): Backend {
  let n = 0;
  return {
    name: "redis",
    make: async (clock) => {
      const prefix = `guard${++n}:`;
      const open: RedisState[] = [];
      const connect = async () => {
        const s = new RedisState({ url: server().url, prefix, scope: "http://p\nacct", clock });
        open.push(s);
        await waitFor(() => s.mode === "shared", 5000, "Redis connected");
        return s;
      };
      const state = await connect();
      return { clock, state, twin: connect, cleanup: async () => void (await Promise.all(open.map((s) => s.close()))) };
    },
  };
}

/** Moves the fake clock forward to an instant written with its offset. */
function at(clock: FakeClock, iso: string): void {
  const d = Date.parse(iso) - clock.now();
  assert.ok(d >= 0, `the clock only moves forward (to ${iso})`);
  clock.advance(d);
}

const alert = (msg: Msg, ...mobiles: string[]) => ({ msg, mobiles });

function scenarios(backend: Backend): void {
  describe(`guard on ${backend.name}`, () => {
    let clock: FakeClock;
    let rig: Rig;
    const offs: Array<() => void> = [];
    const guard = (opts: Partial<GuardOptions> = {}, state?: AccountState) =>
      new Guard({ state: state ?? rig.state, scope: "node1", clock, offsetMinutes: 480, ...opts });
    /** listens for releases, collecting them in order */
    const collect = (g: Guard) => {
      const out: Released[] = [];
      const errors: unknown[] = [];
      offs.push(
        g.listen(
          (r) => out.push(r),
          (e) => errors.push(e),
        ),
      );
      return { out, errors };
    };

    beforeEach(async () => {
      clock = new FakeClock();
      rig = await backend.make(clock);
      at(clock, "2023-11-15T10:00:00+08:00");
    });
    afterEach(async () => {
      for (const off of offs.splice(0)) off();
      await rig.cleanup();
    });

    it("window: the same key to the same number once per window; other keys and numbers pass", async () => {
      const g = guard({ window: 30 });
      const d1 = await g.decide(alert({ topic: "cpu" }, A, B));
      assert.equal(d1.held, false);
      assert.deepEqual(d1.send, { mobile: [A, B], guard: { key: "cpu", allowed: 2, suppressed: 0 } });
      assert.equal(d1.suppressed, undefined);

      at(clock, "2023-11-15T10:10:00+08:00");
      const d2 = await g.decide(alert({ topic: "cpu" }, A, C));
      assert.deepEqual(d2.send, { mobile: [C], guard: { key: "cpu", allowed: 1, suppressed: 1 } });
      assert.deepEqual(d2.suppressed, {
        mobile: [A],
        guard: { key: "cpu", reasons: { [A]: "window" }, until: "2023-11-15T10:30:00+08:00" },
      });
      assert.deepEqual((await g.decide(alert({ topic: "disk" }, A))).send?.mobile, [A]);
      assert.deepEqual(g.last && { kind: g.last.kind, allowed: g.last.allowed, key: g.last.key }, {
        kind: "sent",
        allowed: 1,
        key: "disk",
      });

      at(clock, "2023-11-15T10:29:59+08:00");
      assert.deepEqual((await g.decide(alert({ topic: "cpu" }, A))).suppressed?.guard.reasons, { [A]: "window" });
      assert.deepEqual(g.last?.kind, "suppressed");
      assert.deepEqual(g.last?.reasons, ["window"]);
      at(clock, "2023-11-15T10:30:00+08:00");
      assert.deepEqual((await g.decide(alert({ topic: "cpu" }, A))).send?.mobile, [A]);
    });

    it("window 0 and no cap: everything passes, nothing is kept", async () => {
      const g = guard({ window: 0 });
      for (let i = 0; i < 5; i++) assert.deepEqual((await g.decide(alert({ topic: "cpu" }, A))).send?.mobile, [A]);
    });

    it("keys: topic, payload, topic+payload; objects give one key whatever their property order", async () => {
      const byPayload = guard({ key: "payload", scope: "p" });
      assert.ok((await byPayload.decide(alert({ topic: "x", payload: { a: 1, b: [2] } }, A))).send);
      const again = await byPayload.decide(alert({ topic: "y", payload: { b: [2], a: 1 } }, A));
      assert.deepEqual(again.suppressed?.guard.reasons, { [A]: "window" });
      assert.equal(again.suppressed?.guard.key, '{"a":1,"b":[2]}');

      const both = guard({ key: "topic+payload", scope: "tp" });
      assert.ok((await both.decide(alert({ topic: "cpu", payload: "high" }, A))).send);
      assert.ok((await both.decide(alert({ topic: "cpu", payload: "low" }, A))).send);
      assert.ok((await both.decide(alert({ topic: "mem", payload: "high" }, A))).send);
      assert.ok((await both.decide(alert({ topic: "cpu", payload: "high" }, A))).suppressed);

      const byTopic = guard({ scope: "t" });
      assert.ok((await byTopic.decide(alert({ topic: "cpu", payload: "high" }, A))).send);
      assert.ok((await byTopic.decide(alert({ topic: "cpu", payload: "low" }, A))).suppressed);
      // No topic: the empty key, one window for every such alert.
      assert.equal((await byTopic.decide(alert({ payload: 1 }, A))).send?.guard.key, "");
      assert.ok((await byTopic.decide(alert({ payload: 2 }, A))).suppressed);
    });

    it("two guard nodes (scopes) keep their windows apart on one account state", async () => {
      const g1 = guard({ window: 30, scope: "n1" });
      const g2 = guard({ window: 30, scope: "n2" });
      assert.ok((await g1.decide(alert({ topic: "cpu" }, A))).send);
      assert.ok((await g2.decide(alert({ topic: "cpu" }, A))).send);
      assert.deepEqual((await g1.decide(alert({ topic: "cpu" }, A))).suppressed?.guard.reasons, { [A]: "window" });
    });

    it("the daily count is the account's: two guard nodes with dailyCap 1, different alerts to one number, one passes (SPEC B8a)", async () => {
      const g1 = guard({ window: 30, dailyCap: 1, scope: "flow1" });
      const g2 = guard({ window: 30, dailyCap: 1, scope: "flow2" });
      assert.deepEqual((await g1.decide(alert({ topic: "disk full" }, A))).send?.mobile, [A]);
      const second = await g2.decide(alert({ topic: "link down" }, A, B));
      assert.deepEqual(second.send?.mobile, [B]);
      assert.deepEqual(second.suppressed?.guard.reasons, { [A]: "cap" });
    });

    it("a guard without a cap still counts what it lets through towards another's cap (SPEC B8a)", async () => {
      const open = guard({ window: 0, scope: "nocap" });
      const capped = guard({ window: 0, dailyCap: 2, scope: "capped" });
      assert.ok((await open.decide(alert({ topic: "a" }, A))).send);
      assert.ok((await open.decide(alert({ topic: "b" }, A))).send);
      assert.deepEqual((await capped.decide(alert({ topic: "c" }, A))).suppressed?.guard.reasons, { [A]: "cap" });
      // Each node checks against its own cap: the one without a cap lets it through.
      assert.ok((await open.decide(alert({ topic: "d" }, A))).send);
    });

    it("daily cap per number resets at local midnight (+08:00), not at the machine's UTC midnight", async () => {
      const g = guard({ window: 0, dailyCap: 2 });
      at(clock, "2023-11-15T12:00:00+08:00");
      assert.ok((await g.decide(alert({ topic: "a" }, A))).send);
      assert.deepEqual((await g.decide(alert({ topic: "b" }, A, B))).send?.mobile, [A, B]);
      at(clock, "2023-11-15T23:59:00+08:00");
      const capped = await g.decide(alert({ topic: "c" }, A, B));
      assert.deepEqual(capped.send, { mobile: [B], guard: { key: "c", allowed: 1, suppressed: 1 } });
      assert.deepEqual(capped.suppressed?.guard, {
        key: "c",
        reasons: { [A]: "cap" },
        until: "2023-11-16T00:00:00+08:00",
      });
      // Local midnight is 16:00Z: the UTC date is still the 15th, the account's day is new.
      at(clock, "2023-11-16T00:00:00+08:00");
      assert.equal(new Date(clock.now()).getUTCDate(), 15);
      assert.ok((await g.decide(alert({ topic: "d" }, A))).send);
      at(clock, "2023-11-16T07:59:00+08:00");
      assert.ok((await g.decide(alert({ topic: "e" }, A))).send);
      // The machine's midnight (00:00Z = 08:00 local) starts nothing.
      at(clock, "2023-11-16T08:00:00+08:00");
      assert.equal(new Date(clock.now()).getUTCHours(), 0);
      assert.deepEqual((await g.decide(alert({ topic: "f" }, A))).suppressed?.guard.reasons, { [A]: "cap" });
    });

    it("a number refused by the window does not use up its cap", async () => {
      const g = guard({ window: 30, dailyCap: 2 });
      assert.ok((await g.decide(alert({ topic: "a" }, A))).send);
      for (let i = 0; i < 5; i++) assert.ok((await g.decide(alert({ topic: "a" }, A))).suppressed);
      assert.ok((await g.decide(alert({ topic: "b" }, A))).send);
      assert.deepEqual((await g.decide(alert({ topic: "c" }, A))).suppressed?.guard.reasons, { [A]: "cap" });
    });

    it("cap outside hours: until is when the hours begin after local midnight", async () => {
      const g = guard({ window: 0, dailyCap: 1, hours: "08:00-22:00" });
      assert.ok((await g.decide(alert({ topic: "a" }, A))).send);
      assert.equal((await g.decide(alert({ topic: "b" }, A))).suppressed?.guard.until, "2023-11-16T08:00:00+08:00");
    });

    it("hours 22:00-07:00 with drop: outside go to output 2 with hours, inside pass, across midnight", async () => {
      const g = guard({ window: 30, hours: "22:00-07:00", outside: "drop" });
      at(clock, "2023-11-15T12:00:00+08:00");
      const out = await g.decide(alert({ topic: "cpu" }, A, B));
      assert.equal(out.held, false);
      assert.equal(out.send, undefined);
      assert.deepEqual(out.suppressed, {
        mobile: [A, B],
        guard: { key: "cpu", reasons: { [A]: "hours", [B]: "hours" }, until: "2023-11-15T22:00:00+08:00" },
      });
      assert.equal(g.held, 0);
      at(clock, "2023-11-15T22:00:00+08:00");
      // Dropped alerts took no window: the first one inside the hours goes.
      assert.ok((await g.decide(alert({ topic: "cpu" }, A))).send);
      at(clock, "2023-11-16T06:59:00+08:00");
      assert.ok((await g.decide(alert({ topic: "disk" }, A))).send);
      at(clock, "2023-11-16T07:00:00+08:00");
      assert.equal((await g.decide(alert({ topic: "net" }, A))).suppressed?.guard.until, "2023-11-16T22:00:00+08:00");
    });

    it("hold: kept outside hours, released in arrival order when they begin, each re-checked against window and cap", async () => {
      const g = guard({ window: 30, dailyCap: 2, hours: "22:00-07:00" });
      const { out, errors } = collect(g);
      at(clock, "2023-11-15T12:00:00+08:00");
      const held = [
        alert({ topic: "cpu", payload: "1" }, A, B),
        alert({ topic: "disk", payload: "2" }, A),
        alert({ topic: "cpu", payload: "3" }, A, B),
        alert({ topic: "net", payload: "4" }, A),
      ];
      for (const a of held) {
        const d = await g.decide(a);
        assert.deepEqual([d.held, d.send, d.suppressed, d.overflow], [true, undefined, undefined, []]);
      }
      assert.equal(g.held, 4);
      assert.equal(g.last?.kind, "held");
      // Critical bypasses the hours (and counts: B has one left today).
      at(clock, "2023-11-15T21:00:00+08:00");
      const crit = await g.decide(alert({ topic: "x", priority: "critical" }, B));
      assert.deepEqual(crit.send?.mobile, [B]);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(out.length, 0, "nothing released before the hours");

      at(clock, "2023-11-15T22:00:00+08:00");
      await waitFor(() => out.length === 4, 5000, "4 released");
      assert.deepEqual(errors, []);
      assert.deepEqual(
        out.map((r) => r.msg.payload),
        ["1", "2", "3", "4"],
      );
      const since = "2023-11-15T12:00:00+08:00";
      assert.deepEqual(out[0].send, {
        mobile: [A, B],
        guard: { key: "cpu", allowed: 2, suppressed: 0, heldSince: since },
      });
      assert.deepEqual(out[1].send, {
        mobile: [A],
        guard: { key: "disk", allowed: 1, suppressed: 0, heldSince: since },
      });
      assert.equal(out[2].send, undefined);
      assert.deepEqual(out[2].suppressed?.guard, {
        key: "cpu",
        reasons: { [A]: "window", [B]: "window" },
        until: "2023-11-15T22:30:00+08:00",
      });
      // A had 2 today (cpu, disk): capped until local midnight, which is inside 22:00-07:00.
      assert.deepEqual(out[3].suppressed?.guard, {
        key: "net",
        reasons: { [A]: "cap" },
        until: "2023-11-16T00:00:00+08:00",
      });
      assert.equal(g.held, 0);
      assert.equal(g.last?.kind, "released");
      // The list is gone: a second release has nothing.
      assert.deepEqual(await g.release(), []);
    });

    it("hold: a released alert splits between outputs 1 and 2", async () => {
      const g = guard({ window: 30, hours: "22:00-07:00" });
      const { out } = collect(g);
      at(clock, "2023-11-15T21:50:00+08:00");
      assert.equal((await g.decide(alert({ topic: "cpu", priority: "critical" }, A))).send?.mobile[0], A);
      assert.equal((await g.decide(alert({ topic: "cpu" }, A, B))).held, true);
      at(clock, "2023-11-15T22:00:00+08:00");
      await waitFor(() => out.length === 1, 5000, "released");
      assert.deepEqual(out[0].send, {
        mobile: [B],
        guard: { key: "cpu", allowed: 1, suppressed: 1, heldSince: "2023-11-15T21:50:00+08:00" },
      });
      assert.deepEqual(out[0].suppressed?.guard.reasons, { [A]: "window" });
      assert.equal(out[0].suppressed?.guard.until, "2023-11-15T22:20:00+08:00");
    });

    it("holdMax: beyond it the oldest held alert goes to output 2 with overflow", async () => {
      const g = guard({ window: 30, hours: "22:00-07:00", holdMax: 2 });
      const { out } = collect(g);
      at(clock, "2023-11-15T12:00:00+08:00");
      assert.deepEqual((await g.decide(alert({ topic: "a", payload: 1 }, A))).overflow, []);
      assert.deepEqual((await g.decide(alert({ topic: "b", payload: 2 }, A, B))).overflow, []);
      const third = await g.decide(alert({ topic: "c", payload: 3 }, A));
      assert.equal(third.held, true);
      assert.equal(third.overflow.length, 1);
      assert.deepEqual(third.overflow[0].msg, { topic: "a", payload: 1 });
      assert.deepEqual(third.overflow[0].suppressed, {
        mobile: [A],
        guard: { key: "a", reasons: { [A]: "overflow" }, until: "2023-11-15T22:00:00+08:00" },
      });
      const fourth = await g.decide(alert({ topic: "d", payload: 4 }, A));
      assert.deepEqual(fourth.overflow[0].suppressed?.guard.reasons, { [A]: "overflow", [B]: "overflow" });
      assert.equal(fourth.overflow[0].key, "b");
      assert.equal(g.held, 2);
      at(clock, "2023-11-15T22:00:00+08:00");
      await waitFor(() => out.length === 2, 5000, "released");
      assert.deepEqual(
        out.map((r) => r.msg.payload),
        [3, 4],
      );
    });

    it("holdMax 0: nothing is kept, every alert outside hours overflows at once", async () => {
      const g = guard({ hours: "22:00-07:00", holdMax: 0 });
      at(clock, "2023-11-15T12:00:00+08:00");
      const d = await g.decide(alert({ topic: "a", payload: 1 }, A));
      assert.equal(d.held, true);
      assert.deepEqual(d.overflow[0]?.suppressed?.guard.reasons, { [A]: "overflow" });
      assert.equal(g.held, 0);
    });

    it("critical bypasses hours and window, never the cap; its send counts towards the window", async () => {
      const g = guard({ window: 30, dailyCap: 2, hours: "08:00-22:00" });
      at(clock, "2023-11-15T23:00:00+08:00");
      const crit = (topic: string) => alert({ topic, priority: "critical" }, A);
      assert.deepEqual((await g.decide(crit("db"))).send?.mobile, [A]);
      assert.deepEqual((await g.decide(crit("db"))).send?.mobile, [A]);
      const capped = await g.decide(crit("db"));
      // Critical ignores the hours, so it may go right at local midnight.
      assert.deepEqual(capped.suppressed?.guard, {
        key: "db",
        reasons: { [A]: "cap" },
        until: "2023-11-16T00:00:00+08:00",
      });
      assert.equal(g.held, 0);
      at(clock, "2023-11-16T10:00:00+08:00");
      assert.ok((await g.decide(crit("web"))).send);
      at(clock, "2023-11-16T10:05:00+08:00");
      const after = await g.decide(alert({ topic: "web" }, A));
      assert.deepEqual(after.suppressed?.guard, {
        key: "web",
        reasons: { [A]: "window" },
        until: "2023-11-16T10:30:00+08:00",
      });
      // priority other than "critical" is an ordinary alert
      at(clock, "2023-11-16T23:00:00+08:00");
      assert.equal((await g.decide(alert({ topic: "x", priority: "high" }, B))).held, true);
    });

    it("two instances deciding the same alerts at the same time let each through once", async () => {
      const twin = await rig.twin();
      const g1 = guard({ window: 30 });
      const g2 = guard({ window: 30 }, twin);
      for (let i = 0; i < 20; i++) {
        const a = alert({ topic: `alert${i}` }, A, B, C);
        const [d1, d2] = await Promise.all([g1.decide(a), g2.decide(a)]);
        const sent = [...(d1.send?.mobile ?? []), ...(d2.send?.mobile ?? [])].sort();
        const suppressed = [...(d1.suppressed?.mobile ?? []), ...(d2.suppressed?.mobile ?? [])].sort();
        assert.deepEqual(sent, [A, B, C].sort(), `alert ${i}`);
        assert.deepEqual(suppressed, [A, B, C].sort(), `alert ${i}`);
      }
    });

    it("two instances listening: held alerts are released once, in order, by one of them", async () => {
      const g1 = guard({ hours: "22:00-07:00" });
      const g2 = guard({ hours: "22:00-07:00" }, await rig.twin());
      const r1 = collect(g1);
      const r2 = collect(g2);
      at(clock, "2023-11-15T12:00:00+08:00");
      for (let i = 0; i < 6; i++) await (i % 2 ? g2 : g1).decide(alert({ topic: `t${i}`, payload: i }, A));
      at(clock, "2023-11-15T22:00:00+08:00");
      await waitFor(() => r1.out.length + r2.out.length >= 6, 5000, "released");
      await new Promise((r) => setTimeout(r, 300));
      const all = [...r1.out, ...r2.out];
      assert.equal(all.length, 6);
      assert.ok(r1.out.length === 0 || r2.out.length === 0, "one instance released them all");
      assert.deepEqual(
        all.map((r) => r.msg.payload),
        [0, 1, 2, 3, 4, 5],
      );
      assert.equal(await g2.refreshCount(), 0);
    });

    it("a redeploy (a new guard for the same node) keeps counters and held alerts, and their count", async () => {
      const old = guard({ window: 30, hours: "22:00-07:00" });
      const offOld = old.listen(
        () => assert.fail("the old node released"),
        () => undefined,
      );
      at(clock, "2023-11-15T12:00:00+08:00");
      await old.decide(alert({ topic: "a", payload: 1 }, A));
      await old.decide(alert({ topic: "b", payload: 2 }, A));
      offOld();
      const g = guard({ window: 30, hours: "22:00-07:00" }, await rig.twin());
      const { out } = collect(g);
      await waitFor(() => g.held === 2, 5000, "held count read back");
      at(clock, "2023-11-15T22:00:00+08:00");
      await waitFor(() => out.length === 2, 5000, "released");
      assert.deepEqual(
        out.map((r) => r.msg.payload),
        [1, 2],
      );
      assert.ok((await g.decide(alert({ topic: "a" }, A))).suppressed, "the window of the released alert holds");
    });

    it("held alerts whose hours changed (a redeploy with other hours) are released when the node starts", async () => {
      const old = guard({ hours: "22:00-07:00" });
      at(clock, "2023-11-15T12:00:00+08:00");
      await old.decide(alert({ topic: "a", payload: 1 }, A));
      const g = guard({ hours: "" });
      const { out } = collect(g);
      clock.advance(0);
      await waitFor(() => out.length === 1, 5000, "released");
      assert.deepEqual(out[0].send?.mobile, [A]);
    });

    it("a release that comes late (after the hours ended) keeps the alerts for the next hours", async () => {
      const g = guard({ hours: "22:00-07:00" });
      at(clock, "2023-11-15T12:00:00+08:00");
      await g.decide(alert({ topic: "a", payload: 1 }, A));
      at(clock, "2023-11-16T08:00:00+08:00");
      assert.deepEqual(await g.release(), []);
      assert.equal(g.held, 1);
      at(clock, "2023-11-16T22:00:00+08:00");
      const r = await g.release();
      assert.deepEqual(r[0]?.send?.guard.heldSince, "2023-11-15T12:00:00+08:00");
    });

    it("held msgs keep their JSON-safe properties; req, res and cycles are left out; too large ones overflow", async () => {
      const g = guard({ hours: "22:00-07:00" });
      at(clock, "2023-11-15T12:00:00+08:00");
      const msg: Msg = { topic: "a", payload: { v: 1 }, req: { socket: {} }, res: {}, when: new Date(0), n: 10n };
      (msg.payload as Msg).self = msg;
      assert.equal((await g.decide(alert(msg, A))).held, true);
      const big = await g.decide(alert({ topic: "b", payload: "x".repeat(70_000) }, A, B));
      assert.equal(big.held, false);
      assert.deepEqual(big.suppressed?.guard.reasons, { [A]: "overflow", [B]: "overflow" });
      assert.deepEqual(big.overflow, []);
      at(clock, "2023-11-15T22:00:00+08:00");
      const [r] = await g.release();
      assert.deepEqual(r.msg, { topic: "a", payload: { v: 1 }, when: "1970-01-01T00:00:00.000Z", n: "10" });
    });

    it("discard (the node removed for good) empties its held alerts and says how many", async () => {
      const g = guard({ hours: "22:00-07:00" });
      at(clock, "2023-11-15T12:00:00+08:00");
      await g.decide(alert({ topic: "a" }, A));
      await g.decide(alert({ topic: "b" }, A));
      assert.equal(await g.discard(), 2);
      assert.equal(g.held, 0);
      at(clock, "2023-11-15T22:00:00+08:00");
      assert.deepEqual(await g.release(), []);
    });

    it("a number given twice in one alert is one SMS", async () => {
      const g = guard({ window: 0 });
      const d = await g.decide(alert({ topic: "cpu" }, A, B, A));
      assert.deepEqual(d.send, { mobile: [A, B], guard: { key: "cpu", allowed: 2, suppressed: 0 } });
      assert.equal(d.suppressed, undefined);
    });

    it("an alert to more than 1000 numbers (several admits): each number checked and counted once", async () => {
      const many = Array.from({ length: 1001 }, (_, i) => `139${String(i).padStart(8, "0")}`);
      const open = guard({ window: 0, scope: "open" });
      const d = await open.decide(alert({ topic: "storm" }, ...many));
      assert.deepEqual(d.send?.mobile, many);
      assert.equal(d.suppressed, undefined);
      // One SMS each so far: a cap of 2 lets one more through, to the first and the last number.
      const capped = guard({ window: 0, dailyCap: 2, scope: "capped" });
      assert.deepEqual((await capped.decide(alert({ topic: "x" }, many[0], many[1000]))).send?.mobile, [
        many[0],
        many[1000],
      ]);
      assert.deepEqual((await capped.decide(alert({ topic: "y" }, many[0]))).suppressed?.guard.reasons, {
        [many[0]]: "cap",
      });
    });

    it("critical with window 0 is sent and takes no window", async () => {
      const g = guard({ window: 0 });
      for (let i = 0; i < 2; i++) {
        assert.deepEqual((await g.decide(alert({ topic: "db", priority: "critical" }, A))).send?.mobile, [A]);
      }
      assert.deepEqual((await g.decide(alert({ topic: "db" }, A))).send?.mobile, [A]);
    });

    it("long keys (a whole payload) are hashed apart: two different ones both pass the window", async () => {
      const g = guard({ window: 30, key: "payload" });
      const p1 = `disk ${"x".repeat(100)} 1`;
      const p2 = `disk ${"x".repeat(100)} 2`;
      assert.ok((await g.decide(alert({ payload: p1 }, A))).send);
      assert.ok((await g.decide(alert({ payload: p2 }, A))).send);
      assert.deepEqual((await g.decide(alert({ payload: p1 }, A))).suppressed?.guard.reasons, { [A]: "window" });
    });

    it("the deadline is the node's own: removing another guard node does not lose this one's release", async () => {
      const g1 = guard({ hours: "22:00-07:00", scope: "keep" });
      const g2 = guard({ hours: "22:00-07:00", scope: "gone" });
      const { out } = collect(g1);
      at(clock, "2023-11-15T12:00:00+08:00");
      assert.equal((await g1.decide(alert({ topic: "a", payload: 1 }, A))).held, true);
      assert.equal((await g2.decide(alert({ topic: "b", payload: 2 }, A))).held, true);
      assert.equal(await g2.discard(), 1);
      at(clock, "2023-11-15T22:00:00+08:00");
      await waitFor(() => out.length === 1, 5000, "the kept node released");
      assert.deepEqual(out[0].msg, { topic: "a", payload: 1 });
    });

    it("held msgs keep nested req/res and null properties", async () => {
      const g = guard({ hours: "22:00-07:00" });
      at(clock, "2023-11-15T12:00:00+08:00");
      const msg: Msg = { topic: "a", payload: { req: 1, res: { ok: true }, none: null }, extra: null };
      assert.equal((await g.decide(alert(msg, A))).held, true);
      at(clock, "2023-11-15T22:00:00+08:00");
      const [r] = await g.release();
      assert.deepEqual(r.msg, msg);
    });

    it("held entries that cannot be read are left out of a release and of an overflow", async () => {
      const list = "guard:node1:held";
      const bad = [
        "not json",
        JSON.stringify({ k: 1, m: [A], t: 1, msg: {} }),
        JSON.stringify({ m: [A], t: 1, msg: {} }),
        JSON.stringify({ k: "a", m: [A], t: "1", msg: {} }),
        JSON.stringify({ k: "a", m: [A], msg: {} }),
        JSON.stringify({ k: "a", m: [A], t: 1 }),
        JSON.stringify({ k: "a", m: [A], t: 1, msg: 5 }),
      ];
      const g = guard({ window: 0 });
      // Written by hand where the guard keeps its list: what another version or a damaged store left.
      await rig.state.append(list, bad, 1000, 60_000);
      assert.deepEqual(await g.release(), []);
      assert.equal(g.last, undefined, "nothing released, nothing to show");

      const ok = JSON.stringify({ k: "cpu", m: [B], t: clock.now(), msg: { topic: "cpu", payload: 7 } });
      await rig.state.append(list, [...bad, ok], 1000, 60_000);
      const out = await g.release();
      assert.deepEqual(
        out.map((r) => [r.msg, r.send?.mobile]),
        [[{ topic: "cpu", payload: 7 }, [B]]],
      );

      const small = guard({ hours: "22:00-07:00", holdMax: 1, scope: "small" });
      at(clock, "2023-11-15T12:00:00+08:00");
      await rig.state.append("guard:small:held", ["not json"], 1000, 60_000);
      const d = await small.decide(alert({ topic: "b" }, A));
      assert.deepEqual([d.held, d.overflow], [true, []]);
    });

    it("a release whose admit fails keeps the held alerts, counted once, and listen says the error", async () => {
      let failing = true;
      const flaky = new Proxy(rig.state, {
        get(target, p) {
          if (p === "admit" && failing) return () => Promise.reject(new Error("state down"));
          const v = Reflect.get(target, p) as unknown;
          return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const g = guard({ hours: "22:00-07:00" }, flaky);
      at(clock, "2023-11-15T12:00:00+08:00");
      await g.decide(alert({ topic: "a", payload: 1 }, A));
      await g.decide(alert({ topic: "b", payload: 2 }, B));
      at(clock, "2023-11-15T22:00:00+08:00");
      await assert.rejects(g.release(), /state down/);
      assert.equal(g.held, 2);
      assert.equal(await g.refreshCount(), 2);

      const listener = guard({ hours: "22:00-07:00" }, flaky);
      const { out, errors } = collect(listener);
      // Its start moves the deadline to now (in the hours): the fake clock fires it.
      await waitFor(
        () => {
          clock.advance(0);
          return errors.length > 0;
        },
        5000,
        "the failed release is said",
      );
      assert.match(String(errors[0]), /state down/);
      assert.equal(out.length, 0);
      failing = false;
      const r = await g.release();
      assert.deepEqual(
        r.map((x) => x.msg.payload),
        [1, 2],
      );
    });

    it("the last decision (the node's status) counts numbers and names each reason once", async () => {
      const g = guard({ window: 30, hours: "22:00-07:00", holdMax: 2 });
      const last = () => g.last && { ...g.last, at: undefined };
      at(clock, "2023-11-15T12:00:00+08:00");
      await g.decide(alert({ topic: "a" }, A, B));
      assert.deepEqual(last(), { at: undefined, key: "a", kind: "held", allowed: 0, suppressed: 0, reasons: [] });
      await g.decide(alert({ topic: "b" }, A));
      await g.decide(alert({ topic: "c" }, A, B));
      assert.deepEqual(last(), {
        at: undefined,
        key: "c",
        kind: "held",
        allowed: 0,
        suppressed: 2,
        reasons: ["overflow"],
      });
      // b and c are held; c's window is taken for both numbers before they are released.
      at(clock, "2023-11-15T21:45:00+08:00");
      await g.decide(alert({ topic: "c", priority: "critical" }, A, B));
      at(clock, "2023-11-15T22:00:00+08:00");
      const out = await g.release();
      assert.deepEqual(
        out.map((r) => r.key),
        ["b", "c"],
      );
      assert.deepEqual(last(), {
        at: undefined,
        key: "c",
        kind: "released",
        allowed: 1,
        suppressed: 2,
        reasons: ["window"],
      });
      at(clock, "2023-11-15T22:05:00+08:00");
      await g.decide(alert({ topic: "c" }, A, C));
      assert.deepEqual(last(), {
        at: undefined,
        key: "c",
        kind: "sent",
        allowed: 1,
        suppressed: 1,
        reasons: ["window"],
      });
      await g.decide(alert({ topic: "d" }, C));
      assert.deepEqual(last(), { at: undefined, key: "d", kind: "sent", allowed: 1, suppressed: 0, reasons: [] });
    });
  });
}

describe("lib/alerts: guard", () => {
  it("refuses options that cannot work, in en-US and zh-CN", () => {
    const state = new MemoryState();
    const make = (o: Partial<GuardOptions>) => () => new Guard({ state, scope: "n", ...o });
    assert.throws(make({ hours: "8-22" }), GuardConfigError);
    assert.throws(make({ hours: "8-22", lang: "zh-CN" }), /发送时段/);
    assert.throws(make({ window: -1 }), /window must be a number of at least 0, got -1/);
    assert.throws(make({ dailyCap: 1.5 }), /dailyCap/);
    assert.throws(make({ holdMax: Number.NaN }), /holdMax/);
    assert.throws(make({ outside: "later" as never }), /outside must be one of hold, drop, got later/);
    assert.throws(make({ key: "body" as never, lang: "zh-CN" }), /key 必须是 topic, payload, topic\+payload 之一/);
    assert.throws(make({ scope: "" }), /scope/);
    assert.throws(make({ scope: undefined as never }), /scope/);
    assert.throws(make({ holdMax: 1.5 }), /holdMax/);
  });

  it("keys: strings as they are, numbers as text, objects as JSON with sorted properties, buffers as their text", () => {
    assert.equal(alertKey({ topic: "cpu" }), "cpu");
    assert.equal(alertKey({}), "");
    assert.equal(alertKey({ topic: null }), "");
    assert.equal(alertKey({ topic: 5 }), "5");
    assert.equal(alertKey({ topic: true }), "true");
    assert.equal(alertKey({ payload: { b: 1, a: [{ d: 1, c: 2 }] } }, "payload"), '{"a":[{"c":2,"d":1}],"b":1}');
    assert.equal(alertKey({ payload: Buffer.from("温度过高") }, "payload"), "温度过高");
    assert.equal(alertKey({ payload: Buffer.from([0xff, 0x00]) }, "payload"), "base64:/wA=");
    assert.equal(alertKey({ payload: new Date(0) }, "payload"), '"1970-01-01T00:00:00.000Z"');
    assert.equal(alertKey({ topic: "cpu", payload: "high" }, "topic+payload"), '["cpu","high"]');
    assert.equal(alertKey({ topic: "cpu" }, "topic+payload"), '["cpu",""]');
    assert.equal(alertKey({}, "topic+payload"), "");
    const cyclic: Msg = { a: 1 };
    cyclic.self = cyclic;
    assert.equal(alertKey({ payload: cyclic }, "payload"), '{"a":1}');
  });

  it("keys: NaN, Infinity and BigInt as their text; inside objects null, BigInt, undefined, repeats", () => {
    // Each of these must stay apart from the empty key (no topic) and from one another.
    assert.equal(alertKey({ topic: Number.NaN }), "NaN");
    assert.equal(alertKey({ topic: Number.POSITIVE_INFINITY }), "Infinity");
    assert.equal(alertKey({ topic: 10n }), "10");
    assert.equal(alertKey({ topic: () => 1 }), "");
    assert.equal(alertKey({ payload: "disk" }, "topic+payload"), '["","disk"]');
    const shared = { v: 1 };
    assert.equal(
      alertKey({ payload: { n: 10n, none: null, list: [1, undefined, 2], a: shared, b: shared } }, "payload"),
      '{"a":{"v":1},"b":{"v":1},"list":[1,null,2],"n":"10","none":null}',
    );
  });

  it("messagesFor: output 1 is the msg itself, output 2 a clone; other properties are kept", () => {
    const clone = (m: Msg) => JSON.parse(JSON.stringify(m)) as Msg;
    const msg: Msg = { topic: "cpu", payload: "hot", mobile: "x", _msgid: "1" };
    const [o1, o2] = messagesFor(
      msg,
      {
        key: "cpu",
        send: { mobile: [A], guard: { key: "cpu", allowed: 1, suppressed: 1 } },
        suppressed: { mobile: [B], guard: { key: "cpu", reasons: { [B]: "window" }, until: "t" } },
      },
      clone,
    );
    assert.equal(o1, msg);
    assert.deepEqual(o1, {
      topic: "cpu",
      payload: "hot",
      mobile: [A],
      _msgid: "1",
      guard: { key: "cpu", allowed: 1, suppressed: 1 },
    });
    assert.notEqual(o2, msg);
    assert.deepEqual(o2, {
      topic: "cpu",
      payload: "hot",
      mobile: [B],
      _msgid: "1",
      guard: { key: "cpu", reasons: { [B]: "window" }, until: "t" },
    });
    const only2 = { topic: "x" };
    const [n1, n2] = messagesFor(
      only2,
      { key: "x", suppressed: { mobile: [A], guard: { key: "x", reasons: {}, until: "t" } } },
      clone,
    );
    assert.equal(n1, null);
    assert.equal(n2, only2);
    assert.deepEqual(messagesFor({}, { key: "" }, clone), [null, null]);
  });

  scenarios(memory);

  describe("with a real redis-server", function () {
    this.timeout(30_000);
    let server: RedisServer;
    before(async () => {
      server = await startRedis();
    });
    after(() => server?.stop());

    scenarios(redisBackend(() => server));

    it("a guard that starts before Redis is connected reads Redis's held count once it is", async () => {
      const clock = new FakeClock();
      at(clock, "2023-11-15T12:00:00+08:00");
      const open = (prefix: string) => new RedisState({ url: server.url, prefix, scope: "http://p\nacct", clock });
      const first = open("gmode:");
      let late: RedisState | undefined;
      const make = (state: AccountState) =>
        new Guard({ state, scope: "node1", clock, offsetMinutes: 480, hours: "22:00-07:00" });
      try {
        await waitFor(() => first.mode === "shared", 5000, "Redis connected");
        const g1 = make(first);
        await g1.decide({ msg: { topic: "a" }, mobiles: [A] });
        await g1.decide({ msg: { topic: "b" }, mobiles: [A] });
        // Another instance starting now: its guard listens before its state has connected.
        late = open("gmode:");
        assert.notEqual(late.mode, "shared", "the second state is still connecting");
        const g2 = make(late);
        const counts: number[] = [];
        const errors: unknown[] = [];
        const off = g2.listen(
          () => undefined,
          (e) => errors.push(e),
          (n) => counts.push(n),
        );
        try {
          // Its first start went to a state still connecting; connected, it starts again.
          await waitFor(() => g2.held === 2, 5000, "the count read from Redis");
          assert.equal(counts.at(-1), 2);
        } finally {
          off();
        }
      } finally {
        await Promise.all([first.close(), late?.close()]);
      }
    });

    it("every key the guard keeps has a TTL, and every key shares the account's hash tag", async () => {
      const clock = new FakeClock();
      const state = new RedisState({ url: server.url, prefix: "gttl:", scope: "http://p\nacct", clock });
      try {
        await waitFor(() => state.mode === "shared", 5000, "Redis connected");
        at(clock, "2023-11-15T12:00:00+08:00");
        const g = new Guard({ state, scope: "node1", clock, window: 30, dailyCap: 3, hours: "22:00-07:00" });
        await g.decide({ msg: { topic: "crit", priority: "critical" }, mobiles: [A] });
        await g.decide({ msg: { topic: "held" }, mobiles: [A] });
        // A whole payload as the key: hashed in key names, not kept in them.
        await g.decide({ msg: { topic: `crit ${"x".repeat(2000)}`, priority: "critical" }, mobiles: [A] });
        const keys = (await server.command("KEYS", "gttl:*")).split("\r\n").filter((l) => l.startsWith("gttl:"));
        // window, cap, held list and its count, the deadlines
        assert.ok(keys.length >= 5, keys.join(" "));
        const tags = new Set(keys.map((k) => /\{([0-9a-f]+)\}/.exec(k)?.[1]));
        assert.equal(tags.size, 1);
        for (const k of keys) {
          const ttl = Number((await server.command("PTTL", k)).replace(/^:/, ""));
          assert.ok(ttl > 0, `${k} has no TTL (${ttl})`);
          assert.ok(k.length < 200, `a key name of ${k.length} characters`);
          // The held list and its count live a day past the hours' start (10 h away), no longer.
          if (k.includes("guard:node1:held")) assert.ok(ttl <= 35 * 3_600_000, `${k} is kept too long (${ttl} ms)`);
        }
      } finally {
        await state.close();
      }
    });

    // Last in this block: it restarts the server.
    it("a stopped guard does not start again when Redis reconnects", async () => {
      const clock = new FakeClock();
      at(clock, "2023-11-15T12:00:00+08:00");
      const state = new RedisState({ url: server.url, prefix: "gstop:", scope: "http://p\nacct", clock });
      try {
        await waitFor(() => state.mode === "shared", 5000, "Redis connected");
        const g = new Guard({ state, scope: "node1", clock, offsetMinutes: 480, hours: "22:00-07:00" });
        const counts: number[] = [];
        const off = g.listen(
          () => undefined,
          () => undefined,
          (n) => counts.push(n),
        );
        await waitFor(() => counts.length === 1, 5000, "the count read at the start");
        off();
        const modes: string[] = [];
        const offModes = state.onMode((m) => modes.push(m));
        await server.restart({ keepData: true });
        await waitFor(() => modes.includes("shared"), 15_000, "Redis reconnected");
        offModes();
        // Counts are read one after another: a start on the reconnect would have been heard first.
        await g.refreshCount();
        assert.deepEqual(counts, [0]);
      } finally {
        await state.close();
      }
    });
  });
});

describe("lib/alerts: guard memory stays bounded", () => {
  it("after a day every counter and held list has expired from the memory state", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const g = new Guard({
      state,
      scope: "n",
      clock,
      offsetMinutes: 480,
      window: 30,
      dailyCap: 5,
      hours: "22:00-07:00",
    });
    for (let i = 0; i < 200; i++) {
      await g.decide({ msg: { topic: `k${i}`, priority: i % 2 ? "critical" : undefined }, mobiles: [A, B] });
    }
    assert.ok(state.size.keys > 0);
    clock.advance(3 * 24 * 3_600_000);
    await state.claim("sweep", 1);
    assert.equal(state.size.keys, 1, "only the sweeping claim is left");
  });

  it("a decision keeps one window and one day count per number, nothing more", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    const g = new Guard({ state, scope: "n", clock, offsetMinutes: 480, window: 30 });
    await g.decide({ msg: { topic: "a" }, mobiles: [A, B] });
    assert.equal(state.size.keys, 4);
    await g.decide({ msg: { topic: "b", priority: "critical" }, mobiles: [A] });
    // The critical one takes its window; the day count of A is the one already there.
    assert.equal(state.size.keys, 5);
  });

  it("held alerts never released, and their count, are gone a day after the hours begin", async () => {
    const clock = new FakeClock();
    // The memory state expires by the clock it is given; Redis by its own (its TTLs are checked above).
    const state = new MemoryState({ clock });
    const g = new Guard({ state, scope: "n", clock, offsetMinutes: 480, hours: "22:00-07:00" });
    at(clock, "2023-11-15T12:00:00+08:00");
    await g.decide(alert({ topic: "a", payload: 1 }, A));
    await g.decide(alert({ topic: "b", payload: 2 }, A));
    // Reading the count twice: a read must not change what is kept.
    assert.equal(await g.refreshCount(), 2);
    assert.equal(await g.refreshCount(), 2);
    at(clock, "2023-11-16T22:30:00+08:00");
    assert.equal(await g.refreshCount(), 0);
    assert.deepEqual(await g.release(), []);

    // Kept back by a late release: a day past the next hours' start, too.
    at(clock, "2023-11-17T12:00:00+08:00");
    assert.equal((await g.decide(alert({ topic: "c", payload: 3 }, A))).held, true);
    at(clock, "2023-11-18T08:00:00+08:00");
    assert.deepEqual(await g.release(), []);
    assert.equal(g.held, 1);
    at(clock, "2023-11-19T22:30:00+08:00");
    assert.deepEqual(await g.release(), []);
  });
});
