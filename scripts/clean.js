"use strict";
// Cross-platform rm -rf for build outputs (no extra dev dependency needed).
const fs = require("fs");
const dirs = process.argv.slice(2);
for (const d of dirs.length ? dirs : ["dist", "build", "resources"]) fs.rmSync(d, { recursive: true, force: true });
