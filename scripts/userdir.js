"use strict";
// A Node-RED user directory with this package installed as a user installs it (npm pack, then
// npm install of the tarball), used by the demo (npm start) and the editor test.
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const ROOT = path.join(__dirname, "..");
const quietEnv = () => ({
  ...process.env,
  NPM_CONFIG_LOGLEVEL: "error",
  NPM_CONFIG_FUND: "false",
  NPM_CONFIG_AUDIT: "false",
});

/** Packs the package into `userDir` and installs the tarball there. */
function installPacked(userDir) {
  fs.mkdirSync(userDir, { recursive: true });
  const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", userDir], {
    cwd: ROOT,
    encoding: "utf8",
    env: quietEnv(),
  });
  const tgz = out.trim().split("\n").pop();
  fs.writeFileSync(path.join(userDir, "package.json"), JSON.stringify({ name: "node-red-userdir", private: true }));
  execFileSync("npm", ["install", "--no-save", path.join(userDir, tgz)], {
    cwd: userDir,
    stdio: "ignore",
    env: quietEnv(),
  });
}

/** settings.js for a local, quiet Node-RED on 127.0.0.1 (no telemetry prompt, no tours). */
function writeSettings(userDir, port, credentialSecret) {
  const file = path.join(userDir, "settings.js");
  fs.writeFileSync(
    file,
    `module.exports = {
  uiHost: "127.0.0.1",
  uiPort: ${Number(port)},
  flowFile: "flows.json",
  credentialSecret: ${JSON.stringify(credentialSecret)},
  telemetry: { enabled: false, updateNotification: false },
  diagnostics: { enabled: false, ui: false },
  editorTheme: { tours: false, projects: { enabled: false } },
  externalModules: { palette: { allowInstall: false } },
  logging: { console: { level: "info", metrics: false, audit: false } },
};
`,
  );
  return file;
}

module.exports = { ROOT, installPacked, writeSettings };
