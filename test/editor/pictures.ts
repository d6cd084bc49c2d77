// `npm run pictures`: the README's pictures of the example flows, taken from the real editor.
// Starts the simulator, a mosquitto (so example 11's MQTT node shows "connected") and a packed
// Node-RED 4 (the package installed from its tarball, as a user installs it), deploys the examples
// from 07 on (the Recipes; or the files named on the command line) as a user's import leaves
// them, with only the account pointed at the simulator and the broker at the mosquitto, opens the
// editor in Debian's chromium and saves each flow's workspace to docs/images/<example>.png.
// An example with a Dashboard 2.0 page (13) also gets a picture of that page, <example>-page.png:
// Node-RED's userDir has the dashboard (the devDependency) installed beside the package, the
// simulator fails and withholds the numbers the example's comment says, its 'test alert' is
// clicked twice and its tracked send's timeout is 0.05 min, so the page shows every count.
import { execSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Page } from "playwright-core";
import { startSimulator } from "../../src/simulator/simulator";
import { startMosquitto } from "../support/mosquitto";
import { freePort, ROOT, startPackedNodeRed, type RunningNodeRed } from "../support/packed";
import { waitFor } from "../support/stub";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const userdir = require("../../../scripts/userdir.js") as {
  installPacked(dir: string): void;
  writeSettings(dir: string, port: number, secret: string): string;
};

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

/** "10 - Grafana alert webhook to SMS · Grafana 告警发短信.json" → "10-grafana-alert-webhook-to-sms.png" (the English title) */
export function pictureName(file: string): string {
  const slug = path
    .basename(file, ".json")
    .split(" · ")[0]
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
  return `${slug}.png`;
}

/** "13 - Delivery dashboard.json" → "13-delivery-dashboard-page.png": the picture of its dashboard page. */
export function pagePictureName(file: string): string {
  return pictureName(file).replace(/\.png$/, "-page.png");
}

/**
 * A packed Node-RED (fresh userDir, the package installed from its tarball) with Dashboard 2.0 in
 * the userDir's node_modules too, as a user has it after installing it from the palette: a link to
 * the devDependency, so no registry is asked (its own dependencies resolve from this project).
 */
export async function startPackedWithDashboard(): Promise<RunningNodeRed> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "cnsms-nr-"));
  userdir.installPacked(userDir);
  const link = path.join(userDir, "node_modules", "@flowfuse", "node-red-dashboard");
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.symlinkSync(path.dirname(require.resolve("@flowfuse/node-red-dashboard/package.json")), link, "dir");
  const port = await freePort();
  userdir.writeSettings(userDir, port, "editor-test-secret");
  return startPackedNodeRed({ userDir, port });
}

/** The simulator set up as an example's comment says (its `curl … /sim/…` line), if it has one. */
export async function setUpAsCommented(flow: FlowNode[], simUrl: string): Promise<void> {
  const info = flow.find((n) => n.type === "comment")?.info as string | undefined;
  const m =
    /`curl -X POST http:\/\/127\.0\.0\.1:18080(\/sim\/\S+) -H 'Content-Type: application\/json' -d '([^']+)'`/.exec(
      info ?? "",
    );
  if (!m) return;
  const res = await fetch(simUrl + m[1], {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: m[2],
  });
  if (!res.ok) throw new Error(`the comment's curl: HTTP ${res.status} ${await res.text()}`);
}

export interface ChartSeen {
  label: string;
  /** series name → [category, value] pairs, as ECharts draws them */
  series: Record<string, Array<[string, number]>>;
}

/**
 * What the dashboard's charts draw: each DBUIChart component's ECharts option, found through the
 * rendered Vue tree (the canvas itself cannot be read back as numbers).
 */
export function dashboardCharts(page: Page): Promise<ChartSeen[]> {
  return page.evaluate(() => {
    const seen: ChartSeen[] = [];
    const visit = (v: any): void => {
      if (!v) return;
      const c = v.component;
      if (c) {
        if (c.type?.name === "DBUIChart" && c.proxy?.chart) {
          const o = c.proxy.chart.getOption();
          const series: Record<string, Array<[string, number]>> = {};
          for (const s of o.series ?? []) series[s.name] = (s.data ?? []).map((d: any) => [d[0], d[1]]);
          seen.push({ label: c.props?.props?.label ?? "", series });
        }
        visit(c.subTree);
      }
      if (Array.isArray(v.children)) for (const ch of v.children) visit(ch);
      if (v.suspense) visit(v.suspense.activeBranch);
    };
    visit((document.querySelector("#app") as any)?._vnode);
    return seen;
  });
}

