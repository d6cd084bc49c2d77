// The editor in a real browser (Debian chromium via playwright-core), against Node-RED 4 with the
// packed package installed into a fresh userDir. Screenshots go to artifacts/screenshots/.
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { ROOT, startPackedNodeRed, type RunningNodeRed } from "../support/packed";

const SHOTS = path.join(ROOT, "artifacts", "screenshots");
const PASSWORD = "Editor-Pw-9f3kq";
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

function chromiumPath(): string {
  return process.env.CHROMIUM_PATH || execSync("which chromium", { encoding: "utf8" }).trim();
}

async function browser(locale: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chromium-profile-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    args: FLAGS,
    locale,
    viewport: { width: 1400, height: 900 },
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
  return { ctx, page };
}

async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name) });
}

async function openEditor(page: Page, url: string): Promise<void> {
  await page.goto(url + "/", { waitUntil: "domcontentloaded" });
  await page.waitForSelector('#red-ui-palette .red-ui-palette-node[data-palette-type="sms-send"]', { timeout: 60_000 });
}

/** Waits until the element's text matches; on timeout says what it showed (and takes a shot). */
async function waitText(page: Page, selector: string, re: RegExp, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  let last = "";
  while (Date.now() < until) {
    last =
      (await page
        .locator(selector)
        .first()
        .textContent()
        .catch(() => "")) ?? "";
    if (re.test(last)) return;
    await page.waitForTimeout(100);
  }
  await shot(page, `failed-${selector.replace(/\W+/g, "_")}.png`);
  throw new Error(`${selector}: expected ${re}, shows "${last}"`);
}

async function addNode(page: Page, node: Record<string, unknown>): Promise<void> {
  await page.evaluate((n) => {
    const RED = (window as unknown as { RED: any }).RED;
    RED.nodes.import([{ ...n, z: RED.workspaces.active() }]);
    RED.nodes.dirty(true);
    RED.view.redraw(true);
  }, node);
}

