import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const ROOT = path.join(__dirname, "../../..");

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
  const env = { ...process.env, NPM_CONFIG_LOGLEVEL: "error", NPM_CONFIG_FUND: "false", NPM_CONFIG_AUDIT: "false" };
  const tgz = execFileSync("npm", ["pack", "--silent", "--pack-destination", userDir], {
    cwd: ROOT,
    encoding: "utf8",
    env,
  })
    .trim()
    .split("\n")
    .pop()!;
  fs.writeFileSync(path.join(userDir, "package.json"), JSON.stringify({ name: "userdir", private: true }));
  execFileSync("npm", ["install", "--no-save", path.join(userDir, tgz)], { cwd: userDir, stdio: "ignore", env });
  const port = await freePort();
  fs.writeFileSync(
    path.join(userDir, "settings.js"),
    `module.exports = {
  uiHost: "127.0.0.1", uiPort: ${port}, flowFile: "flows.json", credentialSecret: "editor-test-secret",
  telemetry: { enabled: false, updateNotification: false }, diagnostics: { enabled: false, ui: false },
  editorTheme: { tours: false, projects: { enabled: false } },
  externalModules: { palette: { allowInstall: false } },
};\n`,
  );
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
