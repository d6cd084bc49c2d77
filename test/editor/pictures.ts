// `npm run pictures`: the README's pictures of the example flows, taken from the real editor.
// Starts the simulator, a mosquitto (so example 11's MQTT node shows "connected") and a packed
// Node-RED 4 (the package installed from its tarball, as a user installs it), deploys the examples
// from 07 on (the Recipes; or the files named on the command line) as a user's import leaves
// them, with only the account pointed at the simulator and the broker at the mosquitto, opens the
// editor in Debian's chromium and saves each flow's workspace to docs/images/<example>.png.
import { execSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Page } from "playwright-core";
import { startSimulator } from "../../src/simulator/simulator";
import { startMosquitto } from "../support/mosquitto";
import { ROOT, startPackedNodeRed } from "../support/packed";

const EXAMPLES = path.join(ROOT, "examples");
const IMAGES = path.join(ROOT, "docs", "images");
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

type FlowNode = Record<string, unknown> & { id: string; type: string };

/** "10 - Grafana alert webhook to SMS.json" → "10-grafana-alert-webhook-to-sms.png" */
export function pictureName(file: string): string {
  const slug = path
    .basename(file, ".json")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
  return `${slug}.png`;
}

/** The README's recipes: every example from 07 on. */
export function recipeFiles(): string[] {
  return fs
    .readdirSync(EXAMPLES)
    .filter((f) => f.endsWith(".json") && Number(f.slice(0, 2)) >= 7)
    .sort();
}

const log = (s: string) => process.stdout.write(s + "\n");

async function until(what: string, cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`waited ${ms / 1000} s for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Shows the tab, waits until its nodes are drawn (and the statuses it expects), saves its flow's area. */
async function picture(page: Page, tab: FlowNode, nodes: FlowNode[], file: string): Promise<void> {
  await page.evaluate((id) => (window as unknown as { RED: any }).RED.workspaces.show(id), tab.id);
  const drawn = () =>
    page.evaluate(
      (ids) => ids.every((id) => document.querySelector(`#red-ui-workspace-chart g[id="${id}"]`)),
      nodes.map((n) => n.id),
    );
  await until(`the nodes of "${String(tab.label)}"`, drawn);
  // A node that connects to something shows it under the node: wait for those to say so.
  for (const n of nodes.filter((n) => n.type === "mqtt in")) {
    const status = `#red-ui-workspace-chart g[id="${n.id}"] .red-ui-flow-node-status-label`;
    await until(`${n.type} to connect`, async () =>
      /connected/i.test(
        (await page
          .locator(status)
          .textContent()
          .catch(() => "")) ?? "",
      ),
    );
  }
  // What a user would see after importing: no node marked invalid (the red triangle).
  const invalid = await page.evaluate(
    (ids) =>
      ids
        .map((id) => (window as unknown as { RED: any }).RED.nodes.node(id))
        .filter((n) => n && n.valid === false)
        .map((n) => `${n.type} ${n.name || n.id}: ${JSON.stringify(n.validationErrors)}`),
    nodes.map((n) => n.id),
  );
  if (invalid.length) throw new Error(`"${String(tab.label)}" shows invalid nodes:\n${invalid.join("\n")}`);
  await page.evaluate(() => {
    const RED = (window as unknown as { RED: any }).RED;
    RED.view.select({ nodes: [] });
    RED.view.redraw(true);
  });
  const box = await page.evaluate(
    (ids) => {
      let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
      for (const id of ids) {
        const el = document.querySelector(`#red-ui-workspace-chart g[id="${id}"]`);
        if (!el) continue;
        const r = el.getBoundingClientRect();
        [x0, y0, x1, y1] = [Math.min(x0, r.left), Math.min(y0, r.top), Math.max(x1, r.right), Math.max(y1, r.bottom)];
      }
      const chart = document.querySelector("#red-ui-workspace-chart")!.getBoundingClientRect();
      return { x0, y0, x1, y1, chart: { left: chart.left, top: chart.top, right: chart.right, bottom: chart.bottom } };
    },
    nodes.map((n) => n.id),
  );
  // A node left of or above the workspace's origin is cut off in the editor too: the flow must move.
  if (box.x0 < box.chart.left || box.y0 < box.chart.top)
    throw new Error(`"${String(tab.label)}" has a node left of or above the workspace: move it right or down`);
  const pad = 20;
  const clip = {
    x: Math.max(box.chart.left, box.x0 - pad),
    y: Math.max(box.chart.top, box.y0 - pad),
    width: 0,
    height: 0,
  };
  clip.width = Math.min(box.chart.right, box.x1 + pad) - clip.x;
  clip.height = Math.min(box.chart.bottom, box.y1 + pad) - clip.y;
  if (box.x1 + pad > box.chart.right || box.y1 + pad > box.chart.bottom)
    throw new Error(`"${String(tab.label)}" does not fit the workspace: make the viewport larger`);
  fs.mkdirSync(IMAGES, { recursive: true });
  await page.screenshot({ path: path.join(IMAGES, file), clip });
  log(`✔ docs/images/${file}`);
}

async function main(): Promise<void> {
  const files = process.argv.slice(2).length ? process.argv.slice(2).map((f) => path.basename(f)) : recipeFiles();
  const sim = await startSimulator({});
  const broker = await startMosquitto();
  log("› packing the package and installing it into a fresh Node-RED userDir…");
  const nr = await startPackedNodeRed();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chromium-profile-"));
  let ctx: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | null = null;
  try {
    const byId = new Map<string, FlowNode>();
    const tabs: Array<{ file: string; tab: FlowNode; nodes: FlowNode[] }> = [];
    for (const f of files) {
      const flow = JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), "utf8")) as FlowNode[];
      const tab = flow.find((n) => n.type === "tab")!;
      tabs.push({ file: f, tab, nodes: flow.filter((n) => n.z === tab.id) });
      for (const n of flow) if (!byId.has(n.id)) byId.set(n.id, { ...n });
    }
    for (const n of byId.values()) {
      if (n.type === "sms-config")
        Object.assign(n, { url: sim.url, credentials: { account: "demo", password: "demo" } });
      if (n.type === "mqtt-broker") Object.assign(n, { broker: "127.0.0.1", port: String(broker.port) });
    }
    const res = await fetch(`${nr.url}/flows`, {
      method: "POST",
      headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify([...byId.values()]),
    });
    if (!res.ok) throw new Error(`deploying the examples: HTTP ${res.status} ${await res.text()}`);

    const executablePath = process.env.CHROMIUM_PATH || execSync("which chromium", { encoding: "utf8" }).trim();
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath,
      args: FLAGS,
      locale: "en-US",
      viewport: { width: 1800, height: 1000 },
      deviceScaleFactor: 2,
    });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
    await page.goto(nr.url + "/", { waitUntil: "domcontentloaded" });
    await page.waitForSelector('#red-ui-palette .red-ui-palette-node[data-palette-type="sms-send"]', {
      timeout: 60_000,
    });
    // The workspace alone: no palette, no sidebar.
    await page.evaluate(() => {
      const RED = (window as unknown as { RED: any }).RED;
      RED.menu.setSelected("menu-item-palette", false);
      RED.menu.setSelected("menu-item-sidebar", false);
    });
    for (const t of tabs) await picture(page, t.tab, t.nodes, pictureName(t.file));
  } finally {
    await ctx?.close();
    fs.rmSync(profile, { recursive: true, force: true });
    await nr.stop();
    fs.rmSync(nr.userDir, { recursive: true, force: true });
    await broker.stop();
    await sim.close();
  }
}

if (require.main === module)
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  });