describe("editor in a real browser (Node-RED 4, packed package)", function () {
  this.timeout(180_000);
  let nr: RunningNodeRed;
  let sim: Simulator;

  before(async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }] });
    nr = await startPackedNodeRed();
  });
  after(async () => {
    await nr?.stop();
    await sim?.close();
  });

  it("Node-RED loads the four node types from the installed package without error", async () => {
    const res = await fetch(`${nr.url}/nodes`, { headers: { accept: "application/json" } });
    const sets = (await res.json()) as Array<{ module: string; types: string[]; err?: string; enabled: boolean }>;
    const ours = sets.filter((s) => s.module === "@cnsms/node-red-sms");
    assert.deepEqual(ours.flatMap((s) => s.types).sort(), ["sms-balance", "sms-config", "sms-receive", "sms-send"]);
    for (const s of ours) assert.equal(s.err, undefined, `${s.types}: ${s.err}`);
  });

  describe("en-US", () => {
    let ctx: BrowserContext;
    let page: Page;
    before(async () => {
      ({ ctx, page } = await browser("en-US"));
      await openEditor(page, nr.url);
    });
    after(() => ctx?.close());

    it("the palette shows our nodes under 'sms' with their labels; sms-config is the config type", async () => {
      await page.locator("#red-ui-palette-search input").pressSequentially("sms");
      const cat = page.locator("#red-ui-palette-container-sms");
      for (const [type, label] of [
        ["sms-send", "send SMS"],
        ["sms-balance", "SMS balance"],
        ["sms-receive", "receive SMS"],
      ]) {
        const el = cat.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
        await el.waitFor({ state: "visible" });
        assert.equal((await el.locator(".red-ui-palette-label").innerText()).trim(), label);
      }
      const category = await page.evaluate(
        () => (window as unknown as { RED: any }).RED.nodes.getType("sms-config")?.category,
      );
      assert.equal(category, "config");
      await shot(page, "palette-en.png");
    });

    it("the send dialog: live number and segment counts, a config node with credentials, test connection", async () => {
      await addNode(page, {
        id: "aa11bb22cc33dd44",
        type: "sms-send",
        x: 260,
        y: 120,
        name: "",
        config: "",
        mobile: "",
        needstatus: true,
        product: "",
        extno: "",
      });
      await page.locator("#aa11bb22cc33dd44").dblclick();
      await page.waitForSelector("#node-input-mobile", { state: "visible" });
      await page.locator("#node-input-mobile").fill("13800138000, +86-139-0013-9000, 123");
      await waitText(page, "#node-input-sms-numbers", /2 valid number\(s\), 1 invalid: 123/);
      await page.locator("#node-input-sms-preview").fill("x".repeat(65));
      await waitText(page, "#node-input-sms-segments", /65 characters .* 1 SMS part/);
      await page.locator("#node-input-extno").fill("12a");
      await page.locator("#node-input-extno").dispatchEvent("change");

      // Add a config node through the pencil button, as a user does.
      // Node-RED 4.1 has a "+" button next to the select; older editors use the pencil.
      await page
        .locator(
          "#node-input-btn-config-add:visible, #node-input-btn-config-edit:not(.disabled), #node-input-lookup-config",
        )
        .first()
        .click();
      await page.waitForSelector("#node-config-input-url", { state: "visible" });
      await page.locator("#node-config-input-url").fill(sim.url);
      await page.locator("#node-config-input-account").fill("demo");
      await page.locator("#node-config-input-password").fill(PASSWORD);
      await page.locator("#node-config-input-signature").fill("【朗宇信息】");
      await page.locator("#node-config-sms-test").click();
      await waitText(page, "#node-config-sms-test-result", /Connected: 1001: 10000/);
      await shot(page, "config-dialog-en.png");
      await page.locator("#node-config-dialog-ok").click();
      await page.waitForSelector("#node-config-input-url", { state: "detached" }).catch(async (e) => {
        await shot(page, "failed-config-ok.png");
        throw e;
      });
      // With the account's signature (6 characters) the 65-character text becomes a 2-part SMS.
      await waitText(page, "#node-input-sms-segments", /71 characters .* 2 SMS part/);
      const extnoInvalid = await page
        .locator("#node-input-extno")
        .evaluate((el) => el.classList.contains("input-error"));
      assert.equal(extnoInvalid, true, "extno with a letter is flagged");
      await shot(page, "send-dialog-en.png");
      await page.locator("#node-input-extno").fill("12");
      await page.locator("#node-dialog-ok").click();
      await page.waitForSelector("#node-input-mobile", { state: "detached" });
    });

    it("deploys; the flows (admin API, editor export, files on disk) contain no password", async () => {
      await page.locator("#red-ui-header-button-deploy").click();
      // Deployed = the runtime has the config node; a confirmation dialog, if any, is accepted.
      let flows = "[]";
      const until = Date.now() + 30_000;
      while (!flows.includes('"sms-config"')) {
        if (Date.now() > until) {
          await shot(page, "failed-deploy.png");
          throw new Error("the flow was not deployed within 30 s");
        }
        const confirm = page.locator("#red-ui-deploy-dialog-confirm-deploy-deploy:visible");
        if (await confirm.count()) await confirm.click();
        await page.waitForTimeout(200);
        flows = await (await fetch(`${nr.url}/flows`)).text();
      }
      const cfg = (JSON.parse(flows) as Array<Record<string, unknown>>).find((n) => n.type === "sms-config");
      assert.ok(cfg, "the config node was deployed");
      assert.equal(cfg.url, sim.url);
      assert.ok(!flows.includes(PASSWORD), "admin API flows contain the password");
      const exported = await page.evaluate(() =>
        JSON.stringify((window as unknown as { RED: any }).RED.nodes.createCompleteNodeSet({ credentials: false })),
      );
      assert.ok(!exported.includes(PASSWORD), "editor export contains the password");
      for (const f of fs.readdirSync(nr.userDir).filter((f) => f.startsWith("flows"))) {
        assert.ok(!fs.readFileSync(path.join(nr.userDir, f), "utf8").includes(PASSWORD), `${f} contains the password`);
      }
      await shot(page, "deployed-en.png");
    });

    it("the example flows appear under Import ▸ Examples", async () => {
      await page.evaluate(() =>
        (window as unknown as { RED: any }).RED.actions.invoke("core:show-examples-import-dialog"),
      );
      const pkg = page
        .locator(".red-ui-treeList-label-text:visible")
        .filter({ hasText: "@cnsms/node-red-sms" })
        .first();
      await pkg.waitFor({ state: "visible", timeout: 15_000 });
      await pkg.click();
      for (const name of ["01 - Send an alert", "03 - Balance monitor", "06 - End-to-end demo with the simulator"]) {
        await page
          .locator(".red-ui-treeList-label-text:visible")
          .filter({ hasText: name })
          .first()
          .waitFor({ state: "visible", timeout: 10_000 });
      }
      await shot(page, "examples-en.png");
      await page.keyboard.press("Escape");
    });
  });

  describe("zh-CN", () => {
    let ctx: BrowserContext;
    let page: Page;
    before(async () => {
      ({ ctx, page } = await browser("zh-CN"));
      await openEditor(page, nr.url);
    });
    after(() => ctx?.close());

    it("the same editor in Chinese shows Chinese labels and help", async () => {
      await page.locator("#red-ui-palette-search input").pressSequentially("sms");
      const label = page.locator(
        '#red-ui-palette-container-sms .red-ui-palette-node[data-palette-type="sms-send"] .red-ui-palette-label',
      );
      await label.waitFor({ state: "visible" });
      assert.equal((await label.innerText()).trim(), "发送短信");
      await addNode(page, {
        id: "zz11bb22cc33dd55",
        type: "sms-receive",
        x: 260,
        y: 220,
        name: "",
        config: "",
        path: "/sms/push",
        reassemble: true,
        partTimeout: 600,
      });
      await page.locator("#zz11bb22cc33dd55").dblclick();
      await page.waitForSelector("#node-input-path", { state: "visible" });
      const text = await page.locator(".red-ui-tray").first().innerText();
      assert.match(text, /提供给平台的地址/);
      assert.match(text, /合并长短信/);
      await page.waitForTimeout(500); // the tray slides in
      const shownUrl = await page.locator("#node-input-sms-url").innerText();
      assert.equal(shownUrl, `${nr.url}/sms/push`);
      await shot(page, "receive-dialog-zh.png");
      await page.locator("#node-dialog-cancel").click();
    });
  });
});
