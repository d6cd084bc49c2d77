import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

// Shared with the demo (scripts/demo.js): plain JS, so it runs before anything is compiled.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const userdir = require("../../../scripts/userdir.js") as {
  ROOT: string;
  installPacked(dir: string): void;
  writeSettings(dir: string, port: number, secret: string): string;
};

export const ROOT = userdir.ROOT;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export interface RunningNodeRed {
  url: string;
  userDir: string;
  stop(): Promise<void>;
  log(): string;
}

/**
 * Packs this package (npm pack, as published), installs the tarball into a fresh userDir as a
 * user would, and starts Node-RED there with `node red.js` (so the pid we stop is Node-RED's).
 */
export async function startPackedNodeRed(
  opts: { nodeRedDir?: string; nodeBin?: string } = {},
): Promise<RunningNodeRed> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "cnsms-nr-"));
  userdir.installPacked(userDir);
  const port = await freePort();
  userdir.writeSettings(userDir, port, "editor-test-secret");
  const redJs = path.join(opts.nodeRedDir ?? path.dirname(require.resolve("node-red/package.json")), "red.js");
  const logFile = path.join(userDir, "node-red.log");
  const out = fs.openSync(logFile, "w");
  const child: ChildProcess = spawn(opts.nodeBin ?? process.execPath, [redJs, "-s", "settings.js", "-u", userDir], {
    cwd: userDir,
    stdio: ["ignore", out, out],
  });
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Node-RED exited: ${fs.readFileSync(logFile, "utf8")}`);
    try {
      if ((await fetch(`${url}/settings`)).ok) break;
    } catch {
      /* starting */
    }
    if (Date.now() > until) throw new Error("Node-RED did not start within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    userDir,
    log: () => fs.readFileSync(logFile, "utf8"),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGINT");
        await Promise.race([new Promise((r) => child.once("exit", r)), new Promise((r) => setTimeout(r, 8000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      fs.closeSync(out);
    },
  };
}
