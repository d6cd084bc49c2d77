// Redis with a local fallback (SPEC B6, B6a). While Redis is unreachable or failing, operations run
// on this process's memory, so nothing is blocked or refused because of Redis; when Redis answers
// again, what was kept here joins the shared state (each item once, in its order) and operations
// go there again.
//
// A command whose answer was lost (a timeout, a connection that broke while it was out) may still
// have run, exactly like a send whose reply was lost. ON_UNKNOWN below says, for each operation,
// whether it may then be done here too, and how long Redis is asked again for what it did (the
// scripts remember their answer under an operation id: see redis.ts). An operation that moves data
// (appends, parts, takes) and stays unanswered is settled when Redis answers again: sent once more
// under its id, and whatever data it moved that nobody received is put back. Callers never decide.
import { EventEmitter } from "node:events";
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
import type { MemoryState, Snapshot } from "./memory";
import { Shadow, type Probe, type ShadowCopy } from "./shadow";
import { maybeRan, RedisStateError } from "./problem";
import { GONE_MS, opId, type RedisState } from "./redis";

/**
 * What each operation does when Redis may have run it but did not answer (SPEC B6a):
 * - `redo`: do it in this process's memory too. Only where running it twice cannot double an
 *   effect that matters.
 * - `resolveMs`: how long to keep sending it again under the same id (Redis answers what the first
 *   run did) before giving up on an answer; 0: not asked again.
 * - `unanswered`: what the caller gets when no answer came.
 */
export const ON_UNKNOWN = {
  claim: { redo: true, resolveMs: 0, unanswered: "taken here: a duplicate push may go out once more (at least once)" },
  pace: { redo: true, resolveMs: 0, unanswered: "reserved here: a start reserved twice only spaces sends more" },
  put: { redo: true, resolveMs: 0, unanswered: "written here too: the same record twice is one record" },
  get: { redo: true, resolveMs: 0, unanswered: "read here" },
  read: { redo: true, resolveMs: 0, unanswered: "read here" },
  tally: { redo: true, resolveMs: 0, unanswered: "opened here too: marks go where the tally is found" },
  schedule: { redo: true, resolveMs: 0, unanswered: "set here too: a handler finds nothing the second time" },
  cancel: { redo: true, resolveMs: 0, unanswered: "cancelled here; sent again with the next operation" },
  drain: { redo: true, resolveMs: 0, unanswered: "drained here" },
  admit: {
    redo: false,
    resolveMs: 2000,
    unanswered: "let through and not counted here: counting twice could refuse a later alert (one more through)",
  },
  mark: {
    redo: false,
    resolveMs: 2000,
    unanswered: "marked here if the tally is here, else kept as an early report; sent again, a mark that ran says so",
  },
  cas: { redo: false, resolveMs: 2000, unanswered: "a failure: the caller reads again and decides again" },
  append: {
    redo: false,
    resolveMs: 2000,
    unanswered: "kept here and released only once Redis says whether it ran: a held alert is never stored twice",
  },
  addPart: {
    redo: true,
    resolveMs: 3000,
    unanswered: "kept here too (parts join by number); settled when Redis answers, so no part taken is lost",
  },
  take: { redo: false, resolveMs: 0, unanswered: "a failure: the value may be gone, the caller tries again" },
  takeList: { redo: false, resolveMs: 3000, unanswered: "a failure: settled when Redis answers, then taken again" },
  takeParts: { redo: false, resolveMs: 3000, unanswered: "a failure: settled when Redis answers, then taken again" },
  takeTally: { redo: false, resolveMs: 3000, unanswered: "a failure: settled when Redis answers, then taken again" },
} as const satisfies Record<string, { redo: boolean; resolveMs: number; unanswered: string }>;

export type Op = keyof typeof ON_UNKNOWN;

/** After a failure Redis is left alone this long (then one operation tries it again). */
const RETRY_REDIS_MS = 5000;
/** Decisions that protect people and money wait this long for the first connection (SPEC B6a). */
const START_WAIT_MS = 2000;
/** While Redis is failing it is asked whether it answers again this often. */
const PROBE_MS = 1000;
/** Data put back by a settlement lives at least this long (its own deadline flushes it sooner). */
const RESTORE_TTL_MS = 24 * 3600_000;
/** The key whose absence tells that Redis lost its data, and how long it lives (renewed at each look). */
const EPOCH_KEY = "state:epoch";
const EPOCH_TTL_MS = 30 * 24 * 3600_000;
/** How often the copies kept for a Redis that loses its data are checked against it, and how many of each kind. */
const SWEEP_MS = 5000;
/**
 * Versioned writes (cas) are kept this long, at most CAS_LOG_MAX of them, to be sent again after a
 * failover: the old master takes writes until the sentinels turn it into a replica, and the link
 * notices within seconds. Well within the cas memo's life (10 min), which makes sending one again
 * harmless where it was not lost.
 */
