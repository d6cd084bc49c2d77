// Root hook (loaded through .mocharc "require"): every test starts with no account state. The
// registry keeps states across redeploys on purpose, so without this a test would see the
// duplicate windows, pending parts and limits of the test before it (same account, same path).
import { closeAllStates } from "../../src/lib/state/registry";

export const mochaHooks = {
  async afterEach(): Promise<void> {
    await closeAllStates();
  },
};
