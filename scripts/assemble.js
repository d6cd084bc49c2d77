"use strict";
// Node-RED looks for a node's editor HTML, its locales/ and icons/ beside the node's .js, so the
// build copies them from the source layout (nodes/, locales/, icons/) into dist/nodes/.
const fs = require("fs");
const path = require("path");
const root = path.join(__dirname, "..");
const out = path.join(root, "dist", "nodes");
fs.mkdirSync(out, { recursive: true });
for (const f of fs.readdirSync(path.join(root, "nodes"))) {
  if (f.endsWith(".html")) fs.copyFileSync(path.join(root, "nodes", f), path.join(out, f));
}
fs.cpSync(path.join(root, "locales"), path.join(out, "locales"), { recursive: true });
fs.cpSync(path.join(root, "icons"), path.join(out, "icons"), { recursive: true });
const cli = path.join(root, "dist", "simulator", "cli.js");
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
