// A real redis-server for a test: started on a free 127.0.0.1 port in its own temp dir, stopped by
// its pid. Never skipped: without redis-server the test fails and says how to install it. Besides
// start and stop it makes Redis's own faults (SPEC B6a): a client pause (what a fork for a
// snapshot does), DEBUG SLEEP, a restart with or without its data, READONLY (a replica), OOM, and
// it finds keys without a TTL. The Cluster and Sentinel supports build on `spawnRedis`.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "./packed";

export { freePort };

/** A parsed RESP2 reply (an error reply rejects instead). */
export type Reply = string | number | null | Reply[];

export interface RedisOptions {
  /** `requirepass`: the `default` user's password */
  password?: string;
  /**
   * ACL users, one `--user` line each, e.g. `["nr", "on", ">nrpw", "~nr:*", "&nr:*", "+@all"]`.
   * The support itself talks to Redis as `default` (with `password`), so keep `default` usable.
   */
  users?: string[][];
  /** `--enable-debug-command local`: DEBUG SLEEP and friends (debugSleep needs it) */
  debug?: boolean;
  /**
   * "aof": every write is appended and fsynced, so even a SIGKILL keeps the data for
   * `restart({ keepData: true })`. Without it a restart keeps what the last SAVE wrote (restart
   * with keepData SAVEs first while the server runs).
   */
  appendonly?: boolean;
  /** more arguments for redis-server, e.g. ["--maxmemory-policy", "noeviction"] */
  args?: string[];
}

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:port (with the password when one was set) */
  readonly url: string;
  /** the server's own dir (dump.rdb, appendonlydir): removed by stop() */
  readonly dir: string;
  /** the redis-server pid now (null while it is down) */
  readonly pid: number | null;
  /** an outage: SIGKILL, as a crash or a pulled cable looks to the client */
  kill(): Promise<void>;
  /**
   * Starts again on the same port (after kill or stop, or while running: stopped first). By
   * default with no data (its files removed); `keepData` keeps them (a running server SAVEs
   * first, so a snapshot restart loses nothing; after kill() only what the last SAVE or the AOF had).
   */
  restart(opts?: { keepData?: boolean }): Promise<void>;
  /** a Redis that stops answering without closing anything (SIGSTOP), and its return (SIGCONT) */
  pause(): void;
  resume(): void;
  /** stops it (SIGTERM, SIGKILL after 5 s) and removes its dir */
  stop(): Promise<void>;
  /** one command through a raw socket: the reply's RESP text (e.g. ":3\r\n"), for quick looks */
  command(...args: string[]): Promise<string>;
  /** one command through a raw socket, the reply parsed; an error reply rejects with its text */
  call(...args: string[]): Promise<Reply>;
  /** INFO `section` as a map (`total_connections_received`, `acl_access_denied_auth`, ...) */
  info(section?: string): Promise<Map<string, string>>;
  /** `CLIENT PAUSE ms ALL`: every client stalls (a fork for a snapshot); resolves once it holds */
  pauseClients(ms: number, mode?: "ALL" | "WRITE"): Promise<void>;
  /**
   * `DEBUG SLEEP`: the server does nothing for `ms` (a slow command). Resolves once the command is
   * written; `done` resolves when the server answers again. Needs `{ debug: true }`.
   */
  debugSleep(ms: number): Promise<{ done: Promise<void> }>;
  /** `REPLICAOF` the other server (writes answer READONLY at once), or `null`: master again */
  replicaOf(master: RedisServer | null): Promise<void>;
  /** maxmemory below what Redis uses, noeviction: every write that needs memory answers OOM */
  outOfMemory(on: boolean): Promise<void>;
  /** every key (under `prefix`) whose PTTL is -1 (SCAN + PTTL) */
  keysWithoutTtl(prefix?: string): Promise<string[]>;
  /** SAVE: a snapshot in `dir` (read back by restart({ keepData: true })) */
  save(): Promise<void>;
}

let checked = false;
export function requireRedisServer(binary = "redis-server"): void {
  if (checked && binary === "redis-server") return;
  const r = spawnSync(binary, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(
      `${binary} is not installed, and the state tests need a real one. Install it with ` +
        "`sudo apt-get install redis-server redis-sentinel` (Debian/Ubuntu; .ci/run does this) or `brew install redis` (macOS).",
    );
  }
  if (binary === "redis-server") checked = true;
}

const enc = (a: string[]) => `*${a.length}\r\n` + a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join("");

export class ReplyError extends Error {
  override name = "ReplyError";
}

/**
 * Reads one RESP2 reply from `buf` at `at`: [value, next offset], or null while incomplete. An
 * error reply is a ReplyError value (the caller decides).
 */
