import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import path from "node:path";

// Committed fixtures (test/fixtures/tls/generate.sh says how and why): from build/test/support.
const FIXTURES = path.resolve(__dirname, "../../../test/fixtures/tls");

export type CertName = "good" | "self-signed" | "expired" | "wrong-host";

/** The test CA that signed `good`, `expired` and `wrong-host` (trust it to reach the check that matters). */
export const testCa = (): Buffer => fs.readFileSync(path.join(FIXTURES, "ca.pem"));

/**
 * A real HTTPS server on 127.0.0.1 with one of the fixture certificates, answering every request
 * with a successful send reply. Counts TCP connections and the requests that got through TLS.
 */
export class TlsPlatform {
  connections = 0;
  requests = 0;
  private readonly server: https.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(cert: CertName) {
    this.server = https.createServer(
      {
        key: fs.readFileSync(path.join(FIXTURES, "leaf.key")),
        cert: fs.readFileSync(path.join(FIXTURES, `${cert}.pem`)),
      },
      (req, res) => {
        this.requests++;
        req.resume();
        req.on("end", () => res.end("20110725160412,0\n4242"));
      },
    );
    this.server.on("connection", (s: net.Socket) => {
      this.connections++;
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    // A refused handshake is the point of these servers, not a failure of the test.
    this.server.on("tlsClientError", () => undefined);
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `https://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/**
 * A TCP server that resets every connection as soon as the client's first bytes (a TLS
 * ClientHello) arrive: the connection never gets far enough for an HTTP request to be written.
 */
export class ResetBeforeRequest {
  connections = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor() {
    this.server = net.createServer((s) => {
      this.connections++;
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
      s.on("error", () => undefined);
      s.once("data", () => s.resetAndDestroy());
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `https://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
