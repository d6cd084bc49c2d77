import assert from "node:assert/strict";
import fc from "fast-check";
import {
  MAX_TRUST_PROXY,
  parseAllow,
  printableSource,
  readTrustProxy,
  sourceOf,
  splitAllow,
} from "../../../src/lib/push/allow";

// A reference written from the definitions, sharing nothing with src/lib/push/allow.ts (which uses
// net.BlockList): addresses are 128-bit integers, IPv4 a.b.c.d being ::ffff:a.b.c.d, and a rule
// net/p matches exactly the integers whose top p bits are net's.
function v4Int(s: string): bigint {
  return s.split(".").reduce((n, part) => n * 256n + BigInt(Number(part)), 0n);
}
function v6Int(s: string): bigint {
  let text = s;
  let tail: bigint[] = [];
  const dot = text.lastIndexOf(".");
  if (dot >= 0) {
    const at = text.lastIndexOf(":");
    const v4 = v4Int(text.slice(at + 1));
    tail = [v4 >> 16n, v4 & 0xffffn];
    text = text.slice(0, at + 1) + "0";
  }
  const [left, right] = text.includes("::") ? text.split("::") : [text, null];
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((g) => BigInt(parseInt(g, 16))));
  const l = groups(left);
  const r = right === null ? [] : groups(right);
  if (tail.length) (r.length || right !== null ? r : l).pop();
  const fill = 8 - l.length - r.length - tail.length;
  const all = [...l, ...Array<bigint>(right === null ? 0 : fill).fill(0n), ...r, ...tail];
  assert.equal(all.length, 8, `reference could not read ${s}`);
  return all.reduce((n, g) => (n << 16n) | g, 0n);
}
const MAPPED = 0xffffn << 32n;
const isV4 = (s: string) => /^\d+\.\d+\.\d+\.\d+$/.test(s);
const asInt = (s: string) => (isV4(s) ? MAPPED | v4Int(s) : v6Int(s));

interface RefRule {
  net: bigint;
  bits: number;
}
function refRule(entry: string): RefRule {
  const [address, p] = entry.split("/");
  const max = isV4(address) ? 32 : 128;
  const bits = (p === undefined ? max : Number(p)) + (max === 32 ? 96 : 0);
  return { net: asInt(address), bits };
}
function refAllows(rules: RefRule[], source: string): boolean {
  const x = asInt(source.replace(/%[0-9a-zA-Z-.:]+$/, ""));
  return rules.some((r) => x >> BigInt(128 - r.bits) === r.net >> BigInt(128 - r.bits));
}

const fmtV4 = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join(".");
/** An integer as an address in one of the ways it may be written (or arrive from a socket). */
function fmt(n: bigint, style: number): string {
  if (n >> 32n === 0xffffn) {
    const v4 = fmtV4(n & 0xffffffffn);
    if (style % 3 === 0) return v4;
    if (style % 3 === 1) return `::ffff:${v4}`;
  }
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => ((n >> s) & 0xffffn).toString(16));
  if (style % 2 === 0) return groups.join(":");
  // Compress the longest run of zero groups, as text from a socket would be.
  let best = [-1, 0];
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > best[1]) best = [i, j - i];
  }
  if (best[1] < 2) return groups.join(":");
  return `${groups.slice(0, best[0]).join(":")}::${groups.slice(best[0] + best[1]).join(":")}`;
}

const MAX128 = (1n << 128n) - 1n;
const clamp = (n: bigint) => (n < 0n ? 0n : n > MAX128 ? MAX128 : n);

/** A rule as written: IPv4 or IPv6 address, with or without a prefix. */
const ruleArb = fc.oneof(
  fc.tuple(fc.ipV4(), fc.option(fc.integer({ min: 0, max: 32 }))).map(([a, p]) => (p === null ? a : `${a}/${p}`)),
  fc.tuple(fc.ipV6(), fc.option(fc.integer({ min: 0, max: 128 }))).map(([a, p]) => (p === null ? a : `${a}/${p}`)),
  // IPv4-mapped ranges written in IPv6 and near-mapped ones, where a mix-up would show.
  fc.tuple(fc.ipV4(), fc.integer({ min: 80, max: 128 })).map(([a, p]) => `::ffff:${a}/${p}`),
);