export function readReply(buf: Buffer, at = 0): [Reply | ReplyError, number] | null {
  const end = buf.indexOf("\r\n", at);
  if (end < 0) return null;
  const head = buf.toString("utf8", at + 1, end);
  const next = end + 2;
  switch (String.fromCharCode(buf[at])) {
    case "+":
      return [head, next];
    case "-":
      return [new ReplyError(head), next];
    case ":":
      return [Number(head), next];
    case "$": {
      const len = Number(head);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) return null;
      return [buf.toString("utf8", next, next + len), next + len + 2];
    }
    case "*": {
      const count = Number(head);
      if (count < 0) return [null, next];
      const out: Reply[] = [];
      let i = next;
      for (let k = 0; k < count; k++) {
        const r = readReply(buf, i);
        if (!r) return null;
        if (r[0] instanceof ReplyError) return [r[0], r[1]];
        out.push(r[0]);
        i = r[1];
      }
      return [out, i];
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buf.toString("utf8", at, Math.min(buf.length, at + 40)))}`);
  }
}

export interface RawOptions {
  password?: string;
  user?: string;
  timeoutMs?: number;
  /** called once the command is on the wire */
  written?: () => void;
}

/**
 * One command on a fresh connection (AUTH first when a password is given): the reply's raw RESP
 * text and its parsed value. Bounded by `timeoutMs` (2 s).
 */
export function rawCommand(
  port: number,
  args: string[],
  opts: RawOptions = {},
): Promise<{ text: string; value: Reply }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    const auth = opts.password ? enc(opts.user ? ["AUTH", opts.user, opts.password] : ["AUTH", opts.password]) : "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`redis raw command ${args[0]} timed out`));
    }, opts.timeoutMs ?? 2000);
    s.on("connect", () => s.write(auth + enc(args), () => opts.written?.()));
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      let at = 0;
      if (auth) {
        const a = readReply(buf, 0);
        if (!a) return;
        at = a[1];
        if (a[0] instanceof ReplyError) {
          clearTimeout(timer);
          s.destroy();
          reject(a[0]);
          return;
        }
      }
      const r = readReply(buf, at);
      if (!r) return;
      clearTimeout(timer);
      s.destroy();
      if (r[0] instanceof ReplyError) reject(r[0]);
      else resolve({ text: buf.toString("utf8", at, r[1]), value: r[0] });
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export interface SpawnedRedis {
  child: ChildProcess;
  port: number;
  /** what the process wrote to stdout and stderr so far (for failures) */
  output(): string;
}

// Servers still running when the test process exits (a crash, a forgotten stop) go with it, and
// so do their dirs: they would otherwise outlive it, holding their ports on a shared machine.
const running = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHook = false;
function onExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once("exit", () => {
    for (const child of running) child.kill("SIGKILL");
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });
}
function adopt(c: ChildProcess): void {
  onExit();
  running.add(c);
  c.once("exit", () => running.delete(c));
}

/**
 * Spawns `redis-server` (or `redis-server --sentinel` with a config file) with `args` and waits
 * until it answers PING on its port (a free one unless `port` is given; retried on "Address
 * already in use"). `args` gets `--port P` unless it is a sentinel config. Bounded: 5 s.
 */
export async function spawnRedis(opts: {
  args: (port: number) => string[];
  port?: number;
  cwd?: string;
  password?: string;
}): Promise<SpawnedRedis> {
  requireRedisServer();
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = opts.port ?? (await freePort());
    const c = spawn("redis-server", opts.args(port), { stdio: ["ignore", "pipe", "pipe"], cwd: opts.cwd });
    adopt(c);
    let out = "";
    c.stdout?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    c.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    const until = Date.now() + 5000;
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) break;
      try {
        const r = await rawCommand(port, ["PING"], { password: opts.password, timeoutMs: 500 });
        if (r.value === "PONG") return { child: c, port, output: () => out };
      } catch (e) {
        // NOAUTH before AUTH is impossible here (AUTH goes first); WRONGPASS means a wrong helper.
        if (e instanceof ReplyError && !/LOADING/.test(e.message)) {
          c.kill("SIGKILL");
          await exited;
          throw new Error(`redis-server on ${port} refused the support's PING: ${e.message}`);
        }
      }
      if (Date.now() > until) {
        c.kill("SIGKILL");
        await exited;
        throw new Error(`redis-server did not answer on ${port} within 5 s: ${out}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await exited;
    // Someone took the port between our check and Redis binding it: try another one.
    if (opts.port !== undefined || !/in use/i.test(out)) throw new Error(`redis-server exited: ${out}`);
  }
  throw new Error("no free port for redis-server after 5 attempts");
}

/** Stops a child by its pid: `signal`, then SIGKILL if it has not exited within 5 s. */
export async function halt(c: ChildProcess | null, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  c.kill("SIGCONT"); // a paused server would not act on the signal
  c.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
  clearTimeout(timer);
  if (c.exitCode === null && c.signalCode === null) {
    c.kill("SIGKILL");
    await exited;
  }
}

export function tempDir(name: string): string {
  onExit();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cnsms-${name}-`));
  dirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** A glob that matches `prefix` literally, then anything. */
