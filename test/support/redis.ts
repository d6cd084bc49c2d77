// A real redis-server for a test: started on a free 127.0.0.1 port, no persistence, stopped by
// its pid. Never skipped: without redis-server the test fails and says how to install it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import net from "node:net";
import { freePort } from "./packed";

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:port (with the password when one was set) */
  readonly url: string;
  /** an outage: SIGKILL, as a crash or a pulled cable looks to the client */
  kill(): Promise<void>;
  /** starts again on the same port (after kill or stop) */
  restart(): Promise<void>;
  /** a Redis that stops answering without closing anything (SIGSTOP), and its return (SIGCONT) */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
  /** one command through a raw socket, for looking at keys without our client */
  command(...args: string[]): Promise<string>;
}

let checked = false;
function requireRedisServer(): void {
  if (checked) return;
  const r = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(
      "redis-server is not installed, and the state tests need a real one. Install it with " +
        "`sudo apt-get install redis-server` (Debian/Ubuntu; .ci/run does this) or `brew install redis` (macOS).",
    );
  }
  checked = true;
}

/** Sends one RESP command and returns the raw reply text (enough for PING, PTTL, KEYS, ...). */
function raw(port: number, password: string | undefined, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    const enc = (a: string[]) => `*${a.length}\r\n` + a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join("");
    let out = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("redis raw command timed out"));
    }, 2000);
    s.on("connect", () => s.write((password ? enc(["AUTH", password]) : "") + enc(args)));
    s.on("data", (d) => {
      out += d.toString("utf8");
      const replies = password ? 2 : 1;
      if (complete(out, replies)) {
        clearTimeout(timer);
        s.destroy();
        resolve(password ? out.slice(out.indexOf("\r\n") + 2) : out);
      }
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Whether `text` holds `n` whole RESP replies (simple, error, integer, bulk and flat arrays). */
function complete(text: string, n: number): boolean {
  let i = 0;
  const line = () => {
    const end = text.indexOf("\r\n", i);
    if (end < 0) return null;
    const l = text.slice(i, end);
    i = end + 2;
    return l;
  };
  const one = (): boolean => {
    const l = line();
    if (l === null) return false;
    if (l[0] === "$") {
      const len = Number(l.slice(1));
      if (len < 0) return true;
      if (Buffer.byteLength(text.slice(i)) < len + 2) return false;
      i += len + 2;
      return true;
    }
    if (l[0] === "*") {
      const count = Number(l.slice(1));
      for (let k = 0; k < count; k++) if (!one()) return false;
    }
    return true;
  };
  for (let k = 0; k < n; k++) if (!one()) return false;
  return true;
}

export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  requireRedisServer();
  let child: ChildProcess | null = null;
  let port = 0;

  const launch = async (fixedPort?: number): Promise<void> => {
    for (let attempt = 0; attempt < 5; attempt++) {
      port = fixedPort ?? (await freePort());
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
      args.push("--daemonize", "no", "--loglevel", "warning");
      if (opts.password) args.push("--requirepass", opts.password);
      const c = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      c.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number>((r) => c.once("exit", (code) => r(code ?? -1)));
      const until = Date.now() + 5000;
      for (;;) {
        if (c.exitCode !== null) break;
        try {
          const pong = await raw(port, opts.password, ["PING"]);
          if (/PONG/.test(pong)) {
            child = c;
            return;
          }
        } catch {
          /* not listening yet */
        }
        if (Date.now() > until) {
          c.kill("SIGKILL");
          await exited;
          throw new Error(`redis-server did not answer on ${port} within 5 s: ${stderr}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      await exited;
      // Someone took the port between our check and Redis binding it: try another one.
      if (fixedPort !== undefined || !/in use/i.test(stderr)) throw new Error(`redis-server exited: ${stderr}`);
    }
    throw new Error("no free port for redis-server after 5 attempts");
  };

  const halt = async (signal: NodeJS.Signals) => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGCONT"); // a paused server would not act on the signal
    c.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGKILL");
      await exited;
    }
  };

  await launch();
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : "";
  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://${auth}127.0.0.1:${port}`;
    },
    kill: () => halt("SIGKILL"),
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
    restart: () => launch(port),
    stop: () => halt("SIGTERM"),
    command: (...args: string[]) => raw(port, opts.password, args),
  };
}