/** Every example file, as a path under examples/ (sub-folders hold those that need another package). */
export function exampleFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(EXAMPLES, dir), { withFileTypes: true })) {
      const rel = dir ? path.join(dir, e.name) : e.name;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith(".json")) found.push(rel);
    }
  };
  walk("");
  return found.sort((a, b) => path.basename(a).localeCompare(path.basename(b)));
}

/** The README's recipes: every example from 07 on. */
export function recipeFiles(): string[] {
  return exampleFiles().filter((f) => Number(path.basename(f).slice(0, 2)) >= 7);
}

/**
 * The webhook a comment says to try (its `curl … http://127.0.0.1:1880/<path>` line), and how many
 * times ("run this twice"), so the picture shows the statuses a user sees after trying it.
 */
export function commentedWebhook(flow: FlowNode[]): { path: string; body: string; times: number } | null {
  const info = (flow.find((n) => n.type === "comment")?.info as string | undefined) ?? "";
  const m = /`curl -H 'Content-Type: application\/json' -d '([^']+)' http:\/\/127\.0\.0\.1:1880(\/\S+)`/.exec(info);
  if (!m) return null;
  return { path: m[2], body: m[1], times: /run this twice/i.test(info) ? 2 : 1 };
}

const log = (s: string) => process.stdout.write(s + "\n");

const until = (what: string, cond: () => Promise<boolean>, ms = 20_000) => waitFor(cond, ms, what, 100);

/**
 * What a reader of the flow would stumble on (in the shown tab): two nodes drawn over each other,
 * and a node's status text crossed by a wire (sampled along each wire's path).
 */
export function layoutClashes(page: Page, tabId: string): Promise<string[]> {
  return page.evaluate((z) => {
    const RED = (window as unknown as { RED: any }).RED;
    const out: string[] = [];
    const name = (n: any) => `${n.type} "${n.name || n.id}"`;
    const boxes = RED.nodes
      .filterNodes({ z })
      .map((n: any) => ({ n, el: document.querySelector(`#red-ui-workspace-chart g[id="${n.id}"]`) }))
      .filter((b: any) => b.el)
      .map((b: any) => ({ ...b, r: (b.el.querySelector(".red-ui-flow-node") ?? b.el).getBoundingClientRect() }));
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i].r, boxes[j].r];
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
          out.push(`${name(boxes[i].n)} and ${name(boxes[j].n)} overlap`);
      }
    const wires = [...document.querySelectorAll("#red-ui-workspace-chart .red-ui-flow-link-path")] as SVGPathElement[];
    for (const b of boxes) {
      const label = b.el.querySelector(".red-ui-flow-node-status-label");
      if (!label || !label.textContent) continue;
      const r = label.getBoundingClientRect();
      for (const w of wires) {
        const m = w.getScreenCTM();
        if (!m) continue;
        const length = w.getTotalLength();
        for (let d = 0; d <= length; d += 2) {
          const p = w.getPointAtLength(d).matrixTransform(m);
          if (p.x >= r.left && p.x <= r.right && p.y >= r.top && p.y <= r.bottom) {
            out.push(`a wire crosses the status of ${name(b.n)} ("${label.textContent}")`);
            break;
          }
        }
      }
    }
    return [...new Set(out)];
  }, tabId);
}

