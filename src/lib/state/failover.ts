// Redis with a local fallback (SPEC B6): while Redis is unreachable or failing, every operation
// runs on this process's memory, so nothing is blocked or refused because of Redis; when Redis
// is back, operations go there again. What was kept locally in between stays local (a push may
// then be emitted twice, never dropped). Takes are the exception: a take that fails in Redis is
// not "nothing there" but a failure the caller retries, unless what it found locally answers it.
import { EventEmitter } from "node:events";
import type {
  AccountState,
  Admission,
  AdmitCheck,
  CasWrite,
  ClaimBound,
  DueHandler,
  Mark,
  PartAdd,
  PartLimits,
  StateMode,
  Tally,
  Versioned,
} from "./index";
import type { MemoryState } from "./memory";
import { RedisStateError, type RedisState } from "./redis";

export class FailoverState implements AccountState {
  readonly backend = "redis" as const;
  // Every node of the account listens: dozens are normal, not a leak.
  private readonly events = new EventEmitter().setMaxListeners(0);
  private failing: RedisStateError | null = null;
  // After a failure Redis is left alone for a moment, so not every operation waits out a Redis
  // that stopped answering; then one operation tries it again.
  private failingUntil = 0;
  private last: string;

  /** `redis` is null when it could not even be set up (`problem` says why). */
  constructor(
    private readonly redis: RedisState | null,
    readonly local: MemoryState,
    private readonly setupProblem: RedisStateError | null = null,
  ) {
    this.last = this.describe();
    redis?.onMode((m, reason) => {
      // Reconnected: the failure that sent us local is over.
      if (m === "shared") this.failing = null;
      this.update(reason);
    });
  }

  get mode(): StateMode {
    return this.redis?.mode === "shared" && !this.failing ? "shared" : "local";
  }

  /** Why the state is local now (null when shared): for the config node's status and log. */
  get problem(): RedisStateError | null {
    if (this.mode === "shared") return null;
    return this.setupProblem ?? this.failing ?? this.redis?.problem ?? null;
  }

  onMode(fn: (mode: StateMode, reason: string) => void): () => void {
    this.events.on("mode", fn);
    return () => this.events.off("mode", fn);
  }

  private describe(): string {
    return `${this.mode} ${this.problem?.message ?? ""}`;
  }

  /** Tells listeners when the mode or the reason for it changes (connecting → wrong password). */
  private update(reason: string): void {
    const now = this.describe();
    if (now === this.last) return;
    this.last = now;
    this.events.emit("mode", this.mode, reason);
  }

  private usable(): RedisState | null {
    const r = this.redis;
    return r && r.mode === "shared" && (!this.failing || Date.now() >= this.failingUntil) ? r : null;
  }

  private ok(): void {
    if (!this.failing) return;
    this.failing = null;
    this.update("Redis answers again");
  }

  private fail(e: unknown): void {
    this.failing = e instanceof RedisStateError ? e : new RedisStateError("command", shortReason(e));
    this.failingUntil = Date.now() + RETRY_REDIS_MS;
    this.update(this.failing.message);
  }

  private async run<T>(remote: (r: RedisState) => Promise<T>, local: () => T): Promise<T> {
    const r = this.usable();
    if (r) {
      try {
        const v = await remote(r);
        this.ok();
        return v;
      } catch (e) {
        this.fail(e);
      }
    }
    return local();
  }

  /**
   * A take from both places. While Redis is unusable, what is in it stays there for later (its
   * own deadline fires when Redis is back). A take that fails in Redis may have run there with
   * the answer lost: with nothing local to answer instead, it is the caller's failure (it retries).
   */
  private async takeBoth<T>(remote: (r: RedisState) => Promise<T | null>, local: () => T | null): Promise<T | null> {
    const here = local();
    const r = this.usable();
    if (!r) return here;
    try {
      const there = await remote(r);
      this.ok();
      return there ?? here;
    } catch (e) {
      this.fail(e);
      if (here === null) throw e;
      return here;
    }
  }

  claim(key: string, ttlMs: number, bound?: ClaimBound): Promise<boolean> {
    return this.run(
      (r) => r.claim(key, ttlMs, bound),
      () => this.local.claimNow(key, ttlMs, bound),
    );
  }

  // Provisional (wave 3 reworks the failover): read and compare-and-set in Redis, else locally.
  read(key: string): Promise<Versioned | null> {
    return this.run(
      (r) => r.read(key),
      () => this.local.readNow(key),
    );
  }

  cas(writes: CasWrite[]): Promise<string | null> {
    return this.run(
      (r) => r.cas(writes),
      () => this.local.casNow(writes),
    );
  }

