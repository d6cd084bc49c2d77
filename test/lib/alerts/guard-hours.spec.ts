// The guard's calendar: local days and sending hours in the account's fixed offset, while the
// machine (and Date) run in UTC.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Calendar, GuardConfigError, parseHours, type Hours } from "../../../src/lib/alerts/hours";

const H = 3_600_000;
const DAY = 24 * H;
const ms = (iso: string) => Date.parse(iso);

describe("lib/alerts: sending hours and local days", () => {
  it("parses HH:MM-HH:MM, wrapping midnight, and the forms Chinese input methods type", () => {
    assert.deepEqual(parseHours("08:00-22:00"), { start: 8 * H, end: 22 * H });
    assert.deepEqual(parseHours("22:00-07:00"), { start: 22 * H, end: 7 * H });
    assert.deepEqual(parseHours(" 8:30 - 17:45 "), { start: 8.5 * H, end: 17.75 * H });
    assert.deepEqual(parseHours("08：00～22：00"), { start: 8 * H, end: 22 * H });
    assert.deepEqual(parseHours("08:00—22:00"), { start: 8 * H, end: 22 * H });
    assert.deepEqual(parseHours("08:00~22:00"), { start: 8 * H, end: 22 * H });
    assert.deepEqual(parseHours("18:00-24:00"), { start: 18 * H, end: DAY });
    assert.equal(parseHours("00:00-24:00"), null);
    assert.equal(parseHours(""), null);
    assert.equal(parseHours("   "), null);
  });

  it("refuses bad hours with a clear error in en-US and zh-CN", () => {
    for (const bad of ["8-22", "25:00-07:00", "08:60-09:00", "24:00-08:00", "08:00", "abc", "08:00-22:00-23:00"]) {
      assert.throws(
        () => parseHours(bad),
        (e: unknown) => e instanceof GuardConfigError && e.key === "badHours" && e.message.includes(`"${bad}"`),
        bad,
      );
    }
    assert.throws(() => parseHours("08:00-08:00"), /begin and end at the same time/);
    assert.throws(() => parseHours("8-22", "zh-CN"), /发送时段“8-22”无效：请写成 HH:MM-HH:MM/);
    assert.throws(() => parseHours("08:00-08:00", "zh-CN"), /开始与结束时间相同/);
  });

  it("the local day and its midnight are the account's (+08:00), not the machine's UTC", () => {
    const cal = new Calendar(480, null);
    // 23:59:59 local is 15:59:59Z; local midnight is 16:00Z, while the UTC date is still the 15th.
    assert.equal(cal.dayKey(ms("2023-11-15T23:59:59.999+08:00")), "2023-11-15");
    assert.equal(cal.dayKey(ms("2023-11-16T00:00:00+08:00")), "2023-11-16");
    assert.equal(cal.dayKey(ms("2023-11-16T07:59:59+08:00")), "2023-11-16");
    assert.equal(cal.nextMidnight(ms("2023-11-15T10:00:00+08:00")), ms("2023-11-16T00:00:00+08:00"));
    assert.equal(cal.nextMidnight(ms("2023-11-16T00:00:00+08:00")), ms("2023-11-17T00:00:00+08:00"));
    assert.equal(cal.iso(ms("2023-11-16T00:00:00+08:00")), "2023-11-16T00:00:00+08:00");
    const west = new Calendar(-330, null);
    assert.equal(west.dayKey(ms("2023-11-15T23:30:00-05:30")), "2023-11-15");
    assert.equal(west.nextMidnight(ms("2023-11-15T23:30:00-05:30")), ms("2023-11-16T00:00:00-05:30"));
    assert.equal(west.iso(ms("2023-11-16T00:00:00-05:30")), "2023-11-16T00:00:00-05:30");
  });

  it("times shown are rounded up to the second: never earlier than the real moment", () => {
    const cal = new Calendar(480, null);
    assert.equal(cal.iso(ms("2023-11-15T10:30:00.001+08:00")), "2023-11-15T10:30:01+08:00");
  });

  it("22:00-07:00 wraps midnight: inside, outside and the next start", () => {
    const cal = new Calendar(480, parseHours("22:00-07:00"));
    const at = (s: string) => ms(`2023-11-15T${s}+08:00`);
    assert.equal(cal.inHours(at("21:59:59.999")), false);
    assert.equal(cal.inHours(at("22:00:00")), true);
    assert.equal(cal.inHours(at("23:59:59")), true);
    assert.equal(cal.inHours(ms("2023-11-16T00:00:00+08:00")), true);
    assert.equal(cal.inHours(ms("2023-11-16T06:59:59+08:00")), true);
    assert.equal(cal.inHours(ms("2023-11-16T07:00:00+08:00")), false);
    assert.equal(cal.iso(cal.nextStart(at("12:00:00"))), "2023-11-15T22:00:00+08:00");
    assert.equal(cal.iso(cal.nextStart(at("07:00:00"))), "2023-11-15T22:00:00+08:00");
    assert.equal(cal.allowedFrom(at("23:00:00")), at("23:00:00"));
    assert.equal(cal.iso(cal.allowedFrom(at("12:00:00"))), "2023-11-15T22:00:00+08:00");
  });

  it("08:00-22:00: after the end, the next start is the next local morning", () => {
    const cal = new Calendar(480, parseHours("08:00-22:00"));
    assert.equal(cal.iso(cal.nextStart(ms("2023-11-15T23:00:00+08:00"))), "2023-11-16T08:00:00+08:00");
    // 03:00 on the 16th local is 19:00Z on the 15th: the start is that same local morning.
    assert.equal(cal.iso(cal.nextStart(ms("2023-11-16T03:00:00+08:00"))), "2023-11-16T08:00:00+08:00");
    assert.equal(cal.inHours(ms("2023-11-15T22:00:00+08:00")), false);
    assert.equal(cal.inHours(ms("2023-11-15T08:00:00+08:00")), true);
  });

  it("for any offset, hours and instant: the next start is in hours, the moment before it is not, within a day", () => {
    const hours = fc
      .tuple(fc.integer({ min: 0, max: 1439 }), fc.integer({ min: 1, max: 1440 }))
      .filter(([s, e]) => s !== e && !(s === 0 && e === 1440))
      .map(([s, e]): Hours => ({ start: s * 60_000, end: e * 60_000 }));
    fc.assert(
      fc.property(
        fc.integer({ min: -12 * 60, max: 14 * 60 }),
        hours,
        fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
        (off, h, t) => {
          const cal = new Calendar(off, h);
          const next = cal.nextStart(t);
          assert.ok(next > t && next - t <= DAY, `${next - t}`);
          assert.equal(cal.inHours(next), true);
          assert.equal(cal.inHours(next - 1), false);
          const from = cal.allowedFrom(t);
          assert.equal(cal.inHours(from), true);
          if (cal.inHours(t)) assert.equal(from, t);
          else assert.equal(from, next);
          const mid = cal.nextMidnight(t);
          assert.ok(mid > t && mid - t <= DAY);
          assert.notEqual(cal.dayKey(mid), cal.dayKey(t));
          assert.equal(cal.dayKey(mid - 1), cal.dayKey(t));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
