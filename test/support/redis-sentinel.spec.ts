import assert from "node:assert/strict";
import { rawCommand, type Reply } from "./redis";
import { startRedisSentinel } from "./redis-sentinel";

// Failovers (asked, and a SIGKILLed master) are exercised in test/lib/state/connect.spec.ts.
describe("support: a real Redis Sentinel setup", function () {
  this.timeout(40_000);

  it("starts a master, a replica and three sentinels that agree and know the replica; stops everything", async () => {
    const s = await startRedisSentinel({ name: "set1", password: "Data-Pw-1", sentinelPassword: "Sentinel-Pw-1" });
    const ports = [...s.sentinelPorts, ...s.nodes.map((n) => n.port)];
    const pids = s.nodes.map((n) => n.pid!);
    try {
      assert.equal(s.name, "set1");
      assert.match(s.url, /^redis:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);
      await s.ready();
      const master = await s.master();
      assert.equal(((await master.call("ROLE")) as Reply[])[0], "master");
      const replica = s.nodes.find((n) => n !== master)!;
      assert.equal(((await replica.call("ROLE")) as Reply[])[0], "slave");
      const addr = (await s.sentinel(2, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "set1")) as string[];
      assert.equal(Number(addr[1]), master.port);
      await assert.rejects(rawCommand(s.sentinelPorts[0], ["PING"]), /NOAUTH/, "the sentinels need their password");
    } finally {
      await s.stop();
    }
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, "stopped by pid");
    for (const port of ports) await assert.rejects(rawCommand(port, ["PING"]), /ECONNREFUSED/);
  });
});
