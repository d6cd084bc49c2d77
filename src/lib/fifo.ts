/**
 * A first-in-first-out queue on an array with a moving head, compacted as it drains.
 *
 * Why not a Map's insertion order: V8 leaves deleted Map entries as holes until it rehashes, so
 * taking the first entry of a Map whose front keeps being deleted costs O(holes), and a
 * "dedupe window" or "oldest pending message" built that way degrades to O(n) per operation.
 */
export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Keeps only the items for which `keep` is true, in order. */
  retain(keep: (item: T) => boolean): void {
    const next: T[] = [];
    for (let i = this.head; i < this.items.length; i++) if (keep(this.items[i])) next.push(this.items[i]);
    this.items = next;
    this.head = 0;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
