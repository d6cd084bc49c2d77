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
  port: number;
  userDir: string;
  stop(): Promise<void>;
  log(): string;
}

export interface StartOptions {
  nodeRedDir?: string;
  nodeBin?: string;
  /**
   * Reuse this userDir (a restart: same flows, credentials and port). Without it a fresh userDir
   * is made; with `shareInstall` its node_modules is the one packed install of this test run.
   */
  userDir?: string;
  port?: number;
  shareInstall?: boolean;
}

let sharedInstall: string | null = null;

/** One packed install per test run, for tests that start several Node-RED processes. */
function packedOnce(): string {
  if (!sharedInstall || !fs.existsSync(path.join(sharedInstall, "node_modules"))) {
    sharedInstall = fs.mkdtempSync(path.join(os.tmpdir(), "cnsms-pack-"));
    userdir.installPacked(sharedInstall);
  }
  return sharedInstall;
}

/**
 * Packs this package (npm pack, as published), installs the tarball into a fresh userDir as a
 * user would, and starts Node-RED there with `node red.js` (so the pid we stop is Node-RED's).
 */
export async function startPackedNodeRed(opts: StartOptions = {}): Promise<RunningNodeRed> {
  let userDir = opts.userDir;
  let port = opts.port;
  if (!userDir) {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), "cnsms-nr-"));
    if (opts.shareInstall) fs.symlinkSync(path.join(packedOnce(), "node_modules"), path.join(userDir, "node_modules"));
    else userdir.installPacked(userDir);
    port ??= await freePort();
    userdir.writeSettings(userDir, port, "editor-test-secret");
  }
  if (port === undefined) throw new Error("a restart needs the port it ran on");
  const dir = userDir;
  const redJs = path.join(opts.nodeRedDir ?? path.dirname(require.resolve("node-red/package.json")), "red.js");
  const logFile = path.join(dir, "node-red.log");
  const out = fs.openSync(logFile, "a");
  const child: ChildProcess = spawn(opts.nodeBin ?? process.execPath, [redJs, "-s", "settings.js", "-u", dir], {
    cwd: dir,
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
    port,
    userDir: dir,
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
