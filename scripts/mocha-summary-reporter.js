"use strict";
// CI reads only a closing "N passed, N failed" line, which mocha's own reporters do not print.
const Mocha = require("mocha");
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithSummary extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      let line = `${s.passes || 0} passed, ${s.failures || 0} failed`;
      if (s.pending) line += `, ${s.pending} skipped`;
      process.stdout.write(line + "\n");
      // A test that leaves a socket, a timer or a child process open would keep mocha (run
      // without --exit) alive for ever, and CI would stop at its time limit with nothing to read.
      // Name what is left, then end with the run's own result.
      const code = s.failures ? 1 : 0;
      setTimeout(() => {
        const left = process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap");
        process.stderr.write(`mocha: still running 60 s after the last test (${left.join(", ")}); exiting\n`);
        process.exit(code);
      }, 60_000).unref();
    });
  }
}
module.exports = SpecWithSummary;
