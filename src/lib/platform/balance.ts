// The balance window (SPEC A2, B3): at most one platform query per 10 s per account, across all
// its nodes and, with Redis, all instances. Inside the window the last answer (or error) is
// given again with `cached: true`.
import type { BalanceOutcome } from "./client";
import { SmsError, type ErrorCode } from "../errors";
import type { AccountState } from "../state/index";

export const BALANCE_WINDOW_MS = 10_000;
const QUERY_KEY = "bal:q";
const ANSWER_KEY = "bal:a";

export interface BalanceAnswer {
  outcome: BalanceOutcome;
  cached: boolean;
}

interface Stored {
  outcome?: BalanceOutcome;
  error?: { code: ErrorCode; message: string; outcomeUnknown: boolean; details: Record<string, unknown> };
}

// Callers in this process share one query under way (one promise per account state).
const inFlight = new WeakMap<AccountState, Promise<BalanceAnswer>>();

function replay(stored: Stored): BalanceAnswer {
  if (stored.error) throw new SmsError({ ...stored.error, retryable: false });
  return { outcome: stored.outcome!, cached: true };
}

export interface BalanceWindowOptions {
  /** how long to wait for another instance's query under way before giving up */
  waitMs: number;
  /** the error when that wait ends without an answer (the platform would answer 103) */
  busy: () => SmsError;
  windowMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export async function queryBalance(
  state: AccountState,
  query: () => Promise<BalanceOutcome>,
  opts: BalanceWindowOptions,
): Promise<BalanceAnswer> {
  const mine = inFlight.get(state);
  if (mine) return mine.then((a) => ({ ...a, cached: true }));
  const windowMs = opts.windowMs ?? BALANCE_WINDOW_MS;
  const run = (async (): Promise<BalanceAnswer> => {
    const last = await state.get(ANSWER_KEY);
    if (last !== null) return replay(JSON.parse(last) as Stored);
    if (await state.claim(QUERY_KEY, windowMs)) {
      let stored: Stored;
      try {
        stored = { outcome: await query() };
      } catch (e) {
        const err = e as SmsError;
        stored = {
          error: { code: err.code, message: err.message, outcomeUnknown: err.outcomeUnknown, details: err.details },
        };
      }
      await state.put(ANSWER_KEY, JSON.stringify(stored), windowMs);
      if (stored.error) replay(stored);
      return { outcome: stored.outcome!, cached: false };
    }
    // Another node or instance is querying now: its answer is shared as soon as it lands.
    const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let waited = 0; waited < opts.waitMs; waited += 100) {
      await sleep(100);
      const answer = await state.get(ANSWER_KEY);
      if (answer !== null) return replay(JSON.parse(answer) as Stored);
    }
    throw opts.busy();
  })();
  inFlight.set(state, run);
  try {
    return await run;
  } finally {
    if (inFlight.get(state) === run) inFlight.delete(state);
  }
}
