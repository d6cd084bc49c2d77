// A real, embedded Node-RED (no test harness, no spies) with this package installed in its
// userDir the way npm links a local package, for benchmarks and the soak.
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import express from "express";

const ROOT = path.join(__dirname, "../..");

export interface Runtime {
  url: string;
  deploy(flow: unknown[]): Promise<void>;
  node(id: string): { receive(msg: unknown): void };
  /** Calls `fn` for every message delivered to node `id` (a runtime hook, not a wrapper). */
  onReceive(id: string, fn: (msg: Record<string, unknown>) => void): () => void;
  stop(): Promise<void>;
}

export async function startRuntime(opts: { nodeRedPath?: string } = {}): Promise<Runtime> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "cnsms-rt-"));
  fs.mkdirSync(path.join(userDir, "node_modules", "@cnsms"), { recursive: true });
  fs.symlinkSync(ROOT, path.join(userDir, "node_modules", "@cnsms", "node-red-sms"), "dir");
  fs.writeFileSync(
    path.join(userDir, "package.json"),
    JSON.stringify({ name: "rt", private: true, dependencies: { "@cnsms/node-red-sms": "*" } }),
  );
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const RED = require(opts.nodeRedPath ?? "node-red");
  const app = express();
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  RED.init(server, {
    userDir,
    flowFile: "flows.json",
    credentialSecret: "bench-secret",
    httpAdminRoot: "/admin",
    httpNodeRoot: "/",
    uiPort: port,
    disableEditor: true,
    logging: { console: { level: process.env.BENCH_LOG || "error", metrics: false, audit: false } },
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false },
    editorTheme: { projects: { enabled: false } },
  });
  app.use("/admin", RED.httpAdmin);
  app.use("/", RED.httpNode);
  await RED.start();
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    deploy: async (flow) => {
      const res = await fetch(`${url}/admin/flows`, {
        method: "POST",
        headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full" },
        body: JSON.stringify(flow),
      });
      if (!res.ok) throw new Error(`deploy failed: HTTP ${res.status} ${await res.text()}`);
      // The admin API answers once the flows are saved; they start right after.
      const ids = (flow as Array<{ id: string; type: string; z?: string }>).filter((n) => n.z).map((n) => n.id);
      const until = Date.now() + 15_000;
      while (!ids.every((id) => RED.nodes.getNode(id))) {
        if (Date.now() > until) throw new Error(`flow did not start: ${ids.filter((id) => !RED.nodes.getNode(id))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    node: (id) => {
      const n = RED.nodes.getNode(id);
      if (!n) throw new Error(`no node ${id}`);
      return n;
    },
    onReceive: (id, fn) => {
      const name = `onReceive.bench${Math.random().toString(36).slice(2)}`;
      RED.hooks.add(name, (ev: { destination: { id: string }; msg: Record<string, unknown> }) => {
        if (ev.destination.id === id) fn(ev.msg);
      });
      return () => RED.hooks.remove(name);
    },
    stop: async () => {
      await RED.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
}
