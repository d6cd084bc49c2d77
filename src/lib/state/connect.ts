// The Redis connection of the account state, for the three modes of SPEC B6a's `redisMode`:
// `single` (one server), `sentinel` (the sentinels name the master) and `cluster` (seed nodes).
// One small interface (send one command, or one MULTI/EXEC, routed by a key of the account) so
// the state above never asks which mode it runs on.
//
// What it promises, in every mode:
// - Offline, a command fails at once (ClientOfflineError): the caller goes on with local state.
//   Nothing is queued while offline and nothing is ever sent twice by this module or by node-redis
//   on its behalf — except a command Redis refused before running it (cluster TRYAGAIN).
// - A lost connection comes back by itself with backoff (100 ms doubling to 2 s, plus jitter).
// - A wrong user or password stops at once: one `error` (a RedisStateError of kind `auth`) and
//   `end`, no reconnect loop, never a silent fallback to the `default` user. So does a password
//   for a Redis that has none ("AUTH called without any password configured"): a configuration
//   to fix, not a fault that heals.
// - A connection that swallows commands without answering (a black hole, a half-open socket) is
//   given up after `deadAfterMs` without a byte of answer while a command waits, and made again.
// - Errors and events carry no secret (they are RedisStateErrors with fixed texts, or node-redis
//   errors whose texts hold at most a host:port).
//
// Why not node-redis' own pieces everywhere (tried against real servers, node-redis 6.3.1):
// - createClient given a URL with a user name and a separate password takes the URL's
//   credentials and drops the password, so it authenticates as `default` (or not at all). Here
//   the URL is parsed once and the user name and password are given explicitly.
// - createSentinel resends a command whose connection closed while it was in flight: an INCR
//   whose reply was lost to a reset ran twice and answered 2, with no error (SPEC B6a forbids
//   redoing what may have run). It also holds commands while the master is unreachable (4 s and
//   more after a SIGKILL, until the sentinels have failed over) instead of failing them, even with
//   disableOfflineQueue. So sentinel mode is our own lookup: SENTINEL GET-MASTER-ADDR-BY-NAME on
//   the sentinels in turn, a plain client to that address (ROLE must say master), and again on
//   every reconnect. The link follows the sentinels' +switch-master announcements (a failover
//   asked for may leave our connection to the old master open, and it still takes writes for a
//   while: they are lost) and, in case one was missed, asks every `sentinelCheckMs`.
// - A plain client's own reconnection keeps the address it started with, and nothing in it notices
//   a black hole; so single and sentinel mode both run one client at a time with
//   `reconnectStrategy: false`, and this module makes the next one.
// - createCluster follows MOVED and ASK (also for MULTI, with ASKING) and fails offline commands
//   at once; it is used as it is. It does not retry TRYAGAIN (a multi-key command or script while
//   its slot is half migrated, refused before running): this module retries it for up to 5 s,
//   never past the moment its caller stops waiting (the state's command timeout).
//
// Telling "the command never ran" from "it may have run" (maybeRan below says it):
//
//   never ran (maybeRan false)                      may have run (maybeRan true)
//   ClientOfflineError: not connected (all modes)   the socket closed or was reset while the
//   RedisStateError("command", "closed"): closed      command was in flight: SocketClosed-
//   ClientClosedError: its client was closing         UnexpectedlyError, or an Error with a socket
//   TimeoutError (node-redis): never written          code (ECONNRESET, EPIPE, ETIMEDOUT, ...)
//   an error reply to a command or a MULTI, e.g.    DisconnectsClientError: given up by destroy()
//     READONLY, OOM, NOAUTH, NOPERM, WRONGTYPE,       or after `deadAfterMs` without an answer
//     LOADING, BUSY, MASTERDOWN, CLUSTERDOWN,       MultiErrorReply: EXEC ran; some commands in
//     CROSSSLOT, TRYAGAIN, EXECABORT (Redis checks     it failed, the others took effect
//     before it runs a command: an error reply      an error raised inside a Lua script after it
//     means no effect)                                may have written (WRONGTYPE, NOPERM, a
//   a script refused before its first write: OOM      runtime error): Redis does not roll back
//     and READONLY ("... script: <sha> ...")        RedisStateError("command", "timeout"): the
//   MaxCommandRedirectionsError (cluster: still       caller's own timeout (a stall, DEBUG SLEEP,
//     MOVED/ASK after 16 hops)                        CLIENT PAUSE): the command may run later
//                                                   anything else (unknown: assume it ran)
//
// Per mode: single and sentinel give exactly the left column for refusals and offline, and
// SocketClosedUnexpectedlyError / socket-code errors for a connection lost mid-command (a server
// killed, a failover closing clients, a reset). Cluster adds MOVED/ASK handling (invisible),
// TRYAGAIN retried then returned, CLUSTERDOWN while the slot's master is down, and "Cannot find
// node" (an ASK to an unknown node; counted as may-have-run, conservatively). A command that was
// queued but not yet written when its socket failed gets the socket's error too: it is counted as
// may-have-run although it never left (node-redis does not tell them apart; the window is a tick).
import { EventEmitter } from "node:events";
import type { ConnectionOptions } from "node:tls";
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  ErrorReply,
  MaxCommandRedirectionsError,
  MultiErrorReply,
  TimeoutError,
  WatchError,
  createClient,
  createCluster,
} from "redis";
import { classify, RedisStateError } from "./problem";

