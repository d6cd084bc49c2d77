// The account's Redis tab in a real browser (Debian chromium via playwright-core, Node-RED 4 with
// the packed package): the fields each Redis mode needs (SPEC B6a), their examples and rules, an
// account saved before the mode existed, and the sentinel password kept as a credential.
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { DEFAULT_REDIS_MASTER, REDIS_MODES } from "../../src/nodes/settings";
import { startPackedNodeRed, type RunningNodeRed } from "../support/packed";
import { cutInHelp, cutInTray } from "./checks";

const SENTINEL_PASSWORD = "Sentinel-Pw-e2e-7x";

async function browser(locale: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chromium-profile-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH || execSync("which chromium", { encoding: "utf8" }).trim(),
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    locale,
    viewport: { width: 1400, height: 900 },
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
  return { ctx, page };
}

/** Imports an account saved before the Redis mode existed (store redis, no redisMode) and opens it on its Advanced tab. */
async function openOldAccount(page: Page): Promise<string> {
  const id = await page.evaluate(() => {
    const RED = (window as unknown as { RED: any }).RED;
    const nid = RED.nodes.id();
    RED.nodes.import([
      { id: nid, type: "sms-config", url: "http://127.0.0.1:1", store: "redis", redisUrl: "redis://127.0.0.1:6379/0" },
    ]);
    RED.editor.editConfig("", "sms-config", nid);
    return nid;
  });
  await page.waitForSelector("#node-config-dialog-ok", { state: "visible" });
  await page.waitForTimeout(700);
  const content = page.locator("#sms-config-tab-advanced");
  for (let i = 0; i < 10 && !(await content.isVisible()); i++) {
    await page.locator("#red-ui-tab-sms-config-tab-advanced .red-ui-tab-label").click();
    await content.waitFor({ state: "visible", timeout: 1000 }).catch(() => undefined);
  }
  await content.waitFor({ state: "visible" });
  return id;
}

const isInvalid = (page: Page, id: string) =>
  page.locator(`#node-config-input-${id}`).evaluate((el) => el.classList.contains("input-error"));

async function setUrl(page: Page, url: string): Promise<void> {
  await page.locator("#node-config-input-redisUrl").fill(url);
  await page.locator("#node-config-input-redisUrl").dispatchEvent("change");
}

/** The redisUrl validator's message for `url` in `mode` (what the field's tooltip says). */
function urlMessage(page: Page, mode: string, url: string): Promise<unknown> {
  return page.evaluate(
    ([m, u]) =>
      (window as unknown as { RED: any }).RED.nodes
        .getType("sms-config")
        .defaults.redisUrl.validate.call({ store: "redis", redisMode: m }, u, {}),
    [mode, url],
  );
}

async function helpFits(page: Page): Promise<void> {
  await page.evaluate(() => (window as unknown as { RED: any }).RED.sidebar.help.show("sms-config"));
  await page.waitForTimeout(700);
  assert.deepEqual(await cutInHelp(page), []);
}

