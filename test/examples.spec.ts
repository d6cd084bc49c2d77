import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import vm from "node:vm";
import supertest from "supertest";
import { startSimulator, type Simulator } from "../src/simulator/simulator";
import { exampleFiles, pagePictureName, pictureName } from "./editor/pictures";
import { ALL_NODES, captured, coreNode, helper, sleep } from "./support/nr";

const dir = path.join(__dirname, "../../examples");
// Paths under examples/: an example that needs another package sits in a sub-folder named after it.
const files = exampleFiles();
/** The file of the example numbered `nn` ("01"). */
const numbered = (nn: string) => files.find((f) => path.basename(f).startsWith(nn + " - "))!;

const CORE = [
  "common/20-inject.js",
  "common/21-debug.js",
  "common/90-comment.js",
  "function/15-change.js",
  "function/10-switch.js",
  "function/10-function.js",
  "network/21-httprequest.js",
  // example 11 reads its sensors with Node-RED's own MQTT nodes
  "network/10-mqtt.js",
  // example 13 takes other flows' sends through a link in node
  "common/60-link.js",
  // example 13 names the package it needs (Dashboard 2.0) in a global-config node's module list
  "common/91-global-config.js",
].map(coreNode);

/** Example 13's Dashboard 2.0 nodes (a devDependency): its page, groups, theme and widgets. */
const DASHBOARD = [
  "config/ui_base.js",
  "config/ui_page.js",
  "config/ui_group.js",
  "config/ui_theme.js",
  "widgets/ui_chart.js",
  "widgets/ui_text.js",
  "widgets/ui_button.js",
  // eslint-disable-next-line @typescript-eslint/no-require-imports
].map((f) => require(`@flowfuse/node-red-dashboard/nodes/${f}`) as unknown);

/**
 * Config nodes the examples share across tabs (no `z`): the account, example 11's MQTT broker and
 * example 13's dashboard (its base, theme, page and groups).
 */
const DASHBOARD_CONFIG = ["ui-base", "ui-theme", "ui-page", "ui-group"];
const GLOBAL_CONFIG = ["sms-config", "mqtt-broker", "global-config", ...DASHBOARD_CONFIG];

/** A dashboard node's reference to the config node it sits in: widget → group → page → base and theme. */
const DASHBOARD_REFS: Array<[string | null, string, string]> = [
  [null, "group", "ui-group"],
  ["ui-group", "page", "ui-page"],
  ["ui-page", "ui", "ui-base"],
  ["ui-page", "theme", "ui-theme"],
];

type FlowNode = Record<string, unknown> & { id: string; type: string };
type Flow = FlowNode[];

function read(f: string): Flow {
  return JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as Flow;
}

/** Deploys a flow as a user's import would leave it, its account pointed at the simulator. */
async function loadFlow(flow: Flow, simUrl: string): Promise<Flow> {
  const cfgs = flow.filter((n) => n.type === "sms-config");
  for (const cfg of cfgs) cfg.url = simUrl;
  const creds = Object.fromEntries(cfgs.map((c) => [c.id, { account: "demo", password: "demo" }]));
  // Loaded empty, then deployed: helper.load() registers the catch module once per catch node in
  // the flow, so a flow with two of them fails there with "catch already registered".
  await helper.load([...ALL_NODES, ...CORE, ...DASHBOARD] as never, [{ id: "empty", type: "tab" }] as never);
  await helper.setFlows(flow as never, "full", creds as never);
  return flow;
}

const loadExample = (f: string, simUrl: string) => loadFlow(read(f), simUrl);

/** Examples imported into one Node-RED (all by default); a node whose id is already there is not imported twice. */
function imported(names: string[] = files): Flow {
  const byId = new Map<string, FlowNode>();
  for (const f of names) for (const n of read(f)) if (!byId.has(n.id)) byId.set(n.id, n);
  return [...byId.values()];
}

