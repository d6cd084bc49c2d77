import type { Clock } from "./clock";
import { systemClock } from "./clock";
import { Fifo } from "./fifo";

/**
 * A set that forgets: keys are remembered for `ttlMs` and at most `max` are kept (oldest first
 * out). Used to answer re-pushed reports and parts `OK` without emitting them again.
 */
export class RecentSet {
  private readonly seen = new Set<string>();
  // Expiry order is insertion order (one fixed ttl), kept apart from the Set (see Fifo).
  private readonly order = new Fifo<{ key: string; expires: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Returns true when `key` was already seen within the window; remembers it otherwise. */
  checkAndAdd(key: string): boolean {
    const now = this.clock.now();
    this.prune(now);
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    this.order.push({ key, expires: now + this.ttlMs });
    if (this.seen.size > this.max) this.seen.delete(this.order.shift()!.key);
    return false;
  }

  has(key: string): boolean {
    this.prune(this.clock.now());
    return this.seen.has(key);
  }

  add(key: string): void {
    this.checkAndAdd(key);
  }

  get size(): number {
    return this.seen.size;
  }

  clear(): void {
    this.seen.clear();
    this.order.clear();
  }

  private prune(now: number): void {
    for (let e = this.order.peek(); e && e.expires <= now; e = this.order.peek()) {
      this.order.shift();
      this.seen.delete(e.key);
    }
  }
}
