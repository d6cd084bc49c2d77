// The account state in Redis (node-redis), shared by every Node-RED instance that uses the same
// Redis, prefix and account. Every decision two instances could race on is one script (atomic in
// Redis); times come from the caller's clock (so instances agree as their clocks do, and tests
// can move time), while Redis TTLs only collect garbage: each key lives its logical time plus a
// margin. All keys of an account share one hash tag, so a Redis Cluster keeps them on one node.
//
// Under faults (SPEC B6a) a command whose answer is lost may still have run. The scripts whose
// effect must not happen twice take an operation id: they remember their answer under it (the
// "memo", `op:<id>`), so the same operation sent again answers what the first run did instead of
// running again. The failover layer (failover.ts) decides when to send one again.
import { createHash, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Clock } from "../clock";
import { systemClock } from "../clock";
import type {
  AccountState,
  Admission,
  AdmitCheck,
  CasWrite,
  ClaimBound,
  DueHandler,
  DueOptions,
  Mark,
  PartAdd,
  PartLimits,
  StateMode,
  Tally,
  Versioned,
} from "./index";
import { connect, maybeRan, type RedisLink, type RedisMode, type Reply } from "./connect";
import { classify, RedisStateError } from "./problem";
import type { Probe } from "./shadow";

export { RedisStateError, type RedisProblem } from "./problem";

/** Garbage-collection margin on every key's TTL beyond its logical lifetime. */
const SLACK_MS = 60_000;
/**
 * A deadline's zset lives this long past its latest deadline: at least as long as what its
 * handlers take (parts and tracked sends are kept a day past their wait), so a restart that comes
 * late still fires it.
 */
const DUE_KEEP_MS = 2 * 24 * 3600_000;
/** How often due deadlines of the kinds handled here are looked for. */
const POLL_MS = 250;
/** After a (re)connection, how long the poll waits before claiming deadlines. */
const POLL_GRACE_MS = 1000;
/**
 * A claimed deadline is leased, not removed: it is removed when its handler has finished. An
 * instance that died meanwhile leaves it to fire again after this.
 */
const LEASE_MS = 30_000;
/** A handler that failed gets its deadline again after this, doubling up to RETRY_MAX_MS. */
const RETRY_MS = 2000;
const RETRY_MAX_MS = 60_000;
/**
 * How long a script remembers its answer under its operation id: long for the ones that move
 * data out of Redis (the answer is the data: a failover may ask for it after an outage), short
 * for decisions (asked again within seconds, or never).
 */
const MEMO_DATA_MS = 24 * 3600_000;
const MEMO_SHORT_MS = 10 * 60_000;
/**
 * A long SMS or a tally taken (emitted, summed up) leaves a mark this long. A failover puts back
 * what the old master may have lost from each instance's copies (failover.ts); a copy of what
 * another instance took just before is only forgotten at the next sweep (5 s) and must not come
 * back: the mark, replicated with the take, says it went.
 */
export const GONE_MS = 10 * 60_000;

export interface RedisStateOptions {
  /** single (default), sentinel or cluster (SPEC B6a `redisMode`) */
  mode?: RedisMode;
  url: string;
  password?: string;
  /** sentinel mode: the master set's name (default `mymaster`) and the sentinels' password */
  master?: string;
  sentinelPassword?: string;
  /** key prefix, e.g. `cnsms:` */
  prefix: string;
  /** the account's identity (URL origin + account): hashed into the keys' hash tag */
  scope: string;
  clock?: Clock;
  /** ms a command may take before the caller falls back (Redis slow or gone) */
  commandTimeoutMs?: number;
  /** ms a claimed deadline stays with its instance before it fires again (tests shorten it) */
  leaseMs?: number;
}

const lua = (body: string) =>
  body
    .replace(/\bSLACK\b/g, String(SLACK_MS))
    .replace(/\bDUE_KEEP\b/g, String(DUE_KEEP_MS))
    .replace(/\bMEMO_DATA\b/g, String(MEMO_DATA_MS))
    .replace(/\bMEMO_SHORT\b/g, String(MEMO_SHORT_MS))
    .replace(/\bGONE\b/g, String(GONE_MS));

/**
 * A script that remembers its answer: its last key is the memo (`op:<id>`); a run that finds it
 * answers from it. `NK` is the number of the script's own keys. A body returns a table (never
 * nil: `false` stands for "nothing").
 */
const memo = (body: string, keep: "MEMO_DATA" | "MEMO_SHORT", unless = "false") =>
  lua(`
    local NK = #KEYS - 1
    local known = redis.call('GET', KEYS[#KEYS])
    if known then return cjson.decode(known) end
    local out = (function()
${body}
    end)()
    if not (${unless}) then redis.call('SET', KEYS[#KEYS], cjson.encode(out), 'PX', ${keep}) end
    return out`);