// Chinese characters; 【signatures】 and `code` are left out before counting, they are not prose.
const CJK = /[\u3400-\u9fff]/g;
const LATIN_WORD = /\b[A-Za-z]{2,}\b/g;
const notProse = (s: string) => s.replace(/`[^`]*`/g, " ").replace(/【[^】]*】/g, " ");
const cjkCount = (s: string) => (notProse(s).match(CJK) ?? []).length;
const wordCount = (s: string) => (notProse(s).match(LATIN_WORD) ?? []).length;
const codeSpans = (s: string) => [...new Set(s.match(/`[^`]+`/g) ?? [])].sort();

type Validator = (this: FlowNode, v: unknown, opt?: object) => unknown;
type Definition = {
  defaults: Record<string, { value?: unknown; required?: boolean; type?: string; validate?: Validator }>;
};

/**
 * The editor definitions of our node types: each nodes/<type>.html script run with a stub RED and
 * the editor's own rule bundle (resources/cnsms-sms.js, built by `npm run build`) as window.CnsmsSms.
 */
function editorDefinitions(): Map<string, Definition> {
  const root = path.join(__dirname, "../..");
  const window: Record<string, unknown> = {};
  vm.runInNewContext(fs.readFileSync(path.join(root, "resources", "cnsms-sms.js"), "utf8"), { window });
  const defs = new Map<string, Definition>();
  const RED = {
    nodes: { registerType: (t: string, d: Definition) => defs.set(t, d), getType: () => ({ _: (k: string) => k }) },
    _: (k: string) => k,
    settings: {},
  };
  for (const f of fs.readdirSync(path.join(root, "nodes")).filter((f) => f.endsWith(".html"))) {
    const html = fs.readFileSync(path.join(root, "nodes", f), "utf8");
    for (const [, script] of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g))
      vm.runInNewContext(script, { RED, window, $: () => ({}) });
  }
  return defs;
}

/**
 * What the editor marks invalid (the red triangle) on an imported node, as Node-RED 4's
 * validateNodeProperty decides: a required property that is empty, a validator that does not
 * return true, a config node reference to a missing or invalid config node.
 */
function editorProblems(node: FlowNode, flow: Flow, defs: Map<string, Definition>, seen = new Set<string>()): string[] {
  const def = defs.get(node.type);
  if (!def || seen.has(node.id)) return [];
  seen.add(node.id);
  const problems: string[] = [];
  for (const [prop, d] of Object.entries(def.defaults)) {
    const v = node[prop];
    if (d.required && v === "") problems.push(`${prop}: required`);
    else if (d.validate) {
      if (d.required === false && v === "") continue;
      const result = d.validate.call(node, v, {});
      if (result !== true) problems.push(`${prop} = ${JSON.stringify(v)}: ${String(result)}`);
    } else if (d.type && defs.has(d.type)) {
      const target = flow.find((n) => n.id === v);
      if (!target) problems.push(`${prop}: no ${d.type} ${String(v)}`);
      else if (editorProblems(target, flow, defs, seen).length) problems.push(`${prop}: its ${d.type} is invalid`);
    }
  }
  return problems;
}

/** A note to the user, in English and in Chinese: its title and its text. */
interface Note {
  en: { title: string; info: string };
  zh: { title: string; info: string };
}

/**
 * An example's notes. The convention (examples with both languages in their file name): a pair of
 * comment nodes, the English one first, then the Chinese one, each in one language, so the info
 * panel shows a reader one language. Examples not moved to it yet (08, 12): one comment, its title
 * "English · 中文", its info the English text, a `---` line, the Chinese text.
 */