describe("editor: the account's Redis modes (SPEC B6a) in a real browser", function () {
  this.timeout(180_000);
  let nr: RunningNodeRed;
  before(async () => {
    nr = await startPackedNodeRed();
  });
  after(() => nr?.stop());

  describe("en-US", () => {
    let ctx: BrowserContext;
    let page: Page;
    before(async () => {
      ({ ctx, page } = await browser("en-US"));
      await page.goto(nr.url + "/", { waitUntil: "domcontentloaded" });
      await page.waitForSelector('#red-ui-palette .red-ui-palette-node[data-palette-type="sms-send"]', {
        timeout: 60_000,
      });
    });
    after(() => ctx?.close());

    it("the editor knows the runtime's modes and default master name", async () => {
      const defs = await page.evaluate(() => {
        const d = (window as unknown as { RED: any }).RED.nodes.getType("sms-config").defaults;
        return { mode: d.redisMode.value, master: d.redisMaster.value };
      });
      assert.deepEqual(defs, { mode: "single", master: DEFAULT_REDIS_MASTER });
      const options = await page.evaluate(() => {
        const d = (window as unknown as { RED: any }).RED.nodes.getType("sms-config").defaults;
        return ["single", "sentinel", "cluster", "other"].filter((m) => d.redisMode.validate(m) === true);
      });
      assert.deepEqual(options, [...REDIS_MODES]);
    });

    it("an account without a mode reads as one server; each mode shows the fields it needs, its example and its rule", async () => {
      const id = await openOldAccount(page);
      const mode = page.locator("#node-config-input-redisMode");
      const master = page.locator("#node-config-input-redisMaster");
      const sentinelPw = page.locator("#node-config-input-redisSentinelPassword");
      const url = page.locator("#node-config-input-redisUrl");
      const hint = page.locator("#sms-config-redisUrl-hint");
      assert.equal(await mode.inputValue(), "single");
      assert.equal(await master.isVisible(), false);
      assert.equal(await sentinelPw.isVisible(), false);
      assert.match((await hint.textContent()) ?? "", /^One server: redis:\/\//);
      assert.equal(await isInvalid(page, "redisUrl"), false);
      await setUrl(page, "redis://h1:6379,h2:6379");
      assert.equal(await isInvalid(page, "redisUrl"), true, "one server takes one host");
      await setUrl(page, "redis://127.0.0.1:6379/0");

      // Sentinel: the URL at the previous example becomes the sentinels' example.
      await mode.selectOption("sentinel");
      assert.equal(await url.inputValue(), "redis://s1:26379,s2:26379,s3:26379/0");
      assert.equal(await url.getAttribute("placeholder"), await url.inputValue());
      assert.equal(await master.isVisible(), true);
      assert.equal(await master.inputValue(), "mymaster");
      assert.equal(await sentinelPw.isVisible(), true);
      assert.match((await hint.textContent()) ?? "", /^The sentinels \(not the master\)/);
      assert.equal(await isInvalid(page, "redisUrl"), false);
      await master.fill("my master");
      await master.dispatchEvent("change");
      assert.equal(await isInvalid(page, "redisMaster"), true);
      await master.fill("alerts");
      await master.dispatchEvent("change");
      assert.equal(await isInvalid(page, "redisMaster"), false);
      assert.deepEqual(await cutInTray(page), [], "nothing cut in sentinel mode");

      // Cluster: seed nodes, database 0 only; the sentinel fields go away.
      await mode.selectOption("cluster");
      assert.equal(await url.inputValue(), "redis://r1:7000,r2:7001,r3:7002");
      assert.equal(await master.isVisible(), false);
      assert.equal(await sentinelPw.isVisible(), false);
      await setUrl(page, "redis://10.0.0.1:7000,10.0.0.2:7001/2");
      assert.equal(await isInvalid(page, "redisUrl"), true, "a cluster has database 0 only");
      await setUrl(page, "redis://10.0.0.1:7000,10.0.0.2:7001");
      assert.equal(await isInvalid(page, "redisUrl"), false);
      // A URL the user typed stays when the mode changes; its rule for the new mode applies at once.
      await mode.selectOption("single");
      assert.equal(await url.inputValue(), "redis://10.0.0.1:7000,10.0.0.2:7001");
      assert.equal(await isInvalid(page, "redisUrl"), true);
      // Back to memory: the Redis fields are not checked (nothing blocks a deploy).
      await page.selectOption("#node-config-input-store", "memory");
      assert.equal(await isInvalid(page, "redisUrl"), false);
      await page.locator("#node-config-dialog-cancel").click();
      await page.waitForSelector("#node-config-dialog-ok", { state: "detached" });
      await page.evaluate((nid) => {
        const RED = (window as unknown as { RED: any }).RED;
        RED.nodes.remove(nid);
      }, id);
    });

    it("the help's lines on the modes fit the help sidebar", () => helpFits(page));

    it("the URL rules say what each mode expects, with its example", async () => {
      assert.match(
        String(await urlMessage(page, "single", "http://x")),
        /^Enter one Redis server .*redis:\/\/127\.0\.0\.1:6379\/0$/,
      );
      assert.match(String(await urlMessage(page, "sentinel", "redis://")), /^Enter the sentinels .*26379/);
      assert.match(String(await urlMessage(page, "cluster", "redis://h:7000/1")), /^Enter seed nodes .*7000/);
      for (const [mode, ok] of [
        ["single", "rediss://user:pw@redis.example:6380/2"],
        ["sentinel", "redis://[::1]:26379,h2:26379/1"],
        ["cluster", "redis://:pw@h1:7000,h2/0"],
      ])
        assert.equal(await urlMessage(page, mode, ok), true, `${mode}: ${ok}`);
    });

    it("sentinel mode deploys with its master name; the sentinel password is a credential, never in the flow", async () => {
      const id = await openOldAccount(page);
      await page.locator("#node-config-input-redisMode").selectOption("sentinel");
      await page.locator("#node-config-input-redisMaster").fill("alerts");
      await page.locator("#node-config-input-redisSentinelPassword").fill(SENTINEL_PASSWORD);
      await page.locator("#node-config-dialog-ok").click();
      await page.waitForSelector("#node-config-dialog-ok", { state: "detached" });
      await page.locator("#red-ui-header-button-deploy").click();
      const until = Date.now() + 30_000;
      let flows = "";
      while (!flows.includes(id)) {
        if (Date.now() > until) throw new Error("not deployed within 30 s");
        const confirm = page.locator("#red-ui-deploy-dialog-confirm-deploy-deploy:visible");
        if (await confirm.count()) await confirm.click();
        await page.waitForTimeout(200);
        flows = await (await fetch(`${nr.url}/flows`)).text();
      }
      const cfg = (JSON.parse(flows) as Array<Record<string, unknown>>).find((n) => n.id === id)!;
      assert.equal(cfg.redisMode, "sentinel");
      assert.equal(cfg.redisMaster, "alerts");
      assert.equal(cfg.redisUrl, "redis://s1:26379,s2:26379,s3:26379/0");
      assert.ok(!flows.includes(SENTINEL_PASSWORD), "the password is not in the flow");
      const creds = (await (await fetch(`${nr.url}/credentials/sms-config/${id}`)).json()) as Record<string, unknown>;
      assert.equal(creds.has_redisSentinelPassword, true);
      assert.ok(!JSON.stringify(creds).includes(SENTINEL_PASSWORD));
    });
  });

  describe("zh-CN", () => {
    let ctx: BrowserContext;
    let page: Page;
    before(async () => {
      ({ ctx, page } = await browser("zh-CN"));
      await page.goto(nr.url + "/", { waitUntil: "domcontentloaded" });
      await page.waitForSelector('#red-ui-palette .red-ui-palette-node[data-palette-type="sms-send"]', {
        timeout: 60_000,
      });
    });
    after(() => ctx?.close());

    it("the mode menu, its fields and hints in Chinese, nothing cut", async () => {
      await openOldAccount(page);
      const options = await page.locator("#node-config-input-redisMode option").allTextContents();
      assert.deepEqual(options, ["单台服务器", "哨兵（主从）", "集群"]);
      await page.locator("#node-config-input-redisMode").selectOption("sentinel");
      assert.equal(
        (await page.locator('label[for="node-config-input-redisMaster"]').textContent())?.trim(),
        "主节点名称",
      );
      assert.equal(
        (await page.locator('label[for="node-config-input-redisSentinelPassword"]').textContent())?.trim(),
        "哨兵密码",
      );
      assert.match((await page.locator("#sms-config-redisUrl-hint").textContent()) ?? "", /^填写哨兵/);
      assert.deepEqual(await cutInTray(page), []);
      assert.match(String(await urlMessage(page, "cluster", "redis://h:7000/1")), /^请填写集群种子节点/);
      await page.locator("#node-config-dialog-cancel").click();
      await helpFits(page);
    });
  });
});
