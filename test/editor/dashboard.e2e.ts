// Example 13's dashboard in a real browser (Debian chromium via playwright-core): Node-RED 4 with the
// packed package and Dashboard 2.0 installed in its userDir, the example deployed as imported with
// its account pointed at the simulator and its tracked send's timeout at 0.05 min (3 s), the
// simulator set up as the comment's curl says (one number fails, one never reports). The chart's
// numbers are read from what ECharts draws (its option, found through the page's Vue tree: a canvas
// cannot be read back as numbers), the totals and the balance from the page's text.
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { ROOT, type RunningNodeRed } from "../support/packed";
import { dashboardCharts, setUpAsCommented, startPackedWithDashboard, type ChartSeen } from "./pictures";

const SHOTS = path.join(ROOT, "artifacts", "screenshots");
const FILE = path.join(
  ROOT,
  "examples",
  "Needs Dashboard 2.0 · 需要 Dashboard 2.0",
  "13 - Delivery dashboard (needs Dashboard 2.0) · 送达仪表盘（需要 Dashboard 2.0）.json",
);
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

/** "14:00": the hour (this machine's clock, as Node-RED's) that `t` falls in. */
const hourLabel = (t: number) => `${String(new Date(t).getHours()).padStart(2, "0")}:00`;

/** Counts per hour label from a chart's series ("sent 已发送" → sent). */
function counts(chart: ChartSeen | undefined): Record<string, Record<string, number>> {
  const byHour: Record<string, Record<string, number>> = {};
  for (const [name, data] of Object.entries(chart?.series ?? {}))
    for (const [hour, value] of data) (byHour[hour] ??= {})[name.split(" ")[0]] = value;
  return byHour;
}