function notes(flow: Flow): Note[] {
  const comments = flow.filter((n) => n.type === "comment");
  const out: Note[] = [];
  for (let i = 0; i < comments.length; i++) {
    const c = comments[i];
    const info = String(c.info ?? "");
    if (info.includes("\n\n---\n\n")) {
      const parts = info.split(/\n\n---\n\n/);
      assert.equal(parts.length, 2, `English, a "---" line, then Chinese:\n${info}`);
      const [enTitle, zhTitle] = String(c.name).split(" · ");
      out.push({ en: { title: enTitle, info: parts[0] }, zh: { title: zhTitle ?? "", info: parts[1] } });
      continue;
    }
    const next = comments[i + 1];
    assert.ok(next, `"${String(c.name)}": a Chinese comment follows the English one`);
    out.push({
      en: { title: String(c.name), info },
      zh: { title: String(next.name), info: String(next.info ?? "") },
    });
    i++;
  }
  return out;
}

/** The node named, by the English part of its name ("sent" for "sent · 已发送"). */
function named(flow: Flow, en: string): FlowNode {
  const n = flow.find((x) => String(x.name ?? "").split(" · ")[0] === en);
  assert.ok(n, `no node named "${en}"`);
  return n;
}

/** Express matches paths case-insensitively and ignores a trailing slash. */
const routeKey = (p: unknown) =>
  String(p ?? "/sms/push")
    .trim()
    .toLowerCase()
    .replace(/(.)\/+$/, "$1");

