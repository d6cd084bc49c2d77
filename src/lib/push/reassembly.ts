// Long inbound SMS (SPEC A4, B4, B6), on the account state: parts in any order, duplicates
// dropped, complete when all `total` parts are in, the wait restarting with each new part, what
// arrived emitted flagged incomplete after the wait (never dropped), pending messages bounded in
// count and bytes. The parts live in the state, so a redeploy keeps them and, with Redis, parts
// of one message that reach different instances become one message, emitted once.
import { createHash } from "node:crypto";
import type { Clock } from "../clock";
import { systemClock } from "../clock";
import type { AccountState, ClaimBound } from "../state/index";

export interface LongPart<M> {
  mobile: string;
  destcode: string;
  id: string;
  total: number;
  number: number;
  text: string;
  /** what the caller wants back with the message (JSON-safe: it is kept in the state) */
  meta: M;
}

export interface Assembled<M> {
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
  /** why it was emitted */
  reason: "complete" | "timeout" | "evicted" | "closed";
  /** meta of the received parts, in part order */
  metas: M[];
}

export interface ReassemblyOptions<M> {
  state: AccountState;
  /** keeps this receiver's messages apart from other receivers' of the account (its path) */
  scope: string;
  /** the wait after the latest new part (ms) */
  timeoutMs: number;
  maxPending: number;
  maxBytes: number;
  /** how long a part already handled is remembered, so a re-push is not emitted again */
  dedupeMs: number;
  /** bounds the parts remembered as handled (an endpoint open to anyone, SPEC B4a) */
  claimBound?: ClaimBound;
  clock?: Clock;
  onMessage: (m: Assembled<M>) => void;
  onError: (e: unknown) => void;
}

export type AddResult = "added" | "completed" | "duplicate";

// Parts outlive their wait by a day in the state: a receiver redeployed or restarted late still
// finds them; after that they are garbage a missing receiver never came back for.
const KEEP_MS = 24 * 3600_000;

export class Reassembly<M> {
  private readonly clock: Clock;
  private readonly kind: string;
  private readonly group: string;

  constructor(private readonly o: ReassemblyOptions<M>) {
    if (!(o.timeoutMs > 0)) throw new RangeError("timeoutMs must be > 0");
    this.clock = o.clock ?? systemClock;
    this.kind = `part:${o.scope}`;
    this.group = `${o.scope}:parts`;
  }

  /** Takes over the part timeouts of this scope (also those due while no receiver ran). */
  listen(): () => void {
    return this.o.state.onDue(this.kind, (key) =>
      // A failure is said, and the deadline fires again (the parts are still there).
      this.takeAndEmit(key, "timeout").then(
        () => undefined,
        (e: unknown) => {
          this.o.onError(e);
          throw e;
        },
      ),
    );
  }

  static keyOf(p: Pick<LongPart<unknown>, "mobile" | "destcode" | "id" | "total">): string {
    return JSON.stringify([p.mobile, p.destcode, p.id, p.total]);
  }

  async add(part: LongPart<M>): Promise<AddResult> {
    if (!Number.isInteger(part.total) || part.total < 1 || part.number < 1 || part.number > part.total) {
      throw new RangeError("part number must be within 1..total");
    }
    const { state } = this.o;
    const key = Reassembly.keyOf(part);
    // Remembered past completion, so a part pushed again after its message went out is not the
    // start of a new one; at least as long as the message may still be waiting for parts.
    if (!(await state.claim(this.doneKey(key, part.number), this.o.dedupeMs + this.o.timeoutMs, this.o.claimBound)))
      return "duplicate";
    const value = JSON.stringify({ t: part.text, m: part.meta });
    const r = await state.addPart(this.group, key, part.number, part.total, value, {
      ttlMs: this.o.timeoutMs + KEEP_MS,
      maxPending: this.o.maxPending,
      maxBytes: this.o.maxBytes,
    });
    let gone = false;
    for (const e of r.evicted ?? []) {
      await state.cancel(this.kind, e.key);
      this.emit(e.key, e.parts, "evicted");
      gone ||= e.key === key;
    }
    if (r.result === "duplicate") return "duplicate";
    // Alone larger than the byte bound: already emitted, incomplete; nothing left to wait for.
    if (gone) return "added";
    if (r.result === "complete") {
      await state.cancel(this.kind, key);
      this.emit(key, r.parts!, "complete");
      return "completed";
    }
    await state.schedule(this.kind, key, this.clock.now() + this.o.timeoutMs);
    return "added";
  }

  /** Emits every pending message of this scope now, as incomplete (a stop, a removed node). */
  async flush(): Promise<number> {
    const keys = await this.o.state.drain(this.kind);
    let n = 0;
    for (const key of keys) if (await this.takeAndEmit(key, "closed")) n++;
    return n;
  }

  private async takeAndEmit(key: string, reason: Assembled<M>["reason"]): Promise<boolean> {
    const parts = await this.o.state.takeParts(this.group, key);
    if (!parts || parts.size === 0) return false;
    this.emit(key, parts, reason);
    return true;
  }

  private doneKey(key: string, n: number): string {
    // Bounded key names: a message key carries pushed strings of up to ~100 characters.
    const k = key.length > 80 ? createHash("sha1").update(key).digest("base64") : key;
    return `${this.o.scope}:done:${k}:${n}`;
  }

  private emit(key: string, parts: Map<number, string>, reason: Assembled<M>["reason"]): void {
    const [mobile, destcode, id, total] = JSON.parse(key) as [string, string, string, number];
    const received = [...parts.keys()].sort((a, b) => a - b);
    const missing: number[] = [];
    for (let i = 1, j = 0; i <= total; i++) {
      if (received[j] === i) j++;
      else missing.push(i);
    }
    const ordered = received.map((n) => JSON.parse(parts.get(n)!) as { t: string; m: M });
    this.o.onMessage({
      mobile,
      destcode,
      id,
      total,
      text: ordered.map((p) => p.t).join(""),
      received,
      missing,
      complete: missing.length === 0,
      reason,
      metas: ordered.map((p) => p.m),
    });
  }
}
