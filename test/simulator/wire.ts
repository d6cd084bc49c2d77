import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";

/** One request exactly as it arrived: nothing decoded that the test may want to see raw. */
export interface WirePush {
  method: string;
  path: string;
  /** the query string as sent, without `?` */
  query: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A real HTTP receiver (like test/support/receiver.ts, which records only decoded GET params)
 * that keeps method, raw query, headers and raw body, and answers `OK` (a HEAD: 200, no body).
 */
export class WireReceiver {
  readonly pushes: WirePush[] = [];
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const target = req.url ?? "/";
      const q = target.indexOf("?");
      this.pushes.push({
        method: req.method ?? "",
        path: q < 0 ? target : target.slice(0, q),
        query: q < 0 ? "" : target.slice(q + 1),
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("OK");
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return this;
  }

  url(path = "/push"): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Query params decoded as UTF-8. */
export function queryOf(p: WirePush): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(p.query));
}

/**
 * Writes each chunk to a raw TCP connection (one write each, the next after the previous is
 * flushed) and resolves with everything the server answered once it closes the connection.
 */
export function rawRequest(port: number, chunks: Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let out = "";
    s.on("data", (d: Buffer) => (out += d.toString("utf8")));
    s.on("error", reject);
    s.on("close", () => resolve(out));
    s.on("connect", () => {
      const next = (i: number) => {
        if (i < chunks.length) s.write(chunks[i], () => setImmediate(() => next(i + 1)));
      };
      next(0);
    });
  });
}
