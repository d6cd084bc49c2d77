// The inbound SMS of an account, for features that read replies (sms-oncall, SPEC B11): every
// sms-receive of the account hands each inbound SMS it emits here, as reports reach tracking. One
// inbox per account state, so every node of the account in this process shares it; with Redis,
// the features that listen keep what a reply changes in the shared state, so a reply taken by any
// instance counts.
import type { AccountState } from "../state/index";

export interface Inbound {
  /** the sender, normalised as sms-receive normalises it */
  mobile: string;
  /** the whole text (a long SMS once reassembled, or what arrived of it) */
  text: string;
  /** the number the person texted (the account's destcode), as pushed */
  destcode: string;
}

/** A listener's work: a promise that rejects when it failed (the inbox reports it, nothing more). */
export type InboundListener = (m: Inbound) => void | Promise<void>;

export class Inbox {
  private readonly listeners = new Set<InboundListener>();

  /** Hears every inbound SMS of the account from now on; returns the function that stops it. */
  listen(fn: InboundListener): () => void {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  /** How many listen now (a receive node with nobody listening does no work for replies). */
  get size(): number {
    return this.listeners.size;
  }

  /**
   * Hands one inbound SMS to every listener. Resolves when all have finished; a listener's
   * failure never stops the others and is returned (for the receive node's log), never thrown.
   */
  async deliver(m: Inbound): Promise<unknown[]> {
    if (!this.listeners.size) return [];
    const results = await Promise.allSettled(
      [...this.listeners].map(async (fn) => {
        await fn(m);
      }),
    );
    return results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  }
}

const inboxes = new WeakMap<AccountState, Inbox>();

/** The account state's inbox: one per state, shared by every node of the account in this process. */
export function inboxFor(state: AccountState): Inbox {
  let box = inboxes.get(state);
  if (!box) inboxes.set(state, (box = new Inbox()));
  return box;
}