describe("examples/ (the files)", () => {
  for (const f of files) {
    it(`"${f}" is a valid flow: one tab, unique ids, every wire and account reference resolves`, () => {
      const flow = read(f);
      assert.ok(Array.isArray(flow));
      for (const n of flow)
        assert.ok(typeof n.id === "string" && n.id && typeof n.type === "string", JSON.stringify(n));
      const ids = new Set(flow.map((n) => n.id));
      assert.equal(ids.size, flow.length, "no id twice");
      const tabs = flow.filter((n) => n.type === "tab");
      assert.equal(tabs.length, 1);
      for (const n of flow.filter((n) => n.type !== "tab" && !GLOBAL_CONFIG.includes(n.type))) {
        assert.equal(n.z, tabs[0].id, `${n.type} ${n.id} is on the tab`);
        for (const out of (n.wires ?? []) as string[][])
          for (const to of out) assert.ok(ids.has(to), `${n.id} → ${to}`);
        if (n.type.startsWith("sms-")) assert.ok(ids.has(n.config as string), `${n.type} ${n.id} has its account`);
        if (n.type.startsWith("mqtt ")) assert.ok(ids.has(n.broker as string), `${n.type} ${n.id} has its broker`);
      }
      for (const n of flow.filter((n) => GLOBAL_CONFIG.includes(n.type)))
        assert.equal(n.z, undefined, `${n.type} ${n.id} is a global config node`);
      for (const n of flow.filter((n) => n.type.startsWith("ui-")))
        for (const [from, prop, type] of DASHBOARD_REFS)
          if (from === n.type || (from === null && !DASHBOARD_CONFIG.includes(n.type))) {
            const target = flow.find((t) => t.id === n[prop]);
            assert.equal(target?.type, type, `${n.type} ${n.id}: its ${prop} is a ${type} of this file`);
          }
    });

    it(`"${f}": every note says in English and in Chinese what to change and what you will see`, () => {
      const flow = read(f);
      const found = notes(flow);
      assert.ok(found.length > 0, "has a comment node");
      // A name "English · 中文" is quoted by its own language's part in each text.
      const names = flow
        .filter((n) => n.type !== "comment" && n.type !== "tab" && n.name)
        .map((n) => String(n.name).split(" · "))
        .map(([en, zh]) => ({ en, zh: zh ?? en }));
      for (const { en, zh } of found) {
        assert.ok(wordCount(en.title) >= 3, `English in the title: ${en.title}`);
        assert.ok(cjkCount(zh.title) >= 4, `Chinese in the title: ${zh.title}`);
        assert.equal(cjkCount(en.title), 0, `no Chinese in the English title: ${en.title}`);
        assert.equal(cjkCount(en.info), 0, `no Chinese in the English text:\n${en.info}`);
        assert.ok(wordCount(en.info) >= 15, `English text:\n${en.info}`);
        assert.ok(cjkCount(zh.info) >= 15, `Chinese text:\n${zh.info}`);
        // Both give the same commands, URLs and paths, and point at the same nodes.
        assert.deepEqual(codeSpans(zh.info), codeSpans(en.info), "the same `code` in both languages");
        const inEn = names.filter((n) => en.info.includes(`'${n.en}'`)).map((n) => n.en);
        const inZh = names.filter((n) => zh.info.includes(`“${n.zh}”`)).map((n) => n.en);
        assert.deepEqual(inZh.sort(), inEn.sort(), "the same nodes named in both languages");
      }
    });

    if (path.basename(f).includes(" · "))
      it(`"${f}": its title, tab and node names say it in English and in Chinese ("English · 中文")`, () => {
        const flow = read(f);
        const both = (s: unknown) => {
          const [en, zh, more] = String(s).split(" · ");
          return more === undefined && wordCount(en) >= 1 && cjkCount(en) === 0 && cjkCount(zh ?? "") >= 1;
        };
        assert.ok(both(path.basename(f, ".json")), `file name: ${f}`);
        assert.ok(both(flow.find((n) => n.type === "tab")!.label), "tab label");
        // The account is one node shared by every example, whatever its name; the MQTT node shows its topic.
        for (const n of flow.filter((n) => !["tab", "comment", "sms-config", "global-config"].includes(n.type)))
          if (n.name || n.type !== "mqtt in") assert.ok(both(n.name), `${n.type} ${n.id}: "${String(n.name)}"`);
        // Each note: the English comment, then the Chinese one right below it.
        const comments = flow.filter((n) => n.type === "comment");
        assert.equal(comments.length % 2, 0, "comments come in pairs");
        for (let i = 0; i < comments.length; i += 2) {
          assert.equal(cjkCount(String(comments[i].name)), 0, "the English comment first");
          assert.ok(Number(comments[i + 1].y) > Number(comments[i].y), "the Chinese one below it");
        }
      });
  }

  it("every sms-receive path is unique across all examples (importing several never gives 'path in use')", () => {
    const seen = new Map<string, string>();
    for (const f of files)
      for (const n of read(f).filter((n) => n.type === "sms-receive")) {
        const key = routeKey(n.path);
        assert.ok(!seen.has(key), `${n.path} in "${f}" and in "${seen.get(key)}"`);
        seen.set(key, f);
      }
    assert.ok(seen.size >= 2);
  });

  it("every http in path is unique across the examples and is no sms-receive path", () => {
    const receive = new Set(
      files.flatMap((f) =>
        read(f)
          .filter((n) => n.type === "sms-receive")
          .map((n) => routeKey(n.path)),
      ),
    );
    const seen = new Map<string, string>();
    for (const f of files)
      for (const n of read(f).filter((n) => n.type === "http in")) {
        const key = `${String(n.method)} ${routeKey(n.url)}`;
        assert.ok(!seen.has(key), `${key} in "${f}" and in "${seen.get(key)}"`);
        assert.ok(!receive.has(routeKey(n.url)), `${n.url} in "${f}" is an sms-receive path too`);
        seen.set(key, f);
      }
    assert.ok(seen.size >= 2);
  });

  it("every example from 07 on (the README's recipes) has its picture of the flow in docs/images", () => {
    const recipes = files.filter((f) => Number(path.basename(f).slice(0, 2)) >= 7);
    assert.ok(recipes.length >= 4);
    for (const f of recipes) {
      const png = path.join(__dirname, "../../docs/images", pictureName(f));
      assert.ok(fs.existsSync(png), `${png}: run \`npm run pictures\``);
      // A PNG, and not an empty page: the picture of a flow is a few kB at least.
      const head = fs.readFileSync(png).subarray(0, 8).toString("hex");
      assert.equal(head, "89504e470d0a1a0a", `${png} is a PNG`);
      assert.ok(fs.statSync(png).size > 5000, `${png} shows something`);
    }
  });

  it("an example with a dashboard has its picture of the dashboard page in docs/images", () => {
    const dashboards = files.filter((f) => read(f).some((n) => n.type === "ui-page"));
    assert.ok(dashboards.length >= 1);
    for (const f of dashboards) {
      const png = path.join(__dirname, "../../docs/images", pagePictureName(f));
      assert.ok(fs.existsSync(png), `${png}: run \`npm run pictures\``);
      assert.equal(fs.readFileSync(png).subarray(0, 8).toString("hex"), "89504e470d0a1a0a", `${png} is a PNG`);
      assert.ok(fs.statSync(png).size > 20000, `${png} shows the page`);
    }
  });

  it("a dashboard opens where its comment says, in both languages, and takes no sms-receive or http in path", () => {
    const dashboards = files.filter((f) => read(f).some((n) => n.type === "ui-page"));
    const taken = files.flatMap((f) =>
      read(f)
        .filter((n) => n.type === "sms-receive" || n.type === "http in")
        .map((n) => routeKey(n.type === "http in" ? n.url : n.path)),
    );
    for (const f of dashboards) {
      const flow = read(f);
      const base = flow.find((n) => n.type === "ui-base")!;
      const infos = notes(flow).map((n) => ({ en: n.en.info, zh: n.zh.info }));
      for (const page of flow.filter((n) => n.type === "ui-page")) {
        const url = `\`http://<your Node-RED host>:1880${String(base.path)}${String(page.path)}\``;
        assert.ok(
          infos.some(({ en, zh }) => en.includes(url) && zh.includes(url)),
          `"${f}": a comment gives ${url} in English and Chinese`,
        );
      }
      const under = routeKey(base.path);
      for (const p of taken)
        assert.ok(p !== under && !p.startsWith(under + "/"), `${p} is under the dashboard's ${under}`);
    }
  });

  it("a comment gives the platform each sms-receive path, in both languages", () => {
    for (const f of files) {
      const flow = read(f);
      const infos = notes(flow).map((n) => ({ en: n.en.info, zh: n.zh.info }));
      for (const r of flow.filter((n) => n.type === "sms-receive")) {
        const p = r.path as string;
        assert.ok(
          infos.some(({ en, zh }) => en.includes(p) && zh.includes(p)),
          `"${f}": a comment names ${p} in English and Chinese`,
        );
      }
    }
  });

  it("every example uses the same sms-config node (one id, one definition) and holds no credentials", () => {
    const cfgs = files.map((f) => {
      const flow = read(f);
      assert.ok(!JSON.stringify(flow).includes('"credentials"'), `no credentials in "${f}"`);
      const own = flow.filter((n) => n.type === "sms-config");
      assert.equal(own.length, 1, `one account in "${f}"`);
      for (const n of flow.filter((n) => n.type.startsWith("sms-") && n.type !== "sms-config"))
        assert.equal(n.config, own[0].id, `${n.type} ${n.id} in "${f}" uses it`);
      return { f, cfg: own[0] };
    });
    for (const { f, cfg } of cfgs) assert.deepEqual(cfg, cfgs[0].cfg, `"${f}" and "${cfgs[0].f}"`);
    assert.equal(cfgs[0].cfg.z, undefined, "a global config node: shared by every tab");
  });

  it("apart from the shared account, no node id is in two examples (importing several conflicts on nothing else)", () => {
    const seen = new Map<string, string>();
    for (const f of files)
      for (const n of read(f).filter((n) => n.type !== "sms-config")) {
        assert.ok(!seen.has(n.id), `${n.id} in "${f}" and "${seen.get(n.id)}"`);
        seen.set(n.id, f);
      }
  });

  it("every node of ours in every example passes the editor's validators: no red triangle after an import", () => {
    const defs = editorDefinitions();
    assert.deepEqual([...defs.keys()].sort(), [
      "sms-balance",
      "sms-config",
      "sms-guard",
      "sms-oncall",
      "sms-receive",
      "sms-send",
    ]);
    const found: string[] = [];
    for (const f of files) {
      const flow = read(f);
      for (const n of flow.filter((n) => defs.has(n.type)))
        for (const p of editorProblems(n, flow, defs)) found.push(`"${f}" ${n.type} ${String(n.name ?? n.id)}: ${p}`);
    }
    assert.deepEqual(found, []);
  });

  it("02's comment says what the code does with a space: it separates entries in a string, not in an array element", () => {
    const [note] = notes(read(numbered("02")));
    const [en, zh] = [note.en.info, note.zh.info];
    assert.ok(en.includes("`+86 138 0013 8000`") && /\bfour\b/.test(en), en);
    assert.match(en, /array element/);
    assert.ok(zh.includes("`+86 138 0013 8000`") && /四/.test(zh) && /数组/.test(zh), zh);
    assert.doesNotMatch(en, /normalised \(\+86, spaces, dashes\)/, "the old claim");
  });
});