// Lua pieces shared by the scripts that keep long-SMS parts. A message is a hash (part number ->
// value); the group has an index (zset message -> first arrival) and sizes (hash message -> bytes,
// and "*" -> all bytes). Removing a message's size never creates the sizes hash (every key has a
// TTL: HINCRBY on a missing hash would make one without).
const PART_FNS = `
    local function unsize(sz, m)
      local n = tonumber(redis.call('HGET', sz, m) or '0')
      if n ~= 0 then redis.call('HINCRBY', sz, '*', 0 - n) end
      redis.call('HDEL', sz, m)
    end
    -- The part numbers of a message taken (HGETALL pairs), kept GONE ms: a copy of them put back
    -- after a failover is refused, a late part of a new message under the same key is not.
    local function gone(mark, all)
      if #all == 0 then return end
      for i = 1, #all, 2 do redis.call('SADD', mark, all[i]) end
      redis.call('PEXPIRE', mark, GONE)
    end`;

const SCRIPTS = {
  // KEYS: the claim, and with a bound its group (zset name -> claim order). ARGV: now, ttl, and
  // with a bound: max, the key prefix, the claim's name without it.
  claim: lua(`
    local now = tonumber(ARGV[1])
    local v = redis.call('GET', KEYS[1])
    if v and tonumber(v) > now then return 0 end
    redis.call('SET', KEYS[1], now + tonumber(ARGV[2]), 'PX', tonumber(ARGV[2]) + SLACK)
    if KEYS[2] then
      -- Scores keep claim order (equal scores would sort by name): later than the newest, always.
      local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
      local score = now
      if top[2] and tonumber(top[2]) >= now then score = tonumber(top[2]) + 1 end
      redis.call('ZADD', KEYS[2], score, ARGV[5])
      redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + SLACK)
      local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
      if over > 0 then
        for i, m in ipairs(redis.call('ZPOPMIN', KEYS[2], over)) do
          if i % 2 == 1 then redis.call('DEL', ARGV[4] .. m) end
        end
      end
    end
    return 1`),
  // A versioned record is "expires|version|value". KEYS: the records, the memo. ARGV: now, the new
  // version, then per key: expected version ('' = absent), 'd' (delete) or 's' (set), value, ttl.
  cas: memo(
    `
    local now = tonumber(ARGV[1])
    for i = 1, NK do
      local cur, have = redis.call('GET', KEYS[i]), ''
      if cur then
        local a = string.find(cur, '|', 1, true)
        local b = string.find(cur, '|', a + 1, true)
        if b and tonumber(string.sub(cur, 1, a - 1)) > now then have = string.sub(cur, a + 1, b - 1) end
      end
      if have ~= ARGV[3 + (i - 1) * 4] then return {0} end
    end
    for i = 1, NK do
      local j = 3 + (i - 1) * 4
      if ARGV[j + 1] == 'd' then
        redis.call('DEL', KEYS[i])
      else
        local ttl = tonumber(ARGV[j + 3])
        redis.call('SET', KEYS[i], (now + ttl) .. '|' .. ARGV[2] .. '|' .. ARGV[j + 2], 'PX', ttl + SLACK)
      end
    end
    return {1}`,
    "MEMO_SHORT",
    // A refusal is not remembered: asked again it is refused again (versions never come back),
    // except after a failover lost the write it waited for, and then running it is right.
    "out[1] == 0",
  ),
  // KEYS: window and cap key per check, the memo; ARGV: now, then per check window ttl, cap max,
  // cap ttl (-1 = none)
  admit: memo(
    `
    local now = tonumber(ARGV[1])
    local out = {}
    for i = 1, NK, 2 do
      local j = 2 + ((i - 1) / 2) * 3
      local wttl, cmax, cttl = tonumber(ARGV[j]), tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2])
      local res, retry, cexp = 'ok', 0, 0
      if wttl >= 0 then
        local v = redis.call('GET', KEYS[i])
        if v and tonumber(v) > now then res, retry = 'window', tonumber(v) - now end
      end
      if res == 'ok' and cmax >= 0 then
        local h = redis.call('HMGET', KEYS[i + 1], 'n', 'e')
        if h[2] and tonumber(h[2]) > now then
          cexp = tonumber(h[2])
          if tonumber(h[1]) >= cmax then res, retry = 'cap', cexp - now end
        else
          cexp = 0
        end
      end
      if res == 'ok' then
        if wttl >= 0 then redis.call('SET', KEYS[i], now + wttl, 'PX', wttl + SLACK) end
        if cmax >= 0 then
          if cexp == 0 then
            cexp = now + cttl
            redis.call('HSET', KEYS[i + 1], 'n', 1, 'e', cexp)
          else
            redis.call('HINCRBY', KEYS[i + 1], 'n', 1)
          end
          redis.call('PEXPIRE', KEYS[i + 1], cexp - now + SLACK)
        end
      end
      out[#out + 1] = res
      out[#out + 1] = retry
    end
    return out`,
    "MEMO_SHORT",
  ),
  pace: lua(`
    local now, iv = tonumber(ARGV[1]), tonumber(ARGV[2])
    local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
    redis.call('SET', KEYS[1], start + iv, 'PX', start + iv - now + SLACK)
    return start - now`),
  // RPUSH in slices: Lua's unpack refuses more than ~8,000 values at once. KEYS: the list, the
  // memo. ARGV: max, ttl, values.
  append: memo(
    `
    local n = 0
    for i = 3, #ARGV, 1000 do n = redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV))) end
    local max = tonumber(ARGV[1])
    local dropped = {}
    if n > max then
      dropped = redis.call('LRANGE', KEYS[1], 0, n - max - 1)
      redis.call('LTRIM', KEYS[1], n - max, -1)
    end
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + SLACK)
    return dropped`,
    "MEMO_SHORT",
  ),
  takeList: memo(
    `
    local l = redis.call('LRANGE', KEYS[1], 0, -1)
    redis.call('DEL', KEYS[1])
    return l`,
    "MEMO_DATA",
  ),
  // Puts items back (a failover: taken items nobody received, or items kept in this process
  // during an outage), each once: an item already there is not added again. KEYS: the list.
  // ARGV: ttl, items.
  mergeList: lua(`
    for i = 2, #ARGV do
      if not redis.call('LPOS', KEYS[1], ARGV[i]) then redis.call('RPUSH', KEYS[1], ARGV[i]) end
    end
    if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) + SLACK then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + SLACK) end
    return redis.call('LLEN', KEYS[1])`),
  // KEYS: message hash, group index, group sizes, its gone mark, the memo. ARGV: number, value, total, ttl,
  // maxPending, message key, hash key prefix, now, maxBytes. Evicted messages' hashes are named from
  // the prefix: same hash tag, so the same slot (a Cluster keeps them together).
  addPart: memo(
    PART_FNS +
      `
    if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {'duplicate'} end
    local size = #ARGV[2] + #ARGV[6] + 100
    if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
      local all = redis.call('HGETALL', KEYS[1])
      redis.call('DEL', KEYS[1])
      redis.call('ZREM', KEYS[2], ARGV[6])
      unsize(KEYS[3], ARGV[6])
      gone(KEYS[4], all)
      return {'complete', all}
    end
    local ttl = tonumber(ARGV[4]) + SLACK
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('ZADD', KEYS[2], 'NX', ARGV[8], ARGV[6])
    redis.call('HINCRBY', KEYS[3], ARGV[6], size)
    local bytes = redis.call('HINCRBY', KEYS[3], '*', size)
    redis.call('PEXPIRE', KEYS[2], ttl)
    redis.call('PEXPIRE', KEYS[3], ttl)
    local out = {'added'}
    while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[5]) or (bytes > tonumber(ARGV[9]) and redis.call('ZCARD', KEYS[2]) > 0) do
      local oldest = redis.call('ZPOPMIN', KEYS[2])
      local hk = ARGV[7] .. oldest[1]
      local parts = redis.call('HGETALL', hk)
      redis.call('DEL', hk)
      unsize(KEYS[3], oldest[1])
      bytes = tonumber(redis.call('HGET', KEYS[3], '*') or '0')
      if #parts > 0 then
        out[#out + 1] = oldest[1]
        out[#out + 1] = parts
      end
    end
    return out`,
    "MEMO_DATA",
  ),
  // KEYS: message hash, group index, group sizes, its gone mark, the memo. ARGV: message key.
  takeParts: memo(
    PART_FNS +
      `
    local all = redis.call('HGETALL', KEYS[1])
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    unsize(KEYS[3], ARGV[1])
    gone(KEYS[4], all)
    return all`,
    "MEMO_DATA",
  ),
  // Puts parts back (a failover), each part once; completeness is left to the message's deadline.
  // KEYS: message hash, group index, group sizes, and for a copy put back its "gone" mark (parts
  // taken meanwhile stay gone; -1 when nothing was put back for that). ARGV: message key, ttl, now,
  // then number/value pairs.
  mergeParts: lua(`
    local added, skipped = 0, 0
    for i = 4, #ARGV, 2 do
      if KEYS[4] and redis.call('SISMEMBER', KEYS[4], ARGV[i]) == 1 then skipped = skipped + 1
      elseif redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then added = added + #ARGV[i + 1] + #ARGV[1] + 100 end
    end
    if skipped > 0 and added == 0 and redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
    local ttl = tonumber(ARGV[2]) + SLACK
    redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
    if added > 0 then
      redis.call('HINCRBY', KEYS[3], ARGV[1], added)
      redis.call('HINCRBY', KEYS[3], '*', added)
    end
    for i = 1, 3 do
      if redis.call('PTTL', KEYS[i]) < ttl and redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ttl) end
    end
    return redis.call('HLEN', KEYS[1])`),
  // KEYS: the tally's count, pending set and marks. ARGV: member, value. No memo: sent again, it
  // answers "duplicate" with what is left, which is all the failover needs (see failover.ts).
  mark: `
    if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown', 0} end
    if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then
      redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
      redis.call('PEXPIRE', KEYS[3], redis.call('PTTL', KEYS[1]))
      return {'marked', redis.call('SCARD', KEYS[2])}
    end
    if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return {'duplicate', redis.call('SCARD', KEYS[2])} end
    return {'stranger', redis.call('SCARD', KEYS[2])}`,
  takeTally: memo(
    `
    if redis.call('EXISTS', KEYS[1]) == 0 then return false end
    local p = redis.call('SMEMBERS', KEYS[2])
    local m = redis.call('HGETALL', KEYS[3])
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    redis.call('SET', KEYS[4], '1', 'PX', GONE)
    return {p, m}`,
    "MEMO_DATA",
  ),
  // Puts a tally back, or joins one kept in this process into the shared one: a member marked in
  // Redis keeps its mark (the first report wins). KEYS: count, pending, marks. ARGV: ttl, count,
  // number of pending members, the pending members, then member/value pairs of the marks. A copy
  // put back also names the tally's "gone" mark (KEYS[4]): a tally taken meanwhile stays gone (-1).
  mergeTally: lua(`
    if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
    local ttl, np = tonumber(ARGV[1]), tonumber(ARGV[3])
    if redis.call('EXISTS', KEYS[1]) == 0 then
      redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
      for i = 4, 3 + np do redis.call('SADD', KEYS[2], ARGV[i]) end
      for i = 4 + np, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
    else
      for i = 4 + np, #ARGV, 2 do
        if redis.call('SREM', KEYS[2], ARGV[i]) == 1 then redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
      end
    end
    local left = redis.call('PTTL', KEYS[1])
    for i = 2, 3 do
      if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], left) end
    end
    return redis.call('SCARD', KEYS[2])`),
  // One zset per kind (due:<kind>): a kind's deadlines never wait behind another kind's. ARGV: at,
  // id, now, and 'LT' to keep an earlier deadline already there (a failover joining its own) or
  // 'NX' to keep any deadline already there.
  schedule: lua(`
    if ARGV[4] == 'LT' then redis.call('ZADD', KEYS[1], 'LT', ARGV[1], ARGV[2])
    elseif ARGV[4] == 'NX' then redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
    else redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) end
    local want = tonumber(ARGV[1]) - tonumber(ARGV[3]) + DUE_KEEP
    if want < SLACK then want = SLACK end
    if redis.call('PTTL', KEYS[1]) < want then redis.call('PEXPIRE', KEYS[1], want) end
    return 1`),
  // KEYS: the due zsets of the kinds handled here. ARGV: now, most per kind, lease. Returns
  // (key index, id, leased score) triples; the ids stay, leased, until acknowledged.
  claimDue: `
    local now, limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
    local out = {}
    for i = 1, #KEYS do
      for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', now, 'LIMIT', 0, limit)) do
        redis.call('ZADD', KEYS[i], 'XX', now + lease, m)
        out[#out + 1] = i
        out[#out + 1] = m
        out[#out + 1] = now + lease
      end
    end
    return out`,
  // Removes a handled deadline, unless it was set again meanwhile (its score moved).
  ack: `
    local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
    if score and tonumber(score) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
    return 0`,
  // Gives a leased deadline back, due at ARGV[3] (its handler failed, or none runs here now).
  release: `
    local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
    if score and tonumber(score) == tonumber(ARGV[2]) then return redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1]) end
    return 0`,
  drain: `
    local all = redis.call('ZRANGE', KEYS[1], 0, -1)
    redis.call('DEL', KEYS[1])
    return all`,
} as const;

