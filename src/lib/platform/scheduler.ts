import type { Clock } from "../clock";
import { systemClock } from "../clock";

/** How much the arrival of requests at the platform may vary without breaking its per-second rate. */
export const RATE_GUARD_MS = 100;

export class QueueFullError extends Error {
  constructor(readonly max: number) {
    super(`queue full (${max})`);
    this.name = "QueueFullError";
  }
}

export class SchedulerClosedError extends Error {
  constructor() {
    super("scheduler closed");
    this.name = "SchedulerClosedError";
  }
}

export interface SchedulerOptions {
  /** requests per second; starts are spaced at least 1/rate s apart (no bursts). 0 = no limit */
  rate: number;
  /** most callers waiting for a turn; beyond it acquire() fails with QueueFullError */
  queue: number;
  /** most requests under way at once (matches the connection pool) */
  concurrency: number;
  clock?: Clock;
  /**
   * Shared pacing (the account state, SPEC B6): reserves the next start `intervalMs` after the
   * account's previous one, across all its nodes and instances, and resolves to the wait in ms.
   * Without it the spacing is this scheduler's own.
   */
  pace?: (intervalMs: number) => Promise<number>;
  /**
   * Callers waiting in every scheduler of the account in this process (SPEC B1: *Queue* is per
   * account, also when two account nodes name the same account). Without it the bound is this
   * scheduler's own.
   */
  backlog?: Backlog;
}

/** A count shared by the schedulers of one account: each adds and removes its own waiting callers. */
export interface Backlog {
  count: number;
}

const backlogs = new Map<string, { backlog: Backlog; users: number }>();

/**
 * The account's backlog in this process, kept while a client of the account uses it: `release`
 * when that client closes (a map of accounts in use, never of anything a flow sends).
 */
export function accountBacklog(key: string): { backlog: Backlog; release: () => void } {
  let entry = backlogs.get(key);
  if (!entry) backlogs.set(key, (entry = { backlog: { count: 0 }, users: 0 }));
  const e = entry;
  e.users++;
  let released = false;
  return {
    backlog: e.backlog,
    release: () => {
      if (released) return;
      released = true;
      if (--e.users === 0 && backlogs.get(key) === e) backlogs.delete(key);
    },
  };
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (e: Error) => void;
}

/**
 * Hands out turns to platform requests for one account: spaced by the rate, bounded in how many
 * wait and how many run. Retries ask with `priority`, which jumps the line and is never refused
 * for a full queue (their send was already accepted once).
 */
export class Scheduler {
  private readonly waiting: Waiter[] = [];
  private running = 0;
  private nextStart = 0;
  private timer: unknown = null;
  private reserving = false;
  private closed = false;
  /** this scheduler's part of the shared backlog, as last added to it */
  private counted = 0;
  private readonly clock: Clock;

