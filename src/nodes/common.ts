// Shared by the node adapters: types, language, error payloads, status throttling.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from "node-red";
import type { BalanceAnswer } from "../lib/platform/balance";
import type { SmsClient } from "../lib/platform/client";
import type { CodeTable } from "../lib/platform/codes";
import { isSmsError, SmsError, type ErrorCode } from "../lib/errors";
import { t, toLang, type Lang } from "../lib/i18n";
import type { MobileCheck } from "../lib/platform/numbers";
import type { AccountState } from "../lib/state/index";
import type { RedisMode } from "../lib/state/connect";
import type { RedisStateError } from "../lib/state/redis";
import type { StoreKind } from "../lib/state/registry";

export interface SmsCredentials {
  account?: string;
  password?: string;
  receiver?: string;
  receiverPassword?: string;
  redisPassword?: string;
  /** for sentinels that require a password (redisMode sentinel) */
  redisSentinelPassword?: string;
}

export interface SmsConfigDef extends NodeDef {
  url: string;
  product: string;
  extno: string;
  signature: string;
  timeout: string | number;
  rate: string | number;
  queue: string | number;
  retries: string | number;
  maxLength: string | number;
  mobileCheck: string;
  tz: string;
  codes?: string;
  store?: string;
  redisUrl?: string;
  redisPrefix?: string;
  redisMode?: string;
  redisMaster?: string;
}

export interface SmsSettings {
  url: string;
  product: string;
  extno: string;
  signature: string;
  timeout: number;
  rate: number;
  queue: number;
  retries: number;
  maxLength: number;
  mobileCheck: MobileCheck;
  tz: string;
  offsetMinutes: number;
  store: StoreKind;
  redisUrl: string;
  redisPrefix: string;
  /** single, sentinel or cluster (SPEC B6a) */
  redisMode: RedisMode;
  /** the sentinels' master set (redisMode sentinel) */
  redisMaster: string;
}

export type { BalanceAnswer };

/** What the other nodes use of a config node. */
export interface SmsConfigNode extends Node<SmsCredentials> {
  settings: SmsSettings;
  lang: Lang;
  codes: CodeTable;
  /** the account's client; throws NO_CONFIG when the account cannot be used */
  client(): SmsClient;
  /** a balance answer, at most one platform query per 10 s */
  queryBalance(): Promise<BalanceAnswer>;
  /** the account's state (SPEC B6), shared with every config node of the account */
  state: AccountState;
  /** why a `redis` state runs locally now (null when it does not) */
  stateProblem(): RedisStateError | null;
  /** the status other nodes of the account show while the state is local (null when shared) */
  stateStatus(): NodeStatus | null;
}

export type Msg = NodeMessageInFlow & Record<string, unknown>;
export type Send = (msg: Msg | Array<Msg | null>) => void;
export type Done = (err?: Error) => void;

/**
 * The runtime's language, read through the node's own catalog (each catalog names its language),
 * so it follows Node-RED's `lang` setting and the OS locale exactly as every other text does.
 */
export function runtimeLang(RED: NodeAPI, key: string): Lang {
  return toLang(RED._(key));
}

export function getConfig(RED: NodeAPI, id: unknown): SmsConfigNode | null {
  if (typeof id !== "string" || !id) return null;
  const n = RED.nodes.getNode(id) as SmsConfigNode | null;
  return n && typeof n.client === "function" ? n : null;
}

export function noConfigError(lang: Lang): SmsError {
  return new SmsError({ code: "NO_CONFIG", message: t("noConfig", lang) });
}

export function asSmsError(e: unknown): SmsError {
  if (isSmsError(e)) return e;
  return new SmsError({ code: "NETWORK", message: String((e as Error)?.message ?? e), outcomeUnknown: true });
}

/** The `msg.payload` of a failure (SPEC B2): the success shape with ok:false and the code. */
export function failurePayload(err: SmsError, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const description = typeof err.details.description === "string" ? err.details.description : err.message;
  const { description: _d, resptime: _r, ...details } = err.details;
  return {
    code: err.code as ErrorCode,
    ok: false,
    description,
    message: err.message,
    outcomeUnknown: err.outcomeUnknown,
    ...extra,
    ...details,
  };
}

/**
 * The error handed to done(): the message users read in the debug sidebar and Catch nodes,
 * carrying the code. It never holds the request, so no password can travel with it.
 */
export function nodeError(err: SmsError, message = err.message): Error & { code: ErrorCode } {
  const e = new Error(message) as Error & { code: ErrorCode };
  e.code = err.code;
  return e;
}

/**
 * Coalesces status updates: a node handling thousands of messages a second would otherwise send
 * an editor event (and build a translated text) for each one. A status may be given as a
 * function, evaluated only when it is actually shown.
 */
export class StatusThrottle {
  private last = 0;
  private pending: NodeStatus | (() => NodeStatus) | null = null;
  private shown: NodeStatus | (() => NodeStatus) | null = null;
  private over: NodeStatus | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly node: Node,
    private readonly intervalMs = 100,
  ) {}

  set(status: NodeStatus | (() => NodeStatus)): void {
    this.pending = status;
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0 && !this.timer) return this.flush();
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, wait));
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending) return;
    this.last = Date.now();
    const s = this.pending;
    this.pending = null;
    this.shown = s;
    if (this.over) return;
    this.node.status(typeof s === "function" ? s() : s);
  }

  /**
   * A status that stays in front of the node's own (the account state running locally) until
   * cleared; the node's latest own status shows again then.
   */
  overlay(status: NodeStatus | null): void {
    if (status === this.over || (status && this.over && status.text === this.over.text)) return;
    this.over = status;
    if (status) return this.node.status(status);
    const s = this.pending ?? this.shown;
    this.pending = null;
    this.shown = s;
    this.node.status(s ? (typeof s === "function" ? s() : s) : {});
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = null;
  }
}

/** Keeps the account state's mode (SPEC B6) in front of the node's status; returns the unsubscribe. */
export function showStateMode(config: SmsConfigNode | null, status: StatusThrottle): () => void {
  if (!config?.stateStatus) return () => undefined;
  const apply = () => status.overlay(config.stateStatus());
  apply();
  return config.state.onMode(apply);
}