type ScriptName = keyof typeof SCRIPTS;
const SHA = Object.fromEntries(
  Object.entries(SCRIPTS).map(([k, v]) => [k, createHash("sha1").update(v).digest("hex")]),
) as Record<ScriptName, string>;
/** Scripts whose answer is data moved out of Redis: its memo is dropped once the answer is here. */
const DATA_SCRIPTS = new Set<ScriptName>(["addPart", "takeList", "takeParts", "takeTally"]);

function pairsToMap(flat: Reply): Map<string, string> {
  const out = new Map<string, string>();
  const a = (flat ?? []) as string[];
  for (let i = 0; i + 1 < a.length; i += 2) out.set(a[i], a[i + 1]);
  return out;
}

function partsOf(flat: Reply): Map<number, string> {
  const out = new Map<number, string>();
  for (const [k, v] of pairsToMap(flat)) out.set(Number(k), v);
  return out;
}

/** The hash tag of an account: short, stable, and free of the characters `{}` a name may hold. */
export function scopeTag(scope: string): string {
  return createHash("sha256").update(scope).digest("hex").slice(0, 16);
}

/** A fresh operation id (the memo's name). */
export function opId(): string {
  return randomBytes(9).toString("base64url");
}

export class RedisState implements AccountState {
  readonly backend = "redis" as const;
  private readonly link: RedisLink;
  private readonly base: string;
  /** any key of the account: routes every command to the account's slot in a cluster */
  private readonly route: string;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  // Every node of the account listens: dozens are normal, not a leak.
  private readonly events = new EventEmitter().setMaxListeners(0);
  private readonly handlers = new Map<string, DueHandler>();
  /** failures in a row per deadline (kind + id), for its retry delay */
  private readonly failures = new Map<string, number>();
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private closed = false;
  private failure: RedisStateError | null = null;
  private ready = false;
  /** when Redis answered again after losing it (0 before that: a first connection has no grace) */
  private readyAt = 0;
  private everReady = false;
  private reported = false;
  /** Date.now() of the last answer from Redis (the failover sees Redis answer again by it) */
  lastAnswer = 0;
  /** whether Redis ever answered: until then it holds nothing of ours that we could have seen */
  everAnswered = false;

