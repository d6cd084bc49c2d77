import type { Clock } from "./clock";
import { systemClock } from "./clock";

/**
 * A set that forgets: keys are remembered for `ttlMs` and at most `max` are kept (oldest first
 * out). Used to answer re-pushed reports and parts `OK` without emitting them again.
 */
export class RecentSet {
  private readonly seen = new Map<string, number>();

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
    this.seen.set(key, now + this.ttlMs);
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value as string);
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
  }

  // Insertion order is expiry order (fixed ttl), so only the front needs looking at.
  private prune(now: number): void {
    for (const [k, exp] of this.seen) {
      if (exp > now) break;
      this.seen.delete(k);
    }
  }
}