const CAS_LOG_MS = 60_000;
const CAS_LOG_MAX = 10_000;
const CAS_LOG_MAX_CHARS = 16 * 1024 * 1024;
/** kept at most this long while a failover waits to be put back (the memo lives 10 min) */
const CAS_LOG_HELD_MS = 9 * 60_000;
/** A replayed write refused is tried again this often, this many times in all (see replay()). */
const REPLAY_RETRY_MS = 2000;
const REPLAY_TRIES = 5;
const SWEEP_BATCH = 200;
/** How long a close waits for what was kept here to reach Redis. */
const CLOSE_SYNC_MS = 2000;
/** Most operations left to settle (beyond, the oldest is given up: said in the log). */
const MAX_PENDING = 10_000;

type Outcome<T> =
  | { state: "ok"; v: T }
  | { state: "failed"; e: unknown }
  | { state: "unknown"; e: unknown; id: string }
  | { state: "skipped" };

/** An operation that moved data and stayed unanswered: settled before its data is taken again. */
interface Pending {
  id: string;
  /** sends it again under its id and puts back the data it moved that nobody received */
  settle(r: RedisState): Promise<void>;
  /** an append's items, kept here meanwhile (released only once settled) */
  items?: string[];
}

/** The state could not say what it holds (Redis held data and does not answer now). */
export class StateUnavailableError extends RedisStateError {
  constructor() {
    super("command", "unavailable");
  }
}

export class FailoverState implements AccountState {
  readonly backend = "redis" as const;
  // Every node of the account listens: dozens are normal, not a leak.
  private readonly events = new EventEmitter().setMaxListeners(0);
  private failing: RedisStateError | null = null;
  // After a failure Redis is left alone for a moment, so not every operation waits out a Redis
  // that stopped answering; it is probed meanwhile, and any answer ends the pause.
  private failingUntil = 0;
  private failedAt = 0;
  private last: string;
  private readonly started: Promise<void>;
  private readonly pending = new Map<string, Pending[]>();
  private pendingCount = 0;
  private syncing: Promise<void> | null = null;
  /** kinds whose deadlines also fire from memory while Redis is away (DueOptions.continueLocally) */
  private readonly mirrored = new Set<string>();
  private readonly isMirrored = (kind: string) => this.mirrored.has(kind);
  /** Redis's data epoch as last seen: a Redis that comes back without it lost its data */
  private epoch: string | null = null;
  /** Redis lost its data and what was kept here is not all back yet */
  private refill = false;
  /** the failovers (master moves) seen so far; one more: what was written just before may be lost */
  private moves = 0;
  /** Redis failed over and what it may have lost is not all back yet */
  private moved = false;
  /** what this process put into Redis that lives only there until taken: put back if Redis loses it */
  private readonly shadow = new Shadow();
  private sweeper: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  /** copies of versioned records still to check in this pass of the sweep */
  private copyQueue: string[] = [];
  private copyPass = 0;
  /** the versioned writes of the last minute, to send again after a failover */
  private readonly casLog = new CasLog();
  /** when Redis last stopped answering as it should (what a failover lost was written before) */
  private outageSince: number | null = null;
  /** a replay and its retries are under way */
  private replaying = false;
  private readonly retries = new Set<NodeJS.Timeout>();
  private probe: NodeJS.Timeout | null = null;
  private closed = false;
  // List items carry their arrival (time and order) and an id: kept here and in Redis they are
  // released in arrival order, each once.
  private seq = 0;
  /** operations given up beyond MAX_PENDING (for the log) */
  givenUp = 0;

  /** `redis` is null when it could not even be set up (`problem` says why). */
  constructor(
    private readonly redis: RedisState | null,
    readonly local: MemoryState,
    private readonly setupProblem: RedisStateError | null = null,
  ) {
    local.copies = true;
    this.last = this.describe();
    this.started = this.firstConnection();
    if (redis) {
      this.sweeper = setInterval(() => void (this.sweeping ?? this.sweepShadow()), SWEEP_MS);
      this.sweeper.unref?.();
    }
    redis?.onMode((m, reason) => {
      if (m === "local") this.outageSince ??= Date.now();
      // Reconnected: the failure that sent us local is over, and what was kept here goes there.
      if (m === "shared") {
        this.failing = null;
        void this.sync();
      }
      this.update(reason);
    });
  }

  /** Resolves at the first connection, or after START_WAIT_MS (never rejects). */
  private firstConnection(): Promise<void> {
    const r = this.redis;
    if (!r || r.mode === "shared") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, START_WAIT_MS);
      timer.unref?.();
      const off = r.onMode((m) => {
        if (m === "shared" || r.problem?.kind === "auth") done();
      });
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
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

  /** Operations whose outcome is still to be settled with Redis (tests, the soak). */
  get unsettled(): number {
    return this.pendingCount;
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
    if (!r || r.mode !== "shared" || this.closed) return null;
    if (!this.failing || Date.now() >= this.failingUntil) return r;
    // Any answer ends a pause, but not one for writes refused: a replica still answers reads.
    if (r.lastAnswer > this.failedAt && !refusesWrites(this.failing)) return r;
    return null;
  }

  private ok(): void {
    if (!this.failing) return;
    this.failing = null;
    this.update("Redis answers again");
    void this.sync();
  }

  private fail(e: unknown): void {
    this.failing = e instanceof RedisStateError ? e : new RedisStateError("command", shortReason(e));
    this.failedAt = Date.now();
    this.outageSince ??= this.failedAt;
    this.failingUntil = this.failedAt + RETRY_REDIS_MS;
    this.update(this.failing.message);
    this.startProbe();
  }

