// Who is on call when (SPEC B11): rotation at the handover in the account's offset, whatever the
// machine's time zone (these tests run on UTC machines and check +08:00), and the options' rules.
import assert from "node:assert/strict";
import {
  DEFAULT_STEPS,
  formatHandover,
  oncallOptionProblem,
  OncallConfigError,
  parseHandover,
  parseSteps,
  readPlan,
  Rota,
} from "../../../src/lib/alerts/rota";

const A = "13800138000";
const B = "13900139000";
const C = "13700137000";
const at = (iso: string) => Date.parse(iso);

function rota(rotate: "none" | "daily" | "weekly", handover = "", rotaStart = "2024-01-01", offset = 480) {
  const plan = readPlan({ rota: [A, B, C], rotate, handover, rotaStart: rotate === "none" ? "" : rotaStart });
  return Rota.of(plan, offset);
}

describe("lib/alerts: rota (who is on call when)", () => {
  it("none: the first number is always on call, the second is next", () => {
    const r = rota("none");
    for (const t of ["2020-01-01T00:00:00Z", "2024-06-15T12:34:00+08:00", "2031-12-31T23:59:59Z"]) {
      assert.equal(r.onCall(at(t)), A);
      assert.equal(r.next(at(t)), B);
    }
    assert.equal(r.nextHandover(at("2024-01-01T00:00:00Z")), null);
  });

  it("daily at 09:00 +08:00 (01:00 UTC): the turn changes exactly at the handover, in rota order, and wraps", () => {
    const r = rota("daily", "09:00");
    assert.equal(r.onCall(at("2024-01-01T08:59:59+08:00")), C, "before the start: the one before rota[0]");
    assert.equal(r.onCall(at("2024-01-01T09:00:00+08:00")), A);
    assert.equal(r.onCall(at("2024-01-02T00:59:59Z")), A, "08:59:59 in +08:00");
    assert.equal(r.onCall(at("2024-01-02T01:00:00Z")), B, "09:00 in +08:00");
    assert.equal(r.next(at("2024-01-02T01:00:00Z")), C);
    assert.equal(r.onCall(at("2024-01-03T09:00:00+08:00")), C);
    assert.equal(r.next(at("2024-01-03T09:00:00+08:00")), A, "next wraps to the first");
    assert.equal(r.onCall(at("2024-01-04T09:00:00+08:00")), A, "and the rota starts over");
    assert.equal(r.nextHandover(at("2024-01-02T10:00:00+08:00")), at("2024-01-03T09:00:00+08:00"));
  });

  it("daily with another offset: the handover follows the account's tz, not the machine's", () => {
    const r = rota("daily", "09:00", "2024-01-01", -300);
    assert.equal(r.onCall(at("2024-01-02T08:59:00-05:00")), A);
    assert.equal(r.onCall(at("2024-01-02T09:00:00-05:00")), B);
  });

  it("weekly at Mon 09:00: a week each from the start's week; a start mid-week belongs to that week", () => {
    const r = rota("weekly", "Mon 09:00");
    assert.equal(r.onCall(at("2024-01-01T09:00:00+08:00")), A, "2024-01-01 is a Monday");
    assert.equal(r.onCall(at("2024-01-07T23:00:00+08:00")), A);
    assert.equal(r.onCall(at("2024-01-08T08:59:00+08:00")), A);
    assert.equal(r.onCall(at("2024-01-08T09:00:00+08:00")), B);
    assert.equal(r.onCall(at("2024-01-22T09:00:00+08:00")), A);
    assert.equal(r.nextHandover(at("2024-01-03T12:00:00+08:00")), at("2024-01-08T09:00:00+08:00"));
    const mid = rota("weekly", "Mon 09:00", "2024-01-03");
    assert.equal(mid.onCall(at("2024-01-03T12:00:00+08:00")), A, "a Wednesday start");
    assert.equal(mid.onCall(at("2024-01-08T09:00:00+08:00")), B, "the next Monday's handover");
  });

  it("weekly handover days in English or Chinese, any case; a handover past midnight UTC", () => {
    for (const h of ["Mon 09:00", "mon 9:00", "MONDAY 09:00", "周一 09:00", "星期一 09：00"]) {
      assert.deepEqual(parseHandover(h, "weekly"), { minute: 540, weekday: 0 }, h);
    }
    assert.deepEqual(parseHandover("周日 23:30", "weekly"), { minute: 23 * 60 + 30, weekday: 6 });
    // Fri 07:00 +08:00 is Thursday 23:00 UTC.
    const r = rota("weekly", "Fri 07:00");
    assert.equal(r.onCall(at("2024-01-04T22:59:00Z")), A);
    assert.equal(r.onCall(at("2024-01-04T23:00:00Z")), B);
    assert.equal(formatHandover(parseHandover("fri 7:00", "weekly")), "Fri 07:00");
  });

  it("targets: oncall, next, all (rota order) and given numbers", () => {
    const r = rota("daily", "09:00");
    const t = at("2024-01-02T10:00:00+08:00");
    assert.deepEqual(r.targets("oncall", t), [B]);
    assert.deepEqual(r.targets("next", t), [C]);
    assert.deepEqual(r.targets("all", t), [A, B, C]);
    assert.deepEqual(r.targets([C, A], t), [C, A]);
  });

  it("options: defaults, and a clear error (en-US, zh-CN) for each thing that cannot work", () => {
    const plan = readPlan({ rota: [A, "+86 139 0013 9000"] });
    assert.deepEqual(plan.rota, [A, B]);
    assert.deepEqual(plan.steps, DEFAULT_STEPS);
    assert.equal(plan.rotate, "none");
    assert.deepEqual(
      [plan.repeat, plan.bundle, plan.resolvedNotify, plan.maxOpen, plan.keep],
      [0, 0, "notified", 1000, 24],
    );
    const problem = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof OncallConfigError, String(e));
        return e.message;
      }
      assert.fail("no error");
    };
    assert.match(
      problem(() => readPlan({ rota: "" })),
      /rota is empty/,
    );
    assert.match(
      problem(() => readPlan({ rota: "123" }, "cn", "zh-CN")),
      /值班表中有 1 个无效号码：123/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, rotate: "daily" })),
      /needs its start/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, rotate: "hourly" })),
      /rotate must be one of none, daily, weekly/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, rotate: "daily", rotaStart: "2024-02-30" })),
      /not a date/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, rotate: "weekly", rotaStart: "2024-01-01", handover: "09:00" })),
      /Mon 09:00/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, rotate: "daily", rotaStart: "2024-01-01", handover: "25:00" })),
      /09:00/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, repeat: "11" })),
      /repeat must be a whole number from 0 to 10/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, bundle: "601" })),
      /bundle/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, keep: "0" })),
      /keep/,
    );
    assert.match(
      problem(() => readPlan({ rota: A, resolvedNotify: "all" })),
      /resolvedNotify/,
    );
    assert.match(
      problem(() => parseSteps("[]")),
      /at least one step/,
    );
    assert.match(
      problem(() => parseSteps("{")),
      /JSON/,
    );
    assert.match(
      problem(() => parseSteps([{ to: "boss", wait: 5 }])),
      /Step 1: 1 invalid number/,
    );
    assert.match(
      problem(() =>
        parseSteps([
          { to: "oncall", wait: 5 },
          { to: 7, wait: 5 },
        ]),
      ),
      /Step 2: "to"/,
    );
    assert.match(
      problem(() => parseSteps([{ to: "oncall", wait: 0 }])),
      /1 to 1440/,
    );
    assert.match(
      problem(() => parseSteps([{ to: "oncall", wait: 1441 }], "cn", "zh-CN")),
      /第 1 步：“wait”/,
    );
    assert.deepEqual(parseSteps('[{"to":["139 0013 9000"],"wait":"3"}]'), [{ to: [B], wait: 3 }]);
  });

  it("oncallOptionProblem: what the editor's validators ask, option by option", () => {
    assert.equal(oncallOptionProblem("rota", [A, B]), null);
    assert.equal(oncallOptionProblem("rota", [])?.key, "noRota");
    assert.equal(oncallOptionProblem("handover", "Mon 09:00", { rotate: "weekly" }), null);
    assert.equal(oncallOptionProblem("handover", "Mon 09:00", { rotate: "daily" })?.key, "badHandover");
    assert.equal(oncallOptionProblem("rotaStart", "", { rotate: "daily" })?.key, "noRotaStart");
    assert.equal(oncallOptionProblem("rotaStart", "", { rotate: "none" }), null);
    assert.equal(oncallOptionProblem("steps", '[{"to":"all","wait":15}]'), null);
    assert.equal(oncallOptionProblem("maxOpen", "0")?.key, "badRange");
  });
});