async function until<T>(page: Page, what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000) {
  const end = Date.now() + ms;
  let last: T = await probe();
  while (!ok(last)) {
    if (Date.now() > end) {
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, "failed-dashboard.png") });
      throw new Error(`waited ${ms / 1000} s for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await page.waitForTimeout(200);
    last = await probe();
  }
  return last;
}

describe("delivery dashboard (example 13) in a real browser (Node-RED 4, packed package, Dashboard 2.0)", function () {
  this.timeout(180_000);
  let nr: RunningNodeRed;
  let sim: Simulator;
  let flow: FlowNode[];
  let ctx: BrowserContext;
  let page: Page;
  // A node is named "English · 中文"; the test names it by its English part.
  const named = (name: string) => flow.find((n) => String(n.name ?? "").split(" · ")[0] === name)!;
  const bodyText = () => page.locator("body").innerText();

  before(async () => {
    sim = await startSimulator({
      reportDelayMs: 20,
      accounts: [{ account: "demo", password: "demo", products: { "1001": 8765, "1002": 432 } }],
    });
    nr = await startPackedWithDashboard();
    flow = JSON.parse(fs.readFileSync(FILE, "utf8")) as FlowNode[];
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chromium-profile-"));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM_PATH || execSync("which chromium", { encoding: "utf8" }).trim(),
      args: FLAGS,
      locale: "en-US",
      viewport: { width: 1400, height: 900 },
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
  });
  after(async () => {
    await ctx?.close();
    await nr?.stop();
    if (nr) fs.rmSync(nr.userDir, { recursive: true, force: true });
    await sim?.close();
  });

  it("Node-RED loads Dashboard 2.0 from the userDir beside the package, without error", async () => {
    const res = await fetch(`${nr.url}/nodes`, { headers: { accept: "application/json" } });
    const sets = (await res.json()) as Array<{ module: string; types: string[]; err?: string }>;
    const dashboard = sets.filter((s) => s.module === "@flowfuse/node-red-dashboard");
    const types = dashboard.flatMap((s) => s.types);
    for (const t of new Set(flow.filter((n) => n.type.startsWith("ui-")).map((n) => n.type)))
      assert.ok(types.includes(t), `${t} is loaded`);
    for (const s of dashboard) assert.equal(s.err, undefined, `${s.types.join()}: ${s.err}`);
  });

  it("the example deploys and the editor shows none of its nodes invalid, its dashboard config nodes included", async () => {
    const deployed = flow.map((n) => ({ ...n }));
    for (const n of deployed) {
      if (n.type === "sms-config")
        Object.assign(n, { url: sim.url, credentials: { account: "demo", password: "demo" } });
      if (n.id === named("send alert (tracked)").id) n.trackTimeout = "0.05";
    }
    sim.reportUrl = nr.url + String(named("delivery reports").path);
    await setUpAsCommented(flow, sim.url);
    assert.deepEqual(sim.account("demo")!.withholdReports, ["13600136000"]);
    const res = await fetch(`${nr.url}/flows`, {
      method: "POST",
      headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify(deployed),
    });
    assert.ok(res.ok, `deploy: HTTP ${res.status} ${await res.text()}`);

    await page.goto(nr.url + "/", { waitUntil: "domcontentloaded" });
    await page.waitForSelector('#red-ui-palette .red-ui-palette-node[data-palette-type="ui-chart"]', {
      timeout: 60_000,
    });
    const seen = await until(
      page,
      "the editor to have every node of the example",
      () =>
        page.evaluate(
          (ids) =>
            ids.map((id) => {
              const n = (window as unknown as { RED: any }).RED.nodes.node(id);
              return n ? { id, type: n.type, valid: n.valid !== false, errors: n.validationErrors ?? [] } : null;
            }),
          flow.filter((n) => n.type !== "tab").map((n) => n.id),
        ),
      (list) => list.every((n) => n !== null),
    );
    assert.deepEqual(
      seen.filter((n) => !n!.valid),
      [],
    );
    const types = new Set(seen.map((n) => n!.type));
    for (const t of ["ui-base", "ui-theme", "ui-page", "ui-group", "ui-chart", "ui-text", "ui-button"])
      assert.ok(types.has(t), t);
  });

  it("the page shows the simulator's balance, and the chart the simulator's numbers per hour: sent, delivered, failed, pending", async () => {
    const base = flow.find((n) => n.type === "ui-base")!;
    const dashboardPage = flow.find((n) => n.type === "ui-page")!;
    await page.goto(`${nr.url}${String(base.path)}${String(dashboardPage.path)}`, { waitUntil: "domcontentloaded" });
    // Asked for a second after the deploy: the simulator's products, in all and each.
    await until(page, "the balance", bodyText, (t) => t.includes("9197 (1001: 8765, 1002: 432)"));

    const before = hourLabel(Date.now());
    for (let i = 0; i < 2; i++)
      assert.equal((await fetch(`${nr.url}/inject/${named("test alert").id}`, { method: "POST" })).status, 200);
    // Each send's summary comes when its silent number's 3 s are over.
    const charts = await until(
      page,
      "the chart to show every summary",
      () => dashboardCharts(page),
      (c) => Object.values(counts(c[0])).some((h) => h.sent === 10 && h.delivered === 6),
    );
    const after = hourLabel(Date.now());
    assert.equal(charts.length, 1);
    assert.equal(charts[0].label, "SMS per hour · 每小时短信");
    const byHour = counts(charts[0]);
    const hours = Object.keys(byHour);
    assert.equal(hours.length, 1, JSON.stringify(byHour));
    assert.ok([before, after].includes(hours[0]), `${hours[0]}: the hour of the sends`);
    assert.deepEqual(byHour[hours[0]], { sent: 10, delivered: 6, failed: 2, pending: 2 });
    // The same numbers as the simulator's: what it was sent, and what it reported.
    const sent = sim.requests.filter((r) => r.path.endsWith("/HttpBatchSendSM"));
    assert.equal(sent.flatMap((r) => r.params.mobile.split(",")).length, 10);
    const reports = sim.pushes.filter((p) => p.kind === "report" && p.ok);
    assert.equal(reports.filter((p) => p.params.status === "DELIVRD").length, 6);
    assert.equal(reports.filter((p) => p.params.status !== "DELIVRD").length, 2);
    await until(page, "the totals", bodyText, (t) =>
      t.includes("10 sent 已发送 · 6 delivered 已送达 · 2 failed 失败 · 2 pending 待回执"),
    );
    // The chart is drawn: a canvas of some size inside the page.
    const canvas = await page.locator("canvas").first().boundingBox();
    assert.ok(canvas && canvas.width > 300 && canvas.height > 150, JSON.stringify(canvas));
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, "dashboard-page.png") });
  });

  it("'Refresh balance' on the page asks the platform again: the balance after the sends", async () => {
    const left = sim.account("demo")!.products;
    assert.equal(left["1001"], 8765 - 10, "ten one-part SMS from the default product");
    const expected = `${left["1001"] + left["1002"]} (1001: ${left["1001"]}, 1002: ${left["1002"]})`;
    const button = page.getByRole("button", { name: /Refresh balance/ });
    // The platform answers once every 10 s; inside that window the node gives its last answer again.
    await until(
      page,
      "the balance after the sends",
      async () => {
        await button.click();
        await page
          .waitForFunction((e) => document.body.innerText.includes(e), expected, { timeout: 1500 })
          .catch(() => undefined);
        return bodyText();
      },
      (t) => t.includes(expected),
      40_000,
    );
    const queries = sim.requests.filter((r) => r.path.endsWith("/QueryBalance"));
    assert.equal(queries.length, 2, "one at deploy, one from the button");
  });
  it("imported beside a dashboard of the user's own, the editor keeps theirs and puts this page in it (as the comment says)", async () => {
    const theirs = { id: "aaaa00000000b001", type: "ui-base", name: "Plant dashboard", path: "/ui" };
    const res = await fetch(`${nr.url}/flows`, {
      method: "POST",
      headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify([{ id: "aaaa00000000b002", type: "tab", label: "plant" }, theirs]),
    });
    assert.ok(res.ok, `deploy: HTTP ${res.status}`);
    await page.goto(nr.url + "/", { waitUntil: "domcontentloaded" });
    await page.waitForSelector('#red-ui-palette .red-ui-palette-node[data-palette-type="ui-chart"]', {
      timeout: 60_000,
    });
    await page.evaluate((f) => (window as unknown as { RED: any }).RED.view.importNodes(f), flow);
    const pageId = flow.find((n) => n.type === "ui-page")!.id;
    const seen = await until(
      page,
      "the imported page to be in the user's dashboard",
      () =>
        page.evaluate((id) => {
          const RED = (window as unknown as { RED: any }).RED;
          const found: Array<{ id: string; name: string }> = [];
          RED.nodes.eachConfig((n: any) => {
            if (n.type === "ui-base") found.push({ id: n.id, name: n.name });
          });
          return { bases: found, ui: RED.nodes.node(id)?.ui as string | undefined };
        }, pageId),
      (s) => s.ui === theirs.id,
    );
    assert.deepEqual(seen.bases, [{ id: theirs.id, name: theirs.name }]);
  });
});
