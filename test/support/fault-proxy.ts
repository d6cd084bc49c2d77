// A TCP proxy on 127.0.0.1 between a client and a real server (Redis), whose behaviour a test
// switches while traffic flows: the network faults production has, made on purpose.
//
//   pass       bytes flow (held bytes of a stall are delivered, in order)
//   delay      every chunk waits `ms` in each direction (order kept)
//   stall      bytes are held (both ways, or one way) until pass(): a frozen peer, a long GC pause
//   drop       connections are closed cleanly (FIN), and new ones too as soon as they come
//   reset      connections are reset (RST), and new ones too as soon as they come
//   blackhole  bytes are read and thrown away, nothing is answered (new connections too): a
//              partition that drops packets. A connection that met the black hole stays in it —
//              what it swallowed cannot be given back without desynchronising the protocol —
//              and new connections after pass() flow again.
//
// It knows its connections and closes every socket it made on close().
import net from "node:net";

export type FaultMode = "pass" | "delay" | "stall" | "drop" | "reset" | "blackhole";
/** up: client → server, down: server → client */
export type Direction = "both" | "up" | "down";

interface Pending {
  buf: Buffer;
  at: number;
}

class Lane {
  readonly queue: Pending[] = [];
  timer: NodeJS.Timeout | null = null;
  constructor(readonly to: net.Socket) {}
}

interface Conn {
  id: number;
  client: net.Socket;
  server: net.Socket | null;
  up: Lane | null;
  down: Lane;
  swallowed: boolean;
  /** bytes seen from the client / the server */
  bytesUp: number;
  bytesDown: number;
}

export interface ConnectionInfo {
  id: number;
  bytesUp: number;
  bytesDown: number;
  held: number;
  swallowed: boolean;
}

export class FaultProxy {
  private server: net.Server;
  private readonly conns = new Map<number, Conn>();
  private readonly sockets = new Set<net.Socket>();
  private seq = 0;
  private current: FaultMode = "pass";
  private delayMs = 0;
  private stalled: Direction | null = null;
  private closed = false;
  /** connections accepted since start (a reconnect loop shows here) */
  accepted = 0;

  private constructor(
    readonly targetPort: number,
    readonly targetHost: string,
  ) {
    this.server = net.createServer((c) => this.accept(c));
    this.server.on("error", () => undefined);
  }

