"use strict";
// Node-RED looks for a node's editor HTML, its locales/ and icons/ beside the node's .js, so the
// build copies them from the source layout (nodes/, locales/, icons/) into dist/nodes/.
const fs = require("fs");
const path = require("path");
const root = path.join(__dirname, "..");
const out = path.join(root, "dist", "nodes");
fs.mkdirSync(out, { recursive: true });
const src = (d) => path.join(root, d);
if (fs.existsSync(src("nodes"))) {
  for (const f of fs.readdirSync(src("nodes"))) {
    if (f.endsWith(".html")) fs.copyFileSync(path.join(src("nodes"), f), path.join(out, f));
  }
}
for (const d of ["locales", "icons"]) {
  if (fs.existsSync(src(d))) fs.cpSync(src(d), path.join(out, d), { recursive: true });
}
const cli = path.join(root, "dist", "simulator", "cli.js");
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