  admit(checks: AdmitCheck[]): Promise<Admission[]> {
    return this.run(
      (r) => r.admit(checks),
      () => this.local.admitNow(checks),
    );
  }

  pace(key: string, intervalMs: number): Promise<number> {
    return this.run(
      (r) => r.pace(key, intervalMs),
      () => this.local.paceNow(key, intervalMs),
    );
  }

  put(key: string, value: string, ttlMs: number): Promise<void> {
    return this.run(
      (r) => r.put(key, value, ttlMs),
      () => this.local.putNow(key, value, ttlMs),
    );
  }

  // Reads look in both places: a record written locally during an outage is still found after it.
  async get(key: string): Promise<string | null> {
    return (
      (await this.run(
        (r) => r.get(key),
        () => null,
      )) ?? this.local.getNow(key)
    );
  }

  take(key: string): Promise<string | null> {
    return this.takeBoth(
      (r) => r.take(key),
      () => this.local.takeNow(key),
    );
  }

  append(key: string, values: string[], max: number, ttlMs: number): Promise<string[]> {
    return this.run(
      (r) => r.append(key, values, max, ttlMs),
      () => this.local.appendNow(key, values, max, ttlMs),
    );
  }

  async takeList(key: string): Promise<string[]> {
    // Items kept locally arrived during an outage, after those in Redis.
    let here: string[] = [];
    const there = await this.takeBoth(
      (r) => r.takeList(key),
      () => {
        here = this.local.takeListNow(key);
        return here.length ? here : null;
      },
    );
    return there === null || there === here ? here : there.concat(here);
  }

  addPart(
    group: string,
    key: string,
    number: number,
    total: number,
    value: string,
    limits: PartLimits,
  ): Promise<PartAdd> {
    return this.run(
      (r) => r.addPart(group, key, number, total, value, limits),
      () => this.local.addPartNow(group, key, number, total, value, limits),
    );
  }

  async takeParts(group: string, key: string): Promise<Map<number, string> | null> {
    let here: Map<number, string> | null = null;
    const there = await this.takeBoth(
      (r) => r.takeParts(group, key),
      () => (here = this.local.takePartsNow(group, key)),
    );
    if (there === null || here === null || there === here) return there;
    for (const [n, v] of here as Map<number, string>) there.set(n, v);
    return there;
  }

  tally(key: string, members: readonly string[], ttlMs: number): Promise<void> {
    return this.run(
      (r) => r.tally(key, members, ttlMs),
      () => this.local.tallyNow(key, members, ttlMs),
    );
  }

  async mark(key: string, member: string, value: string): Promise<Mark> {
    const m = await this.run(
      (r) => r.mark(key, member, value),
      () => this.local.markNow(key, member, value),
    );
    // A tally opened locally during an outage still takes its reports once Redis is back.
    return m.result === "unknown" ? this.local.markNow(key, member, value) : m;
  }

  takeTally(key: string): Promise<Tally | null> {
    return this.takeBoth(
      (r) => r.takeTally(key),
      () => this.local.takeTallyNow(key),
    );
  }

  schedule(kind: string, id: string, at: number): Promise<void> {
    return this.run(
      (r) => r.schedule(kind, id, at),
      () => this.local.scheduleNow(kind, id, at),
    );
  }

  async cancel(kind: string, id: string): Promise<void> {
    this.local.cancelNow(kind, id);
    await this.run(
      (r) => r.cancel(kind, id),
      () => undefined,
    );
  }

  onDue(kind: string, handler: DueHandler): () => void {
    const offLocal = this.local.onDue(kind, handler);
    const offRemote = this.redis?.onDue(kind, handler);
    return () => {
      offLocal();
      offRemote?.();
    };
  }

  async drain(kind: string): Promise<string[]> {
    const remote = await this.run(
      (r) => r.drain(kind),
      () => [] as string[],
    );
    return [...new Set([...this.local.drainNow(kind), ...remote])];
  }

  async close(): Promise<void> {
    await Promise.all([this.redis?.close(), this.local.close()]);
  }
}

const RETRY_REDIS_MS = 5000;

function shortReason(e: unknown): string {
  const text = String((e as Error)?.message ?? e);
  if (/timeout/i.test(text)) return "timeout";
  if (/offline|closed|socket/i.test(text)) return "connection lost";
  // A Redis error reply starts with its code (WRONGTYPE, OOM, READONLY, ...): say only that.
  return /^[A-Z]{3,}\b/.exec(text)?.[0] ?? "error";
}
