import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Push {
  path: string;
  params: Record<string, string>;
}

/** A real HTTP server that records pushes (GET query params) and answers `OK` (or as told). */
export class PushReceiver {
  readonly pushes: Push[] = [];
  /** answers for the next pushes, e.g. [500, 500] makes the first two fail */
  failNext: number[] = [];
  private server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const status = this.failNext.shift() ?? 200;
    if (status === 200) this.pushes.push({ path: u.pathname, params: Object.fromEntries(u.searchParams) });
    res.writeHead(status, { "content-type": "text/plain" });
    res.end(status === 200 ? "OK" : "fail");
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
