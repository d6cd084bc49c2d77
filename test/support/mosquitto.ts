// A real MQTT broker for a test: Debian's mosquitto on a free 127.0.0.1 port, from a config file
// (`mosquitto -p` alone also binds the IPv6 loopback), no persistence, stopped by its pid. Never
// skipped: without mosquitto the test fails and says how to install it. `sensor()` is a minimal
// MQTT 3.1.1 publisher over a plain socket, so what feeds the flow is independent of Node-RED.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "./packed";

export interface Mosquitto {
  readonly port: number;
  /** connects a publisher (its own MQTT client id) */
  sensor(clientId?: string): Promise<Sensor>;
  stop(): Promise<void>;
}

export interface Sensor {
  /** one QoS 0 PUBLISH */
  publish(topic: string, payload: string): void;
  /** DISCONNECT, then closes the socket once the broker has read everything before it */
  close(): Promise<void>;
}

/** mosquitto is in /usr/sbin on Debian, which is not on every user's PATH. */
function mosquittoBinary(): string {
  for (const candidate of ["mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]) {
    const r = spawnSync(candidate, ["-h"], { encoding: "utf8" });
    // `mosquitto -h` prints its usage and exits 3.
    if (!r.error && /mosquitto version/.test(r.stdout + r.stderr)) return candidate;
  }
  throw new Error(
    "mosquitto is not installed, and the MQTT example test needs a real broker. Install it with " +
      "`sudo apt-get install mosquitto` (Debian/Ubuntu; .ci/run does this) or `brew install mosquitto` (macOS).",
  );
}

/** MQTT's variable-length "remaining length". */
function remaining(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const str = (s: string) => {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

const packet = (type: number, body: Buffer) => Buffer.concat([Buffer.from([type]), remaining(body.length), body]);

/** CONNECT (MQTT 3.1.1, clean session) and wait for a CONNACK that accepts it. */
function connect(port: number, clientId: string, ms = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no CONNACK from mosquitto on ${port} within ${ms} ms`));
    }, ms);
    let got = Buffer.alloc(0);
    s.on("connect", () => {
      const header = Buffer.concat([str("MQTT"), Buffer.from([4, 0x02, 0, 60])]);
      s.write(packet(0x10, Buffer.concat([header, str(clientId)])));
    });
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4) return;
      clearTimeout(timer);
      s.off("data", onData);
      if (got[0] === 0x20 && got[3] === 0) resolve(s);
      else {
        s.destroy();
        reject(new Error(`mosquitto refused the connection: ${got.toString("hex")}`));
      }
    };
    s.on("data", onData);
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export async function startMosquitto(): Promise<Mosquitto> {
  const bin = mosquittoBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cnsms-mosquitto-"));
  let child: ChildProcess | null = null;
  let port = 0;
  let stderr = "";
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    const conf = path.join(dir, "mosquitto.conf");
    fs.writeFileSync(
      conf,
      [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "log_dest stderr", ""].join("\n"),
    );
    stderr = "";
    const c = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    c.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise((r) => c.once("exit", r));
    const until = Date.now() + 5000;
    for (;;) {
      if (c.exitCode !== null) break;
      const probe = await connect(port, "cnsms-probe", 1000).catch(() => null);
      if (probe) {
        probe.destroy();
        child = c;
        break;
      }
      if (Date.now() > until) {
        c.kill("SIGKILL");
        await exited;
        throw new Error(`mosquitto did not accept MQTT on ${port} within 5 s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!child) {
      await exited;
      // Someone took the port between our check and mosquitto binding it: try another one.
      if (!/in use/i.test(stderr)) throw new Error(`mosquitto exited: ${stderr}`);
    }
  }
  if (!child) throw new Error(`no free port for mosquitto after 5 attempts: ${stderr}`);
  const running: ChildProcess = child;

  return {
    port,
    async sensor(clientId = "cnsms-sensor") {
      const s = await connect(port, clientId);
      return {
        publish: (topic, payload) =>
          void s.write(packet(0x30, Buffer.concat([str(topic), Buffer.from(payload, "utf8")]))),
        close: () =>
          new Promise<void>((resolve) => {
            s.once("close", () => resolve());
            s.end(Buffer.from([0xe0, 0]));
          }),
      };
    },
    async stop() {
      if (running.exitCode === null && running.signalCode === null) {
        const exited = new Promise((r) => running.once("exit", r));
        running.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (running.exitCode === null && running.signalCode === null) {
          running.kill("SIGKILL");
          await exited;
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
