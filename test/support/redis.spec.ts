import assert from "node:assert/strict";
import fs from "node:fs";
import { rawCommand, startRedis, type RedisServer } from "./redis";
import { waitFor } from "./stub";

describe("support: a real redis-server and its own faults", function () {
  this.timeout(20_000);
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis({
      password: "Support-Pw-1",
      users: [["nr", "on", ">nr-pw", "~nr:*", "+@all"]],
      debug: true,
    });
  });
  after(() => redis?.stop());

  it("answers raw and parsed commands; the ACL user from `users` exists", async () => {
    assert.equal(await redis.command("SET", "a", "1"), "+OK\r\n");
    assert.equal(await redis.call("GET", "a"), "1");
    assert.deepEqual(await redis.call("MGET", "a", "missing"), ["1", null]);
    await assert.rejects(redis.call("HGET", "a", "f"), /WRONGTYPE/);
    const whoami = await rawCommand(redis.port, ["ACL", "WHOAMI"], { user: "nr", password: "nr-pw" });
    assert.equal(whoami.value, "nr");
    assert.equal((await redis.info("server")).get("tcp_port"), String(redis.port));
    assert.equal(redis.url, `redis://:Support-Pw-1@127.0.0.1:${redis.port}`);
  });

  it("keysWithoutTtl: every key whose PTTL is -1, under a literal prefix", async () => {
    await redis.call("SET", "t*[x]:no", "1");
    await redis.call("SET", "t*[x]:yes", "1", "PX", "60000");
    await redis.call("SET", "tz:no", "1");
    assert.deepEqual(await redis.keysWithoutTtl("t*[x]:"), ["t*[x]:no"]);
    assert.deepEqual((await redis.keysWithoutTtl()).sort(), ["a", "t*[x]:no", "tz:no"]);
    await redis.call("DEL", "t*[x]:no", "t*[x]:yes", "tz:no");
  });

  it("pauseClients and debugSleep hold every answer for their time, then Redis answers", async () => {
    await redis.pauseClients(300);
    const t0 = Date.now();
    assert.equal(await redis.call("PING"), "PONG");
    assert.ok(Date.now() - t0 >= 250, `paused: ${Date.now() - t0} ms`);
    const sleeping = await redis.debugSleep(300);
    const t1 = Date.now();
    assert.equal(await redis.call("PING"), "PONG");
    assert.ok(Date.now() - t1 >= 200, `asleep: ${Date.now() - t1} ms`);
    await sleeping.done;
  });

  it("replicaOf makes writes answer READONLY, and null makes it a master again", async () => {
    const master = await startRedis();
    try {
      await redis.replicaOf(master);
      await assert.rejects(redis.call("SET", "ro", "1"), /^ReplyError: READONLY/);
      await master.call("SET", "from-master", "1");
      await waitFor(async () => (await redis.call("GET", "from-master")) === "1", 5000, "replicated");
    } finally {
      await redis.replicaOf(null);
      await master.stop();
    }
    assert.equal(await redis.call("SET", "ro", "1"), "OK");
  });

  it("outOfMemory makes writes answer OOM; reads and deletes still work", async () => {
    await redis.outOfMemory(true);
    try {
      await assert.rejects(redis.call("SET", "oom", "1"), /OOM/);
      assert.equal(await redis.call("GET", "ro"), "1");
      assert.equal(await redis.call("DEL", "ro"), 1);
    } finally {
      await redis.outOfMemory(false);
    }
    assert.equal(await redis.call("SET", "oom", "1"), "OK");
  });

  it("restarts on its port without its data, or with it (snapshot, or AOF after a SIGKILL); stop removes its dir", async () => {
    await redis.call("SET", "kept", "1");
    await redis.restart({ keepData: true });
    assert.equal(await redis.call("GET", "kept"), "1", "SAVE, then restart");
    const pid = redis.pid;
    await redis.restart();
    assert.notEqual(redis.pid, pid);
    assert.equal(await redis.call("GET", "kept"), null, "a restart without data");

    const aof = await startRedis({ appendonly: true });
    try {
      await aof.call("SET", "durable", "1");
      await aof.kill();
      assert.equal(aof.pid, null);
      await aof.restart({ keepData: true });
      assert.equal(await aof.call("GET", "durable"), "1", "the AOF survives a SIGKILL");
    } finally {
      await aof.stop();
    }
    assert.equal(fs.existsSync(aof.dir), false, "its dir removed");
    assert.equal(aof.pid, null);
  });
});
