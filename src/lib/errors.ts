import { t, type Lang, type MessageKey } from "./i18n";

/** Error codes of our own (SPEC B2); platform codes are numbers. */
export type LocalCode =
  | "INVALID_PAYLOAD"
  | "INVALID_MOBILE"
  | "EMPTY_MESSAGE"
  | "MESSAGE_TOO_LONG"
  | "NO_CONFIG"
  | "QUEUE_FULL"
  | "TIMEOUT"
  | "NETWORK"
  | "HTTP_STATUS"
  | "BAD_RESPONSE"
  | "TEMPLATE";

export type ErrorCode = LocalCode | number;

export interface SmsErrorInit {
  code: ErrorCode;
  message: string;
  /** true when the request may have reached the platform: such a send is never retried. */
  outcomeUnknown?: boolean;
  /** true when a retry cannot have caused a double send (nothing was taken). */
  retryable?: boolean;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class SmsError extends Error {
  readonly code: ErrorCode;
  readonly outcomeUnknown: boolean;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(init: SmsErrorInit) {
    super(init.message);
    this.name = "SmsError";
    this.code = init.code;
    this.outcomeUnknown = init.outcomeUnknown ?? false;
    this.retryable = init.retryable ?? false;
    this.details = init.details ?? {};
    // The cause is kept off the enumerable properties: undici causes can carry request options.
    if (init.cause !== undefined) Object.defineProperty(this, "cause", { value: init.cause, enumerable: false });
  }
}

export function localError(
  code: LocalCode,
  key: MessageKey,
  lang: Lang,
  params?: Record<string, unknown>,
  extra?: Partial<SmsErrorInit>,
): SmsError {
  return new SmsError({ code, message: t(key, lang, params), ...extra });
}

export function isSmsError(e: unknown): e is SmsError {
  return e instanceof SmsError;
}

/**
 * What a thrown value says, for an error message: never throws itself (the value comes from the
 * user's msg: its message or toString may be a getter that throws) and is bounded in length.
 */
export function errorReason(e: unknown): string {
  let reason: string;
  try {
    const message = e instanceof Error ? e.message : e;
    reason = typeof message === "string" ? message : String(message);
  } catch {
    reason = "?";
  }
  return reason.length > 200 ? reason.slice(0, 200) + "…" : reason;
}