/** Shows the tab, waits until its nodes are drawn (and the statuses it expects), saves its flow's area. */
async function picture(page: Page, tab: FlowNode, nodes: FlowNode[], configIds: string[], file: string): Promise<void> {
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
  // A balance asked for at deploy shows its answer: wait for it, so the picture does not depend on when it is taken.
  const atDeploy = new Set(
    nodes.filter((n) => n.type === "inject" && n.once).flatMap((n) => (n.wires as string[][]).flat()),
  );
  for (const n of nodes.filter((n) => n.type === "sms-balance" && atDeploy.has(n.id))) {
    const status = `#red-ui-workspace-chart g[id="${n.id}"] .red-ui-flow-node-status-label`;
    await until(`${n.type} to show the balance`, async () =>
      /\d/.test(
        (await page
          .locator(status)
          .textContent()
          .catch(() => "")) ?? "",
      ),
    );
  }
  // What a user would see after importing: no node marked invalid (the red triangle), nor a config
  // node they use (the account, a broker, the dashboard's groups, page, theme and base).
  const invalid = await page.evaluate(
    (ids) =>
      ids
        .map((id) => (window as unknown as { RED: any }).RED.nodes.node(id))
        .filter((n) => n && n.valid === false)
        .map((n) => `${n.type} ${n.name || n.id}: ${JSON.stringify(n.validationErrors)}`),
    [...nodes.map((n) => n.id), ...configIds],
  );
  if (invalid.length) throw new Error(`"${String(tab.label)}" shows invalid nodes:\n${invalid.join("\n")}`);
  const clashes = await layoutClashes(page, tab.id);
  if (clashes.length) throw new Error(`"${String(tab.label)}" is hard to read:\n${clashes.join("\n")}`);
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

/** The dashboard page of an example: its 'test alert' clicked twice, the page saved once every count is in. */
async function pagePicture(page: Page, nr: RunningNodeRed, flow: FlowNode[], file: string): Promise<void> {
  const base = flow.find((n) => n.type === "ui-base")!;
  const dashboardPage = flow.find((n) => n.type === "ui-page")!;
  const alert = flow.find((n) => n.type === "inject" && String(n.name).split(" · ")[0] === "test alert")!;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${nr.url}/inject/${alert.id}`, { method: "POST" });
    if (!res.ok) throw new Error(`clicking 'test alert': HTTP ${res.status}`);
  }
  await page.goto(`${nr.url}${String(base.path)}${String(dashboardPage.path)}`, { waitUntil: "domcontentloaded" });
  // Every summary is in: with the comment's simulator set-up, of each 5 numbers 3 delivered, 1 failed, 1 silent.
  const counted = async () => {
    const charts = await dashboardCharts(page).catch(() => []);
    const total = (name: string) =>
      Object.entries(charts[0]?.series ?? {})
        .filter(([k]) => k.startsWith(name + " "))
        .flatMap(([, d]) => d)
        .reduce((a, [, v]) => a + v, 0);
    return [total("sent"), total("delivered"), total("failed"), total("pending")].join() === "10,6,2,2";
  };
  await until("the dashboard to show every summary", counted, 60_000);
  await page.evaluate(() => document.fonts.ready);
  await page.screenshot({ path: path.join(IMAGES, pagePictureName(file)) });
  log(`✔ docs/images/${pagePictureName(file)}`);
}

/**
 * Each node's dialog as a user opens it from the deployed examples (the account's four tabs
 * through the send dialog's pencil), in en-US and zh-CN: docs/images/dialog-<type>[-<tab>]-<en|zh>.png.
 */
async function dialogPictures(nr: RunningNodeRed, executablePath: string, deployed: FlowNode[]): Promise<void> {
  const first = (type: string, pick: (n: FlowNode) => boolean = () => true) =>
    deployed.find((n) => n.type === type && pick(n)) ?? deployed.find((n) => n.type === type);
  const dialogs = [
    // The personalised notice (09): its template's names and a sample with its length and parts.
    first("sms-send", (n) => typeof n.template === "string" && n.template !== ""),
    first("sms-balance"),
    first("sms-receive"),
    first("sms-guard"),
  ].filter((n): n is FlowNode => n !== undefined);
  for (const [locale, lang] of [
    ["en-US", "en"],
    ["zh-CN", "zh"],
  ]) {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chromium-profile-"));
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath,
      args: FLAGS,
      locale,
      viewport: { width: 1600, height: 1000 },
    });
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
      await page.goto(nr.url + "/", { waitUntil: "domcontentloaded" });
      // The flow pictures hid the palette (a user setting, kept by Node-RED): attached is enough.
      await page.waitForSelector('#red-ui-palette .red-ui-palette-node[data-palette-type="sms-send"]', {
        state: "attached",
        timeout: 60_000,
      });
      const save = async (name: string) => {
        await page.waitForTimeout(800); // the tray slides in
        await page.evaluate(() => document.fonts.ready);
        await page
          .locator(".red-ui-tray")
          .last()
          .screenshot({ path: path.join(IMAGES, name) });
        log(`✔ docs/images/${name}`);
      };
      for (const n of dialogs) {
        await page.evaluate((id) => {
          const RED = (window as unknown as { RED: any }).RED;
          RED.editor.edit(RED.nodes.node(id));
        }, n.id);
        await page.waitForSelector("#node-dialog-ok", { state: "visible" });
        await save(`dialog-${n.type}-${lang}.png`);
        if (n.type === "sms-send") {
          await page.locator("#node-input-btn-config-edit").click();
          await page.waitForSelector("#node-config-input-url", { state: "visible" });
          for (const tab of ["account", "sending", "pushes", "advanced"]) {
            const content = page.locator(`#sms-config-tab-${tab}`);
            // RED.tabs takes a second click within 400 ms for a double click: click until it shows.
            for (let i = 0; i < 10 && !(await content.isVisible()); i++) {
              await page.locator(`#red-ui-tab-sms-config-tab-${tab} .red-ui-tab-label`).click();
              await content.waitFor({ state: "visible", timeout: 1000 }).catch(() => undefined);
            }
            await save(`dialog-sms-config-${tab}-${lang}.png`);
          }
          await page.locator("#node-config-dialog-cancel").click();
          await page.waitForSelector("#node-config-input-url", { state: "detached" });
        }
        await page.locator("#node-dialog-cancel").click();
        await page.waitForSelector("#node-dialog-ok", { state: "detached" });
      }
    } finally {
      await ctx.close();
      fs.rmSync(profile, { recursive: true, force: true });
    }
  }
}