export type RedisMode = "single" | "sentinel" | "cluster";

export interface LinkOptions {
  mode: RedisMode;
  /**
   * single: `redis[s]://[user[:password]@]host[:port][/db]`; sentinel: the sentinels,
   * `redis://[user[:password]@]h1:26379,h2:26379[/db]` (credentials for the data nodes); cluster:
   * seed nodes, `redis://[user[:password]@]h1:7000,h2:7001`
   */
  url: string;
  /** the password credential: wins over a password in the URL; the URL's user name is kept */
  password?: string;
  /** for sentinels that require a password (`requirepass` on the sentinels) */
  sentinelPassword?: string;
  /** the master set's name (sentinel mode), default `mymaster` */
  master?: string;
  /** bound on one connection attempt (TCP, handshake, check), default 5000 ms */
  connectTimeoutMs?: number;
  /** a connection that answers nothing this long while a command waits is made again (10 s) */
  deadAfterMs?: number;
  /** sentinel mode: how often the sentinels are asked whether the master moved (5 s) */
  sentinelCheckMs?: number;
  /** close() waits this long for pending commands before destroying them (2 s) */
  closeTimeoutMs?: number;
  /** TLS options for rediss:// (a private CA, client certificates) */
  tls?: ConnectionOptions;
  /** where to really connect for a node the sentinels or the cluster name (NAT, containers, tests) */
  nodeAddressMap?: (node: NodeAddress) => NodeAddress | undefined;
}

export interface NodeAddress {
  host: string;
  port: number;
}

export type Reply = string | number | null | Reply[];

export interface RedisLink {
  readonly mode: RedisMode;
  /**
   * one command; `key` routes it in a cluster (all keys of an account share one hash tag, so one
   * slot). `until`: when its caller stops waiting; a refused command (TRYAGAIN) is not tried again
   * after that (its refusal was the answer: running it later would surprise the caller).
   */
  send(args: string[], key: string, until?: number): Promise<Reply>;
  /** one MULTI/EXEC on the slot of `key` */
  exec(commands: string[][], key: string, until?: number): Promise<Reply[]>;
  /** connected (and, with sentinels, to the master): commands are sent */
  readonly isReady: boolean;
  /**
   * How often the link, reconnecting, found the master at another address than before (sentinel
   * mode: a failover). What was written to the old master just before may be lost.
   */
  readonly masterMoves: number;
  /** ready: (re)connected; end: closed, or given up for good (auth); error: a RedisStateError, once per change of problem */
  on(event: "ready" | "end", fn: () => void): void;
  on(event: "error", fn: (e: unknown) => void): void;
  off(event: "ready" | "end" | "error", fn: (...a: never[]) => void): void;
  /** waits for pending commands (at most `closeTimeoutMs`), then closes */
  close(): Promise<void>;
  /** closes now: pending commands are rejected (DisconnectsClientError: they may have run) */
  destroy(): void;
}