  constructor(opts: RedisStateOptions) {
    this.clock = opts.clock ?? systemClock;
    this.timeoutMs = opts.commandTimeoutMs ?? 1000;
    this.leaseMs = opts.leaseMs ?? LEASE_MS;
    // A brace in the prefix would make Redis Cluster hash the keys by it, not by the account.
    if (/[{}]/.test(opts.prefix)) throw new RedisStateError("prefix");
    this.base = `${opts.prefix}{${scopeTag(opts.scope)}}:`;
    this.route = this.base;
    // Throws RedisStateError("url") for an unusable URL; everything else comes as events.
    this.link = connect({
      mode: opts.mode ?? "single",
      url: opts.url,
      password: opts.password,
      master: opts.master,
      sentinelPassword: opts.sentinelPassword,
    });
    // The link's errors are classified already (auth, connect) and told once per change.
    this.link.on("error", (e: unknown) => this.onError(e));
    this.link.on("ready", () => {
      this.ready = true;
      if (this.everReady) this.readyAt = Date.now();
      this.everReady = true;
      this.failure = null;
      this.events.emit("mode", "shared", "connected");
    });
    this.link.on("end", () => (this.ready = false));
  }

  get mode(): StateMode {
    return this.ready && this.link.isReady ? "shared" : "local";
  }

