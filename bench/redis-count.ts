// Counts the commands a Redis client sends, between it and a real redis-server: each one is a
// round trip (pipelined or not). Redis's own counters (INFO stats, commandstats) also count what
// a script runs inside Redis, which costs no round trip, so they cannot tell the two apart.
import net from "node:net";
import type { AddressInfo } from "node:net";

export interface CountingProxy {
  /** redis://127.0.0.1:<proxy port> */
  readonly url: string;
  /** commands by name (upper case) since the last reset */
  readonly byName: Map<string, number>;
  total(): number;
  reset(): void;
  close(): Promise<void>;
}

/** Reads RESP commands (arrays of bulk strings, as every client library sends them) off a stream. */
class CommandReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onCommand: (name: string) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    for (;;) {
      const end = this.command(at);
      if (end < 0) break;
      at = end;
    }
    this.buf = this.buf.subarray(at);
  }

  /** The offset after one whole command starting at `at`, or -1 when it has not all arrived. */
  private command(at: number): number {
    const line = (from: number): [string, number] | null => {
      const eol = this.buf.indexOf("\r\n", from);
      return eol < 0 ? null : [this.buf.toString("latin1", from, eol), eol + 2];
    };
    const head = line(at);
    if (!head) return -1;
    if (head[0][0] !== "*") {
      // An inline command (redis-cli style): one line.
      this.onCommand(head[0].split(" ")[0].toUpperCase());
      return head[1];
    }
    const count = Number(head[0].slice(1));
    let pos = head[1];
    let name = "";
    for (let i = 0; i < count; i++) {
      const len = line(pos);
      if (!len) return -1;
      const n = Number(len[0].slice(1));
      if (this.buf.length < len[1] + n + 2) return -1;
      if (i === 0) name = this.buf.toString("latin1", len[1], len[1] + n).toUpperCase();
      pos = len[1] + n + 2;
    }
    this.onCommand(name);
    return pos;
  }
}

/** A TCP proxy on 127.0.0.1 in front of the Redis on `port`, counting what clients send. */
export async function countingProxy(port: number): Promise<CountingProxy> {
  const byName = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    sockets.add(client).add(upstream);
    const reader = new CommandReader((name) => byName.set(name, (byName.get(name) ?? 0) + 1));
    client.on("data", (d: Buffer) => {
      reader.push(d);
      upstream.write(d);
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    byName,
    total: () => [...byName.values()].reduce((a, b) => a + b, 0),
    reset: () => byName.clear(),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
