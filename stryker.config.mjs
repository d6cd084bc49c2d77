// StrykerJS over the pure core (npm run mutate; outside CI: it is slow). The TypeScript sources are
// mutated in a sandbox, compiled there by tsc (buildCommand: Stryker marks them // @ts-nocheck, so
// no type checker), and the compiled lib unit tests of these folders run with mocha, per test
// (.mocharc.json gives the requires; its spec is replaced here). Reports and the sandbox go to
// artifacts/, which git and Prettier ignore.
//
// Two things on this toolchain need help, both handled here:
// - StrykerJS 10 needs Node 22 (the script takes it from the npm registry with npx -p node@22).
// - Its mocha runner requires mocha's CLI helpers without an extension (lib/cli/run-helpers);
//   mocha 12 ships them as .cjs. The script preloads this file (NODE_OPTIONS=--import) in Stryker
//   and in its test runner processes, and the hook below points those requires at the .cjs files.
// - Stryker rewrites tsconfig.json through the TypeScript API, which TypeScript 7 (native) has
//   not; no tsconfig here needs rewriting (no references, no extends outside the project), so
//   tsconfigFile names none.
import Module from "node:module";

const hooked = Symbol.for("cnsms.stryker.mocha12");
if (!globalThis[hooked]) {
  globalThis[hooked] = true;
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    const cli = /[\\/]mocha[\\/]lib[\\/]cli[\\/](run-helpers|options|collect-files)$/.test(request);
    return resolve.call(this, cli ? `${request}.cjs` : request, ...rest);
  };
}

export default {
  packageManager: "npm",
  testRunner: "mocha",
  coverageAnalysis: "perTest",
  mutate: ["src/lib/platform/**/*.ts", "src/lib/push/**/*.ts", "src/lib/alerts/**/*.ts"],
  buildCommand: "npx tsc -p tsconfig.test.json",
  tsconfigFile: "tsconfig.none.json",
  mochaOptions: {
    // Only the state reset of .mocharc.json's root hooks. The runner loads these before any mutant
    // is active, and the secrets audit imports every node (test/support/nr.ts), so every module of
    // the core was evaluated once with no mutant: a mutant in module-level code (a code table, a
    // Set of error codes, a path) could never be switched on and came out "survived". The state
    // reset imports only src/lib/state, which is not mutated here.
    require: ["build/test/support/state-reset.js"],
    // MUTATE_SPEC (comma-separated globs) narrows the tests for a run on part of the code.
    spec: process.env.MUTATE_SPEC?.split(",") ?? [
      "build/test/lib/platform/**/*.spec.js",
      "build/test/lib/push/**/*.spec.js",
      "build/test/lib/alerts/**/*.spec.js",
    ],
  },
  checkers: [],
  concurrency: 1,
  timeoutMS: 10_000,
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "artifacts/mutation/index.html" },
  jsonReporter: { fileName: "artifacts/mutation/mutation.json" },
  tempDirName: "artifacts/stryker-tmp",
  ignorePatterns: ["artifacts", "dist", "build", "resources", ".compat", ".bench", ".demo", "*.tgz"],
};
