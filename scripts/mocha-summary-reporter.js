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
    });
  }
}
module.exports = SpecWithSummary;