async function main(): Promise<void> {
  const named = process.argv.slice(2).map((f) => path.basename(f));
  const files = named.length ? exampleFiles().filter((f) => named.includes(path.basename(f))) : recipeFiles();
  const sim = await startSimulator({});
  const broker = await startMosquitto();
  log("› packing the package and installing it into a fresh Node-RED userDir (with Dashboard 2.0)…");
  const nr = await startPackedWithDashboard();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chromium-profile-"));
  let ctx: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | null = null;
  try {
    const byId = new Map<string, FlowNode>();
    const tabs: Array<{ file: string; flow: FlowNode[]; tab: FlowNode; nodes: FlowNode[]; configIds: string[] }> = [];
    for (const f of files) {
      const flow = JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), "utf8")) as FlowNode[];
      const tab = flow.find((n) => n.type === "tab")!;
      const configIds = flow.filter((n) => n.type !== "tab" && n.z === undefined).map((n) => n.id);
      tabs.push({ file: f, flow, tab, nodes: flow.filter((n) => n.z === tab.id), configIds });
      for (const n of flow) if (!byId.has(n.id)) byId.set(n.id, { ...n });
    }
    for (const n of byId.values()) {
      if (n.type === "sms-config")
        Object.assign(n, { url: sim.url, credentials: { account: "demo", password: "demo" } });
      if (n.type === "mqtt-broker") Object.assign(n, { broker: "127.0.0.1", port: String(broker.port) });
    }
    const dashboards = tabs.filter((t) => t.flow.some((n) => n.type === "ui-page"));
    for (const d of dashboards) {
      // Its numbers within the picture's run: the tracked send gives up on a silent number after 3 s.
      for (const n of d.nodes) if (n.type === "sms-send" && n.track) byId.get(n.id)!.trackTimeout = "0.05";
      const receive = d.nodes.find((n) => n.type === "sms-receive");
      if (receive) sim.reportUrl = nr.url + String(receive.path);
      await setUpAsCommented(d.flow, sim.url);
    }
    const res = await fetch(`${nr.url}/flows`, {
      method: "POST",
      headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify([...byId.values()]),
    });
    if (!res.ok) throw new Error(`deploying the examples: HTTP ${res.status} ${await res.text()}`);
    // The webhook a comment says to try, tried as it says: the picture shows the statuses it leaves.
    for (const t of tabs) {
      const hook = commentedWebhook(t.flow);
      for (let i = 0; hook && i < hook.times; i++) {
        await until(`${hook.path} to answer`, async () => {
          const r = await fetch(nr.url + hook.path, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: hook.body,
          });
          return r.status !== 404;
        });
      }
    }

    const executablePath = process.env.CHROMIUM_PATH || execSync("which chromium", { encoding: "utf8" }).trim();
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath,
      args: FLAGS,
      locale: "en-US",
      viewport: { width: 2000, height: 1000 },
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
    // The palette slides shut (about 150 ms): measured before that, the first flow's box was off.
    await until("the palette and sidebar to close", () =>
      page.evaluate(() => {
        const box = (s: string) => document.querySelector(s)!.getBoundingClientRect();
        const [palette, workspace] = [box("#red-ui-palette"), box("#red-ui-workspace")];
        return palette.width < 20 && Math.abs(workspace.left - palette.right) <= 1 && workspace.right > innerWidth - 20;
      }),
    );
    for (const t of tabs) await picture(page, t.tab, t.nodes, t.configIds, pictureName(t.file));
    await dialogPictures(nr, executablePath, [...byId.values()]);
    if (dashboards.length) {
      const dash = await ctx.newPage();
      await dash.setViewportSize({ width: 1280, height: 720 });
      dash.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
      for (const d of dashboards) await pagePicture(dash, nr, d.flow, d.file);
    }
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
