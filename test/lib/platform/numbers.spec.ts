import assert from "node:assert/strict";
import fc from "fast-check";
import {
  chunk,
  elementEntry,
  foldMobileText,
  listForMessage,
  MAX_ENTRY_LENGTH,
  normaliseMobile,
  parseMobiles,
  parseMobilesSteps,
  splitMobiles,
  splitMobilesSteps,
  type Pacer,
  type Steps,
} from "../../../src/lib/platform/numbers";

/** Runs `steps` with a pacer always due, counting the pauses. */
function paused<T>(make: (pacer: Pacer) => Steps<T>): { value: T; pauses: number } {
  const steps = make({ due: () => true });
  for (let pauses = 0; ; pauses++) {
    const r = steps.next();
    if (r.done) return { value: r.value, pauses };
  }
}

describe("lib/platform/numbers", () => {
  it("splits on , ， ; whitespace and newlines", () => {
    assert.deepEqual(splitMobiles("13800138000,13900139000，13700137000;13600136000 13500135000\n13300133000\r\n"), [
      "13800138000",
      "13900139000",
      "13700137000",
      "13600136000",
      "13500135000",
      "13300133000",
    ]);
  });

  it("accepts arrays of strings and numbers, and a single number", () => {
    assert.deepEqual(splitMobiles(["13800138000", 13900139000]), ["13800138000", "13900139000"]);
    assert.deepEqual(splitMobiles(["+86 138 0013 8000", "", null]), ["+86 138 0013 8000", "null"]);
    assert.deepEqual(splitMobiles(13800138000), ["13800138000"]);
    assert.deepEqual(splitMobiles(undefined), []);
    assert.equal(splitMobiles({ a: 1 }), null);
    assert.equal(splitMobiles(true), null);
  });

  it("normalises +86, 0086, 86 prefixes, spaces and dashes in cn mode", () => {
    for (const s of [
      "+8613800138000",
      "008613800138000",
      "8613800138000",
      "138 0013 8000",
      "138-0013-8000",
      "+86 138-0013-8000",
    ]) {
      assert.equal(normaliseMobile(s, "cn"), "13800138000", s);
    }
  });

  it("rejects what is not a mainland mobile in cn mode", () => {
    for (const s of ["12800138000", "1380013800", "138001380001", "abc", "", "+1 202 555 0100", "02112345678"]) {
      assert.equal(normaliseMobile(s, "cn"), null, s);
    }
  });

  it("digits mode takes any 5-20 digits (leading + dropped)", () => {
    assert.equal(normaliseMobile("+44 7700 900123", "digits"), "447700900123");
    assert.equal(normaliseMobile("12345", "digits"), "12345");
    assert.equal(normaliseMobile("1234", "digits"), null);
    assert.equal(normaliseMobile("1".repeat(21), "digits"), null);
    assert.equal(normaliseMobile("12a45", "digits"), null);
  });

  it("folds full-width digits and ＋ (NFKC) in both modes", () => {
    assert.equal(normaliseMobile("１３８００１３８０００", "cn"), "13800138000");
    assert.equal(normaliseMobile("＋８６１３８００１３８０００", "cn"), "13800138000");
    assert.equal(normaliseMobile("＋８６ １３８－００１３－８０００", "cn"), "13800138000");
    assert.equal(normaliseMobile("（０２１）１２３４５６７８", "digits"), "02112345678");
    assert.equal(normaliseMobile("＋４４７７００９００１２３", "digits"), "447700900123");
    assert.deepEqual(splitMobiles("１３８００１３８０００，１３９００１３９０００"), ["13800138000", "13900139000"]);
  });

  it("drops invisible characters (zero-width, BOM, word joiner, soft hyphen, bidi marks)", () => {
    const invisible = [
      "\u200b",
      "\u200c",
      "\u200d",
      "\u2060",
      "\ufeff",
      "\u00ad",
      "\u200e",
      "\u200f",
      "\u202a",
      "\u202c",
      "\u2066",
      "\u2069",
      "\u061c",
    ];
    for (const ch of invisible) {
      const name = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
      assert.equal(normaliseMobile(`${ch}138${ch}0013${ch}8000${ch}`, "cn"), "13800138000", name);
      assert.equal(normaliseMobile(`${ch}+44 7700${ch}900123`, "digits"), "447700900123", name);
      // Inside a list, an invisible character is neither a separator nor part of a number.
      assert.deepEqual(splitMobiles(`138${ch}00138000,${ch}13900139000${ch}`), ["13800138000", "13900139000"], name);
      assert.deepEqual(parseMobiles(splitMobiles([`138${ch}00138000`])!, "cn").valid, ["13800138000"], name);
    }
  });

  it("in a string, spaces separate numbers; in an array, an element's inner spaces are formatting", () => {
    // What the help (sms-send) says: "+86 138 0013 8000" in a string is four entries.
    assert.deepEqual(splitMobiles("+86 138 0013 8000"), ["+86", "138", "0013", "8000"]);
    assert.deepEqual(splitMobiles("13800138000\u300013900139000"), ["13800138000", "13900139000"]);
    assert.deepEqual(parseMobiles(splitMobiles(["+86 138 0013 8000"])!, "cn").valid, ["13800138000"]);
  });

  it("still rejects what NFKC does not turn into ASCII digits", () => {
    for (const s of ["١٣٨٠٠١٣٨٠٠٠", "一三八〇〇一三八〇〇〇", "138\u00a0 0013 800x"]) {
      assert.equal(normaliseMobile(s, "cn"), null, s);
    }
  });

  it("de-duplicates keeping first-seen order and reports every invalid entry", () => {
    const r = parseMobiles(["13900139000", "+8613800138000", "bad", "13900139000", "13800138000", "x1"], "cn");
    assert.deepEqual(r.valid, ["13900139000", "13800138000"]);
    assert.deepEqual(r.invalid, ["bad", "x1"]);
    assert.equal(r.duplicates, 2);
  });

  it("chunks into requests of at most 50,000", () => {
    const nums = Array.from({ length: 100_001 }, (_, i) => String(i));
    const parts = chunk(nums);
    assert.deepEqual(
      parts.map((p) => p.length),
      [50_000, 50_000, 1],
    );
    assert.equal(parts[2][0], "100000");
    assert.throws(() => chunk([1], 0), RangeError);
  });

  it("lists at most 10 invalid entries in a message", () => {
    const many = Array.from({ length: 25 }, (_, i) => `x${i}`);
    const s = listForMessage(many);
    assert.match(s, /^x0, x1, .* x9 … \(\+15\)$/);
  });

  describe("values that are not a number or a string (SPEC B9a)", () => {
    it("are invalid entries named by their type, their toString never called", () => {
      let called = 0;
      const sneaky = {
        toString() {
          called++;
          throw new Error("no");
        },
      };
      assert.deepEqual(splitMobiles([sneaky, ["13800138000"], () => 1, { toString: 1 }]), [
        "[object]",
        "[array]",
        "[function]",
        "[object]",
      ]);
      assert.equal(called, 0);
      // A nested list that String() would have read as a number is not one.
      assert.deepEqual(parseMobiles(splitMobiles([["13800138000"]])!, "cn").valid, []);
      assert.deepEqual(
        [null, undefined, true, 13800138000n, Symbol("s")].map((v) => elementEntry(v)),
        ["null", "undefined", "true", "13800138000", "Symbol(s)"],
      );
    });

    it(`an entry longer than ${MAX_ENTRY_LENGTH} characters is invalid as it is, named cut short`, () => {
      const long = " 1".repeat(1_000_000);
      assert.equal(normaliseMobile(long, "digits"), null);
      assert.equal(normaliseMobile("1".repeat(MAX_ENTRY_LENGTH + 1), "digits"), null);
      // Formatting that makes a short number long stays readable up to the bound.
      assert.equal(normaliseMobile("1\u200b".repeat(11) + " ".repeat(200), "digits"), "11111111111");
      const parsed = parseMobiles(splitMobiles([long, "13800138000", " ".repeat(300)])!, "cn");
      assert.deepEqual(parsed.valid, ["13800138000"]);
      assert.deepEqual(parsed.invalid, [long.slice(0, MAX_ENTRY_LENGTH) + "…", " ".repeat(MAX_ENTRY_LENGTH) + "…"]);
    });
  });

  describe("what mutation testing found untested (npm run mutate)", () => {
    it("86 is taken off a 13-digit number only: 00 or 11 in front of a mobile is no prefix", () => {
      assert.equal(normaliseMobile("8613800138000", "cn"), "13800138000");
      for (const s of ["0013800138000", "1113800138000", "861380013800", "86138001380000"]) {
        assert.equal(normaliseMobile(s, "cn"), null, s);
      }
    });

    it(`an entry of exactly ${MAX_ENTRY_LENGTH} characters is still read; one more is not`, () => {
      const padded = (n: number) => "13800138000" + " ".repeat(n - 11);
      assert.equal(normaliseMobile(padded(MAX_ENTRY_LENGTH), "cn"), "13800138000");
      assert.equal(normaliseMobile(padded(MAX_ENTRY_LENGTH + 1), "cn"), null);
      assert.deepEqual(parseMobiles(splitMobiles([padded(MAX_ENTRY_LENGTH)])!, "cn").valid, ["13800138000"]);
    });

    it("an invalid entry is named trimmed; a blank list element is no entry; null is no list", () => {
      assert.deepEqual(parseMobiles([" abc ", "\t12345\n"], "cn").invalid, ["abc", "12345"]);
      assert.deepEqual(splitMobiles(["13800138000", "   ", "\u3000"]), ["13800138000"]);
      assert.deepEqual(splitMobiles(null), []);
    });
  });

  describe("what mutation testing found untested (platform triage)", () => {
    it(`an invalid entry of exactly ${MAX_ENTRY_LENGTH} characters is named whole, trimmed; a blank element that long is no entry`, () => {
      const x = "x".repeat(MAX_ENTRY_LENGTH);
      assert.deepEqual(parseMobiles([x, ` ${"y".repeat(MAX_ENTRY_LENGTH - 2)} `], "cn").invalid, [
        x,
        "y".repeat(MAX_ENTRY_LENGTH - 2),
      ]);
      // A blank element is skipped up to the bound: 256 spaces must not fail the whole send.
      assert.deepEqual(splitMobiles([" ".repeat(MAX_ENTRY_LENGTH), "13800138000"]), ["13800138000"]);
    });

    it("a string whose last entry runs past a slice with no separator after it is read to its end", () => {
      const tail = "x".repeat(40_000);
      assert.deepEqual(splitMobiles(`13800138000,${tail}`), ["13800138000", tail]);
      assert.deepEqual(paused((pacer) => splitMobilesSteps(`13800138000,${tail}`, pacer)).value, ["13800138000", tail]);
    });

    it("pauses only where the pacer says, once per 1,024 list elements", () => {
      const list = Array.from({ length: 2048 }, (_, i) => `139${String(i).padStart(8, "0")}`);
      const never: Pacer = { due: () => false };
      const count = <T>(steps: Steps<T>): number => {
        for (let n = 0; ; n++) if (steps.next().done) return n;
      };
      assert.equal(count(splitMobilesSteps(list.join(","), never)), 0);
      assert.equal(count(splitMobilesSteps(list, never)), 0);
      assert.equal(count(parseMobilesSteps(list, "cn", never)), 0);
      assert.equal(paused((pacer) => splitMobilesSteps(list, pacer)).pauses, 2);
      assert.equal(paused((pacer) => parseMobilesSteps(list, "cn", pacer)).pauses, 2);
    });

    it('an error message cuts an entry longer than 24 characters and names a blank one ""', () => {
      const long = "1".repeat(25);
      assert.equal(listForMessage([long, "1".repeat(24), ""]), `${"1".repeat(24)}…, ${"1".repeat(24)}, ""`);
      // Exactly the maximum shown: no "… (+0)".
      assert.equal(listForMessage(["a", "b"], 2), "a, b");
    });
  });

  describe("in slices (a long list must not hold the event loop)", () => {
    it("a string is split a slice at a time, each slice ending where a separator starts: the same entries", () => {
      const numbers = Array.from({ length: 30_000 }, (_, i) => `1${3 + (i % 7)}${String(i).padStart(9, "0")}`);
      const separators = [",", "，", ";", "；", "、", " ", "\n", "\r\n", ",,  ", "\t", "\u3000", "\ufeff,"];
      const joined = numbers.map((n, i) => n + separators[i % separators.length]).join("");
      const r = paused((pacer) => splitMobilesSteps(joined, pacer));
      assert.deepEqual(r.value, numbers);
      assert.ok(r.pauses >= 10, `${r.pauses} pauses`);
      const list = paused((pacer) => splitMobilesSteps(numbers, pacer));
      assert.deepEqual(list.value, numbers);
      assert.ok(list.pauses >= 20, `${list.pauses} pauses`);
      const parsed = paused((pacer) => parseMobilesSteps([...numbers, "1", numbers[0]], "cn", pacer));
      assert.deepEqual(parsed.value, { valid: numbers, invalid: ["1"], duplicates: 1 });
      assert.ok(parsed.pauses >= 20);
    });

    it("property: splitting in slices gives what one split of the folded string gives", () => {
      const piece = fc.constantFrom(
        "13800138000",
        "+86 139",
        "１３８",
        "x",
        "12345",
        ",",
        "，",
        ";",
        " ",
        "\n",
        "、",
        "\ufeff",
        "\u200b",
        "；",
      );
      fc.assert(
        fc.property(fc.array(piece, { minLength: 20_000, maxLength: 40_000 }), (pieces) => {
          const s = pieces.join("");
          const expected = foldMobileText(s)
            .split(/[,，;；、\s]+/)
            .filter((e) => e !== "");
          assert.deepEqual(paused((pacer) => splitMobilesSteps(s, pacer)).value, expected);
          assert.deepEqual(splitMobiles(s), expected);
        }),
        { numRuns: 30 },
      );
    });
  });

  describe("properties", () => {
    const cnMobile = fc
      .tuple(fc.constantFrom("3", "4", "5", "6", "7", "8", "9"), fc.stringMatching(/^\d{9}$/))
      .map(([a, b]) => `1${a}${b}`);

    it("any valid number with any prefix/spacing normalises to itself", () => {
      fc.assert(
        fc.property(cnMobile, fc.constantFrom("", "+86", "0086", "86", "+86 "), fc.boolean(), (n, prefix, dashed) => {
          const written = prefix + (dashed ? `${n.slice(0, 3)}-${n.slice(3, 7)}-${n.slice(7)}` : n);
          return normaliseMobile(written, "cn") === n;
        }),
      );
    });

    it("a number written in full-width and sprinkled with invisible characters normalises to itself", () => {
      const wide = (s: string) => s.replace(/[0-9+]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
      fc.assert(
        fc.property(
          cnMobile,
          fc.constantFrom("", "+86", "0086"),
          fc.boolean(),
          fc.array(fc.tuple(fc.nat(20), fc.constantFrom("\u200b", "\ufeff", "\u2060", "\u00ad", "\u200e")), {
            maxLength: 4,
          }),
          (n, prefix, fullWidth, inserts) => {
            let written = prefix + n;
            if (fullWidth) written = wide(written);
            for (const [at, ch] of inserts) written = written.slice(0, at) + ch + written.slice(at);
            assert.equal(normaliseMobile(written, "cn"), n);
            const list = splitMobiles(`${written}，${written}`)!;
            assert.equal(list.length, 2);
            assert.deepEqual(parseMobiles(list, "cn"), { valid: [n], invalid: [], duplicates: 1 });
          },
        ),
      );
    });

    it("parse output is valid, unique, order-preserving; valid+invalid+duplicates = input", () => {
      fc.assert(
        fc.property(fc.array(fc.oneof(cnMobile, fc.string({ maxLength: 14 })), { maxLength: 60 }), (entries) => {
          const clean = entries.filter((e) => e.trim() !== "");
          const r = parseMobiles(clean, "cn");
          assert.equal(new Set(r.valid).size, r.valid.length);
          for (const v of r.valid) assert.match(v, /^1[3-9]\d{9}$/);
          assert.equal(r.valid.length + r.invalid.length + r.duplicates, clean.length);
          const firsts = clean.map((e) => normaliseMobile(e, "cn")).filter((x): x is string => x !== null);
          assert.deepEqual(r.valid, [...new Set(firsts)]);
        }),
      );
    });

    it("splitting a joined list gives the list back, whatever the separators", () => {
      fc.assert(
        fc.property(
          fc.array(cnMobile, { minLength: 1, maxLength: 30 }),
          fc.constantFrom(",", "，", ";", " ", "\n", " , "),
          (list, sep) => {
            assert.deepEqual(splitMobiles(list.join(sep)), list);
          },
        ),
      );
    });

    it("chunk keeps every item in order and no chunk exceeds the size", () => {
      fc.assert(
        fc.property(fc.array(fc.integer(), { maxLength: 200 }), fc.integer({ min: 1, max: 50 }), (items, size) => {
          const c = chunk(items, size);
          assert.deepEqual(c.flat(), items);
          for (const part of c) assert.ok(part.length >= 1 && part.length <= size);
        }),
      );
    });
  });
});
