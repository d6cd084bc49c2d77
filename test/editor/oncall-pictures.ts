// The README's pictures of sms-oncall's edit dialog, taken from the real editor (en-US and zh-CN):
// a packed Node-RED 4 (the package installed from its tarball), a flow with one on-call node, its
// dialog opened in Debian's chromium and saved to docs/images/oncall-dialog(.zh-CN).png. On the
// way it checks what the dialog shows against the lib: the on-call-now line is the runtime's
// (rota.onCallNow, same clock), the rota and the steps came back as lists, a bad number in the
// rota makes the node invalid with the runtime's words, and the page raised no error.
// Run: npm run build && npm run build:test && node build/test/editor/oncall-pictures.js
import { execSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Page } from "playwright-core";
import { onCallNow } from "../../src/lib/alerts/rota";
import { startSimulator } from "../../src/simulator/simulator";
import { ROOT, startPackedNodeRed } from "../support/packed";
import { waitFor } from "../support/stub";
import { cutInHelp, cutInTray, invalidInTray, latinWords, textsInHelp, textsInTray } from "./checks";

/** What a Chinese reader is shown in Latin letters on purpose: the replies people type, a weekday as typed. */
const VALUES = new Set(["ack", "ok", "aa", "Mon", "oncall", "next", "all", "wait", "to"]);

// The e2e run (oncall.e2e.ts) checks the same dialog and keeps its pictures out of the repository.
const images = () => process.env.PICTURES_DIR || path.join(ROOT, "docs", "images");
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"];
const ROTA = ["13800138000", "13900139000", "13700137000"];
const log = (s: string) => process.stdout.write(s + "\n");

export function oncallFlow(simUrl: string): Array<Record<string, unknown>> {
  return [
    { id: "t1", type: "tab", label: "On-call" },
    {
      id: "cfg",
      type: "sms-config",
      name: "demo account",
      url: simUrl,
      tz: "+08:00",
      credentials: { account: "demo", password: "demo" },
    },
    {
      id: "oc",
      type: "sms-oncall",
      z: "t1",
      name: "",
      config: "cfg",
      rota: ROTA,
      rotate: "weekly",
      handover: "Mon 09:00",
      rotaStart: "2024-01-01",
      steps: '[{"to":"oncall","wait":5},{"to":"next","wait":10},{"to":"all","wait":15}]',
      repeat: "1",
      bundle: "60",
      resolvedNotify: "notified",
      maxOpen: "1000",
      keep: "24",
      x: 300,
      y: 100,
      wires: [["send"], []],
    },
    { id: "send", type: "sms-send", z: "t1", config: "cfg", x: 500, y: 100, wires: [[]] },
  ];
}

async function dialog(page: Page, lang: "en-US" | "zh-CN"): Promise<void> {
  await page.evaluate(() => {
    const RED = (window as unknown as { RED: any }).RED;
    RED.editor.edit(RED.nodes.node("oc"));
  });
  await page.waitForSelector("#sms-oncall-now div", { timeout: 20_000 });
  const shown = await page.locator("#sms-oncall-now").innerText();
  const now = onCallNow(
    { rota: ROTA, rotate: "weekly", handover: "Mon 09:00", rotaStart: "2024-01-01" },
    480,
    Date.now(),
  )!;
  if (!shown.includes(now.onCall) || !shown.includes(now.next) || !shown.includes(now.until!.slice(0, 10)))
    throw new Error(`the dialog says "${shown}", the runtime ${JSON.stringify(now)}`);
  const rows = await page.locator("#node-input-rota-list .sms-oncall-number").count();
  const steps = await page.locator("#node-input-steps-list .sms-oncall-to").count();
  if (rows !== 3 || steps !== 3) throw new Error(`rota rows ${rows}, step rows ${steps}`);
  await page.evaluate(() => document.fonts.ready);
  // What the editor's own checks say (test/editor/checks.ts): nothing cut, nothing invalid, one language.
  const problems = [...(await cutInTray(page)), ...(await invalidInTray(page)).map((f) => `invalid: ${f}`)];
  if (lang === "zh-CN") {
    const words = (await textsInTray(page)).flatMap(latinWords).filter((w) => !VALUES.has(w));
    if (words.length) problems.push(`English in the zh-CN dialog: ${words.join(" ")}`);
  }
  await page.evaluate(() => (window as unknown as { RED: any }).RED.sidebar.help.show("sms-oncall"));
  await page.waitForSelector(".red-ui-help h3", { timeout: 10_000 });
  problems.push(...(await cutInHelp(page)));
  if (lang === "zh-CN") {
    const words = (await textsInHelp(page)).flatMap(latinWords).filter((w) => !VALUES.has(w));
    if (words.length) problems.push(`English in the zh-CN help: ${words.join(" ")}`);
  }
  if (problems.length) throw new Error(`${lang}:\n${problems.join("\n")}`);
  const tray = page.locator(".red-ui-tray").last();
  const file = lang === "en-US" ? "oncall-dialog.png" : "oncall-dialog.zh-CN.png";
  fs.mkdirSync(images(), { recursive: true });
  await tray.screenshot({ path: path.join(images(), file) });
  log(`✔ docs/images/${file} (${shown.replace(/\n/g, " / ")})`);
  // A bad number: the node is invalid, with the runtime's message.
  await page.locator("#node-input-rota-list .sms-oncall-number").first().fill("123");
  await page.locator("#node-dialog-ok").click();
  const invalid = await page.evaluate(() => {
    const n = (window as unknown as { RED: any }).RED.nodes.node("oc");
    return { valid: n.valid, errors: n.validationErrors };
  });
  if (invalid.valid !== false) throw new Error(`a rota with 123 is valid in the editor: ${JSON.stringify(invalid)}`);
  log(`✔ a rota with "123" is invalid: ${JSON.stringify(invalid.errors)}`);
}

export async function main(): Promise<void> {
  const sim = await startSimulator({});
  log("› packing the package and installing it into a fresh Node-RED userDir…");
  const errors: string[] = [];
  for (const lang of ["en-US", "zh-CN"] as const) {
    const nr = await startPackedNodeRed({});
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chromium-profile-"));
    let ctx: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | null = null;
    try {
      const res = await fetch(`${nr.url}/flows`, {
        method: "POST",
        headers: { "content-type": "application/json", "Node-RED-Deployment-Type": "full" },
        body: JSON.stringify(oncallFlow(sim.url)),
      });
      if (!res.ok) throw new Error(`deploy: HTTP ${res.status} ${await res.text()}`);
      const executablePath = process.env.CHROMIUM_PATH || execSync("which chromium", { encoding: "utf8" }).trim();
      ctx = await chromium.launchPersistentContext(profile, {
        executablePath,
        args: [...FLAGS, `--lang=${lang}`],
        locale: lang,
        viewport: { width: 1400, height: 1300 },
        deviceScaleFactor: 2,
      });
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${nr.url}/?lang=${lang}`, { waitUntil: "domcontentloaded" });
      await page.waitForSelector('#red-ui-palette .red-ui-palette-node[data-palette-type="sms-oncall"]', {
        timeout: 60_000,
      });
      await waitFor(() => page.evaluate(() => !!(window as any).RED?.nodes?.node("oc")), 20_000, "the flow", 100);
      await dialog(page, lang);
    } finally {
      await ctx?.close();
      fs.rmSync(profile, { recursive: true, force: true });
      await nr.stop();
      fs.rmSync(nr.userDir, { recursive: true, force: true });
    }
  }
  await sim.close();
  if (errors.length) throw new Error(`page errors:\n${errors.join("\n")}`);
}

if (require.main === module)
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
