// For the on-call examples' tests: the flow's inbound SMS handed to the account's inbox.
import { inboxFor, type Inbound } from "../../src/lib/alerts/inbox";
import type { AccountState } from "../../src/lib/state/index";
import type { Msg } from "../support/example";

/**
 * Until sms-receive hands each inbound SMS to the account's inbox itself (being wired on another
 * branch), the test does it for the inbound SMS the flow's 'replies' emits, unless the inbox got
 * it already (so this keeps working, without a second delivery, once that lands).
 */
export function bridgeReplies(state: AccountState, emitted: Msg[]): () => void {
  const seen: string[] = [];
  const off = inboxFor(state).listen((m) => void seen.push(`${m.mobile}\n${m.text}`));
  let done = 0;
  const timer = setInterval(() => {
    while (done < emitted.length) {
      const p = emitted[done++].payload as Inbound;
      const key = `${p.mobile}\n${p.text}`;
      const i = seen.indexOf(key);
      if (i >= 0) seen.splice(i, 1);
      else void inboxFor(state).deliver({ mobile: p.mobile, text: p.text, destcode: p.destcode });
    }
  }, 20);
  return () => {
    clearInterval(timer);
    off();
  };
}
