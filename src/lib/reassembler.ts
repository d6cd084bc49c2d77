import type { Clock } from "./clock";
import { systemClock } from "./clock";
import { Fifo } from "./fifo";
import { RecentSet } from "./recent";

/** One part of a long inbound SMS (SPEC A4 `emshead` = id,total,number). */
export interface LongPart<M = unknown> {
  mobile: string;
  destcode: string;
  id: string;
  total: number;
  number: number;
  text: string;
  /** anything the caller wants back with the message (e.g. moTime of the part) */
  meta?: M;
  /** approximate bytes the part keeps in memory, meta included; default: its text's */
  bytes?: number;
}

export interface Assembled<M = unknown> {
  mobile: string;
  destcode: string;
  id: string;
  total: number;
  /** received parts' texts joined in part order */
  text: string;
  /** part numbers received, ascending */
  received: number[];
  /** part numbers never received; [] when complete */
  missing: number[];
  complete: boolean;
  /** why a message was emitted */
  reason: "complete" | "timeout" | "evicted" | "closed";
  /** meta of the received parts, in part order */
  metas: M[];
}

export interface ReassemblerOptions<M> {
  /** how long to wait after the latest new part before emitting what arrived (ms) */
  timeoutMs: number;
  /** most messages waiting for parts; beyond it the oldest is emitted as partial */
  maxPending?: number;
  /** most bytes the waiting parts may take (see {@link LongPart.bytes}); beyond it, the same */
  maxBytes?: number;
  /** parts already handled are remembered this long, so a re-push is not emitted again */
  dedupeMs?: number;
  dedupeMax?: number;
  clock?: Clock;
  onMessage: (msg: Assembled<M>) => void;
}

interface Pending<M> {
  key: string;
  first: LongPart<M>;
  parts: Map<number, LongPart<M>>;
  deadline: number;
  /** the queue item that is this message's live one; older items are stale */
  item: QueueItem<M> | null;
  bytes: number;
}

interface QueueItem<M> {
  entry: Pending<M>;
  deadline: number;
}

/** 8 MiB: 1,000 pending 700-character messages (11 parts each) take about 4 MiB. */
export const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1;
// Objects, Map entry and queue item of one part, on top of its text.
const PART_OVERHEAD = 200;

export type AddResult = "added" | "completed" | "duplicate";

const SEP = "\u0000";

/**
 * Collects parts of long SMS (Kannel's model): any order; duplicate parts dropped; complete when
 * all `total` parts are in; the wait restarts with each new part; on timeout the parts that
 * arrived are emitted flagged incomplete, never dropped; pending messages bounded in count and in
 * bytes (the least recently extended is flushed first, as incomplete).
 *
 * One timer serves all messages. Every new part appends (message, deadline) to a queue; an item whose
 * message has since been extended (or finished) is stale and skipped, so the first live item
 * is both the next to expire and the least recently extended (the one to evict). Stale items are
 * compacted away once they outnumber the live ones, which keeps the queue O(pending).
 */
export class Reassembler<M = unknown> {
  private readonly pending = new Map<string, Pending<M>>();
  private readonly order = new Fifo<QueueItem<M>>();
  private readonly done: RecentSet;
  private readonly clock: Clock;
  private readonly maxPending: number;
  private readonly maxBytes: number;
  private pendingBytes = 0;
  private timer: unknown = null;
  private timerAt = Infinity;
  private closed = false;

  constructor(private readonly opts: ReassemblerOptions<M>) {
    if (!(opts.timeoutMs > 0)) throw new RangeError("timeoutMs must be > 0");
    this.clock = opts.clock ?? systemClock;
    this.maxPending = Math.max(1, opts.maxPending ?? 10_000);
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.done = new RecentSet(opts.dedupeMs ?? 600_000, opts.dedupeMax ?? 100_000, this.clock);
  }

  get size(): number {
    return this.pending.size;
  }

  /** approximate bytes of the parts waiting */
  get bytes(): number {
    return this.pendingBytes;
  }

  static keyOf(p: Pick<LongPart, "mobile" | "destcode" | "id" | "total">): string {
    return [p.mobile, p.destcode, p.id, p.total].join(SEP);
  }

