// For the multi-process tests: the flows in each Node-RED post what they emit here
// (POST /<instance>/<kind>, JSON body), and the test reads it back in order.
import http from "node:http";
import type { AddressInfo } from "node:net";

/** Records every message the instances post (POST /<instance>/<kind>, JSON body). */
export async function startCollector<E extends { inst: string; kind: string }>(): Promise<{
  url: string;
  got: E[];
  close(): Promise<void>;
}> {
  const got: E[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const [, inst, kind] = (req.url ?? "").split("/");
      try {
        got.push({ inst, kind, ...(JSON.parse(Buffer.concat(chunks).toString("utf8")) as object) } as E);
        res.end("ok");
      } catch (e) {
        res.statusCode = 400;
        res.end(String(e));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    got,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
