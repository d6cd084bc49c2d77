// The on-call chain (SPEC B11) over the account state, with an injected clock: steps, waits,
// repeats, rotation at the handover, codes per number, replies, resolves, bundles, summaries. Each
// scenario runs on the memory state and on a real redis-server; replies and deadlines reach
// either of two instances.
import assert from "node:assert/strict";
import { OnCall, OncallError, repliesFor, type EventPayload, type NotifyMsg } from "../../../src/lib/alerts/oncall";
import { MemoryState } from "../../../src/lib/state/memory";
import { FakeClock } from "../../support/stub";
import { A, B, C, MIN, events, memoryEnv, notifies, redisEnv, type Env, type EnvMaker } from "./oncall-env";

const ROTA = [A, B, C];

function scenarios(maker: EnvMaker) {
  describe(`on ${maker.name}`, () => {
    let env: Env;
    afterEach(() => env?.close());

    const make = async (opts: Record<string, unknown> = {}) => {
      env = await maker.make({ rota: ROTA, ...opts });
      return env;
    };
    const notes = () => notifies(env.seen);
    const evs = () => events(env.seen);
    const brief = (m: NotifyMsg) => [m.oncall.kind, m.mobile.join(","), m.payload];
    const after = async (ms: number) => {
      env.clock.advance(ms);
      await env.settle();
    };

    it("steps and waits: on call at once, next after 5 min, all after 10 more, exhausted after 15 more; nothing after", async () => {
      await make();
      const outs = await env.input(0, (o) => o.fire("disk", "disk full"));
      assert.deepEqual(
        outs.map((o) => (o.port === 0 ? brief(o.msg) : o.msg.payload.event)),
        ["opened", ["page", A, "disk full Reply 1 to ack"], "notified"],
      );
      assert.deepEqual(outs[1].msg.topic, "disk");
      assert.deepEqual((outs[1].msg as NotifyMsg).oncall, {
        kind: "page",
        key: "disk",
        code: 1,
        step: 1,
        round: 1,
        count: 1,
      });
      await after(5 * MIN - 1);
      assert.equal(notes().length, 1, "not before the wait is over");
      await after(1);
      assert.deepEqual(brief(notes()[1]), ["page", B, "disk full Reply 1 to ack"]);
      assert.deepEqual(evs().at(-1), {
        event: "escalated",
        key: "disk",
        step: 2,
        round: 1,
        to: [B],
        by: null,
        at: "2023-11-15T06:18:20+08:00",
        count: 1,
      });
      await after(10 * MIN);
      // Every number has code 1 for this alert: one SMS for the three.
      assert.deepEqual(brief(notes()[2]), ["page", `${A},${B},${C}`, "disk full Reply 1 to ack"]);
      assert.equal(evs().at(-1)!.event, "escalated");
      assert.deepEqual(evs().at(-1)!.to, ROTA);
      await after(15 * MIN);
      assert.equal(evs().at(-1)!.event, "exhausted");
      assert.equal(evs().at(-1)!.step, 3);
      await after(24 * 60 * MIN);
      assert.equal(notes().length, 3, "an exhausted alert sends nothing more");
      assert.deepEqual(
        evs().map((e) => e.event),
        ["opened", "notified", "escalated", "escalated", "exhausted"],
      );
      assert.deepEqual(env.errors, []);
    });

    it("repeat: the chain runs again after the last wait, round 2", async () => {
      await make({ steps: [{ to: "oncall", wait: 2 }], repeat: 2 });
      await env.input(0, (o) => o.fire("cpu", "cpu high"));
      await after(2 * MIN);
      await after(2 * MIN);
      await after(2 * MIN);
      assert.deepEqual(
        notes().map((m) => [m.oncall.step, m.oncall.round]),
        [
          [1, 1],
          [1, 2],
          [1, 3],
        ],
      );
      assert.deepEqual(
        evs().map((e) => `${e.event}:${e.round}`),
        ["opened:1", "notified:1", "escalated:2", "escalated:3", "exhausted:3"],
      );
    });

    it("a firing alert whose key is open sends nothing new: it counts, and later steps use its latest text", async () => {
      await make();
      await env.input(0, (o) => o.fire("disk", "disk 91%"));
      assert.deepEqual(await env.input(1, (o) => o.fire("disk", "disk 95%")), []);
      assert.deepEqual(await env.input(0, (o) => o.fire("disk", "disk 99%")), []);
      await after(5 * MIN);
      assert.deepEqual(brief(notes()[1]), ["page", B, "disk 99% Reply 1 to ack"]);
      assert.equal(notes()[1].oncall.count, 3);
    });

    it("a reply to either instance acknowledges: confirm to the replier, acknowledged event, no later step", async () => {
      await make();
      await env.input(0, (o) => o.fire("disk", "disk full"));
      await env.b.reply(A, " 1 ");
      await env.settle();
      assert.deepEqual(brief(notes()[1]), ["confirm", A, "Acknowledged disk full"]);
      assert.deepEqual(notes()[1].oncall, { kind: "confirm", key: "disk", code: 1, step: 1, round: 1, count: 1 });
      assert.deepEqual(
        { ...evs().at(-1)!, at: "" },
        { event: "acknowledged", key: "disk", step: 1, round: 1, to: [], by: A, at: "", count: 1 },
      );
      await after(60 * MIN);
      assert.equal(notes().length, 2, "no step after the acknowledgement");
      // Acknowledged again: nothing changes, nothing is sent.
      await env.a.reply(A, "1");
      await env.settle();
      assert.equal(env.seen.length, 5);
    });

    it("replies that are not acknowledgements change nothing: another text, an unknown code, a number never paged", async () => {
      await make();
      await env.input(0, (o) => o.fire("disk", "disk full"));
      await env.a.reply(A, "hello");
      await env.a.reply(A, "2");
      await env.a.reply(B, "1");
      await env.a.reply(B, "aa");
      await env.settle();
      assert.equal(notes().length, 1);
      await after(5 * MIN);
      assert.equal(notes()[1].mobile[0], B, "the chain goes on");
    });

    it("codes per number: the smallest free one; a resolve frees it; <code> picks that alert", async () => {
      await make();
      await env.input(0, (o) => o.fire("a1", "first"));
      await env.input(0, (o) => o.fire("a2", "second"));
      await env.input(1, (o) => o.fire("a3", "third"));
      assert.deepEqual(
        notes().map((m) => [m.topic, m.oncall.code]),
        [
          ["a1", 1],
          ["a2", 2],
          ["a3", 3],
        ],
      );
      await env.input(0, (o) => o.resolve("a2"));
      env.clock.advance(1000);
      await env.input(0, (o) => o.fire("a4", "fourth"));
      assert.deepEqual([notes().at(-1)!.topic, notes().at(-1)!.oncall.code], ["a4", 2], "a2's code is free again");
      await env.a.reply(A, "3");
      await env.settle();
      const acked = evs().filter((e) => e.event === "acknowledged");
      assert.deepEqual(
        acked.map((e) => e.key),
        ["a3"],
      );
      // B is paged for a1, then a4 (a3 is acknowledged): B's codes start at 1.
      await after(5 * MIN);
      const toB = notes().filter((m) => m.mobile.includes(B));
      assert.deepEqual(toB.map((m) => [m.topic, m.oncall.code]).sort(), [
        ["a1", 1],
        ["a4", 2],
      ]);
    });

    it("a / ack / ok / 收到 / 确认: the latest unacknowledged alert paged to that number; aa / 全部确认: all of them", async () => {
      await make({ lang: "zh-CN" });
      await env.input(0, (o) => o.fire("a1", "一号"));
      env.clock.advance(1000);
      await env.input(0, (o) => o.fire("a2", "二号"));
      env.clock.advance(1000);
      await env.input(0, (o) => o.fire("a3", "三号"));
      assert.equal(notes()[0].payload, "一号 回复1确认");
      await env.b.reply(A, "收到");
      await env.settle();
      assert.deepEqual(
        evs()
          .filter((e) => e.event === "acknowledged")
          .map((e) => e.key),
        ["a3"],
      );
      assert.equal(notes().at(-1)!.payload, "已确认 三号");
      await env.a.reply(A, "ＯＫ");
      await env.settle();
      assert.deepEqual(
        evs()
          .filter((e) => e.event === "acknowledged")
          .map((e) => e.key),
        ["a3", "a2"],
      );
      await env.input(0, (o) => o.fire("a4", "四号"));
      await env.a.reply(A, "全部确认");
      await env.settle();
      assert.deepEqual(
        evs()
          .filter((e) => e.event === "acknowledged")
          .map((e) => e.key)
          .sort(),
        ["a1", "a2", "a3", "a4"],
      );
      await after(60 * MIN);
      assert.equal(notes().filter((m) => m.oncall.kind === "page").length, 4, "no step after any of them");
    });

    it("<code>c closes: closed event, the closer's confirm, resolved SMS to the others paged; its code is free", async () => {
      await make();
      await env.input(0, (o) => o.fire("disk", "disk full"));
      await after(5 * MIN);
      await env.a.reply(B, "1C");
      await env.settle();
      const tail = notes().slice(2);
      assert.deepEqual(tail.map(brief), [
        ["confirm", B, "Closed disk full"],
        ["resolved", A, "Resolved disk full"],
      ]);
      assert.deepEqual(
        { ...evs().at(-1)!, at: "" },
        { event: "closed", key: "disk", step: 2, round: 1, to: [A], by: B, at: "", count: 1 },
      );
      await after(60 * MIN);
      assert.equal(notes().length, 4);
      await env.input(0, (o) => o.fire("disk", "disk full again"));
      assert.equal(notes().at(-1)!.oncall.code, 1);
      assert.equal(evs().at(-2)!.event, "opened", "a closed alert is over: the key opens a new one");
    });

    it("resolve: resolved SMS to every number paged, resolved event; an unknown key does nothing; resolvedNotify none", async () => {
      await make();
      await env.input(0, (o) => o.fire("disk", "disk full"));
      await after(5 * MIN);
      const outs = await env.input(1, (o) => o.resolve("disk"));
      assert.deepEqual(
        outs.map((o) => (o.port === 0 ? brief(o.msg) : o.msg.payload.event)),
        [["resolved", `${A},${B}`, "Resolved disk full"], "resolved"],
      );
      assert.deepEqual((outs[1].msg.payload as EventPayload).to, [A, B]);
      assert.deepEqual(await env.input(0, (o) => o.resolve("disk")), []);
      assert.deepEqual(await env.input(0, (o) => o.resolve("never")), []);
      await after(60 * MIN);
      assert.equal(notes().length, 3);
      env.seen.length = 0;
      const quiet = await maker.make({ rota: ROTA, resolvedNotify: "none", scope: "oc2" });
      await quiet.input(0, (o) => o.fire("x", "x"));
      const r = await quiet.input(0, (o) => o.resolve("x"));
      assert.deepEqual(
        r.map((o) => o.port),
        [1],
      );
      await quiet.close();
    });

    it("msg.ack from the flow: acknowledged (by ackBy), a confirm only when ackBy is a paged number", async () => {
      await make();
      await env.input(0, (o) => o.fire("a1", "one"));
      await env.input(0, (o) => o.fire("a2", "two"));
      const one = await env.input(1, (o) => o.acknowledge("a1", "dashboard"));
      assert.deepEqual(
        one.map((o) => o.port),
        [1],
      );
      assert.equal((one[0].msg.payload as EventPayload).by, "dashboard");
      const two = await env.input(0, (o) => o.acknowledge("a2", "+86 138 0013 8000"));
      assert.deepEqual(
        two.map((o) => (o.port === 0 ? brief(o.msg) : o.msg.payload.event)),
        [["confirm", A, "Acknowledged two"], "acknowledged"],
      );
      assert.deepEqual(await env.input(0, (o) => o.acknowledge("a2")), [], "already acknowledged");
      await after(60 * MIN);
      assert.equal(notes().filter((m) => m.oncall.kind === "page").length, 2);
    });

    it("keep: an acknowledged alert firing again within keep counts; after keep it opens a new alert", async () => {
      await make({ keep: "1" });
      await env.input(0, (o) => o.fire("temp", "hot"));
      await env.a.reply(A, "ack");
      await env.settle();
      await after(59 * MIN);
      assert.deepEqual(await env.input(0, (o) => o.fire("temp", "hot")), []);
      await after(1 * MIN);
      const outs = await env.input(1, (o) => o.fire("temp", "hot again"));
      assert.equal(outs[0].port === 1 && outs[0].msg.payload.event, "opened");
      assert.equal(outs[1].port === 0 && outs[1].msg.oncall.code, 1, "the forgotten alert's code is free");
    });

    it("maxOpen: beyond it, MAX_OPEN naming the key; a resolve makes room", async () => {
      await make({ maxOpen: "2" });
      await env.input(0, (o) => o.fire("a1", "1"));
      await env.input(1, (o) => o.fire("a2", "2"));
      await assert.rejects(
        env.input(0, (o) => o.fire("a3", "3")),
        (e: unknown) => e instanceof OncallError && e.code === "MAX_OPEN" && /"a3"/.test(e.message),
      );
      await env.input(0, (o) => o.fire("a1", "1 again"));
      await env.input(0, (o) => o.resolve("a1"));
      await env.input(1, (o) => o.fire("a3", "3"));
      assert.equal(env.a.oncall.open + 0 >= 0, true);
      assert.equal(await env.b.oncall.refreshCount(), 2);
    });

    it("inputs it refuses: an empty key, a text that is not a string or number", async () => {
      await make();
      await assert.rejects(
        env.a.oncall.fire("", "x"),
        (e: unknown) => e instanceof OncallError && e.code === "INVALID_PAYLOAD",
      );
      await assert.rejects(env.a.oncall.fire(undefined, "x"), /msg.topic/);
      await assert.rejects(env.a.oncall.fire("k", { a: 1 }), /got object/);
      await assert.rejects(env.a.oncall.resolve(""), /msg.topic/);
    });

    it("rotation at the handover (+08:00 on a UTC machine): each step pages whoever is on call at its time", async () => {
      await make({
        rotate: "daily",
        handover: "09:00",
        rotaStart: "2023-11-13",
        steps: [
          { to: "oncall", wait: 5 },
          { to: "next", wait: 5 },
        ],
      });
      // The fake clock starts at 2023-11-15T06:13:20+08:00: B is on call (A had the 14th).
      env.clock.advance(Date.parse("2023-11-15T08:58:00+08:00") - env.clock.now());
      await env.input(0, (o) => o.fire("disk", "disk full"));
      assert.deepEqual(notes()[0].mobile, [B]);
      await after(5 * MIN);
      // 09:03: C took over at 09:00, so "next" is A.
      assert.deepEqual(notes()[1].mobile, [A]);
    });

    it("a delivery summary with nothing delivered starts the next step at once; one with a delivery does not", async () => {
      await make();
      await env.input(0, (o) => o.fire("d1", "one"));
      await env.input(0, (o) => o.fire("d2", "two"));
      const [p1, p2] = notes();
      const now = await env.input(1, (o) => o.summary(p1.oncall, false));
      assert.deepEqual(
        now.map((o) => (o.port === 0 ? brief(o.msg) : o.msg.payload.event)),
        [["page", B, "one Reply 1 to ack"], "escalated"],
      );
      assert.deepEqual(
        await env.input(0, (o) => o.summary(p1.oncall, false)),
        [],
        "a late summary of step 1 changes nothing",
      );
      assert.deepEqual(await env.input(0, (o) => o.summary(p2.oncall, true)), []);
      await after(5 * MIN - 1);
      assert.equal(notes().length, 3, "d2 waits its 5 minutes, d1 now its 10");
      await after(1);
      assert.deepEqual(notes()[3].topic, "d2");
    });

    it("bundle: the first page to a number at once, the next ones together at the window's end; an acknowledged one is left out", async () => {
      await make({ bundle: "60", steps: [{ to: "oncall", wait: 30 }] });
      await env.input(0, (o) => o.fire("b1", "disk full on db-1"));
      await env.input(0, (o) => o.fire("b2", "disk full on db-2"));
      await env.input(1, (o) => o.fire("b3", "disk full on db-3"));
      await env.input(0, (o) => o.fire("b4", "cpu high on web-4"));
      assert.equal(notes().length, 1);
      await env.a.reply(A, "3");
      await env.settle();
      await after(60_000);
      const bundle = notes().find((m) => m.oncall.kind === "bundle")!;
      assert.deepEqual(bundle.mobile, [A]);
      assert.equal(
        bundle.payload,
        "2 alerts: #2 disk full on db-2; #4 cpu high on web-4. Reply #code to ack, aa for all",
      );
      assert.deepEqual(
        bundle.oncall.alerts!.map((x) => [x.key, x.code]),
        [
          ["b2", 2],
          ["b4", 4],
        ],
      );
      assert.equal(notes().filter((m) => m.oncall.kind === "page" || m.oncall.kind === "bundle").length, 2);
      // The summary of the bundle: nothing delivered → b2 and b4 go on at once.
      const next = await env.input(0, (o) => o.summary(bundle.oncall, false));
      assert.deepEqual(
        next.filter((o) => o.port === 1).map((o) => o.msg.payload.key),
        ["b2", "b4"],
      );
    });

    it("a bundle stays within two segments with the signature, naming what fits and counting the rest", async () => {
      await make({ bundle: "60", signature: "【朗宇信息】" });
      const texts = Array.from(
        { length: 9 },
        (_, i) => `host-${i} disk usage above the configured threshold of 90 percent`,
      );
      const text = env.a.oncall.bundleText(texts.map((t, i) => ({ code: i + 1, text: t })));
      assert.ok(text.length + 6 <= 134, `${text.length + 6}: ${text}`);
      assert.match(text, /^9 alerts: #1 host-0 .*; \+\d more\. Reply #code to ack, aa for all$/);
    });
  });
}

describe("lib/alerts: oncall (SPEC B11 chain over the account state)", function () {
  this.timeout(30_000);
  scenarios(memoryEnv());
  describe("with a real redis-server", () => {
    scenarios(redisEnv());
  });
});

describe("lib/alerts: oncall replies to alerts past their keep", () => {
  it("a reply naming an alert already past its keep (its clean-up not run yet) does nothing", async () => {
    const clock = new FakeClock();
    const state = new MemoryState({ clock });
    // No listen(): its deadlines wait, as they do between the keep's end and the instance's poll.
    const oc = new OnCall({ state, scope: "kept", clock, rota: [A, B], keep: "1" });
    const outs = await oc.fire("temp", "too hot");
    assert.equal(outs[1].port === 0 && outs[1].msg.oncall.code, 1);
    await oc.acknowledge("temp");
    const desk = repliesFor(state, clock);
    clock.advance(59 * MIN);
    await oc.fire("other", "x");
    await oc.acknowledge("other");
    clock.advance(MIN);
    assert.equal(await desk.take({ mobile: A, text: "1c", destcode: "1069" }), false, "temp is forgotten");
    assert.equal(await desk.take({ mobile: A, text: "2c", destcode: "1069" }), true, "other is remembered");
    await state.close();
  });
});
