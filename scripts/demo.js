#!/usr/bin/env node
"use strict";
// `npm start`: the simulator + Node-RED 4 with this package installed as a user installs it
// (npm pack → npm install into a fresh userDir) and the end-to-end demo flow deployed.
const { spawn } = require("child_process");
const fs = require("fs");
const path = require("path");
const { ROOT: root, installPacked, writeSettings } = require("./userdir");

const PORT = Number(process.env.PORT || 1880);
const SIM_PORT = Number(process.env.SIM_PORT || 18080);
const userDir = path.join(root, ".demo");
const RECEIVER = { receiver: "demo-receiver", receiverPassword: "demo-push-secret" };
const log = (s) => process.stdout.write(s + "\n");

async function waitHttp(url, ms) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function demoFlow() {
  const file = path.join(root, "examples", "06 - End-to-end demo with the simulator · 用模拟器的完整演示.json");
  const flow = JSON.parse(fs.readFileSync(file, "utf8"));
  for (const n of flow) {
    if (n.type === "sms-config") {
      n.url = `http://127.0.0.1:${SIM_PORT}`;
      n.credentials = { account: "demo", password: "demo", ...RECEIVER };
    }
    if (n.type === "http request") n.url = `http://127.0.0.1:${SIM_PORT}/sim/mo`;
  }
  return flow;
}

async function main() {
  const t0 = Date.now();
  log("› packing the package and installing it into .demo/ as a user would (npm install <package>.tgz)…");
  fs.rmSync(userDir, { recursive: true, force: true });
  installPacked(userDir);
  writeSettings(userDir, PORT, "cnsms-demo-secret");

  // Loaded from dist/ directly: the simulator is part of the package being demonstrated.
  const { startSimulator } = require(path.join(root, "dist", "simulator"));
  // The path is the example's own, so the simulator pushes where the demo flow listens.
  const receive = demoFlow().find((n) => n.type === "sms-receive");
  const pushUrl = `http://127.0.0.1:${PORT}${receive.path}`;
  const sim = await startSimulator({
    port: SIM_PORT,
    reportUrl: pushUrl,
    moUrl: pushUrl,
    reportDelayMs: 1000,
    receiver: RECEIVER.receiver,
    receiverPassword: RECEIVER.receiverPassword,
    log: (l) => log(`[simulator] ${l}`),
  });
  log(`› simulator on ${sim.url} (account demo / password demo), pushing to ${pushUrl}`);

  const red = spawn(
    process.execPath,
    [require.resolve("node-red/red.js"), "-s", path.join(userDir, "settings.js"), "-u", userDir],
    {
      cwd: userDir,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const redLog = fs.createWriteStream(path.join(userDir, "node-red.log"));
  red.stdout.pipe(redLog);
  red.stderr.pipe(redLog);
  let stopping = false;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    log("\n› stopping Node-RED and the simulator…");
    red.kill("SIGINT");
    await Promise.race([new Promise((r) => red.once("exit", r)), new Promise((r) => setTimeout(r, 5000))]);
    if (red.exitCode === null) red.kill("SIGKILL");
    await sim.close();
    process.exit(code);
  };
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));
  red.on("exit", (code) => {
    if (!stopping) {
      log(`Node-RED exited (${code}); see .demo/node-red.log`);
      stop(1);
    }
  });

  const base = `http://127.0.0.1:${PORT}`;
  await waitHttp(`${base}/settings`, 45_000);
  const res = await fetch(`${base}/flows`, {
    method: "POST",
    headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full", "Node-RED-API-Version": "v1" },
    body: JSON.stringify(demoFlow()),
  });
  if (!res.ok) throw new Error(`deploying the demo flow failed: HTTP ${res.status} ${await res.text()}`);

  // One SMS right away, so the round trip is visible without a click.
  const flow = demoFlow();
  const inject = flow.find((n) => n.type === "inject" && n.name.startsWith("send a test SMS"));
  await new Promise((r) => setTimeout(r, 500));
  await fetch(`${base}/inject/${inject.id}`, { method: "POST" });
  const until = Date.now() + 15_000;
  while (Date.now() < until && sim.stats.pushOk < 2) await new Promise((r) => setTimeout(r, 200));
  const sent = sim.requests.find((r) => r.path.endsWith("/msg/HttpBatchSendSM"));

  log("");
  log(`✔ Node-RED ${base}/ is ready with the demo flow deployed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (sent) log(`✔ demo SMS reached the simulator: code ${sent.code}, msgid ${sent.msgid}`);
  log(`✔ delivery reports pushed back to Node-RED and answered OK: ${sim.stats.pushOk}`);
  log("");
  log(`Open ${base}/ , then the debug sidebar (🐞 on the right), and click the buttons on the inject nodes:`);
  log("  • send a test SMS            → 'sent (msgid)', a second later one 'delivery report' per number");
  log(
    "  • simulate inbound long SMS  → the simulator pushes shuffled, duplicated parts; 'inbound SMS' shows it joined once",
  );
  log("  • check balance              → the balance, lower after each send");
  log("");
  log("Other examples (Import ▸ Examples; choose 'Import copy' to keep this account) listen on paths of their own.");
  log("Push an inbound SMS to one of them, e.g. a reply to an alert on /sms/ack:");
  log(
    `  curl -X POST ${sim.url}/sim/mo -H 'Content-Type: application/json' -d '{"mobile":"13800138000","text":"ACK","moUrl":"${base}/sms/ack"}'`,
  );
  log(`Simulator admin: ${sim.url}/sim/requests, ${sim.url}/sim/pushes.  Ctrl-C stops everything.`);
}

main().catch((e) => {
  process.stderr.write(`demo failed: ${e.message}\n`);
  process.exit(1);
});