  add(part: LongPart<M>): AddResult {
    if (this.closed) throw new Error("reassembler is closed");
    if (!Number.isInteger(part.total) || part.total < 1 || part.number < 1 || part.number > part.total) {
      throw new RangeError("part number must be within 1..total");
    }
    const key = Reassembler.keyOf(part);
    const partKey = key + SEP + part.number;
    if (this.done.has(partKey)) return "duplicate";
    let entry = this.pending.get(key);
    if (entry?.parts.has(part.number)) return "duplicate";
    const now = this.clock.now();
    if (!entry) {
      if (this.pending.size >= this.maxPending) this.emitOldest("evicted");
      entry = { key, first: part, parts: new Map(), deadline: 0, item: null, bytes: 0 };
      this.pending.set(key, entry);
    }
    entry.parts.set(part.number, part);
    const bytes = part.bytes ?? PART_OVERHEAD + 2 * part.text.length;
    entry.bytes += bytes;
    this.pendingBytes += bytes;
    if (entry.parts.size === part.total) {
      this.finish(entry, "complete");
      return "completed";
    }
    entry.deadline = now + this.opts.timeoutMs;
    // Identity, not the deadline, marks the live item: two parts in the same millisecond give
    // equal deadlines, and the older item would then pass for the newer one.
    entry.item = { entry, deadline: entry.deadline };
    this.order.push(entry.item);
    // This message was extended last, so it goes only when it alone is over the bound.
    while (this.pendingBytes > this.maxBytes && this.pending.size > 0) this.emitOldest("evicted");
    this.compact();
    this.schedule();
    return "added";
  }

  /** Stops all timers; pending messages are emitted as incomplete unless `flush` is false. */
  close(flush = true): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    // Emitted in the order they would have timed out.
    const rest: Pending<M>[] = [];
    for (let item = this.order.shift(); item; item = this.order.shift()) if (this.isLive(item)) rest.push(item.entry);
    this.pending.clear();
    this.pendingBytes = 0;
    if (flush) for (const e of rest) this.finish(e, "closed");
    this.done.clear();
  }

  private isLive(item: QueueItem<M>): boolean {
    return this.pending.get(item.entry.key) === item.entry && item.entry.item === item;
  }

  /** The live item that expires first (stale items in front of it are dropped). */
  private front(): QueueItem<M> | undefined {
    for (let item = this.order.peek(); item; item = this.order.peek()) {
      if (this.isLive(item)) return item;
      this.order.shift();
    }
    return undefined;
  }

  private compact(): void {
    if (this.order.length > 2 * this.pending.size + 1024) this.order.retain((item) => this.isLive(item));
  }

  private emitOldest(reason: Assembled["reason"]): void {
    const oldest = this.front();
    if (!oldest) return;
    this.order.shift();
    this.finish(oldest.entry, reason);
  }

  private finish(entry: Pending<M>, reason: Assembled["reason"]): void {
    if (this.pending.get(entry.key) === entry) {
      this.pending.delete(entry.key);
      this.pendingBytes -= entry.bytes;
    }
    const { mobile, destcode, id, total } = entry.first;
    const received = [...entry.parts.keys()].sort((a, b) => a - b);
    const missing: number[] = [];
    for (let i = 1, j = 0; i <= total; i++) {
      if (received[j] === i) j++;
      else missing.push(i);
    }
    const ordered = received.map((n) => entry.parts.get(n)!);
    // join() gives flat strings: a concatenation would stay a rope that the window keeps alive.
    for (const n of received) this.done.add([entry.key, n].join(SEP));
    this.opts.onMessage({
      mobile,
      destcode,
      id,
      total,
      text: ordered.map((p) => p.text).join(""),
      received,
      missing,
      complete: missing.length === 0,
      reason,
      metas: ordered.map((p) => p.meta as M),
    });
  }

  private schedule(): void {
    if (this.closed) return;
    const front = this.front()?.entry;
    if (!front) {
      if (this.timer !== null) this.clock.clearTimeout(this.timer);
      this.timer = null;
      this.timerAt = Infinity;
      return;
    }
    // Deadlines only move later, so an armed timer that fires early just re-arms.
    if (this.timer !== null && this.timerAt <= front.deadline) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timerAt = front.deadline;
    // setTimeout fires at once (and warns) beyond 2^31-1 ms: a longer wait is armed in steps.
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, front.deadline - this.clock.now()));
    this.timer = this.clock.setTimeout(() => this.onTimer(), wait);
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.clock.now();
    for (let item = this.front(); item && item.deadline <= now; item = this.front()) {
      this.order.shift();
      this.finish(item.entry, "timeout");
    }
    this.schedule();
  }
}
