import assert from "node:assert/strict";
import fs from "node:fs";
import { rawCommand } from "./redis";
import { startRedisCluster } from "./redis-cluster";

describe("support: a real 3-master Redis Cluster", function () {
  this.timeout(30_000);

  it("starts with every slot served, moves one slot (ASK while moving, MOVED after), finds keys without a TTL, stops everything", async () => {
    const cluster = await startRedisCluster({ password: "Cluster-Pw-1" });
    const dirs = cluster.nodes.map((n) => n.dir);
    const pids = cluster.nodes.map((n) => n.pid!);
    try {
      assert.equal(cluster.nodes.length, 3);
      assert.equal(new Set(cluster.nodes.map((n) => n.id)).size, 3);
      assert.match(cluster.url, /^redis:\/\/:Cluster-Pw-1@127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);
      for (const n of cluster.nodes) assert.match((await n.call("CLUSTER", "INFO")) as string, /cluster_state:ok/);

      const from = await cluster.ownerOf("{acc}:a");
      assert.equal(await cluster.slotOf("{acc}:a"), await cluster.slotOf("{acc}:b"));
      await from.call("SET", "{acc}:a", "1", "PX", "60000");
      await from.call("SET", "{acc}:b", "2");
      assert.deepEqual(await cluster.keysWithoutTtl("{acc}"), ["{acc}:b"]);

      // While the slot moves, the old owner answers ASK for the keys already gone.
      const answers = new Set<string>();
      let moving = true;
      const probe = (async () => {
        while (moving) {
          await from.call("GET", "{acc}:a").then(
            () => answers.add("value"),
            (e: Error) => answers.add(e.message.split(" ")[0]),
          );
        }
      })();
      const moved = await cluster.moveSlot("{acc}:a", { pauseMs: 100 });
      moving = false;
      await probe;
      assert.equal(moved.from, from);
      assert.notEqual(moved.to, from);
      assert.equal(await cluster.ownerOf("{acc}:a"), moved.to);
      assert.ok(answers.has("ASK") || answers.has("value"), [...answers].join(","));
      await assert.rejects(from.call("GET", "{acc}:a"), /MOVED/);
      assert.equal(await moved.to.call("GET", "{acc}:a"), "1", "the keys moved with the slot");
      assert.deepEqual(await cluster.keysWithoutTtl(), ["{acc}:b"]);
    } finally {
      await cluster.stop();
    }
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, "stopped by pid");
    for (const d of dirs) assert.equal(fs.existsSync(d), false);
    await assert.rejects(rawCommand(cluster.nodes[0].port, ["PING"]), /ECONNREFUSED/);
  });
});