describe("examples/ (in Node-RED)", () => {
  let sim: Simulator;
  beforeEach(async () => {
    sim = await startSimulator({ reportDelayMs: 10_000 });
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
  });

  async function waitFor(what: string, cond: () => boolean, ms = 8000): Promise<void> {
    for (const until = Date.now() + ms; !cond(); await sleep(20))
      if (Date.now() > until) throw new Error(`waited ${ms} ms for ${what}`);
  }

  it("every node type of the package appears in an example (Flow Library N02)", () => {
    const types = new Set(files.flatMap((f) => read(f).map((n) => n.type)));
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "../../package.json"), "utf8")) as {
      "node-red": { nodes: Record<string, string> };
    };
    const ours = Object.keys(pkg["node-red"].nodes);
    assert.ok(ours.includes("sms-guard"));
    for (const t of ours) assert.ok(types.has(t), t);
  });

  for (const f of files) {
    it(`"${f}" starts in Node-RED with a comment node and no credentials inside`, async () => {
      const flow = await loadExample(f, sim.url);
      assert.ok(
        flow.some((n) => n.type === "comment"),
        "has a comment node",
      );
      assert.ok(!JSON.stringify(flow).includes('"credentials"'));
      for (const n of flow.filter((n) => n.type !== "tab"))
        assert.ok(helper.getNode(n.id), `${n.type} ${n.id} started`);
    });
  }

  it("all examples imported together: one account, and every sms-receive takes its own pushes", async () => {
    const flow = await loadFlow(imported(), sim.url);
    assert.equal(flow.filter((n) => n.type === "sms-config").length, 1, "one account");
    const receivers = flow.filter((n) => n.type === "sms-receive");
    const pushed = new Map<string, number>(receivers.map((r) => [r.id, 0]));
    for (const r of receivers) {
      const node = helper.getNode(r.id) as unknown as NodeJS.EventEmitter & { status: unknown };
      node.on("call:send", () => pushed.set(r.id, pushed.get(r.id)! + 1));
      const statusSpy = node.status as unknown as { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> };
      const own = statusSpy.getCalls().filter((c) => c.thisValue === node);
      assert.ok(own.length > 0);
      const tab = flow.find((t) => t.id === r.z)?.label;
      for (const c of own) assert.doesNotMatch(JSON.stringify(c.args), /pathInUse/, `${r.path} in "${tab}"`);
    }
    for (const [i, r] of receivers.entries()) {
      const report = { msgid: `99000${i}`, mobile: "13800138000", status: "DELIVRD", reportTime: "20250101120000" };
      await supertest(captured.httpNode!)
        .get(r.path as string)
        .query(report)
        .expect(200, "OK");
      await waitFor(`${r.path} to emit its report`, () => pushed.get(r.id) === 1);
    }
    await sleep(100); // nothing more arrives: each push reached exactly one node
    assert.deepEqual([...pushed.values()], Array(receivers.length).fill(1));
  });

  it('"01 - Send an alert" sends the alert text through the simulator', async () => {
    const flow = await loadExample(numbered("01"), sim.url);
    const inject = flow.find((n) => n.type === "inject")!;
    helper.getNode(inject.id).receive({} as never);
    for (let i = 0; i < 100 && sim.requests.length === 0; i++) await sleep(20);
    assert.equal(sim.requests.length, 1);
    assert.equal(sim.requests[0].code, 0);
    assert.equal(sim.requests[0].params.msg, "【朗宇信息】Alarm boiler-1: temperature 85°C");
  });

  it('"02 - Bulk send" sends its list normalised and de-duplicated, in one request', async () => {
    const flow = await loadExample(numbered("02"), sim.url);
    helper.getNode(flow.find((n) => n.type === "inject")!.id).receive({} as never);
    await waitFor("the send", () => sim.requests.length > 0);
    assert.equal(sim.requests[0].params.mobile, "13800138000,13900139000,13700137000");
  });

  it("02's comment holds: a string `+86 138 0013 8000` is four entries, an array element one number", async () => {
    const flow = await loadExample(numbered("02"), sim.url);
    const send = helper.getNode(flow.find((n) => n.type === "sms-send")!.id);
    const failed: Array<{ payload: { code: string; invalid: string[] } }> = [];
    const caught = helper.getNode(named(flow, "failed").id) as unknown as NodeJS.EventEmitter;
    caught.on("input", (m) => failed.push(m));
    send.receive({ payload: "notice", mobile: "+86 138 0013 8000" } as never);
    await waitFor("the error", () => failed.length === 1);
    assert.equal(failed[0].payload.code, "INVALID_MOBILE");
    assert.deepEqual(failed[0].payload.invalid, ["+86", "138", "0013", "8000"]);
    send.receive({ payload: "notice", mobile: ["+86 138 0013 8000", "139-0013-9000"] } as never);
    await waitFor("the send", () => sim.requests.length > 0);
    assert.equal(sim.requests[0].params.mobile, "13800138000,13900139000");
  });

  describe("the offline tries the comments give", () => {
    let server: http.Server;
    beforeEach(async () => {
      await sim.close();
      sim = await startSimulator({ reportDelayMs: 20 });
    });
    afterEach(async () => {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    });
    /** Node-RED's HTTP node server on a real port, as the simulator pushes to it. */
    async function listen(): Promise<string> {
      server = http.createServer(captured.httpNode!);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }
    const received = (id: string) => {
      const msgs: Array<Record<string, unknown>> = [];
      (helper.getNode(id) as unknown as NodeJS.EventEmitter).on("input", (m) => msgs.push(m));
      return msgs;
    };

    it("04: a send from example 01 (same account) comes back to 04 as a delivery report", async () => {
      const flow = await loadFlow(imported([numbered("01"), numbered("04")]), sim.url);
      const receive = flow.find((n) => n.type === "sms-receive")!;
      sim.reportUrl = (await listen()) + receive.path;
      const sent = received(named(flow, "sent").id);
      const delivered = received(named(flow, "delivered").id);
      helper.getNode(flow.find((n) => n.type === "inject")!.id).receive({} as never);
      await waitFor("the report in 'delivered'", () => delivered.length === 1);
      assert.equal(delivered[0].msgid, sent[0].msgid);
    });

    it("05: the comment's curl makes the simulator push an inbound SMS, and 05 answers it", async () => {
      const flow = await loadExample(numbered("05"), sim.url);
      const receive = flow.find((n) => n.type === "sms-receive")!;
      sim.moUrl = (await listen()) + receive.path;
      const en = notes(flow)[0].en.info;
      const [, simPath, body] = /`curl -X POST http:\/\/127\.0\.0\.1:18080(\S+) -d '([^']+)'`/.exec(en)!;
      assert.equal((await fetch(sim.url + simPath, { method: "POST", body })).status, 200);
      await waitFor("the reply", () => sim.requests.length === 1);
      assert.equal(sim.requests[0].params.mobile, "13800138000");
      assert.equal(sim.requests[0].params.msg, "【朗宇信息】Thanks, we received: hello");
    });
  });
});
