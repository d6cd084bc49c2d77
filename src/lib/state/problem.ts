// Why Redis cannot be used, said without secrets: shared by the connection (connect.ts), the
// Redis state and the failover, and shown by the config node (translated by `kind`).

export type RedisProblem = "url" | "prefix" | "auth" | "connect" | "command";

// English for logs of the lib itself; the nodes translate by `kind` (with `detail`).
const PROBLEM_TEXT: Record<RedisProblem, string> = {
  url: "the Redis URL does not fit its mode (one server: redis://host:6379/0; sentinels or cluster nodes: a comma-separated list)",
  prefix: "the Redis key prefix may not hold { or } (they would break the account's hash tag)",
  auth: "Redis refused the user name or password",
  connect: "Redis is unreachable",
  command: "Redis did not answer in time or failed",
};

/**
 * Why Redis cannot be used: a kind and a short detail (an error code), never the URL or a password.
 * `maybeRan`: the command was out and its answer is lost (a timeout, a connection that broke while
 * it was out): it may have run in Redis, like a send whose reply was lost (SPEC B6a).
 */
export class RedisStateError extends Error {
  constructor(
    readonly kind: RedisProblem,
    readonly detail = "",
    readonly maybeRan = false,
  ) {
    super(PROBLEM_TEXT[kind] + (detail ? ` (${detail})` : ""));
    this.name = "RedisStateError";
  }
}

/** The problem an error from the client stands for (auth, or a connection that failed). */
export function classify(e: unknown): RedisStateError {
  if (e instanceof RedisStateError) return e;
  const text = String((e as Error)?.message ?? e);
  if (/WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username/i.test(text)) {
    return new RedisStateError("auth");
  }
  const code = (e as { code?: string })?.code ?? /\b(E[A-Z]+)\b/.exec(text)?.[1];
  return new RedisStateError("connect", code ?? "connection lost");
}

/** Whether a failed command may still have run in Redis (its outcome is unknown). */
export function maybeRan(e: unknown): boolean {
  return e instanceof RedisStateError && e.maybeRan;
}
