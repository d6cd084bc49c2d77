import assert from "node:assert/strict";
import net from "node:net";
import { FaultProxy } from "./fault-proxy";
import { waitFor } from "./stub";

/** An upstream that records what it got and echoes it back (upper-cased, so the way is visible). */
async function echoServer() {
  const got: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    s.on("data", (d) => {
      got.push(d.toString());
      s.write(d.toString().toUpperCase());
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    got,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

interface Client {
  socket: net.Socket;
  data: string;
  ended: boolean;
  closed: boolean;
  error: NodeJS.ErrnoException | null;
}

/** Connects; a connection refused or reset at once resolves too (with its error) unless `strict`. */
async function dial(port: number, strict = true): Promise<Client> {
  const socket = net.connect(port, "127.0.0.1");
  const c: Client = { socket, data: "", ended: false, closed: false, error: null };
  socket.on("data", (d) => (c.data += d.toString()));
  socket.on("end", () => (c.ended = true));
  socket.on("close", () => (c.closed = true));
  socket.on("error", (e) => (c.error = e));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", (e) => (strict ? reject(e) : resolve()));
  });
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("support: the fault proxy", function () {
  this.timeout(10_000);
  let upstream: Awaited<ReturnType<typeof echoServer>>;
  let proxy: FaultProxy;
  const clients: Client[] = [];
  const client = async (strict = true) => {
    const c = await dial(proxy.port, strict);
    clients.push(c);
    return c;
  };
  beforeEach(async () => {
    upstream = await echoServer();
    proxy = await FaultProxy.start(upstream.port);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await proxy.close();
    await upstream.close();
  });

  it("passes bytes both ways and knows its connections", async () => {
    const c = await client();
    c.socket.write("ping");
    await waitFor(() => c.data === "PING", 2000, "the echo");
    assert.equal(proxy.connections, 1);
    assert.deepEqual(proxy.connectionInfo()[0], { id: 1, bytesUp: 4, bytesDown: 4, held: 0, swallowed: false });
    c.socket.end();
    await waitFor(() => proxy.connections === 0, 2000, "the connection forgotten");
  });

  it("delay: each way waits, order kept", async () => {
    const c = await client();
    proxy.delay(100);
    const t0 = Date.now();
    c.socket.write("a");
    await sleep(10);
    c.socket.write("b");
    await waitFor(() => c.data === "AB", 2000, "both echoes");
    assert.ok(Date.now() - t0 >= 190, `two delays of 100 ms: ${Date.now() - t0} ms`);
    proxy.pass();
    c.socket.write("c");
    await waitFor(() => c.data === "ABC", 2000, "the echo");
    assert.equal(proxy.connectionInfo()[0].held, 0);
  });

  it("stall holds bytes until pass (both ways, or only the answers)", async () => {
    const c = await client();
    proxy.stall();
    c.socket.write("one");
    await sleep(100);
    assert.deepEqual(upstream.got, [], "held before the server");
    assert.equal(proxy.connectionInfo()[0].held, 1);
    proxy.pass();
    await waitFor(() => c.data === "ONE", 2000, "delivered after the stall");
    proxy.stall("down");
    c.socket.write("two");
    await waitFor(() => upstream.got.join("") === "onetwo", 2000, "the request reached the server");
    await sleep(50);
    assert.equal(c.data, "ONE", "the answer is held");
    proxy.pass();
    await waitFor(() => c.data === "ONETWO", 2000, "the held answer");
  });

  it("drop closes cleanly (FIN), reset resets (RST); new connections meet the same until pass", async () => {
    const a = await client();
    proxy.drop();
    await waitFor(() => a.closed, 2000, "closed");
    assert.equal(a.ended, true, "a clean end");
    assert.equal(a.error, null);
    const a2 = await client(false);
    await waitFor(() => a2.closed, 2000, "a new connection closed too");
    proxy.pass();
    const b = await client();
    b.socket.write("x");
    await waitFor(() => b.data === "X", 2000, "flows again");
    proxy.reset();
    await waitFor(() => b.closed, 2000, "reset");
    assert.equal(b.error?.code, "ECONNRESET");
    const b2 = await client(false); // the RST may come before the connect completes
    await waitFor(() => b2.closed, 2000, "a new connection reset too");
    assert.equal(b2.error?.code, "ECONNRESET");
    await waitFor(() => upstream.sockets.size === 0, 2000, "the upstream sides closed too");
  });

  it("black hole: reads and answers nothing; a swallowed connection stays swallowed, new ones flow after pass", async () => {
    const old = await client();
    proxy.blackhole();
    old.socket.write("lost");
    const fresh = await client();
    fresh.socket.write("lost too");
    await sleep(100);
    assert.equal(old.data + fresh.data, "");
    assert.deepEqual(upstream.got, []);
    assert.equal(old.closed || fresh.closed, false, "nothing is closed");
    assert.ok(proxy.connectionInfo().every((i) => i.swallowed));
    proxy.pass();
    old.socket.write("still lost");
    const after = await client();
    after.socket.write("ok");
    await waitFor(() => after.data === "OK", 2000, "a new connection flows");
    assert.equal(old.data, "");
  });

  it("close() closes every socket it made and the listener", async () => {
    const a = await client();
    const b = await client();
    const port = proxy.port;
    proxy.stall();
    a.socket.write("held");
    await proxy.close();
    await waitFor(() => a.closed && b.closed, 2000, "clients closed");
    await waitFor(() => upstream.sockets.size === 0, 2000, "upstream sides closed");
    assert.equal(proxy.connections, 0);
    await assert.rejects(dial(port), /ECONNREFUSED/);
  });
});