  /** While failing: asks Redis now and then whether it answers again (so the pause ends at once). */
  private startProbe(): void {
    if (this.probe || !this.redis || this.closed) return;
    const r = this.redis;
    const tick = () => {
      this.probe = null;
      if (!this.failing || this.closed) return;
      // A Redis that refused writes is back only when it takes one (one outage, one pair of log lines).
      (refusesWrites(this.failing) ? r.pingWrite() : r.ping()).then(
        () => this.ok(),
        () => {
          if (!this.closed && this.failing) {
            this.probe = setTimeout(tick, PROBE_MS);
            this.probe.unref?.();
          }
        },
      );
    };
    this.probe = setTimeout(tick, PROBE_MS);
    this.probe.unref?.();
  }

  /**
   * Runs one operation in Redis. `skipped`: Redis is not usable now; `failed`: it surely did not
   * run; `unknown`: it may have run, and asking again (same id, for ON_UNKNOWN[op].resolveMs) got
   * no answer either.
   */
  private async exec<T>(op: Op, remote: (r: RedisState, id: string) => Promise<T>): Promise<Outcome<T>> {
    const r = this.usable();
    if (!r) return { state: "skipped" };
    const id = opId();
    try {
      const v = await remote(r, id);
      this.ok();
      return { state: "ok", v };
    } catch (e) {
      this.fail(e);
      if (!maybeRan(e)) return { state: "failed", e };
      const until = Date.now() + ON_UNKNOWN[op].resolveMs;
      while (Date.now() < until && !this.closed) {
        try {
          const v = await remote(r, id);
          this.ok();
          return { state: "ok", v };
        } catch {
          // Not connected (the command was not even sent) or still no answer: ask again shortly.
          await pause(Math.min(200, Math.max(0, until - Date.now())));
        }
      }
      return { state: "unknown", e, id };
    }
  }

  /** Remembers an operation to settle (bounded: beyond MAX_PENDING the oldest is given up). */
  private remember(dataKey: string, p: Pending): void {
    let list = this.pending.get(dataKey);
    if (!list) this.pending.set(dataKey, (list = []));
    list.push(p);
    this.pendingCount++;
    if (this.pendingCount > MAX_PENDING) {
      const [oldestKey, oldest] = this.pending.entries().next().value as [string, Pending[]];
      oldest.shift();
      this.pendingCount--;
      this.givenUp++;
      if (!oldest.length) this.pending.delete(oldestKey);
    }
  }

  /** Settles the operations left on `dataKey` (in their order); throws when Redis fails again. */
  private async settle(dataKey: string, r: RedisState): Promise<void> {
    const list = this.pending.get(dataKey);
    while (list?.length) {
      await list[0].settle(r);
      list.shift();
      this.pendingCount--;
    }
    this.pending.delete(dataKey);
  }

  /**
   * Redis answers again: first every unanswered operation is settled, then what was kept here is
   * handed over (records, lists, tallies, changed versioned records, parts, then deadlines: data
   * before the deadline that takes it). Whatever cannot be handed over stays here for next time.
   */
  sync(): Promise<void> {
    const r = this.redis;
    if (!r || this.closed) return Promise.resolve();
    // A failover (the master moved) may lose what was written to the old master just before (it
    // took writes until it was turned into a replica of the new one). Noted before anything else
    // runs (also while a sync is under way: the sweep then calls again), so no sweep forgets a
    // copy of what it lost.
    if (r.masterMoves !== this.moves) {
      this.moves = r.masterMoves;
      this.moved = true;
      // What to send again is counted back from when Redis last answered as it should (the loss
      // was before the failure, not when the sync can run).
      this.casLog.hold((this.outageSince ?? Date.now()) - CAS_LOG_MS);
    } else if (!this.moved && !this.replaying && r.mode === "shared" && !this.failing) {
      // Back on the same master: the outage is over, nothing to send again.
      this.replayed();
    }
    if (this.syncing) return this.syncing;
    const run = async () => {
      try {
        for (const key of [...this.pending.keys()]) await this.settle(key, r);
      } catch (e) {
        this.fail(e); // Redis failed again: when it answers, this runs again.
        return;
      }
      try {
        // Redis back without its data (restarted empty, or a replica that never had it): the
        // copies of shared records kept here are all there is now. They go back where absent.
        if (await this.dataLost(r)) this.refill = true;
        if (this.refill || this.moved) {
          // A move noticed while this runs is put back by the next sync (what this sent may have
          // gone to a master that failed over again).
          const seen = this.moves;
          const now = this.local.clockNow();
          if (this.refill) await each(this.local.copiesNow(), (x) => restoreCopy(r, x, now));
          // After a failover, the versioned writes made here just before are sent again, in their
          // order, under their own ids: one the new master has answers from its memo (nothing
          // changes: a record another process deleted since stays deleted); a lost one runs again
          // as it was, all its keys or none, deletions too, and only if nothing changed them since.
          else await this.replay(r, this.casLog.live(), REPLAY_TRIES);
          // After a failover the new master has nearly everything: a deadline there (leased by a
          // handler at work, or moved) stays as it is; only a lost one comes back.
          await restoreShadow(r, await this.shadow.copy(now), now, this.refill ? "earliest" : "absent");
          if (this.moves === seen) this.moved = false;
          if (!this.replaying) this.replayed();
        }
      } catch (e) {
        this.fail(e);
        return;
      }
      if (!this.local.holdsShared(this.isMirrored) || r.mode !== "shared") {
        this.refill = false;
        return;
      }
      const snap = this.local.exportNow(this.isMirrored);
      try {
        await handOver(r, snap, this.local.clockNow(), this.refill);
        this.refill = false;
      } catch (e) {
        this.putBack(snap);
        this.fail(e);
      }
    };
    this.syncing = run().finally(() => (this.syncing = null));
    return this.syncing;
  }