  /** A proxy on a free 127.0.0.1 port forwarding to `targetPort`. */
  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<FaultProxy> {
    const p = new FaultProxy(targetPort, targetHost);
    await new Promise<void>((resolve, reject) => {
      p.server.once("error", reject);
      p.server.listen(0, "127.0.0.1", () => resolve());
    });
    return p;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** redis://[auth@]127.0.0.1:port[/db]: `auth` e.g. "nr:pw" or ":pw", encoded by the caller */
  url(auth = "", db?: number): string {
    return `redis://${auth ? `${auth}@` : ""}127.0.0.1:${this.port}${db === undefined ? "" : `/${db}`}`;
  }

  get mode(): FaultMode {
    return this.current;
  }

  /** open client connections now */
  get connections(): number {
    return this.conns.size;
  }

  /** what each open connection carried (held: bytes waiting in a stall or a delay) */
  connectionInfo(): ConnectionInfo[] {
    return [...this.conns.values()].map((c) => ({
      id: c.id,
      bytesUp: c.bytesUp,
      bytesDown: c.bytesDown,
      held: (c.up?.queue.length ?? 0) + c.down.queue.length,
      swallowed: c.swallowed,
    }));
  }

  pass(): void {
    this.current = "pass";
    this.delayMs = 0;
    this.stalled = null;
    this.pumpAll();
  }

  delay(ms: number): void {
    this.current = "delay";
    this.delayMs = Math.max(0, ms);
    this.stalled = null;
    this.pumpAll();
  }

  /** holds bytes (`dir`: both ways, only requests, only replies) until pass() or delay() */
  stall(dir: Direction = "both"): void {
    this.current = "stall";
    this.stalled = dir;
  }

  /** closes every connection cleanly (FIN both ways); new ones are closed as they come */
  drop(): void {
    this.current = "drop";
    this.stalled = null;
    for (const c of this.conns.values()) this.finish(c, "end");
  }

  /** resets every connection (RST); new ones are reset as they come */
  reset(): void {
    this.current = "reset";
    this.stalled = null;
    for (const c of this.conns.values()) this.finish(c, "reset");
  }

  /** swallows everything from now on: nothing is forwarded or answered */
  blackhole(): void {
    this.current = "blackhole";
    this.stalled = null;
    for (const c of this.conns.values()) this.swallow(c);
  }

  /** closes the listener and every socket (both sides); held bytes are discarded */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.conns.values()) this.finish(c, "destroy");
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
    // A reset or a refused upstream is an event of the test, never a crash of it.
    s.on("error", () => undefined);
  }

  private accept(client: net.Socket): void {
    this.track(client);
    this.accepted++;
    if (this.closed) return void client.destroy();
    const conn: Conn = {
      id: ++this.seq,
      client,
      server: null,
      up: null,
      down: new Lane(client),
      swallowed: false,
      bytesUp: 0,
      bytesDown: 0,
    };
    this.conns.set(conn.id, conn);
    client.on("close", () => this.forget(conn));
    client.on("data", (d: Buffer) => {
      conn.bytesUp += d.length;
      if (conn.swallowed || !conn.up) return;
      this.push(conn, conn.up, d, "up");
    });
    if (this.current === "drop") return this.finish(conn, "end");
    if (this.current === "reset") return this.finish(conn, "reset");
    if (this.current === "blackhole") return this.swallow(conn);
    const server = net.connect(this.targetPort, this.targetHost);
    this.track(server);
    conn.server = server;
    conn.up = new Lane(server);
    server.on("data", (d: Buffer) => {
      conn.bytesDown += d.length;
      if (conn.swallowed) return;
      this.push(conn, conn.down, d, "down");
    });
    // The server went away: the client sees it as the server closed it (or reset it).
    server.on("close", (hadError) => {
      if (conn.swallowed || !this.conns.has(conn.id)) return;
      if (hadError) client.resetAndDestroy();
      else client.end();
    });
    server.on("end", () => {
      if (!conn.swallowed) client.end();
    });
    client.on("end", () => server.end());
  }

  private push(conn: Conn, lane: Lane, buf: Buffer, dir: "up" | "down"): void {
    lane.queue.push({ buf, at: Date.now() + this.delayMs });
    this.pump(conn, lane, dir);
  }

  private held(dir: "up" | "down"): boolean {
    return this.stalled === "both" || this.stalled === dir;
  }

  private pump(conn: Conn, lane: Lane, dir: "up" | "down"): void {
    if (lane.timer) {
      clearTimeout(lane.timer);
      lane.timer = null;
    }
    if (conn.swallowed || this.held(dir)) return;
    const now = Date.now();
    while (lane.queue.length && lane.queue[0].at <= now) {
      const p = lane.queue.shift()!;
      if (!lane.to.destroyed && !lane.to.writableEnded) lane.to.write(p.buf);
    }
    if (lane.queue.length) lane.timer = setTimeout(() => this.pump(conn, lane, dir), lane.queue[0].at - now);
  }

  private pumpAll(): void {
    for (const c of this.conns.values()) {
      // Bytes held by a stall go now; the delay (if any) counts for new bytes only.
      const now = Date.now();
      for (const lane of [c.up, c.down]) for (const p of lane?.queue ?? []) p.at = Math.min(p.at, now + this.delayMs);
      if (c.up) this.pump(c, c.up, "up");
      this.pump(c, c.down, "down");
    }
  }

  private clearLanes(c: Conn): void {
    for (const lane of [c.up, c.down]) {
      if (!lane) continue;
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = null;
      lane.queue.length = 0;
    }
  }

  private swallow(c: Conn): void {
    c.swallowed = true;
    this.clearLanes(c);
    // The server side is of no use any more; the client keeps a connection that never answers.
    c.server?.destroy();
  }

  private finish(c: Conn, how: "end" | "reset" | "destroy"): void {
    this.clearLanes(c);
    this.conns.delete(c.id);
    c.swallowed = true;
    if (how === "reset") {
      c.client.resetAndDestroy();
      c.server?.resetAndDestroy();
    } else if (how === "end") {
      c.client.end();
      c.server?.end();
      // A peer that never answers the FIN is not kept forever.
      const t = setTimeout(() => {
        c.client.destroy();
        c.server?.destroy();
      }, 1000);
      t.unref();
    } else {
      c.client.destroy();
      c.server?.destroy();
    }
  }

  private forget(c: Conn): void {
    this.clearLanes(c);
    this.conns.delete(c.id);
    if (c.server && !c.server.destroyed) c.server.end();
  }
}
