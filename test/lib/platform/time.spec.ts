import assert from "node:assert/strict";
import fc from "fast-check";
import { formatInstant, parseOffset, parsePlatformTime, platformStamp } from "../../../src/lib/platform/time";

describe("lib/platform/time", () => {
  const cst = 480;

  it("reads the SPEC examples exactly", () => {
    assert.equal(parsePlatformTime("20110725160412", cst), "2011-07-25T16:04:12+08:00");
    assert.equal(parsePlatformTime("1012241002", cst), "2010-12-24T10:02:00+08:00");
  });

  it("reads 12-digit YYMMDDhhmmss and 13-digit epoch ms", () => {
    assert.equal(parsePlatformTime("101224100259", cst), "2010-12-24T10:02:59+08:00");
    assert.equal(parsePlatformTime("1311000000000", cst), "2011-07-18T22:40:00+08:00");
    assert.equal(parsePlatformTime("1311000000000", 0), "2011-07-18T14:40:00+00:00");
  });

  it("reads yyyy-MM-dd HH:mm:ss in platform time and ISO 8601 with fractions and Z or an offset (SPEC A5)", () => {
    assert.equal(parsePlatformTime("2011-07-25 16:04:12", cst), "2011-07-25T16:04:12+08:00");
    assert.equal(parsePlatformTime("2011-07-25 16:04:12", 0), "2011-07-25T16:04:12+00:00");
    // An instant with its own offset is shown in the configured one, fractions cut (not rounded).
    assert.equal(parsePlatformTime("2011-07-25T08:04:12.999Z", cst), "2011-07-25T16:04:12+08:00");
    assert.equal(parsePlatformTime("2011-07-25T08:04:12Z", cst), "2011-07-25T16:04:12+08:00");
    assert.equal(parsePlatformTime("2011-07-25T16:04:12.5+08:00", cst), "2011-07-25T16:04:12+08:00");
    assert.equal(parsePlatformTime("2011-07-25T10:34:12+02:30", cst), "2011-07-25T16:04:12+08:00");
    assert.equal(parsePlatformTime("2011-07-25T16:04:12+0800", 0), "2011-07-25T08:04:12+00:00");
    assert.equal(parsePlatformTime("2011-07-25T16:04:12.123456789-05:00", cst), "2011-07-26T05:04:12+08:00");
    // Without an offset an ISO time is platform time, like the space form.
    assert.equal(parsePlatformTime("2011-07-25T16:04:12", cst), "2011-07-25T16:04:12+08:00");
    // Epoch ms as a JSON number.
    assert.equal(parsePlatformTime(1311000000000, cst), "2011-07-18T22:40:00+08:00");
    assert.equal(parsePlatformTime("0050-01-01T00:00:00Z", 0), "0050-01-01T00:00:00+00:00");
    for (const bad of [
      "2011-07-25 24:00:00",
      "2011-02-30 10:00:00",
      "2011-07-25T16:04:12+15:00",
      "2011-7-25 16:04:12",
    ]) {
      assert.equal(parsePlatformTime(bad, cst), null, bad);
    }
  });

  it("uses the configured offset", () => {
    assert.equal(parsePlatformTime("1012241002", parseOffset("-05:30")!), "2010-12-24T10:02:00-05:30");
  });

  it("gives null for unreadable times", () => {
    for (const s of [
      "",
      "abc",
      "20111325160412",
      "20110230160412",
      "1012241060",
      "123",
      "2011-07-25",
      null,
      undefined,
      {},
    ]) {
      assert.equal(parsePlatformTime(s as never, cst), null, String(s));
    }
  });

  it("parses offsets in common spellings", () => {
    assert.equal(parseOffset("+08:00"), 480);
    assert.equal(parseOffset("+0800"), 480);
    assert.equal(parseOffset("+8"), 480);
    assert.equal(parseOffset("-05:30"), -330);
    assert.equal(parseOffset("Z"), 0);
    assert.equal(parseOffset("8 hours"), null);
    assert.equal(parseOffset("+25:00"), null);
  });

  it("takes offsets from -14:00 to +14:00 only, as the help says (real zones span -12:00 to +14:00)", () => {
    assert.equal(parseOffset("+14:00"), 840);
    assert.equal(parseOffset("-14:00"), -840);
    assert.equal(parseOffset("+13:45"), 825);
    for (const tz of ["+14:30", "-14:59", "+1401", "-14:01"]) assert.equal(parseOffset(tz), null, tz);
  });

  it("property: format → platform stamp → parse round-trips (whole seconds)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2099, 11, 31) }),
        fc.integer({ min: -12 * 60, max: 14 * 60 }),
        (ms, off) => {
          const iso = formatInstant(ms, off);
          assert.match(iso, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/);
          assert.equal(parsePlatformTime(platformStamp(ms, off, "14"), off), iso);
          assert.equal(Date.parse(iso), Math.floor(ms / 1000) * 1000);
        },
      ),
    );
  });

  it("property: an ISO time with any offset is the same instant in the configured offset", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2099, 11, 31) }),
        fc.integer({ min: -12 * 60, max: 14 * 60 }),
        fc.integer({ min: -12 * 60, max: 14 * 60 }),
        (ms, given, configured) => {
          const out = parsePlatformTime(formatInstant(ms, given), configured);
          assert.equal(out, formatInstant(ms, configured));
          assert.equal(parsePlatformTime(new Date(ms).toISOString(), configured), formatInstant(ms, configured));
        },
      ),
    );
  });

  it("property: never throws, returns null or the exact ISO form", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.stringMatching(/^\d{10,14}$/),
          fc.stringMatching(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$/),
        ),
        (s) => {
          const r = parsePlatformTime(s, cst);
          return r === null || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/.test(r);
        },
      ),
    );
  });

  describe("what mutation testing found untested (platform triage)", () => {
    it("month 00, day 00 and second 60 are no time, in every form", () => {
      for (const bad of [
        "20110025160412",
        "20110700160412",
        "20110725160460",
        "110725160460",
        "2011-00-25 16:04:12",
        "2011-07-00 16:04:12",
        "2011-07-25 16:04:60",
        "2011-02-30T10:00:00Z",
        "2011-02-30T10:00:00+08:00",
      ]) {
        assert.equal(parsePlatformTime(bad, cst), null, bad);
      }
      assert.equal(parsePlatformTime("2011-07-25T16:04:59Z", 0), "2011-07-25T16:04:59+00:00");
    });

    it("a dashed time is read whole, with seconds and offset minutes optional, up to 40 characters", () => {
      assert.equal(parsePlatformTime("2011-07-25 16:04", cst), "2011-07-25T16:04:00+08:00");
      assert.equal(parsePlatformTime("2011-07-25T16:04:12+08", 0), "2011-07-25T08:04:12+00:00");
      for (const bad of ["x2011-07-25 16:04:12", "2011-07-25 16:04:12x", "2011-07-25 16:04:12 +08:00 GMT"]) {
        assert.equal(parsePlatformTime(bad, cst), null, bad);
      }
      const at40 = "2011-07-25T16:04:12." + "1".repeat(14) + "+08:00";
      assert.equal(at40.length, 40);
      assert.equal(parsePlatformTime(at40, 0), "2011-07-25T08:04:12+00:00");
      assert.equal(parsePlatformTime(at40.replace(".", ".1"), 0), null);
    });

    it("surrounding spaces are no part of a time; a value neither string nor number is none", () => {
      assert.equal(parsePlatformTime(" 20110725160412\n", cst), "2011-07-25T16:04:12+08:00");
      assert.equal(parsePlatformTime(["20110725160412"] as never, cst), null);
      assert.equal(parsePlatformTime({ toString: () => "20110725160412" } as never, cst), null);
    });

    it("platformStamp writes 14 digits by default, 10 when asked", () => {
      const ms = Date.UTC(2011, 6, 25, 8, 4, 12);
      assert.equal(platformStamp(ms, cst), "20110725160412");
      assert.equal(platformStamp(ms, cst, "14"), "20110725160412");
      assert.equal(platformStamp(ms, cst, "10"), "1107251604");
    });
  });
});