export function prefixGlob(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`) + "*";
}

/** Every key under `prefix` whose PTTL is -1, through `call` (one server). */
export async function scanWithoutTtl(call: (...a: string[]) => Promise<Reply>, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = (await call("SCAN", cursor, "MATCH", prefixGlob(prefix), "COUNT", "1000")) as [
      string,
      string[],
    ];
    for (const k of keys) if ((await call("PTTL", k)) === -1) out.push(k);
    cursor = next;
  } while (cursor !== "0");
  return out;
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = tempDir("redis");
  let child: ChildProcess | null = null;
  let port = 0;
  let stopped = false;

  const args = (p: number) => {
    const a = ["--port", String(p), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--daemonize", "no"];
    a.push("--loglevel", "warning", "--appendonly", opts.appendonly ? "yes" : "no");
    // A replica's first sync would wait 5 s for more replicas (diskless sync's default delay).
    a.push("--repl-diskless-sync-delay", "0");
    if (opts.appendonly) a.push("--appendfsync", "always");
    if (opts.password) a.push("--requirepass", opts.password);
    for (const u of opts.users ?? []) a.push("--user", ...u);
    if (opts.debug) a.push("--enable-debug-command", "local");
    a.push(...(opts.args ?? []));
    return a;
  };
  const launch = async (fixedPort?: number) => {
    const s = await spawnRedis({ args, port: fixedPort, password: opts.password });
    child = s.child;
    port = s.port;
  };
  const call = async (...a: string[]) => (await rawCommand(port, a, { password: opts.password })).value;

  try {
    await launch();
  } catch (e) {
    removeDir(dir);
    throw e;
  }
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : "";
  const server: RedisServer = {
    get port() {
      return port;
    },
    get url() {
      return `redis://${auth}127.0.0.1:${port}`;
    },
    dir,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? (child.pid ?? null) : null;
    },
    kill: async () => {
      const c = child;
      child = null;
      await halt(c, "SIGKILL");
    },
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
    restart: async (o = {}) => {
      if (stopped) throw new Error("restart after stop(): the server's dir is gone");
      if (child && o.keepData && !opts.appendonly) await call("SAVE");
      const c = child;
      child = null;
      await halt(c, "SIGTERM");
      if (!o.keepData) {
        fs.rmSync(path.join(dir, "dump.rdb"), { force: true });
        fs.rmSync(path.join(dir, "appendonlydir"), { recursive: true, force: true });
      }
      await launch(port);
    },
    stop: async () => {
      stopped = true;
      const c = child;
      child = null;
      await halt(c, "SIGTERM");
      removeDir(dir);
    },
    command: async (...a: string[]) => (await rawCommand(port, a, { password: opts.password })).text,
    call,
    info: async (section = "") => {
      const text = (await call(...(section ? ["INFO", section] : ["INFO"]))) as string;
      const out = new Map<string, string>();
      for (const line of text.split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0 && !line.startsWith("#")) out.set(line.slice(0, i), line.slice(i + 1));
      }
      return out;
    },
    pauseClients: async (ms, mode = "ALL") => {
      await call("CLIENT", "PAUSE", String(Math.ceil(ms)), mode);
    },
    debugSleep: (ms) =>
      new Promise((started, failed) => {
        const done = rawCommand(port, ["DEBUG", "SLEEP", String(ms / 1000)], {
          password: opts.password,
          timeoutMs: ms + 5000,
          // Redis runs it as soon as it reads it: a short margin, and anything sent after it waits.
          written: () => setTimeout(() => started({ done: done.then(() => undefined) }), 20),
        });
        done.catch(failed);
      }),
    replicaOf: async (master) => {
      if (!master) {
        await call("REPLICAOF", "NO", "ONE");
        return;
      }
      const pw = /^redis:\/\/:([^@]*)@/.exec(master.url)?.[1];
      if (pw) await call("CONFIG", "SET", "masterauth", decodeURIComponent(pw));
      await call("REPLICAOF", "127.0.0.1", String(master.port));
    },
    outOfMemory: async (on) => {
      await call("CONFIG", "SET", "maxmemory-policy", "noeviction");
      await call("CONFIG", "SET", "maxmemory", on ? "1" : "0");
    },
    keysWithoutTtl: (prefix = "") => scanWithoutTtl(call, prefix),
    save: async () => {
      await call("SAVE");
    },
  };
  return server;
}
