#!/usr/bin/env bash
# The unit/integration suite against Node-RED 5 on Node 22. Node 22 comes from the npm `node`
# package through npx (never a devDependency: it would take over every npm script); Node-RED 5
# is installed into .compat/, outside the main node_modules, which keeps Node-RED 4.
set -euo pipefail
cd "$(dirname "$0")/.."
export NPM_CONFIG_LOGLEVEL=error NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

if [ ! -f .compat/node_modules/node-red/package.json ]; then
  mkdir -p .compat
  npm install --prefix .compat --no-package-lock --no-save node-red@5 >/dev/null
fi
npm run build >/dev/null
npm run build:test >/dev/null

export NODE_RED_PATH="$PWD/.compat/node_modules/node-red/lib/red.js"
npx -y -p node@22 -- node -e 'console.log("Node " + process.version + ", Node-RED " + require(process.env.NODE_RED_PATH.replace(/lib\/red\.js$/, "package.json")).version)'
# What runs inside Node-RED (the test helper): nodes, examples, node-level faults and fuzzing
# (.mocharc.nr5.json). The lib's own tests, the simulator's and the multi-process ones (packed
# Node-RED 4 processes) do not depend on the Node-RED version: they run once, in npm test.
npx -y -p node@22 -- mocha --config .mocharc.nr5.json