/** Whether a command that failed with `e` may still have taken effect in Redis (see the table above). */
export function maybeRan(e: unknown): boolean {
  if (e instanceof RedisStateError) return e.kind === "command" && e.detail === "timeout";
  if (
    e instanceof ClientOfflineError ||
    e instanceof ClientClosedError ||
    e instanceof TimeoutError ||
    e instanceof ConnectionTimeoutError ||
    e instanceof MaxCommandRedirectionsError ||
    e instanceof WatchError
  ) {
    return false;
  }
  if (e instanceof MultiErrorReply) return true;
  if (e instanceof ErrorReply) {
    const text = e.message;
    // Redis 7 appends "script: <sha>, on @user_script:N." to errors raised inside a script;
    // Redis 6 said "Error running script". Only OOM and READONLY are raised before any write.
    if (/script: [0-9a-f]{40}|@user_script|Error running script/i.test(text)) return !/^(OOM|READONLY)\b/.test(text);
    return false;
  }
  return true;
}

/** The URL's parts; throws RedisStateError("url") for anything unusable (the URL is never in the message). */
export interface RedisTarget {
  tls: boolean;
  nodes: NodeAddress[];
  username?: string;
  password?: string;
  database: number;
}

const DEFAULT_PORT: Record<RedisMode, number> = { single: 6379, sentinel: 26379, cluster: 6379 };