  /**
   * Whether Redis lost its data since this state last saw it: a key of ours (the epoch) that lives
   * as long as the data does tells. Kept alive at every look.
   */
  private async dataLost(r: RedisState): Promise<boolean> {
    const seen = await r.get(EPOCH_KEY);
    if (seen !== null && (this.epoch === null || seen === this.epoch)) {
      this.epoch = seen;
      await r.put(EPOCH_KEY, seen, EPOCH_TTL_MS);
      return false;
    }
    // Absent (new, or lost), or another one (lost, and another instance set it again).
    await r.putIfAbsent(EPOCH_KEY, opId(), EPOCH_TTL_MS);
    const now = await r.get(EPOCH_KEY);
    const lost = this.epoch !== null && now !== this.epoch;
    this.epoch = now;
    return lost;
  }

  /**
   * While Redis is healthy: forgets the copies whose data another process took (so a later data
   * loss cannot bring them back), and keeps the epoch alive (its absence means the data is lost).
   * A call during a sweep waits for it and then sweeps again: it sees what changed before it.
   */
  async sweepShadow(): Promise<void> {
    while (this.sweeping) await this.sweeping;
    const r = this.usable();
    if (!r || this.syncing || this.epoch === null) return;
    // What a failover or a data loss may have taken is put back first (sync), then swept.
    if (this.refill || this.moved || r.masterMoves !== this.moves) return void this.sync();
    this.sweeping = this.sweep(r, this.epoch).finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  private async sweep(r: RedisState, epoch: string): Promise<void> {
    const moves = r.masterMoves;
    try {
      // Written again only where it still exists: a Redis that lost it is found out by sync().
      if (!(await r.renew(EPOCH_KEY, epoch, EPOCH_TTL_MS))) return void this.sync();
      const present = async (probes: Probe[]) => {
        const there = await r.present([...probes, { key: EPOCH_KEY }]);
        // Redis lost its data while this looked: absent says nothing then (sync() puts it back).
        if (!there.pop()) return probes.map(() => true);
        // Read from a master that stayed one: a master turned into a replica (a failover) drops
        // what was written to it last, and absent would say nothing either. A write after the
        // read proves it (a replica refuses it: the sweep stops, the copies stay).
        const renewed = await r.renew(EPOCH_KEY, epoch, EPOCH_TTL_MS);
        if (!renewed || r.masterMoves !== moves) return probes.map(() => true);
        return there;
      };
      // A whole pass within half the life of a taken item's mark (GONE_MS): a copy of what
      // another process took is forgotten before the mark that keeps a failover from putting
      // it back is gone.
      const batch = (size: number) => Math.max(SWEEP_BATCH, Math.ceil((size * SWEEP_MS) / (GONE_MS / 2)));
      await this.shadow.sweep(batch(this.shadow.largest), this.local.clockNow(), present);
      // Copies of versioned records too: one another process deleted (an on-call alert resolved)
      // must not come back after a data loss. A pass over all of them, a batch per sweep.
      if (!this.copyQueue.length) {
        this.copyQueue = await this.local.copyKeys();
        this.copyPass = this.copyQueue.length;
      }
      const copies = this.copyQueue
        .splice(0, batch(this.copyPass))
        .map((key) => ({ key, version: this.local.copyVersionNow(key) }));
      const live = copies.filter((c) => c.version !== null);
      if (live.length) {
        const there = await present(live.map((c) => ({ key: c.key })));
        live.forEach((c, i) => there[i] || this.local.dropCopyNow(c.key, c.version!));
      }
    } catch {
      // Redis failed meanwhile: the operations that meet it say so; the copies stay.
    }
  }

  /**
   * Sends logged writes again (a failover). One refused may wait for another process's lost write
   * it came after (a step, then an acknowledgement from another instance): that one's own replay
   * puts the record back where this one expects it, so the refused are tried again a few times.
   */
  private async replay(r: RedisState, writes: Array<{ id: string; writes: CasWrite[] }>, tries: number): Promise<void> {
    this.replaying = true;
    const refused: typeof writes = [];
    try {
      for (const c of writes) {
        // Tried again only when each record it expects is a version: versions never come back, so
        // it runs only on the very record it was decided on. "Absent" comes back (a record made
        // and deleted again after the failover), and a create waiting on it could undo that.
        if ((await r.cas(c.writes, c.id)) === null && c.writes.every((w) => w.expect !== null)) refused.push(c);
      }
    } catch (e) {
      this.replayFailed();
      throw e;
    }
    if (!refused.length || tries <= 1 || this.closed) return this.replayed();
    const t = setTimeout(() => {
      this.retries.delete(t);
      if (this.closed) return;
      if (r.mode !== "shared") return this.replayFailed();
      this.replay(r, refused, tries - 1).catch(() => undefined);
    }, REPLAY_RETRY_MS);
    t.unref?.();
    this.retries.add(t);
  }

  /** Redis failed during a replay: the next sync sends the whole log again (kept since the outage). */
  private replayFailed(): void {
    this.replaying = false;
    this.moved = true;
  }

  private replayed(): void {
    this.replaying = false;
    if (this.moved) return;
    this.casLog.hold(null);
    this.outageSince = null;
  }

  /** Whether anything kept here is still to be handed to Redis (tests, the soak). */
  get keptLocally(): boolean {
    // A hand-over under way has taken its items out of memory but not put them in Redis yet.
    return this.syncing !== null || this.local.holdsShared(this.isMirrored);
  }

  /** What could not be handed over goes back here (hand-overs are idempotent: done again later). */
  private putBack(s: Snapshot): void {
    const l = this.local;
    for (const x of s.claims) l.claimBackNow(x.key, x.expires);
    for (const x of s.records) l.putIfAbsentNow(x.key, x.value, x.expires);
    for (const x of s.lists) l.unshiftListNow(x.key, x.items, x.expires);
    for (const x of s.tallies) l.mergeTallyNow(x.key, { pending: x.pending, marks: x.marks }, x.expires);
    for (const x of s.parts) l.mergePartsNow(x.group, x.key, x.parts, x.expires);
    for (const x of s.changed) l.restoreChangeNow(x.key, x.value, x.base, x.expires);
    for (const x of s.deadlines) l.scheduleNow(x.kind, x.id, x.at);
  }

  /** Where a take found nothing locally and Redis cannot be asked: null only if Redis never held anything. */
  private unreachable(): null {
    if (!this.redis || !this.redis.everAnswered) return null;
    throw new StateUnavailableError();
  }

  /**
   * A take from both places (SPEC B6a: nothing is lost to a failure). What is here is taken first;
   * operations on the same data left unanswered are settled; then Redis is taken from. A take whose
   * outcome stays unknown puts back what it took here and fails (the deadline that asked fires
   * again); one that surely failed answers with what was here, if anything.
   */
  private async takeBoth<T>(
    op: "takeList" | "takeParts" | "takeTally",
    dataKey: string,
    here: T | null,
    putBack: (v: T) => void,
    remote: (r: RedisState, id: string) => Promise<T | null>,
    restore: (r: RedisState, v: T) => Promise<unknown>,
    merge: (here: T, there: T) => T,
  ): Promise<T | null> {
    const r = this.usable();
    if (!r) return here ?? this.unreachable();
    try {
      await this.settle(dataKey, r);
    } catch (e) {
      if (here !== null) putBack(here);
      this.fail(e);
      throw e;
    }
    const x = await this.exec(op, remote);
    if (x.state === "ok") return here === null ? x.v : x.v === null ? here : merge(here, x.v);
    if (x.state === "unknown") {
      const id = x.id;
      this.remember(dataKey, {
        id,
        settle: async (rr) => {
          const v = await remote(rr, id);
          if (v !== null) await restore(rr, v);
        },
      });
      if (here !== null) putBack(here);
      throw x.e;
    }
    return here ?? (x.state === "failed" ? Promise.reject(x.e) : this.unreachable());
  }

  // --- the interface ----------------------------------------------------------------------------

  async claim(key: string, ttlMs: number, bound?: ClaimBound): Promise<boolean> {
    const x = await this.exec("claim", (r) => r.claim(key, ttlMs, bound));
    return x.state === "ok" ? x.v : this.local.claimNow(key, ttlMs, bound);
  }

  async admit(checks: AdmitCheck[]): Promise<Admission[]> {
    await this.started;
    const x = await this.exec("admit", (r, id) => r.admit(checks, id));
    if (x.state === "ok") return x.v;
    if (x.state === "unknown") return checks.map(() => ({ ok: true }));
    return this.local.admitNow(checks);
  }

  async pace(key: string, intervalMs: number): Promise<number> {
    const x = await this.exec("pace", (r) => r.pace(key, intervalMs));
    return x.state === "ok" ? x.v : this.local.paceNow(key, intervalMs);
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    const x = await this.exec("put", (r) => r.put(key, value, ttlMs));
    if (x.state !== "ok") this.local.putNow(key, value, ttlMs);
    else this.shadow.put(key, value, this.local.clockNow() + ttlMs, this.local.clockNow());
  }

  // Reads look in both places: a record written locally during an outage is still found after it.
  async get(key: string): Promise<string | null> {
    const x = await this.exec("get", (r) => r.get(key));
    return (x.state === "ok" ? x.v : null) ?? this.local.getNow(key);
  }

  async take(key: string): Promise<string | null> {
    const here = this.local.takeNow(key);
    const x = await this.exec("take", (r) => r.take(key));
    if (x.state === "ok") {
      this.shadow.taken(key);
      return x.v ?? here;
    }
    if (here !== null) return here;
    if (x.state === "skipped") return this.unreachable();
    throw x.e;
  }

  /** Versioned records: read from Redis (a copy kept here, for an outage), else the copy. */
  async read(key: string): Promise<Versioned | null> {
    await this.started;
    // A hand-over under way may be putting back what this reads.
    if (this.syncing) await this.syncing;
    // Changed here and not handed over yet: that is the latest.
    if (this.local.changedHere(key)) {
      await this.sync();
      if (this.local.changedHere(key)) return this.local.readNow(key);
    }
    const x = await this.exec("read", (r) => r.readWithExpiry(key));
    if (x.state !== "ok") return this.local.readNow(key);
    this.local.copyNow(key, x.v, x.v?.expires ?? 0);
    return x.v && { value: x.v.value, version: x.v.version };
  }

  async cas(writes: CasWrite[]): Promise<string | null> {
    await this.started;
    if (this.syncing) await this.syncing;
    if (writes.some((w) => this.local.changedHere(w.key))) await this.sync();
    let sent = "";
    const x = await this.exec("cas", (r, id) => r.cas(writes, (sent = id)));
    if (x.state === "ok") {
      // Only what was done: a write refused by its expectations must not run on a replay.
      if (x.v !== null) this.casLog.add(sent, writes);
      // The copy kept here follows what Redis now holds.
      const version = x.v;
      if (version !== null) {
        for (const w of writes) {
          const rec = w.value === null ? null : { value: w.value, version };
          this.local.copyNow(w.key, rec, this.local.clockNow() + w.ttlMs);
        }
      }
      return version;
    }
    if (x.state === "unknown") throw x.e;
    return this.local.casNow(writes);
  }

  async append(key: string, values: string[], max: number, ttlMs: number): Promise<string[]> {
    if (!values.length) return [];
    const items = values.map((v) => this.envelope(v));
    const x = await this.exec("append", (r, id) => r.append(key, items, max, ttlMs, id));
    if (x.state === "ok") {
      const now = this.local.clockNow();
      this.shadow.appended(key, items, x.v, now + ttlMs, now);
      return x.v.map(unwrap);
    }
    if (x.state !== "unknown") return this.local.appendNow(key, items, max, ttlMs).map(unwrap);
    const id = x.id;
    this.remember(`l\n${key}`, {
      id,
      items,
      settle: async (r) => {
        // Its answer (run then or now): the items are in Redis, or were taken there already.
        const dropped = await r.append(key, items, max, ttlMs, id);
        if (dropped.length) await r.mergeList(key, dropped, ttlMs);
      },
    });
    return [];
  }

  async takeList(key: string): Promise<string[]> {
    const here = this.local.takeListNow(key);
    const got = await this.takeBoth(
      "takeList",
      `l\n${key}`,
      here.length ? here : null,
      (v) => this.local.unshiftListNow(key, v, this.local.clockNow() + RESTORE_TTL_MS),
      (r, id) => r.takeList(key, id).then((l) => (l.length ? l : null)),
      (r, v) => r.mergeList(key, v, RESTORE_TTL_MS),
      (a, b) => a.concat(b),
    );
    this.shadow.listTaken(key); // taken from Redis (a failed take threw, and the copy stays)
    return inArrivalOrder(got ?? []);
  }

  async addPart(
    group: string,
    key: string,
    number: number,
    total: number,
    value: string,
    limits: PartLimits,
  ): Promise<PartAdd> {
    const x = await this.exec("addPart", (r, id) => r.addPart(group, key, number, total, value, limits, id));
    if (x.state === "ok") {
      const now = this.local.clockNow();
      if (x.v.result === "complete") this.shadow.partsTaken(group, key);
      else this.shadow.part(group, key, number, value, now + limits.ttlMs, now);
      for (const e of x.v.evicted ?? []) this.shadow.partsTaken(group, e.key);
      return x.v;
    }
    if (x.state === "unknown") {
      const id = x.id;
      this.remember(`p\n${group}\n${key}`, {
        id,
        settle: async (r) => {
          const res = await r.addPart(group, key, number, total, value, limits, id);
          if (res.result === "complete" && res.parts) await r.mergeParts(group, key, res.parts, limits.ttlMs);
          for (const e of res.evicted ?? []) await r.mergeParts(group, e.key, e.parts, limits.ttlMs);
        },
      });
    }
    return this.local.addPartNow(group, key, number, total, value, limits);
  }

  async takeParts(group: string, key: string): Promise<Map<number, string> | null> {
    const got = await this.takeBoth(
      "takeParts",
      `p\n${group}\n${key}`,
      this.local.takePartsNow(group, key),
      (v) => this.local.mergePartsNow(group, key, v, this.local.clockNow() + RESTORE_TTL_MS),
      (r, id) => r.takeParts(group, key, id),
      (r, v) => r.mergeParts(group, key, v, RESTORE_TTL_MS),
      (here, there) => {
        for (const [n, v] of here) if (!there.has(n)) there.set(n, v);
        return there;
      },
    );
    this.shadow.partsTaken(group, key);
    return got;
  }

  async tally(key: string, members: readonly string[], ttlMs: number): Promise<void> {
    const x = await this.exec("tally", (r) => r.tally(key, members, ttlMs));
    if (x.state !== "ok") this.local.tallyNow(key, members, ttlMs);
    else this.shadow.tally(key, members, this.local.clockNow() + ttlMs, this.local.clockNow());
  }

  async mark(key: string, member: string, value: string): Promise<Mark> {
    // Sent again after a lost answer, a mark that had run answers "duplicate": this report (or an
    // equal one) is in, and `left` says whether the summary is due (due twice is harmless).
    let again = false;
    const x = await this.exec("mark", (r) => {
      const m = r.mark(key, member, value);
      const retried = again;
      again = true;
      return retried ? m.then((v) => (v.result === "duplicate" ? { result: "marked" as const, left: v.left } : v)) : m;
    });
    // A tally opened locally during an outage still takes its reports once Redis is back.
    if (x.state === "ok" && x.v.result !== "unknown") {
      if (x.v.result === "marked") this.shadow.marked(key, member, value);
      return x.v;
    }
    return this.local.markNow(key, member, value);
  }

  async takeTally(key: string): Promise<Tally | null> {
    const got = await this.takeBoth(
      "takeTally",
      `t\n${key}`,
      this.local.takeTallyNow(key),
      (v) => this.local.mergeTallyNow(key, v, this.local.clockNow() + RESTORE_TTL_MS),
      (r, id) => r.takeTally(key, id),
      (r, v) => r.mergeTally(key, v, RESTORE_TTL_MS),
      (here, there) => {
        // Marks in Redis win (the first report); a number marked only here is marked.
        const pending = new Set(there.pending);
        for (const m of here.pending) if (!there.marks.has(m)) pending.add(m);
        for (const [m, v] of here.marks) {
          if (!there.marks.has(m)) {
            there.marks.set(m, v);
            pending.delete(m);
          }
        }
        return { marks: there.marks, pending: [...pending] };
      },
    );
    this.shadow.tallyTaken(key);
    return got;
  }

  async schedule(kind: string, id: string, at: number): Promise<void> {
    const x = await this.exec("schedule", (r) => r.schedule(kind, id, at));
    if (x.state === "ok") this.shadow.scheduled(kind, id, at, this.local.clockNow());
    if (x.state !== "ok" || this.mirrored.has(kind)) this.local.scheduleNow(kind, id, at);
  }

  async cancel(kind: string, id: string): Promise<void> {
    this.shadow.settled(kind, id);
    this.local.cancelNow(kind, id);
    await this.exec("cancel", (r) => r.cancel(kind, id));
  }

  onDue(kind: string, handler: DueHandler, opts: DueOptions = {}): () => void {
    if (opts.continueLocally) this.mirrored.add(kind);
    // A deadline whose work is done here needs no putting back.
    const done: DueHandler = (id) => {
      const seq = this.shadow.deadlineSeq(kind, id);
      const p = handler(id);
      if (!p) return void this.shadow.settled(kind, id, seq);
      return p.then(() => this.shadow.settled(kind, id, seq));
    };
    const offLocal = this.local.onDue(kind, done);
    const offRemote = this.redis?.onDue(kind, done);
    return () => {
      offLocal();
      offRemote?.();
    };
  }

  async drain(kind: string): Promise<string[]> {
    await this.shadow.drained(kind);
    const x = await this.exec("drain", (r) => r.drain(kind));
    return [...new Set([...this.local.drainNow(kind), ...(x.state === "ok" ? x.v : [])])];
  }

  async close(): Promise<void> {
    // What this process kept locally goes to Redis if it answers (else it ends with the process).
    if (this.redis?.mode === "shared" && this.keptLocally) {
      await Promise.race([this.sync(), pause(CLOSE_SYNC_MS)]);
    }
    this.closed = true;
    if (this.probe) clearTimeout(this.probe);
    this.probe = null;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    this.sweeper = null;
    await Promise.all([this.redis?.close(), this.local.close()]);
  }

  /** An item as kept in a list here and in Redis: `\u0001<time>.<order>.<random>\u0001<value>`. */
  private envelope(value: string): string {
    return `\u0001${this.local.clockNow().toString(36)}.${(++this.seq).toString(36)}.${opId().slice(0, 6)}\u0001${value}`;
  }
}

/**
 * Hands what was kept here to Redis (each step idempotent: done again after a failure is harmless).
 * `now` is the state's clock, which the snapshot's expiries are on. Data before the deadlines
 * that take it.
 */
async function handOver(r: RedisState, s: Snapshot, now: number, refill = false): Promise<void> {
  const ttl = (expires: number) => Math.max(1, expires - now);
  await each(s.claims, (x) => r.claimIfAbsent(x.key, x.expires));
  await each(s.records, (x) => r.putIfAbsent(x.key, x.value, ttl(x.expires)));
  await each(s.lists, (x) => r.mergeList(x.key, x.items, ttl(x.expires)));
  await each(s.tallies, (x) => r.mergeTally(x.key, { pending: x.pending, marks: x.marks }, ttl(x.expires)));
  await each(s.parts, (x) => r.mergeParts(x.group, x.key, x.parts, ttl(x.expires)));
  // A record changed here joins Redis where Redis still has what it was changed from; where
  // another instance changed it meanwhile, Redis's stands (the feature reads it again).
  // Redis lost its data: what it was changed from is gone with the rest, so it goes where nothing is.
  await each(s.changed, async (x) => {
    const w = { key: x.key, expect: x.base, value: x.value, ttlMs: ttl(x.expires) };
    if ((await r.cas([w])) === null && refill && x.value !== null) await r.cas([{ ...w, expect: null }]);
  });
  await each(s.deadlines, (x) => r.scheduleEarliest(x.kind, x.id, x.at));
}

/** Puts back what this process had put into a Redis that lost it (data first, then deadlines). */
async function restoreShadow(
  r: RedisState,
  c: ShadowCopy,
  now: number,
  deadlines: "earliest" | "absent",
): Promise<void> {
  const ttl = (expires: number) => Math.max(1, expires - now);
  await each(c.records, (x) => r.putIfAbsent(x.key, x.value, ttl(x.expires)));
  await each(c.lists, (x) => r.mergeList(x.key, x.items, ttl(x.expires)));
  await each(c.tallies, (x) => r.mergeTally(x.key, x.tally, ttl(x.expires), true));
  await each(c.parts, (x) => r.mergeParts(x.group, x.key, x.parts, ttl(x.expires), true));
  await each(c.deadlines, (x) =>
    deadlines === "earliest" ? r.scheduleEarliest(x.kind, x.id, x.at) : r.scheduleIfAbsent(x.kind, x.id, x.at),
  );
}

/** Puts a copy back into a Redis that lost it: only where nothing is there (a newer write wins). */
async function restoreCopy(r: RedisState, x: { key: string; value: string; expires: number }, now: number) {
  await r.cas([{ key: x.key, expect: null, value: x.value, ttlMs: Math.max(1, x.expires - now) }]);
}

/** Runs `fn` over `items`, a few at a time (a hand-over of 100,000 claims is not 100,000 round trips in a row). */
async function each<T>(items: T[], fn: (x: T) => Promise<unknown>, width = 32): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** List items in arrival order, each once (items without an envelope, from before, come first). */
function inArrivalOrder(items: string[]): string[] {
  const seen = new Set<string>();
  const keyed: Array<{ t: number; o: number; id: string; value: string; i: number }> = [];
  items.forEach((item, i) => {
    let t = -1;
    let o = 0;
    let id = item;
    let value = item;
    if (item.charCodeAt(0) === 1) {
      const end = item.indexOf("\u0001", 1);
      if (end > 0) {
        id = item.slice(1, end);
        const [a, b] = id.split(".");
        t = parseInt(a, 36);
        o = parseInt(b, 36);
        value = item.slice(end + 1);
      }
    }
    if (seen.has(id)) return;
    seen.add(id);
    keyed.push({ t, o, id, value, i });
  });
  keyed.sort((a, b) => a.t - b.t || a.o - b.o || (a.id < b.id ? -1 : a.id > b.id ? 1 : a.i - b.i));
  return keyed.map((k) => k.value);
}

function unwrap(item: string): string {
  if (item.charCodeAt(0) !== 1) return item;
  const end = item.indexOf("\u0001", 1);
  return end > 0 ? item.slice(end + 1) : item;
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Redis answers but takes no writes: a replica (a failover), out of memory, or a failed snapshot. */
function refusesWrites(e: RedisStateError): boolean {
  return /^(READONLY|OOM|MISCONF|NOREPLICAS)$/.test(e.detail);
}

function shortReason(e: unknown): string {
  const text = String((e as Error)?.message ?? e);
  if (/timeout/i.test(text)) return "timeout";
  if (/offline|closed|socket/i.test(text)) return "connection lost";
  // A Redis error reply starts with its code (WRONGTYPE, OOM, READONLY, ...): say only that.
  return /^[A-Z]{3,}\b/.exec(text)?.[0] ?? "error";
}

/** The versioned writes of the last CAS_LOG_MS (real time: the memo that makes a resend harmless lives in Redis's). */
class CasLog {
  private readonly items: Array<{ at: number; id: string; writes: CasWrite[]; size: number }> = [];
  private head = 0;
  private chars = 0;

  /** while a failover is to be put back: nothing since this is pruned (up to the memo's life) */
  private held: number | null = null;

  hold(since: number | null): void {
    this.held = since === null ? null : Math.min(this.held ?? Infinity, since);
  }

  add(id: string, writes: CasWrite[]): void {
    let size = 0;
    for (const w of writes) size += w.key.length + (w.value?.length ?? 0);
    this.items.push({ at: Date.now(), id, writes, size });
    this.chars += size;
    this.prune();
  }

  live(): Array<{ id: string; writes: CasWrite[] }> {
    this.prune();
    return this.items.slice(this.head);
  }

  private prune(): void {
    const now = Date.now();
    const old = Math.max(now - CAS_LOG_HELD_MS, Math.min(now - CAS_LOG_MS, this.held ?? Infinity));
    const items = this.items;
    while (
      this.head < items.length &&
      (items[this.head].at < old || items.length - this.head > CAS_LOG_MAX || this.chars > CAS_LOG_MAX_CHARS)
    )
      this.chars -= items[this.head++].size;
    // Compacted now and then, not at each write.
    if (this.head > 1024 && this.head * 2 > items.length) {
      items.splice(0, this.head);
      this.head = 0;
    }
  }
}