  /** Failovers seen (sentinel mode): the master moved; writes made just before may be lost. */
  get masterMoves(): number {
    return this.link.masterMoves;
  }

  /** Why Redis is not usable now (null while it is). */
  get problem(): RedisStateError | null {
    // Still connecting for the first time is not a problem (yet): no error has been seen.
    return this.mode === "shared" ? null : this.failure;
  }

  onMode(fn: (mode: StateMode, reason: string) => void): () => void {
    this.events.on("mode", fn);
    return () => this.events.off("mode", fn);
  }

  private onError(e: unknown): void {
    const wasReady = this.ready;
    this.ready = false;
    // A refused password is the cause; the "connection closed" errors that follow it are not.
    if (this.failure?.kind !== "auth") this.failure = classify(e);
    // One report per outage: the client keeps failing (and saying so) while it reconnects.
    if (wasReady || !this.reported) this.events.emit("mode", "local", this.failure.message);
    this.reported = true;
  }

  private key(k: string): string {
    return this.base + k;
  }

  private async eval(name: ScriptName, keys: string[], args: Array<string | number>, op?: string): Promise<Reply> {
    const all = op === undefined ? keys : [...keys, `op:${op}`];
    const tail = [String(all.length), ...all.map((k) => this.key(k)), ...args.map(String)];
    let reply: Reply;
    try {
      reply = await this.command(["EVALSHA", SHA[name], ...tail]);
    } catch (e) {
      if (!/NOSCRIPT/.test(String((e as Error)?.message))) throw e;
      reply = await this.command(["EVAL", SCRIPTS[name], ...tail]);
    }
    // The answer is here: its memo is not needed any more (nobody will ask again for it).
    if (op !== undefined && DATA_SCRIPTS.has(name) && hasData(reply)) {
      this.command(["DEL", this.key(`op:${op}`)]).catch(() => undefined);
    }
    return reply;
  }

  private command(args: string[], ms = this.timeoutMs): Promise<Reply> {
    if (this.closed) return Promise.reject(new RedisStateError("command", "closed"));
    return this.answered(this.bounded(this.link.send(args, this.route, Date.now() + ms), ms));
  }

  private answered<T>(p: Promise<T>): Promise<T> {
    return p.then((reply) => {
      this.lastAnswer = Date.now();
      this.everAnswered = true;
      return reply;
    });
  }