export function parseRedisUrl(url: string, mode: RedisMode): RedisTarget {
  const bad = (detail: string) => new RedisStateError("url", detail);
  const m = /^(rediss?):\/\/(?:([^@/?#]*)@)?([^/?#]+)(?:\/([^?#]*))?(?:[?#].*)?$/i.exec(String(url ?? "").trim());
  if (!m) throw bad("");
  const t: RedisTarget = { tls: m[1].toLowerCase() === "rediss", nodes: [], database: 0 };
  if (m[2]) {
    const colon = m[2].indexOf(":");
    try {
      const user = decodeURIComponent(colon < 0 ? m[2] : m[2].slice(0, colon));
      const pass = colon < 0 ? "" : decodeURIComponent(m[2].slice(colon + 1));
      if (user) t.username = user;
      if (pass) t.password = pass;
    } catch {
      throw bad("credentials");
    }
  }
  for (const part of m[3].split(",")) {
    const h = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::(\d{1,5}))?$/i.exec(part.trim());
    if (!h) throw bad("host");
    const port = h[3] === undefined ? DEFAULT_PORT[mode] : Number(h[3]);
    if (!(port >= 1 && port <= 65535)) throw bad("port");
    t.nodes.push({ host: h[1] ?? h[2], port });
  }
  if (m[4]) {
    if (!/^\d{1,5}$/.test(m[4])) throw bad("database");
    t.database = Number(m[4]);
  }
  if (mode === "single" && t.nodes.length !== 1) throw bad("one host in single mode");
  if (mode === "cluster" && t.database !== 0) throw bad("a cluster has only database 0");
  return t;
}

// --- internals ---------------------------------------------------------------------------------

type Client = ReturnType<typeof createClient>;
type Cluster = ReturnType<typeof createCluster>;

/** A connection of one kind, made once: the link makes another when it is lost. */
interface Backend {
  /** resolves once usable (connected and checked); rejects when this attempt failed */
  readonly ready: Promise<void>;
  readonly isReady: boolean;
  /** the master it talks to (sentinel mode), once ready */
  readonly master?: NodeAddress;
  send(args: string[], key: string, until?: number): Promise<Reply>;
  exec(commands: string[][], key: string, until?: number): Promise<Reply[]>;
  close(): Promise<void>;
  destroy(): void;
}

interface Hooks {
  /** the connection is gone for good (the link makes a new one) */
  lost(e: unknown): void;
  /** a problem worth telling that does not end the connection (a cluster node reconnecting) */
  problem(e: unknown): void;
  /** a cluster node is back */
  recovered(): void;
}

interface Settings {
  mode: RedisMode;
  target: RedisTarget;
  username?: string;
  password?: string;
  sentinelPassword?: string;
  master: string;
  connectTimeoutMs: number;
  deadAfterMs: number;
  sentinelCheckMs: number;
  closeTimeoutMs: number;
  tls?: ConnectionOptions;
  nodeAddressMap?: (node: NodeAddress) => NodeAddress | undefined;
}

const AUTH_TEXT =
  /WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username|without any password configured|no password is set/i;

/** A refused user or password (or a user without the right to connect): retrying does not heal it. */
function authProblem(e: unknown): RedisStateError | null {
  if (e instanceof RedisStateError) return e.kind === "auth" ? e : null;
  return AUTH_TEXT.test(String((e as Error)?.message ?? e)) ? new RedisStateError("auth") : null;
}

function backoff(failures: number): number {
  return Math.min(100 * 2 ** Math.min(failures, 5), 2000) + Math.floor(Math.random() * 100);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** `p`, or a rejection with `err` after `ms` (the attempt behind `p` is the caller's to end). */
function within<T>(p: Promise<T>, ms: number, err: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(err()), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** TCP or TLS (rediss://) socket options, without an address; Node sets SNI from the host name. */
function socketBase(s: Settings) {
  return s.target.tls
    ? { ...s.tls, connectTimeout: s.connectTimeoutMs, tls: true as const }
    : { connectTimeout: s.connectTimeoutMs, tls: false as const };
}

/** A plain client for one node: never reconnects by itself, never queues offline, RESP2 replies. */
function plainClient(
  s: Settings,
  node: NodeAddress,
  auth: { username?: string; password?: string },
  database = 0,
): Client {
  return createClient({
    RESP: 2,
    socket: { ...socketBase(s), host: node.host, port: node.port, reconnectStrategy: false },
    ...(auth.username ? { username: auth.username } : {}),
    ...(auth.password ? { password: auth.password } : {}),
    ...(database ? { database } : {}),
    disableOfflineQueue: true,
    disableClientInfo: true,
  }) as unknown as Client;
}

/** One client to one address (single mode), or to the master the sentinels name (sentinel mode). */
class ClientBackend implements Backend {
  readonly ready: Promise<void>;
  private client: Client | null = null;
  private up = false;
  private dead = false;
  private check: NodeJS.Timeout | null = null;
  master?: NodeAddress;

  constructor(
    private readonly s: Settings,
    locate: () => Promise<NodeAddress>,
    private readonly hooks: Hooks,
    private readonly sentinels: Sentinels | null,
  ) {
    this.ready = this.open(locate);
    this.ready.catch(() => undefined);
  }

  get isReady(): boolean {
    return this.up && !this.dead && !!this.client?.isReady;
  }

  private async open(locate: () => Promise<NodeAddress>): Promise<void> {
    const found = await locate();
    if (this.dead) throw new RedisStateError("command", "closed");
    const node = this.s.nodeAddressMap?.(found) ?? found;
    const c = plainClient(this.s, node, this.s, this.s.target.database);
    this.client = c;
    // Always a listener: an unhandled 'error' would crash the process (Node-RED with it).
    c.on("error", (e: unknown) => {
      if (this.up && !this.dead) this.hooks.lost(e);
    });
    try {
      await c.connect();
      if (this.sentinels) {
        // The sentinels may still name the old master for a moment: only a master is used.
        const role = (await c.sendCommand(["ROLE"])) as unknown as Reply;
        if (!Array.isArray(role) || role[0] !== "master") throw new RedisStateError("connect", "not master");
      } else {
        await c.sendCommand(["PING"]);
      }
    } catch (e) {
      // A sentinel that named a master we cannot use may be the stale one: ask another next time.
      this.sentinels?.distrust();
      throw e;
    }
    if (this.dead) throw new RedisStateError("command", "closed");
    this.up = true;
    if (this.sentinels) this.watch(found);
  }

  /**
   * Sentinel mode: a periodic ask moves to another master even if its announcement was missed
   * (the old master may still answer: a partition, a failover asked for; what is written there is
   * lost). The announcements themselves (+switch-master) are followed by the link.
   */
  private watch(at: NodeAddress): void {
    this.master = at;
    let asking = false;
    this.check = setInterval(() => {
      if (asking || !this.up || this.dead) return;
      asking = true;
      this.sentinels!.locate()
        .then((now) => {
          if (this.up && !this.dead && (now.host !== at.host || now.port !== at.port)) {
            this.hooks.lost(new RedisStateError("connect", "master moved"));
          }
        })
        .catch(() => undefined) // the sentinels unreachable is not the master gone
        .finally(() => (asking = false));
    }, this.s.sentinelCheckMs);
    this.check.unref();
  }

  private get live(): Client {
    if (!this.client) throw new ClientOfflineError();
    return this.client;
  }

  send(args: string[]): Promise<Reply> {
    return this.live.sendCommand(args) as unknown as Promise<Reply>;
  }

  exec(commands: string[][]): Promise<Reply[]> {
    const multi = this.live.multi();
    for (const c of commands) multi.addCommand(c);
    return multi.exec() as unknown as Promise<Reply[]>;
  }

  async close(): Promise<void> {
    this.stopChecking();
    const c = this.client;
    if (c?.isOpen && this.up) {
      try {
        await within(c.close(), this.s.closeTimeoutMs, () => new Error("close timeout"));
      } catch {
        /* destroyed below */
      }
    }
    this.destroy();
  }

  destroy(): void {
    this.dead = true;
    this.up = false;
    this.stopChecking();
    try {
      this.client?.destroy();
    } catch {
      /* already gone */
    }
  }

  private stopChecking(): void {
    if (this.check) clearInterval(this.check);
    this.check = null;
  }
}

/** The sentinels of the URL, asked in turn (the last that answered first). */
class Sentinels {
  private first = 0;

  constructor(private readonly s: Settings) {}

  private client(i: number): Client {
    const c = plainClient(this.s, this.s.target.nodes[i], { password: this.s.sentinelPassword });
    c.on("error", () => undefined);
    return c;
  }

  /** The sentinel that answered last named a master that was not one (or not there): next time, the next one. */
  distrust(): void {
    this.first = (this.first + 1) % this.s.target.nodes.length;
  }

  /** The master's address (SENTINEL GET-MASTER-ADDR-BY-NAME); a refused sentinel password is `auth`. */
  async locate(): Promise<NodeAddress> {
    const nodes = this.s.target.nodes;
    let failure: unknown = new RedisStateError("connect", "no sentinel");
    for (let k = 0; k < nodes.length; k++) {
      const i = (this.first + k) % nodes.length;
      const c = this.client(i);
      try {
        const ask = async () => {
          await c.connect();
          return (await c.sendCommand(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", this.s.master])) as unknown as Reply;
        };
        const r = await within(ask(), this.s.connectTimeoutMs, () => new RedisStateError("connect", "timeout"));
        if (!Array.isArray(r) || r.length < 2) {
          failure = new RedisStateError("connect", "unknown master name");
          continue;
        }
        this.first = i;
        return { host: String(r[0]), port: Number(r[1]) };
      } catch (e) {
        if (authProblem(e)) throw new RedisStateError("auth", "sentinel");
        failure = e;
      } finally {
        try {
          c.destroy();
        } catch {
          /* never connected */
        }
      }
    }
    throw failure;
  }

  /**
   * Listens for `+switch-master` on one sentinel (the one that answered last, then the next when
   * it goes away); `moved` gets the new master's address. Returns the stop.
   */
  follow(moved: (to: NodeAddress) => void): () => void {
    const n = this.s.target.nodes.length;
    let stopped = false;
    let current: Client | null = null;
    let timer: NodeJS.Timeout | undefined;
    const start = (i: number) => {
      if (stopped) return;
      const c = this.client(i);
      current = c;
      const again = () => {
        if (stopped || current !== c) return;
        current = null;
        try {
          c.destroy();
        } catch {
          /* never connected */
        }
        timer = setTimeout(() => start((i + 1) % n), 1000);
        timer.unref();
      };
      c.on("error", again);
      const listen = async () => {
        await c.connect();
        await c.subscribe("+switch-master", (message: string) => {
          // "<name> <old ip> <old port> <new ip> <new port>"
          const f = String(message).split(" ");
          if (!stopped && f.length === 5 && f[0] === this.s.master) moved({ host: f[3], port: Number(f[4]) });
        });
      };
      within(listen(), this.s.connectTimeoutMs, () => new Error("timeout")).catch(again);
    };
    start(this.first);
    return () => {
      stopped = true;
      clearTimeout(timer);
      const c = current;
      current = null;
      try {
        c?.destroy();
      } catch {
        /* never connected */
      }
    };
  }
}

/** How long a command refused with TRYAGAIN (its slot being moved) is tried again. */
const TRYAGAIN_MS = 5000;

/** node-redis' cluster client: it follows MOVED/ASK; TRYAGAIN (refused, never ran) is retried here. */
class ClusterBackend implements Backend {
  readonly ready: Promise<void>;
  private readonly cluster: Cluster;
  private up = false;
  private dead = false;

  constructor(
    private readonly s: Settings,
    hooks: Hooks,
  ) {
    const map = s.nodeAddressMap;
    const cluster = createCluster({
      RESP: 2,
      rootNodes: s.target.nodes.map((n) => ({ socket: { ...socketBase(s), ...(map?.(n) ?? n) } })),
      defaults: {
        ...(s.username ? { username: s.username } : {}),
        ...(s.password ? { password: s.password } : {}),
        disableOfflineQueue: true,
        disableClientInfo: true,
        socket: {
          ...socketBase(s),
          reconnectStrategy: (retries: number, cause: Error) => {
            // A refused password does not heal by retrying: this node stops, the link gives up.
            const auth = authProblem(cause);
            if (auth) {
              hooks.lost(auth);
              return auth;
            }
            return backoff(retries);
          },
        },
      },
      ...(map
        ? {
            nodeAddressMap: (address: string) => {
              const i = address.lastIndexOf(":");
              return map({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
            },
          }
        : {}),
    } as Parameters<typeof createCluster>[0]) as unknown as Cluster;
    this.cluster = cluster;
    // Always listeners: an unhandled 'error' would crash the process (Node-RED with it). While
    // connecting, the attempt's outcome says it all, except that one seed node refusing the
    // password is the cause even when the last one tried was merely unreachable.
    let refused: RedisStateError | null = null;
    const problem = (e: unknown) => {
      if (this.up) hooks.problem(e);
      else refused ??= authProblem(e);
    };
    cluster.on("error", problem);
    cluster.on("node-error", problem);
    cluster.on("node-ready", () => hooks.recovered());
    this.ready = (async () => {
      try {
        await cluster.connect();
        await cluster.sendCommand(undefined, false, ["PING"]);
      } catch (e) {
        throw refused ?? e;
      }
      if (this.dead) throw new RedisStateError("command", "closed");
      this.up = true;
    })();
    this.ready.catch(() => undefined);
  }

  get isReady(): boolean {
    return this.up && !this.dead && this.cluster.isReady;
  }

  private async retried<T>(run: () => Promise<T>, callerUntil = Infinity): Promise<T> {
    // Bounded by time, not by tries: a slot's keys move one MIGRATE at a time, and on a busy
    // machine that takes longer than a few tries (a refused command never ran: retrying is safe).
    // Never past its caller's wait: the caller has its answer then (it may have run) and goes on.
    const until = Math.min(Date.now() + TRYAGAIN_MS, callerUntil);
    for (let i = 0; ; i++) {
      try {
        return await run();
      } catch (e) {
        const wait = 10 * 2 ** Math.min(i, 4);
        if (Date.now() + wait >= until || !(e instanceof ErrorReply) || !/^TRYAGAIN\b/.test(e.message) || this.dead)
          throw e;
        await delay(wait);
      }
    }
  }

  send(args: string[], key: string, until?: number): Promise<Reply> {
    return this.retried(() => this.cluster.sendCommand(key, false, args) as unknown as Promise<Reply>, until);
  }

  exec(commands: string[][], key: string, until?: number): Promise<Reply[]> {
    return this.retried(() => {
      const multi = this.cluster.multi(key);
      for (const c of commands) multi.addCommand(key, false, c);
      return multi.exec() as unknown as Promise<Reply[]>;
    }, until);
  }

  async close(): Promise<void> {
    if (this.up && this.cluster.isOpen) {
      try {
        await within(this.cluster.close(), this.s.closeTimeoutMs, () => new Error("close timeout"));
      } catch {
        /* destroyed below */
      }
    }
    this.destroy();
  }

  destroy(): void {
    this.dead = true;
    this.up = false;
    try {
      this.cluster.destroy();
    } catch {
      /* never connected */
    }
  }
}

class Link implements RedisLink {
  private readonly events = new EventEmitter();
  private backend: Backend | null = null;
  private ready = false;
  private closed = false;
  private stopped = false;
  private ended = false;
  /** ends the current connection's wait (lost, closed) */
  private release: ((e: unknown) => void) | null = null;
  /** cuts a backoff short (close) */
  private wake: (() => void) | null = null;
  /** the problem last told during this outage (one `error` per change, not per attempt) */
  private told: string | null = null;
  // Commands waiting for an answer, and when an answer last came: the black-hole watchdog.
  // (insertion order: the first is the oldest still waiting)
  private readonly pending = new Set<{ since: number }>();
  private lastAnswer = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private masterAt: string | null = null;
  masterMoves = 0;

  constructor(
    readonly mode: RedisMode,
    private readonly s: Settings,
    private readonly open: (hooks: Hooks) => Backend,
  ) {
    this.events.setMaxListeners(0);
    // The link's own 'error' never throws for want of a listener.
    this.events.on("error", () => undefined);
    void this.loop();
  }

  get isReady(): boolean {
    return this.ready && !this.closed && !!this.backend?.isReady;
  }

  on(event: "ready" | "end" | "error", fn: (...a: never[]) => void): void {
    this.events.on(event, fn as (...a: unknown[]) => void);
  }

  off(event: "ready" | "end" | "error", fn: (...a: never[]) => void): void {
    this.events.off(event, fn as (...a: unknown[]) => void);
  }

  send(args: string[], key: string, until?: number): Promise<Reply> {
    const b = this.usable();
    return b instanceof Error ? Promise.reject(b) : this.track(() => b.send(args, key, until));
  }

  exec(commands: string[][], key: string, until?: number): Promise<Reply[]> {
    const b = this.usable();
    return b instanceof Error ? Promise.reject(b) : this.track(() => b.exec(commands, key, until));
  }

  private usable(): Backend | Error {
    if (this.closed) return new RedisStateError("command", "closed");
    const b = this.backend;
    return b && this.ready ? b : new ClientOfflineError();
  }

  private async track<T>(run: () => Promise<T>): Promise<T> {
    const id = { since: Date.now() };
    this.pending.add(id);
    this.arm();
    try {
      const v = await run();
      this.lastAnswer = Date.now();
      return v;
    } catch (e) {
      // An error reply is an answer: the connection is alive.
      if (e instanceof ErrorReply) this.lastAnswer = Date.now();
      throw e;
    } finally {
      this.pending.delete(id);
    }
  }

  private arm(): void {
    if (this.watchdog) return;
    const every = Math.max(20, Math.min(1000, this.s.deadAfterMs / 4));
    this.watchdog = setInterval(() => {
      if (!this.pending.size) {
        clearInterval(this.watchdog!);
        this.watchdog = null;
        return;
      }
      const oldest = this.pending.values().next().value!.since;
      // Silent for the whole time: the last answer (pipelined, it may have been an earlier
      // command's, so it proves nothing about the oldest) is as old as the limit, or older.
      if (this.ready && Date.now() - Math.max(oldest, this.lastAnswer) >= this.s.deadAfterMs) {
        this.release?.(new RedisStateError("connect", "no answer"));
      }
    }, every);
    this.watchdog.unref();
  }

  private tell(e: unknown): void {
    const p = authProblem(e) ?? classify(e);
    if (p.message === this.told) return;
    this.told = p.message;
    this.events.emit("error", p);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.ready = false;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    this.events.emit("end");
  }

  private stop(e: RedisStateError): void {
    this.stopped = true;
    this.tell(e);
    this.end();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      t.unref();
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  /**
   * Sentinel mode: the sentinels announced a new master. A link on another one leaves it now; a
   * link waiting to reconnect tries at once.
   */
  nudge(to: NodeAddress): void {
    const at = this.backend?.master;
    if (this.ready && at && (at.host !== to.host || at.port !== to.port)) {
      this.release?.(new RedisStateError("connect", "master moved"));
    } else if (!this.ready) {
      this.wake?.();
    }
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.closed && !this.stopped) {
      let reason: unknown = null;
      const gone = new Promise<void>((resolve) => {
        this.release = (e) => {
          if (reason !== null) return;
          reason = e;
          this.ready = false;
          resolve();
        };
      });
      const hooks: Hooks = {
        lost: (e) => this.backend === b && this.release?.(e),
        problem: (e) => this.tell(e),
        recovered: () => (this.told = null),
      };
      const b: Backend = this.open(hooks);
      this.backend = b;
      try {
        await within(b.ready, this.s.connectTimeoutMs, () => new RedisStateError("connect", "timeout"));
      } catch (e) {
        b.destroy();
        if (this.backend === b) this.backend = null;
        if (this.closed) break;
        const auth = authProblem(e);
        if (auth) {
          this.stop(auth);
          break;
        }
        this.tell(e);
        await this.pause(backoff(failures++));
        continue;
      }
      if (this.closed) break;
      if (reason === null) {
        failures = 0;
        this.told = null;
        const at = b.master ? `${b.master.host}:${b.master.port}` : null;
        if (at !== null && this.masterAt !== null && at !== this.masterAt) this.masterMoves++;
        if (at !== null) this.masterAt = at;
        this.ready = true;
        this.events.emit("ready");
        await gone;
      }
      this.ready = false;
      if (this.backend === b) this.backend = null;
      this.pending.clear();
      b.destroy();
      if (this.closed) break;
      const auth = authProblem(reason);
      if (auth) {
        this.stop(auth);
        break;
      }
      this.tell(reason);
      await this.pause(backoff(failures++));
    }
    this.release = null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    this.wake?.();
    const b = this.backend;
    this.backend = null;
    if (b) await b.close();
    this.release?.(new RedisStateError("command", "closed"));
    this.end();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    this.wake?.();
    const b = this.backend;
    this.backend = null;
    b?.destroy();
    this.release?.(new RedisStateError("command", "closed"));
    this.end();
  }
}

/**
 * The Redis connection for `opts.mode`. Throws RedisStateError("url") for an unusable URL (the
 * URL is not in the message); everything else (unreachable, refused) comes as `error` events.
 */
export function connect(opts: LinkOptions): RedisLink {
  const target = parseRedisUrl(opts.url, opts.mode);
  const s: Settings = {
    mode: opts.mode,
    target,
    // A user name in the URL stays with the password credential (ACL users, SPEC B6a).
    username: target.username,
    password: opts.password || target.password,
    sentinelPassword: opts.sentinelPassword || undefined,
    master: opts.master || "mymaster",
    connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
    deadAfterMs: opts.deadAfterMs ?? 10_000,
    sentinelCheckMs: opts.sentinelCheckMs ?? 5000,
    closeTimeoutMs: opts.closeTimeoutMs ?? 2000,
    tls: opts.tls,
    nodeAddressMap: opts.nodeAddressMap,
  };
  switch (opts.mode) {
    case "single":
      return new Link("single", s, (hooks) => new ClientBackend(s, async () => target.nodes[0], hooks, null));
    case "sentinel": {
      const sentinels = new Sentinels(s);
      const link = new Link("sentinel", s, (hooks) => new ClientBackend(s, () => sentinels.locate(), hooks, sentinels));
      const unfollow = sentinels.follow((to) => link.nudge(to));
      link.on("end", unfollow);
      return link;
    }
    case "cluster":
      return new Link("cluster", s, (hooks) => new ClusterBackend(s, hooks));
    default:
      throw new RedisStateError("url", "mode");
  }
}
