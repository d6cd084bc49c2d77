import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkChoice,
  checkNumber,
  checkOffset,
  CONFIG_RULES,
  describeProblem,
  THRESHOLD_RULE,
  toBool,
  toNumber,
  type NumberRule,
} from "../../src/lib/props";

describe("lib/props", () => {
  it("toNumber and toBool read the editor's strings", () => {
    assert.equal(toNumber("500", 1), 500);
    assert.equal(toNumber(" 7 ", 1), 7);
    assert.equal(toNumber("", 1), 1);
    assert.equal(toNumber("x", 1), 1);
    assert.equal(toBool("true", false), true);
    assert.equal(toBool("FALSE", true), false);
    assert.equal(toBool("yes", true), true);
  });

  describe("setting rules (shared by the runtime and the editor)", () => {
    const r = CONFIG_RULES;

    it("a value in range is taken as given, numbers or numeric strings", () => {
      assert.deepEqual(checkNumber("500", r.timeout), { value: 500, problem: null });
      assert.deepEqual(checkNumber(0, r.queue), { value: 0, problem: null });
      assert.deepEqual(checkNumber("0.5", r.rate), { value: 0.5, problem: null });
      assert.deepEqual(checkNumber(" 10 ", r.retries), { value: 10, problem: null });
    });

    it("absent or empty is the default without a problem", () => {
      for (const v of [undefined, null, "", "  "])
        assert.deepEqual(checkNumber(v, r.retries), { value: 3, problem: null });
    });

    it("clamps above the maximum, and says to what", () => {
      assert.deepEqual(checkNumber("20", r.retries), {
        value: 10,
        problem: { reason: "aboveMax", given: "20", used: 10, isDefault: false, limit: 10 },
      });
      assert.equal(checkNumber(3e9, r.timeout).value, 600_000);
      assert.equal(checkNumber("2000000", r.queue).value, 1_000_000);
    });

    it("refuses what is below the minimum, not a number or not whole: the default, said", () => {
      assert.deepEqual(checkNumber("-5", r.timeout).problem, {
        reason: "belowMin",
        given: "-5",
        used: 10_000,
        isDefault: true,
        limit: 100,
      });
      assert.equal(checkNumber("-1", r.rate).value, 10);
      assert.equal(checkNumber("abc", r.maxLength).problem?.reason, "notNumber");
      assert.equal(checkNumber("Infinity", r.rate).problem?.reason, "notNumber");
      assert.equal(checkNumber(true, r.retries).problem?.reason, "notNumber");
      assert.equal(checkNumber("2.5", r.retries).problem?.reason, "notInteger");
    });

    it("a rate above 0 but too slow for a timer is raised to 0.001; 0 stays 'no limit'", () => {
      assert.deepEqual(checkNumber("1e-9", r.rate), {
        value: 0.001,
        problem: { reason: "belowMin", given: "1e-9", used: 0.001, isDefault: false, limit: 0.001 },
      });
      assert.equal(checkNumber("0", r.rate).problem, null);
    });

    it("a long value is shortened in the problem", () => {
      assert.equal(checkNumber("9".repeat(100) + "x", r.retries).problem?.given, "9".repeat(40) + "…");
    });

    it("whatever comes in, the value used obeys its rule", () => {
      const rules: NumberRule[] = [...Object.values(r), THRESHOLD_RULE];
      fc.assert(
        fc.property(
          fc.constantFrom(...rules),
          fc.oneof(fc.double(), fc.integer(), fc.string(), fc.double().map(String)),
          (rule, v) => {
            const c = checkNumber(v, rule);
            assert.ok(Number.isFinite(c.value));
            assert.ok(c.value >= rule.min);
            if (rule.max !== undefined) assert.ok(c.value <= rule.max);
            if (rule.integer) assert.ok(Number.isInteger(c.value));
            if (rule.minPositive && c.value > 0) assert.ok(c.value >= rule.minPositive);
            if (c.problem) assert.equal(c.problem.used, c.value);
          },
        ),
      );
    });

    it("tz: any offset up to ±14:00; anything else keeps +08:00", () => {
      assert.deepEqual(checkOffset("+0530"), { value: "+0530", minutes: 330, problem: null });
      assert.deepEqual(checkOffset("Z"), { value: "Z", minutes: 0, problem: null });
      assert.deepEqual(checkOffset(""), { value: "+08:00", minutes: 480, problem: null });
      for (const bad of ["+15:00", "8", "+08:60", "UTC+8", 8]) {
        const c = checkOffset(bad);
        assert.equal(c.value, "+08:00", String(bad));
        assert.equal(c.minutes, 480);
        assert.equal(c.problem?.reason, "notOffset");
      }
    });

    it("mobileCheck: cn or digits, anything else keeps cn", () => {
      assert.deepEqual(checkChoice("digits", ["cn", "digits"], "cn"), { value: "digits", problem: null });
      assert.deepEqual(checkChoice("any", ["cn", "digits"], "cn").problem, {
        reason: "notOneOf",
        given: "any",
        used: "cn",
        isDefault: true,
        limit: "cn, digits",
      });
    });

    it("describeProblem composes one sentence from the caller's catalog", () => {
      const texts: Record<string, string> = {
        "x.errors.setting": "__label__ '__value__' __problem__; __outcome__",
        "x.errors.aboveMax": "is above __max__",
        "x.errors.useBound": "__used__ is used",
      };
      const t = (key: string, params: Record<string, string | number> = {}) =>
        texts[`x.${key}`].replace(/__(\w+)__/g, (_m, k: string) => String(params[k]));
      const p = checkNumber("20", r.retries).problem!;
      assert.equal(describeProblem(p, "Retries", t), "Retries '20' is above 10; 10 is used");
    });
  });
});
