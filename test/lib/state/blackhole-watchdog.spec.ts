// A black hole that swallows a command sent just before the last answer came (issue 21, found by
// `npm run soak:faults`): the link's watchdog gives a connection up after `deadAfterMs` without an
// answer "while a command waits", but it counts any answer that came after the oldest waiting
// command left as a sign of life. With commands pipelined, the last answer is often an earlier
// command's, arriving after the oldest waiting one was written: the watchdog then never fires, the
// link stays ready on a dead connection, and every command after it times out for good (the
// account state stays local, and deadlines kept in Redis are never polled: a long SMS whose parts
// are in Redis never comes out).
import assert from "node:assert/strict";
import { connect, type RedisLink } from "../../../src/lib/state/connect";
import { FaultProxy } from "../../support/fault-proxy";
import { startRedis, type RedisServer } from "../../support/redis";
import { waitFor } from "../../support/stub";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("state/connect: the black-hole watchdog with commands pipelined (a real redis-server)", function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let proxy: FaultProxy;
  let link: RedisLink | null = null;
  before(async () => {
    redis = await startRedis();
  });
  beforeEach(async () => {
    proxy = await FaultProxy.start(redis.port);
  });
  afterEach(async () => {
    proxy.pass();
    await link?.close();
    link = null;
    await proxy.close();
  });
  after(() => redis?.stop());

  it("a command written before the last answer arrived, then swallowed: given up after deadAfterMs, then a new connection", async () => {
    link = connect({ mode: "single", url: proxy.url(), deadAfterMs: 1000, connectTimeoutMs: 1000 });
    const l = link;
    await waitFor(() => l.isReady, 5000, "the link ready");
    // Every chunk takes 300 ms each way: the first PING's answer comes while the second is out.
    proxy.delay(300);
    const first = l.send(["PING"], "x");
    await sleep(150);
    const second = l.send(["PING"], "x");
    second.catch(() => undefined);
    assert.equal(await first, "PONG");
    // The second's answer is on its way back: swallowed, and nothing answers from now on.
    proxy.blackhole();
    const before = proxy.accepted;
    // Given up after deadAfterMs (1 s, checked every 250 ms): the link is not ready any more.
    await waitFor(() => !l.isReady, 5000, "the link to give the silent connection up");
    proxy.pass();
    await waitFor(() => l.isReady && proxy.accepted > before, 10_000, "a new connection");
    assert.equal(await l.send(["PING"], "x"), "PONG");
  });

  it("the same without an answer in between (the case the watchdog handles today)", async () => {
    link = connect({ mode: "single", url: proxy.url(), deadAfterMs: 1000, connectTimeoutMs: 1000 });
    const l = link;
    await waitFor(() => l.isReady, 5000, "the link ready");
    proxy.blackhole();
    const lost = l.send(["PING"], "x");
    lost.catch(() => undefined);
    await waitFor(() => !l.isReady, 5000, "the link to give the silent connection up");
    proxy.pass();
    await waitFor(() => l.isReady, 10_000, "a new connection");
    assert.equal(await l.send(["PING"], "x"), "PONG");
  });
});
