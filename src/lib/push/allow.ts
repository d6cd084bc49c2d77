// Who may push (SPEC B4): the source allow-list of sms-receive and the source of a request behind
// proxies. Pure (no Node-RED); address parsing and range matching are Node's own (net.isIP,
// net.BlockList), so no address library is needed.
import { BlockList, isIP, isIPv4, isIPv6 } from "node:net";

/** Most proxy hops `trustProxy` may name: longer chains do not occur in front of a push receiver. */
export const MAX_TRUST_PROXY = 10;

/**
 * Every rule and every source is matched in IPv6 space, IPv4 being ::ffff:0:0/96 (its IPv4-mapped
 * form). One rule then means one range whatever way an address is written: 127.0.0.1/32 matches a
 * client a dual-stack server shows as ::ffff:127.0.0.1, ::ffff:127.0.0.0/104 is 127.0.0.0/8, and
 * ::/0 is every source. BlockList's own mixing of IPv4 and IPv6 is never relied on.
 */
const MAPPED = "::ffff:";

// A source string longer than this is no address (the longest IPv6 text is 45 characters, and a
// zone adds at most an interface name).
const MAX_ADDRESS = 45;
const MAX_SOURCE = MAX_ADDRESS + 16;
// Verdicts remembered per source string: the platform pushes from a few addresses, and a BlockList
// check (about 3 µs) would be the costliest step of a GET push. Bounded: forwarded sources are
// chosen by the caller.
const MAX_REMEMBERED = 1024;

export interface AllowParse {
  /** null when the text names no entry: every source may push */
  list: AllowList | null;
  /** the entries that are not an IPv4/IPv6 address or CIDR range, as written */
  bad: string[];
}

/** Entries are separated by commas (ASCII or full-width) and/or white space. */
export function splitAllow(text: unknown): string[] {
  if (typeof text !== "string") return [];
  return text.split(/[\s,，]+/).filter((e) => e !== "");
}

/** The `allow` property: empty (or absent) is no list; any bad entry makes the whole list unusable. */
export function parseAllow(text: unknown): AllowParse {
  const entries = splitAllow(text);
  if (entries.length === 0) return { list: null, bad: [] };
  const blocks = new BlockList();
  const bad: string[] = [];
  for (const entry of entries) {
    const rule = readRule(entry);
    if (!rule) bad.push(entry);
    else blocks.addSubnet(rule.address, rule.prefix, "ipv6");
  }
  return bad.length ? { list: null, bad } : { list: new AllowList(blocks, entries), bad: [] };
}

/** One entry as an IPv6 subnet, or null when it is not an address or CIDR range. */
function readRule(entry: string): { address: string; prefix: number } | null {
  const slash = entry.indexOf("/");
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const bits = slash < 0 ? null : entry.slice(slash + 1);
  // A zone (fe80::1%eth0) names a local interface: meaningless for a platform's address.
  if (address.includes("%")) return null;
  const v4 = isIPv4(address);
  if (!v4 && !isIPv6(address)) return null;
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (bits !== null) {
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
    prefix = Number(bits);
  }
  const rule = v4 ? { address: MAPPED + address, prefix: prefix + 96 } : { address, prefix };
  // What net.isIP takes, BlockList should too; if one day it does not, the entry is refused, not skipped.
  try {
    new BlockList().addSubnet(rule.address, rule.prefix, "ipv6");
  } catch {
    return null;
  }
  return rule;
}

export class AllowList {
  private readonly remembered = new Map<string, boolean>();

  constructor(
    private readonly blocks: BlockList,
    /** the entries as written, for the status and the log */
    readonly entries: readonly string[],
  ) {}

  /** Whether `source` (an IPv4 or IPv6 address as text, e.g. a socket's remoteAddress) may push. */
  allows(source: string): boolean {
    if (source.length > MAX_SOURCE) return false;
    let verdict = this.remembered.get(source);
    if (verdict === undefined) {
      verdict = this.match(source);
      if (this.remembered.size >= MAX_REMEMBERED) this.remembered.clear();
      this.remembered.set(source, verdict);
    }
    return verdict;
  }

  private match(source: string): boolean {
    try {
      if (isIPv4(source)) return this.blocks.check(MAPPED + source, "ipv6");
      // A link-local peer may come with a zone (fe80::1%eth0): BlockList matches the address.
      return isIPv6(source) && this.blocks.check(source, "ipv6");
    } catch {
      // what net.isIP takes and BlockList would not: no address this list could name
      return false;
    }
  }
}

/**
 * The `trustProxy` property: how many proxies stand in front of Node-RED. Empty or absent is 0;
 * anything but a whole number 0…MAX_TRUST_PROXY is null (a wrong hop count would let a forged
 * X-Forwarded-For entry in, or shut the platform out).
 */
export function readTrustProxy(v: unknown): number | null {
  if (v === undefined || v === null) return 0;
  const text = typeof v === "number" ? String(v) : typeof v === "string" ? v.trim() : null;
  if (text === null) return null;
  if (text === "") return 0;
  if (!/^\d{1,2}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_TRUST_PROXY ? n : null;
}

/**
 * The address a request comes from: the socket's peer with `trustProxy` 0; else the
 * `trustProxy`-th entry from the right of X-Forwarded-For (each proxy appends the address it was
 * reached from, so entries further left were written by whoever sent the request and prove
 * nothing). Null when there is no such entry: the source is unknown, never guessed.
 */
export function sourceOf(
  remoteAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trustProxy: number,
): string | null {
  if (trustProxy === 0) return remoteAddress ?? null;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor;
  if (!header) return null;
  let end = header.length;
  for (let hop = 1; ; hop++) {
    const comma = end > 0 ? header.lastIndexOf(",", end - 1) : -1;
    if (hop === trustProxy) return forwardedEntry(header.slice(comma + 1, end));
    if (comma < 0) return null;
    end = comma;
  }
}

/**
 * One X-Forwarded-For entry as a bare address. Some load balancers append the client's port
 * (1.2.3.4:5678, [2001:db8::1]:5678); anything else is given as written and matches no rule.
 */
function forwardedEntry(raw: string): string | null {
  const entry = raw.trim();
  if (entry === "" || entry.length > MAX_SOURCE) return null;
  const withPort = /^(?:\[([^\]]+)\]|(\d+\.\d+\.\d+\.\d+)):\d{1,5}$/.exec(entry) ?? /^\[([^\]]+)\]$/.exec(entry);
  return withPort ? (withPort[1] ?? withPort[2]) : entry;
}

/**
 * A source fit for a log line, as it would be written in `allow` (a dual-stack server's
 * ::ffff:a.b.c.d shown as a.b.c.d); null for anything that is not an address (a forwarded entry
 * is whatever the caller wrote).
 */
export function printableSource(source: string | null): string | null {
  if (source === null || source.length > MAX_SOURCE || isIP(source) === 0) return null;
  const v4 = source.slice(MAPPED.length);
  return source.toLowerCase().startsWith(MAPPED) && isIPv4(v4) ? v4 : source;
}