  constructor(private readonly opts: SchedulerOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  get queued(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running;
  }

  /** Waits for a turn; an aborted `signal` takes the caller out of the line (SchedulerClosedError). */
  acquire(priority = false, signal?: AbortSignal): Promise<() => void> {
    if (this.closed || signal?.aborted) return Promise.reject(new SchedulerClosedError());
    // The bound counts callers left waiting: one that starts at once never waits, so even with
    // `queue: 0` ("no waiting") a send on an idle account goes.
    const shared = this.opts.backlog;
    const waiting = shared ? shared.count : this.waitingCount();
    // Callers waiting in another scheduler of the account go first: nothing starts at once here then.
    const atOnce = this.canStartNow() && (!shared || shared.count === this.counted);
    if (!priority && waiting >= this.opts.queue && !atOnce) return Promise.reject(new QueueFullError(this.opts.queue));
    return new Promise((resolve, reject) => {
      let settled = false;
      let onAbort: (() => void) | undefined;
      const settle = () => {
        settled = true;
        if (onAbort) signal!.removeEventListener("abort", onAbort);
      };
      const w: Waiter = {
        resolve: (release) => {
          settle();
          resolve(release);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      };
      if (priority) this.waiting.unshift(w);
      else this.waiting.push(w);
      this.pump();
      this.sync();
      // Only a caller left waiting needs to hear an abort (most get their turn at once).
      if (!settled && signal) {
        onAbort = () => {
          const i = this.waiting.indexOf(w);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          this.sync();
          w.reject(new SchedulerClosedError());
        };
        signal.addEventListener("abort", onAbort, { once: true });
      }
    });
  }

  /** Fails every waiting caller; those already running finish on their own. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const rest = this.waiting.splice(0);
    this.sync();
    for (const w of rest) w.reject(new SchedulerClosedError());
  }

  /**
   * Brings the shared backlog up to date with this scheduler's waiting callers. Called at the end
   * of everything that changes them (acquire, abort, close, a start, a release): JavaScript runs one
   * of those at a time, so the count is exact whenever another scheduler reads it.
   */
  private sync(): void {
    const b = this.opts.backlog;
    if (!b) return;
    // Never below 0: a reserving head that left the line (aborted) is not counted twice.
    const now = this.closed ? 0 : Math.max(0, this.waitingCount());
    b.count += now - this.counted;
    this.counted = now;
  }

  /** Callers left waiting: the head whose start is being reserved is already on its way. */
  private waitingCount(): number {
    return this.waiting.length - (this.reserving ? 1 : 0);
  }

  /** Whether a caller asking now would get its turn without waiting (pump() would start it). */
  private canStartNow(): boolean {
    return (
      this.waiting.length === 0 &&
      this.running < this.opts.concurrency &&
      !this.reserving &&
      this.timer === null &&
      // With shared pacing nextStart is this scheduler's last reservation: an estimate.
      (this.opts.rate <= 0 || this.clock.now() >= this.nextStart)
    );
  }

  private pump(): void {
    if (this.closed || this.timer !== null || this.reserving) return;
    while (this.waiting.length && this.running < this.opts.concurrency) {
      const now = this.clock.now();
      if (this.opts.rate > 0 && this.opts.pace) return this.reserve(this.opts.pace);
      if (this.opts.rate > 0 && now < this.nextStart) {
        this.timer = this.clock.setTimeout(() => {
          this.timer = null;
          this.pump();
          this.sync();
        }, this.nextStart - now);
        return;
      }
      if (this.opts.rate > 0) this.nextStart = Math.max(now, this.nextStart) + this.interval();
      this.startHead();
    }
  }

  /**
   * One start reserved at a time from the shared pacing, then waited for. A caller that left the
   * line meanwhile leaves its start unused: a gap in the rate, never a burst.
   */
  private reserve(pace: (intervalMs: number) => Promise<number>): void {
    this.reserving = true;
    const interval = this.interval();
    const local = () => {
      const now = this.clock.now();
      const start = Math.max(now, this.nextStart);
      return start - now;
    };
    pace(interval)
      .catch(local)
      .then((wait) => {
        this.reserving = false;
        if (this.closed) return;
        this.nextStart = this.clock.now() + wait + interval;
        if (wait <= 0) {
          this.startHead();
          this.pump();
          return this.sync();
        }
        this.sync();
        this.timer = this.clock.setTimeout(() => {
          this.timer = null;
          this.startHead();
          this.pump();
          this.sync();
        }, wait);
      });
  }

  /**
   * The spacing of starts. A request reaches the platform a little after its start (a timer, the
   * event loop, a new connection, the state's round trip), and not always by the same amount: with
   * starts exactly 1/rate apart, `rate` + 1 of them can land within one second at the platform,
   * which answers 103. Spacing them (1 s + 100 ms) / rate keeps any second at `rate` or fewer as
   * long as those delays differ by less than 100 ms.
   */
  private interval(): number {
    return (1000 + RATE_GUARD_MS) / this.opts.rate;
  }

  private startHead(): void {
    if (!this.waiting.length || this.running >= this.opts.concurrency) return;
    const w = this.waiting.shift()!;
    this.running++;
    let released = false;
    w.resolve(() => {
      if (released) return;
      released = true;
      this.running--;
      this.pump();
      this.sync();
    });
  }
}