  /**
   * node-redis's own command timeout only covers the wait before a command is written: a Redis
   * that stops answering (paused, blackholed, a slow script) would hold every caller. Nothing
   * waits longer than the timeout; the command may still run later, so the error says so.
   */
  private bounded<T>(p: Promise<T>, ms: number): Promise<T> {
    let timer: NodeJS.Timeout;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new RedisStateError("command", "timeout", true)), ms);
    });
    return Promise.race([p.catch((e: unknown) => Promise.reject(commandError(e))), timeout]).finally(() =>
      clearTimeout(timer),
    );
  }

  /** One round trip (the failover asks whether Redis answers again). */
  async ping(): Promise<void> {
    await this.command(["PING"]);
  }

  /** Whether each probe is still in Redis: a key (EXISTS), or a member of a sorted set (ZSCORE). */
  async present(probes: Probe[]): Promise<boolean[]> {
    return Promise.all(
      probes.map(async (p) =>
        "key" in p
          ? Number(await this.command(["EXISTS", this.key(p.key)])) === 1
          : (await this.command(["ZSCORE", this.key(p.zset), p.member])) !== null,
      ),
    );
  }

  /** Writes a kept record again where it still exists (never makes it anew). */
  async renew(key: string, value: string, ttlMs: number): Promise<boolean> {
    const expires = this.clock.now() + Math.ceil(ttlMs);
    const ttl = String(Math.ceil(ttlMs) + SLACK_MS);
    return (await this.command(["SET", this.key(key), `${expires}|${value}`, "PX", ttl, "XX"])) !== null;
  }

  /** A write of a short-lived key of its own: Redis takes writes again (after READONLY, OOM). */
  async pingWrite(): Promise<void> {
    await this.command(["SET", this.key("state:probe"), "1", "PX", "10000"]);
  }

  async claim(key: string, ttlMs: number, bound?: ClaimBound): Promise<boolean> {
    const args: Array<string | number> = [this.clock.now(), Math.ceil(ttlMs)];
    if (!bound) return (await this.eval("claim", [key], args)) === 1;
    args.push(Math.max(1, bound.max), this.base, key);
    return (await this.eval("claim", [key, `claims:${bound.group}`], args)) === 1;
  }

  /** Takes a claim (or a guard window) kept elsewhere until `expires`, unless one is here. */
  async claimIfAbsent(key: string, expires: number): Promise<void> {
    const ttl = Math.ceil(expires - this.clock.now());
    if (ttl <= 0) return;
    await this.command(["SET", this.key(key), String(expires), "PX", String(ttl + SLACK_MS), "NX"]);
  }

  async read(key: string): Promise<Versioned | null> {
    const r = await this.readWithExpiry(key);
    return r && { value: r.value, version: r.version };
  }

  /** A versioned record with its logical expiry (the failover keeps a copy that lives as long). */
  async readWithExpiry(key: string): Promise<(Versioned & { expires: number }) | null> {
    const stored = (await this.command(["GET", this.key(key)])) as string | null;
    if (stored === null) return null;
    const a = stored.indexOf("|");
    const b = stored.indexOf("|", a + 1);
    const expires = Number(stored.slice(0, a));
    if (a < 0 || b < 0 || !(expires > this.clock.now())) return null;
    return { version: stored.slice(a + 1, b), value: stored.slice(b + 1), expires };
  }

  /** `op` is the new version: sent again with the same one, it answers what the first run did. */
  async cas(writes: CasWrite[], op = opId()): Promise<string | null> {
    if (!writes.length) return null;
    const args: Array<string | number> = [this.clock.now(), op];
    for (const w of writes) {
      args.push(w.expect ?? "", w.value === null ? "d" : "s", w.value ?? "", Math.max(1, Math.ceil(w.ttlMs)));
    }
    const r = (await this.eval(
      "cas",
      writes.map((w) => w.key),
      args,
      op,
    )) as number[];
    return Number(r?.[0]) === 1 ? op : null;
  }

  async admit(checks: AdmitCheck[], op = opId()): Promise<Admission[]> {
    if (!checks.length) return [];
    const keys: string[] = [];
    const args: number[] = [this.clock.now()];
    for (const c of checks) {
      // An unused slot still needs a key name (KEYS are declared for Cluster): a harmless one.
      keys.push(c.window?.key ?? "admit:none", c.cap?.key ?? "admit:none");
      args.push(c.window ? Math.ceil(c.window.ttlMs) : -1, c.cap ? c.cap.max : -1, c.cap ? Math.ceil(c.cap.ttlMs) : -1);
    }
    const r = (await this.eval("admit", keys, args, op)) as Array<string | number>;
    return checks.map((_c, i) => {
      const res = r[2 * i] as string;
      return res === "ok"
        ? { ok: true }
        : { ok: false, reason: res as "window" | "cap", retryInMs: Number(r[2 * i + 1]) };
    });
  }

  async pace(key: string, intervalMs: number): Promise<number> {
    return Number(await this.eval("pace", [key], [this.clock.now(), Math.ceil(intervalMs)]));
  }

  // A record carries its logical expiry in front of the value (`expires|value`).
  async put(key: string, value: string, ttlMs: number): Promise<void> {
    const expires = this.clock.now() + Math.ceil(ttlMs);
    await this.command(["SET", this.key(key), `${expires}|${value}`, "PX", String(Math.ceil(ttlMs) + SLACK_MS)]);
  }

  /** Writes a record unless one is there (a failover joining what it kept locally: Redis's wins). */
  async putIfAbsent(key: string, value: string, ttlMs: number): Promise<void> {
    const expires = this.clock.now() + Math.ceil(ttlMs);
    await this.command(["SET", this.key(key), `${expires}|${value}`, "PX", String(Math.ceil(ttlMs) + SLACK_MS), "NX"]);
  }

  async get(key: string): Promise<string | null> {
    return this.unwrap((await this.command(["GET", this.key(key)])) as string | null);
  }

  async take(key: string): Promise<string | null> {
    return this.unwrap((await this.command(["GETDEL", this.key(key)])) as string | null);
  }

  private unwrap(stored: string | null): string | null {
    if (stored === null) return null;
    const bar = stored.indexOf("|");
    return Number(stored.slice(0, bar)) > this.clock.now() ? stored.slice(bar + 1) : null;
  }

  async append(key: string, values: string[], max: number, ttlMs: number, op = opId()): Promise<string[]> {
    if (!values.length) return [];
    return ((await this.eval("append", [key], [max, Math.ceil(ttlMs), ...values], op)) as string[]) ?? [];
  }

  async takeList(key: string, op = opId()): Promise<string[]> {
    return ((await this.eval("takeList", [key], [], op)) as string[]) ?? [];
  }

  /** Adds items not there yet (by their whole text) at the end. */
  async mergeList(key: string, items: string[], ttlMs: number): Promise<void> {
    for (let i = 0; i < items.length; i += 1000) {
      await this.eval("mergeList", [key], [Math.ceil(ttlMs), ...items.slice(i, i + 1000)]);
    }
  }

  private partKeys(group: string, key: string): string[] {
    return [`${group}:m:${key}`, `${group}:idx`, `${group}:sz`];
  }

  /** The mark a message taken leaves (GONE_MS): the numbers of its parts. */
  private partsGone(group: string, key: string): string {
    return `${group}:gp:${key}`;
  }

  async addPart(
    group: string,
    key: string,
    number: number,
    total: number,
    value: string,
    limits: PartLimits,
    op = opId(),
  ): Promise<PartAdd> {
    const r = (await this.eval(
      "addPart",
      [...this.partKeys(group, key), this.partsGone(group, key)],
      [
        number,
        value,
        total,
        Math.ceil(limits.ttlMs),
        Math.max(1, limits.maxPending),
        key,
        this.key(`${group}:m:`),
        this.clock.now(),
        limits.maxBytes,
      ],
      op,
    )) as Reply[];
    const result = r[0] as PartAdd["result"];
    if (result === "complete") return { result, parts: partsOf(r[1]) };
    if (result === "duplicate" || r.length === 1) return { result };
    const evicted: NonNullable<PartAdd["evicted"]> = [];
    for (let i = 1; i + 1 < r.length; i += 2) evicted.push({ key: r[i] as string, parts: partsOf(r[i + 1]) });
    return { result, evicted };
  }

  async takeParts(group: string, key: string, op = opId()): Promise<Map<number, string> | null> {
    const parts = partsOf(
      await this.eval("takeParts", [...this.partKeys(group, key), this.partsGone(group, key)], [key], op),
    );
    return parts.size ? parts : null;
  }

  /**
   * Puts parts of a message back (each part once); returns how many parts it holds now. `copy`: a
   * copy kept here put back after a failover or data loss, not if the message was taken since (-1).
   */
  async mergeParts(
    group: string,
    key: string,
    parts: Map<number, string>,
    ttlMs: number,
    copy = false,
  ): Promise<number> {
    const args: Array<string | number> = [key, Math.ceil(ttlMs), this.clock.now()];
    for (const [n, v] of parts) args.push(n, v);
    const keys = this.partKeys(group, key);
    return Number(await this.eval("mergeParts", copy ? [...keys, this.partsGone(group, key)] : keys, args));
  }

  private tallyKeys(key: string): string[] {
    return [`${key}:t`, `${key}:p`, `${key}:m`];
  }

  async tally(key: string, members: readonly string[], ttlMs: number): Promise<void> {
    const [t, p, m] = this.tallyKeys(key).map((k) => this.key(k));
    const ttl = String(Math.ceil(ttlMs));
    if (this.closed) throw new RedisStateError("command", "closed");
    const commands: string[][] = [["DEL", t, p, m]];
    // Large sends: members go in slices, so no single command carries a million arguments.
    for (let i = 0; i < members.length; i += 10_000) commands.push(["SADD", p, ...members.slice(i, i + 10_000)]);
    commands.push(["PEXPIRE", p, ttl], ["SET", t, String(members.length), "PX", ttl]);
    // A 50,000-number request is 50,000 members: more time than one small command.
    const ms = Math.max(this.timeoutMs, 10 * this.timeoutMs * Math.ceil(members.length / 10_000));
    await this.answered(this.bounded(this.link.exec(commands, this.route, Date.now() + ms), ms));
  }

  async mark(key: string, member: string, value: string): Promise<Mark> {
    const r = (await this.eval("mark", this.tallyKeys(key), [member, value])) as [string, number];
    return { result: r[0] as Mark["result"], left: Number(r[1]) };
  }

  async takeTally(key: string, op = opId()): Promise<Tally | null> {
    const r = (await this.eval("takeTally", [...this.tallyKeys(key), `${key}:g`], [], op)) as [string[], Reply] | null;
    if (!r) return null;
    return { pending: r[0] ?? [], marks: pairsToMap(r[1]) };
  }

  /**
   * Puts a tally back, or joins one kept locally (marks already in Redis win); returns members left.
   * `copy`: a copy kept here put back after a failover or data loss, not if it was taken since (-1).
   */
  async mergeTally(key: string, t: Tally, ttlMs: number, copy = false): Promise<number> {
    const args: Array<string | number> = [Math.max(1, Math.ceil(ttlMs)), t.pending.length + t.marks.size];
    args.push(t.pending.length, ...t.pending);
    for (const [m, v] of t.marks) args.push(m, v);
    const keys = this.tallyKeys(key);
    return Number(await this.eval("mergeTally", copy ? [...keys, `${key}:g`] : keys, args));
  }

  async schedule(kind: string, id: string, at: number): Promise<void> {
    await this.eval("schedule", [`due:${kind}`], [Math.ceil(at), id, this.clock.now()]);
  }

  /** Sets deadline `id` at `at` unless it is already due earlier (a failover joining its own). */
  async scheduleEarliest(kind: string, id: string, at: number): Promise<void> {
    await this.eval("schedule", [`due:${kind}`], [Math.ceil(at), id, this.clock.now(), "LT"]);
  }

  /** Sets a deadline only where it has none (a leased one stays leased: its handler is at work). */
  async scheduleIfAbsent(kind: string, id: string, at: number): Promise<void> {
    await this.eval("schedule", [`due:${kind}`], [Math.ceil(at), id, this.clock.now(), "NX"]);
  }

  async cancel(kind: string, id: string): Promise<void> {
    await this.command(["ZREM", this.key(`due:${kind}`), id]);
  }

  onDue(kind: string, handler: DueHandler, _opts?: DueOptions): () => void {
    this.handlers.set(kind, handler);
    this.startPolling();
    return () => {
      if (this.handlers.get(kind) === handler) this.handlers.delete(kind);
    };
  }

  async drain(kind: string): Promise<string[]> {
    return ((await this.eval("drain", [`due:${kind}`], [])) as string[]) ?? [];
  }

  /**
   * Claims the due deadlines of the kinds handled here (leased: another instance does not take
   * them meanwhile) and hands them out; each is removed when its handler has finished, or given
   * back when it failed or no handler runs here any more (a redeploy in between).
   */
  async poll(): Promise<number> {
    if (this.polling || this.closed || !this.handlers.size || this.mode !== "shared") return 0;
    // Just reconnected: every instance first hands over what it kept locally meanwhile (a step
    // taken during an outage), so a deadline fired now does not act on what Redis had before.
    if (Date.now() - this.readyAt < POLL_GRACE_MS) return 0;
    this.polling = true;
    let handled = 0;
    try {
      for (let round = 0; round < 100; round++) {
        const kinds = [...this.handlers.keys()];
        const due = (await this.eval(
          "claimDue",
          kinds.map((k) => `due:${k}`),
          [this.clock.now(), 100, this.leaseMs],
        )) as Array<string | number>;
        for (let i = 0; i + 2 < due.length; i += 3) {
          const kind = kinds[Number(due[i]) - 1];
          const id = String(due[i + 1]);
          const lease = Number(due[i + 2]);
          handled++;
          this.run(kind, id, lease);
        }
        if (due.length < 300) break;
      }
    } catch {
      // Redis went away mid-poll: the next poll (or the local state) carries on. Deadlines it may
      // have leased fire again after their lease.
    } finally {
      this.polling = false;
    }
    return handled;
  }

  /** Settles a deadline by its handler's outcome (SPEC B6a): done → removed; else due again. */
  private run(kind: string, id: string, lease: number): void {
    const key = `${kind}\n${id}`;
    const handler = this.handlers.get(kind);
    const giveBack = (delay: number) =>
      this.eval("release", [`due:${kind}`], [id, lease, this.clock.now() + delay]).catch(() => undefined);
    // No handler here any more (its node is being replaced): due again now, for the one replacing it.
    if (!handler) return void giveBack(0);
    const failed = () => {
      const n = (this.failures.get(key) ?? 0) + 1;
      if (this.failures.size < 10_000 || this.failures.has(key)) this.failures.set(key, n);
      void giveBack(Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** (n - 1)));
    };
    const done = () => {
      this.failures.delete(key);
      void this.eval("ack", [`due:${kind}`], [id, lease]).catch(() => undefined);
    };
    let result: void | Promise<void>;
    try {
      result = handler(id);
    } catch {
      return failed();
    }
    if (result instanceof Promise) result.then(done, failed);
    else done();
  }

  // The poll runs on real time even when the state's clock is injected: deadlines are compared
  // with the clock's "now" inside the script, so a test that moves its clock sees them fire.
  private startPolling(): void {
    if (this.pollTimer !== null || this.closed) return;
    const tick = () => {
      this.pollTimer = null;
      if (this.closed || !this.handlers.size) return;
      void this.poll().finally(() => {
        if (this.pollTimer === null && !this.closed && this.handlers.size) {
          this.pollTimer = setTimeout(tick, POLL_MS);
        }
      });
    };
    this.pollTimer = setTimeout(tick, 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer !== null) clearTimeout(this.pollTimer);
    this.handlers.clear();
    try {
      await this.link.close();
    } catch {
      this.link.destroy();
    }
  }
}

/** A memo'd reply that carries data (so its memo may go): anything beyond a bare status. */
function hasData(reply: Reply): boolean {
  if (!Array.isArray(reply)) return false;
  if (reply.length === 0) return false;
  // addPart's "added"/"duplicate" without evicted messages carry nothing.
  return !(reply.length === 1 && typeof reply[0] === "string");
}

/**
 * A failed command as the failover sees it: whether it may have run (connect.ts's maybeRan: an
 * error reply or an offline client means it did not; a connection lost while it was out means it
 * may have), and why, without secrets.
 */
function commandError(e: unknown): RedisStateError {
  if (e instanceof RedisStateError) return e;
  const ran = maybeRan(e);
  const text = String((e as Error)?.message ?? e);
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b/.test(text)) return new RedisStateError("auth", "", ran);
  const code = /^[A-Z]{3,}\b/.exec(text)?.[0];
  if (code) return new RedisStateError("command", code, ran);
  if (!ran) return new RedisStateError("connect", "offline");
  return new RedisStateError("command", "connection lost", true);
}