describe("lib/push/allow", () => {
  describe("parseAllow", () => {
    it("empty, absent or only separators: no list (any source)", () => {
      for (const v of ["", "  ", undefined, null, 42, " ,, ，\n"])
        assert.deepEqual(parseAllow(v), { list: null, bad: [] });
    });

    it("entries separated by commas (also full-width) and white space", () => {
      assert.deepEqual(splitAllow("47.92.0.0/16, 127.0.0.1\n::1，10.0.0.1\t10.0.0.2"), [
        "47.92.0.0/16",
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "10.0.0.2",
      ]);
      const { list, bad } = parseAllow("47.92.0.0/16, 127.0.0.1\n::1，10.0.0.1");
      assert.ok(list);
      assert.deepEqual(bad, []);
      for (const a of ["47.92.255.255", "127.0.0.1", "::1", "10.0.0.1"]) assert.equal(list.allows(a), true, a);
      for (const a of ["47.93.0.0", "127.0.0.2", "::2", "10.0.0.2"]) assert.equal(list.allows(a), false, a);
    });

    it("every entry that is not an address or CIDR range is named; the list is not used at all", () => {
      const bad = [
        "1.2.3",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.4/33",
        "1.2.3.4/",
        "1.2.3.4/-1",
        "1.2.3.4/+8",
        "1.2.3.4/8/8",
        "1.2.3.4/0x8",
        "::1/129",
        "fe80::1%eth0",
        "fe80::/10%eth0",
        "example.com",
        "*",
        "any",
        "1.2.3.*",
        "1.2.3.4-1.2.3.9",
        "[::1]",
        "::ffff:1.2.3.4.5",
        "2001:db8::1::2",
        "/8",
      ];
      for (const entry of bad) {
        const r = parseAllow(`127.0.0.1, ${entry}`);
        assert.equal(r.list, null, entry);
        assert.deepEqual(r.bad, [entry]);
      }
      assert.deepEqual(parseAllow("x, 1.2.3.4, y/3").bad, ["x", "y/3"]);
    });

    it("addresses and ranges in every usual form are taken", () => {
      for (const entry of [
        "0.0.0.0/0",
        "255.255.255.255/32",
        "10.0.0.5/24",
        "::",
        "::/0",
        "2001:DB8::/32",
        "::ffff:10.0.0.0/104",
        "0:0:0:0:0:ffff:a00:1",
        "1:2:3:4:5:6:7:8/128",
        "1.2.3.4/008",
      ]) {
        assert.ok(parseAllow(entry).list, entry);
      }
    });
  });

  describe("allows: ranges and their edges", () => {
    const allows = (rules: string, source: string) => parseAllow(rules).list!.allows(source);

    it("IPv4 /32, /31, /24, /0", () => {
      assert.equal(allows("203.0.113.7/32", "203.0.113.7"), true);
      assert.equal(allows("203.0.113.7/32", "203.0.113.6"), false);
      assert.equal(allows("203.0.113.7/32", "203.0.113.8"), false);
      assert.equal(allows("203.0.113.6/31", "203.0.113.6"), true);
      assert.equal(allows("203.0.113.6/31", "203.0.113.7"), true);
      assert.equal(allows("203.0.113.6/31", "203.0.113.5"), false);
      assert.equal(allows("203.0.113.6/31", "203.0.113.8"), false);
      assert.equal(allows("203.0.113.0/24", "203.0.113.0"), true);
      assert.equal(allows("203.0.113.0/24", "203.0.113.255"), true);
      assert.equal(allows("203.0.113.0/24", "203.0.112.255"), false);
      assert.equal(allows("203.0.113.0/24", "203.0.114.0"), false);
      // Host bits in a range are ignored: 203.0.113.99/24 is 203.0.113.0/24.
      assert.equal(allows("203.0.113.99/24", "203.0.113.1"), true);
      for (const a of ["0.0.0.0", "255.255.255.255", "127.0.0.1", "::ffff:8.8.8.8"]) {
        assert.equal(allows("0.0.0.0/0", a), true, a);
      }
      // Every IPv4 source, but no IPv6 one.
      assert.equal(allows("0.0.0.0/0", "::1"), false);
      assert.equal(allows("0.0.0.0/0", "2001:db8::1"), false);
    });

    it("IPv6 /128, /64, /0", () => {
      assert.equal(allows("2001:db8::7/128", "2001:db8::7"), true);
      assert.equal(allows("2001:db8::7/128", "2001:DB8:0:0:0:0:0:7"), true);
      assert.equal(allows("2001:db8::7/128", "2001:db8::6"), false);
      assert.equal(allows("2001:db8::7/128", "2001:db8::8"), false);
      assert.equal(allows("2001:db8:1:2::/64", "2001:db8:1:2::"), true);
      assert.equal(allows("2001:db8:1:2::/64", "2001:db8:1:2:ffff:ffff:ffff:ffff"), true);
      assert.equal(allows("2001:db8:1:2::/64", "2001:db8:1:1:ffff:ffff:ffff:ffff"), false);
      assert.equal(allows("2001:db8:1:2::/64", "2001:db8:1:3::"), false);
      assert.equal(allows("::1", "::1"), true);
      assert.equal(allows("::1", "::"), false);
      assert.equal(allows("::1", "127.0.0.1"), false);
      // ::/0 is every address, IPv4 ones included (they are ::ffff:0:0/96).
      for (const a of ["::", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1.2.3.4"]) {
        assert.equal(allows("::/0", a), true, a);
      }
    });

    it("IPv4-mapped IPv6: an IPv4 rule matches ::ffff:a.b.c.d in any spelling, and the reverse", () => {
      for (const a of ["::ffff:127.0.0.1", "::FFFF:127.0.0.1", "::ffff:7f00:1", "0:0:0:0:0:ffff:127.0.0.1"]) {
        assert.equal(allows("127.0.0.1", a), true, a);
        assert.equal(allows("127.0.0.0/8", a), true, a);
        assert.equal(allows("127.0.0.2", a), false, a);
      }
      assert.equal(allows("::ffff:127.0.0.1", "127.0.0.1"), true);
      assert.equal(allows("::ffff:127.0.0.0/104", "127.255.255.255"), true);
      assert.equal(allows("::ffff:127.0.0.0/104", "128.0.0.0"), false);
      // IPv4-compatible (::a.b.c.d) is a different, plain IPv6 address.
      assert.equal(allows("127.0.0.1", "::127.0.0.1"), false);
    });

    it("a zone on a source is not part of who it is; garbage and over-long strings match nothing", () => {
      assert.equal(allows("fe80::/10", "fe80::1%eth0"), true);
      assert.equal(allows("fe80::/10", "fe80::1%"), false);
      assert.equal(allows("127.0.0.1", "127.0.0.1%eth0"), false, "IPv4 has no zones");
      for (const s of [
        "",
        "garbage",
        "1.2.3.4.5",
        "127.0.0.1 ",
        " 127.0.0.1",
        "127.0.0.1/32",
        "unknown",
        "x".repeat(500),
      ]) {
        assert.equal(allows("0.0.0.0/0, ::/0", s), false, JSON.stringify(s));
      }
    });

    it("the remembered verdicts stay bounded under a flood of distinct sources", () => {
      const list = parseAllow("10.0.0.0/8").list!;
      for (let i = 0; i < 20_000; i++) list.allows(`192.168.${(i >> 8) & 255}.${i & 255}-${i}`);
      for (let i = 0; i < 5_000; i++) list.allows(fmtV4(BigInt(i) * 7919n));
      const size = (list as unknown as { remembered: Map<string, boolean> }).remembered.size;
      assert.ok(size <= 1024, `remembered ${size}`);
      assert.equal(list.allows("10.1.2.3"), true);
      assert.equal(list.allows("10.1.2.3"), true, "a remembered verdict is the same verdict");
      assert.equal(list.allows("11.1.2.3"), false);
    });

    it("property: the same verdict as a 128-bit reference, at random and at every range's edges", () => {
      fc.assert(
        fc.property(
          fc.array(ruleArb, { minLength: 1, maxLength: 4 }),
          fc.array(
            fc.oneof(
              fc.ipV4().map((text) => ({ text })),
              fc.ipV6().map((text) => ({ text })),
              fc.ipV4().map((a) => ({ text: `::ffff:${a}` })),
              // Near an edge of one of the rules: first-1, first, last, last+1, in a random spelling.
              fc.record({ rule: fc.nat(), at: fc.constantFrom(-1n, 0n, 1n, 2n), style: fc.nat() }),
            ),
            { minLength: 1, maxLength: 12 },
          ),
          (rules, picks) => {
            const list = parseAllow(rules.join(", ")).list;
            assert.ok(list, rules.join(", "));
            const ref = rules.map(refRule);
            const sources = picks.map((p) => {
              if ("text" in p) return p.text;
              const r = ref[p.rule % ref.length];
              const host = BigInt(128 - r.bits);
              const first = (r.net >> host) << host;
              const edge = p.at < 1n ? first + p.at : first + (1n << host) - 2n + p.at;
              return fmt(clamp(edge), p.style);
            });
            for (const s of sources) {
              assert.equal(list.allows(s), refAllows(ref, s), `${s} against ${rules.join(", ")}`);
            }
          },
        ),
        { numRuns: 2000 },
      );
    });
  });

  describe("sourceOf", () => {
    it("a forwarded entry loses a port only when it is exactly an address and a port", () => {
      const one = (entry: string) => sourceOf("127.0.0.1", entry, 1);
      assert.equal(one("10.20.30.40:5678"), "10.20.30.40");
      assert.equal(one("[2001:db8::1]:5678"), "2001:db8::1");
      assert.equal(one("[2001:db8::1]"), "2001:db8::1");
      // Anything around it: given as written (it then matches no rule), never cut down to an address.
      for (const entry of ["x10.20.30.40:5678", "10.20.30.40:5678x", "x[2001:db8::1]", "[2001:db8::1]x"]) {
        assert.equal(one(entry), entry);
      }
    });

    it("trustProxy 0: the socket's address, whatever X-Forwarded-For says", () => {
      assert.equal(sourceOf("::ffff:127.0.0.2", "203.0.113.7", 0), "::ffff:127.0.0.2");
      assert.equal(sourceOf("127.0.0.2", undefined, 0), "127.0.0.2");
      assert.equal(sourceOf(undefined, "203.0.113.7", 0), null);
    });

    it("trustProxy n: the n-th entry from the right; fewer entries is no source", () => {
      const xff = " 198.51.100.9 ,203.0.113.7, 10.0.0.5,10.0.0.6 ";
      assert.equal(sourceOf("127.0.0.1", xff, 1), "10.0.0.6");
      assert.equal(sourceOf("127.0.0.1", xff, 2), "10.0.0.5");
      assert.equal(sourceOf("127.0.0.1", xff, 3), "203.0.113.7");
      assert.equal(sourceOf("127.0.0.1", xff, 4), "198.51.100.9");
      assert.equal(sourceOf("127.0.0.1", xff, 5), null);
      assert.equal(sourceOf("127.0.0.1", undefined, 1), null, "no header: unknown, not the proxy");
      assert.equal(sourceOf("127.0.0.1", "", 1), null);
      // Repeated headers (if they arrive as a list) read as one list, in order.
      assert.equal(sourceOf("127.0.0.1", ["203.0.113.7", "10.0.0.5"], 2), "203.0.113.7");
    });

    it("ports some load balancers append are dropped; empty and bracket-broken entries are no source", () => {
      assert.equal(sourceOf("x", "203.0.113.7:5678", 1), "203.0.113.7");
      assert.equal(sourceOf("x", "[2001:db8::7]:443", 1), "2001:db8::7");
      assert.equal(sourceOf("x", "[2001:db8::7]", 1), "2001:db8::7");
      assert.equal(sourceOf("x", "2001:db8::7", 1), "2001:db8::7");
      assert.equal(sourceOf("x", "203.0.113.7,", 1), null);
      assert.equal(sourceOf("x", ",203.0.113.7", 2), null);
      assert.equal(sourceOf("x", ",,", 2), null);
      assert.equal(sourceOf("x", "[2001:db8::7", 1), "[2001:db8::7");
      assert.equal(sourceOf("x", "203.0.113.7:abc", 1), "203.0.113.7:abc");
      assert.equal(sourceOf("x", "1".repeat(10_000), 1), null);
    });

    it("property: whatever the header, the answer is null or one of its entries, never a crash", () => {
      const allowAll = parseAllow("0.0.0.0/0, ::/0").list!;
      fc.assert(
        fc.property(fc.string({ maxLength: 200 }), fc.integer({ min: 1, max: MAX_TRUST_PROXY }), (header, n) => {
          const s = sourceOf("127.0.0.1", header, n);
          if (s === null) return;
          assert.ok(header.includes(s), `${JSON.stringify(s)} not in ${JSON.stringify(header)}`);
          // A caller-made entry is let in only if it is an address.
          if (allowAll.allows(s)) assert.ok(printableSource(s), s);
        }),
        { numRuns: 3000 },
      );
    });
  });

  describe("readTrustProxy", () => {
    it("0 to the maximum, as numbers or strings; empty is 0; anything else is null", () => {
      for (const [v, n] of [
        [undefined, 0],
        [null, 0],
        ["", 0],
        [" ", 0],
        [0, 0],
        ["1", 1],
        [" 2 ", 2],
        [MAX_TRUST_PROXY, MAX_TRUST_PROXY],
      ] as const) {
        assert.equal(readTrustProxy(v), n, String(v));
      }
      for (const v of ["-1", -1, "1.5", 1.5, "one", "1e1", String(MAX_TRUST_PROXY + 1), "0x1", true, {}, NaN, "١"]) {
        assert.equal(readTrustProxy(v), null, String(v));
      }
    });
  });

  it("printableSource keeps addresses only, IPv4-mapped ones as IPv4", () => {
    assert.equal(printableSource("203.0.113.7"), "203.0.113.7");
    assert.equal(printableSource("::ffff:127.0.0.1"), "127.0.0.1", "as it would be written in allow");
    assert.equal(printableSource("::FFFF:127.0.0.1"), "127.0.0.1");
    assert.equal(printableSource("::ffff:7f00:1"), "::ffff:7f00:1");
    assert.equal(printableSource("2001:db8::1"), "2001:db8::1");
    assert.equal(printableSource("evil\nline"), null);
    assert.equal(printableSource(null), null);
  });
});
