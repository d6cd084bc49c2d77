// The config node's settings through a real Node-RED (the test helper), with the package's real
// en-US and zh-CN catalogs: the helper's own RED._ returns keys, which would hide what a user reads.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import type { NodeAPI } from "node-red";
import configNode = require("../../src/nodes/sms-config");
import balanceNode = require("../../src/nodes/sms-balance");
import * as numbers from "../../src/lib/platform/numbers";
import { checkNumber, checkOffset, CONFIG_RULES } from "../../src/lib/props";
import { helper, PASSWORD, spiesSeen } from "../support/nr";

const ROOT = path.resolve(__dirname, "../../..");
type Catalog = Record<string, unknown>;
type Lang = "en-US" | "zh-CN";

function catalog(lang: Lang, file: string): Catalog {
  return JSON.parse(fs.readFileSync(path.join(ROOT, "locales", lang, file), "utf8")) as Catalog;
}

/** Node-RED's message lookup: dotted key, `__name__` placeholders (no escaping). */
function translator(cat: Catalog) {
  return (key: string, params: Record<string, unknown> = {}): string => {
    const v = key.split(".").reduce<unknown>((o, k) => (o as Catalog | undefined)?.[k], cat);
    if (typeof v !== "string") return key;
    return v.replace(/__(\w+)__/g, (m, k: string) => (k in params ? String(params[k]) : m));
  };
}

/** A node module loaded with a RED whose `_` reads the given catalog. */
function withCatalog(mod: (RED: NodeAPI) => void, lang: Lang, file: string) {
  const _ = translator(catalog(lang, file));
  return (RED: NodeAPI) => mod(Object.create(RED, { _: { value: _ } }) as NodeAPI);
}

interface Seen {
  settings: Record<string, unknown>;
  warnings: string[];
  statuses: Array<{ fill?: string; shape?: string; text?: string }>;
}

const WARN = 30;

async function loadConfig(props: Record<string, unknown>, lang: Lang = "en-US"): Promise<Seen> {
  const flow = [{ id: "cfg", type: "sms-config", name: "acct", url: "http://127.0.0.1:9", ...props }];
  await helper.load(
    [withCatalog(configNode as never, lang, "sms-config.json")] as never,
    flow as never,
    { cfg: { account: "demo", password: PASSWORD } } as never,
  );
  return seen("cfg");
}

function seen(id: string): Seen {
  const node = helper.getNode(id) as unknown as {
    settings?: Record<string, unknown>;
    status: { getCalls(): Array<{ thisValue: { id: string }; args: unknown[] }>; args: unknown[][] };
  };
  const log = helper.log() as unknown as { args: Array<[{ level: number; id?: string; msg: unknown }]> };
  spiesSeen.push(log, node.status);
  return {
    settings: node.settings ?? {},
    warnings: log.args.filter(([e]) => e.level === WARN && e.id === id).map(([e]) => String(e.msg)),
    statuses: node.status
      .getCalls()
      .filter((c) => c.thisValue.id === id)
      .map((c) => c.args[0] as Seen["statuses"][number]),
  };
}

describe("nodes/settings: out-of-range values are clamped or refused, and said", () => {
  afterEach(() => helper.unload());

  // Each row: the property, what was typed, what the node uses, and the one log line that says so.
  const cases: Array<[string, unknown, unknown, string]> = [
    ["retries", "20", 10, 'Retries "20" is above the maximum 10; 10 is used instead'],
    ["retries", "-1", 3, 'Retries "-1" is below the minimum 0; the default 3 is used instead'],
    ["retries", "2.5", 3, 'Retries "2.5" is not a whole number; the default 3 is used instead'],
    ["timeout", "-5", 10000, 'Timeout (ms) "-5" is below the minimum 100; the default 10000 is used instead'],
    ["timeout", "abc", 10000, 'Timeout (ms) "abc" is not a number; the default 10000 is used instead'],
    ["timeout", 9_000_000, 600000, 'Timeout (ms) "9000000" is above the maximum 600000; 600000 is used instead'],
    ["rate", "-1", 10, 'Rate (req/s) "-1" is below the minimum 0; the default 10 is used instead'],
    ["rate", "0.0001", 0.001, 'Rate (req/s) "0.0001" is below the minimum 0.001; 0.001 is used instead'],
    ["queue", "-1", 10000, 'Queue "-1" is below the minimum 0; the default 10000 is used instead'],
    ["queue", "5000000", 1000000, 'Queue "5000000" is above the maximum 1000000; 1000000 is used instead'],
    ["maxLength", "0", 700, 'Max length "0" is below the minimum 1; the default 700 is used instead'],
    ["maxLength", "seven", 700, 'Max length "seven" is not a number; the default 700 is used instead'],
    [
      "tz",
      "+15:00",
      "+08:00",
      'Time offset "+15:00" is not a UTC offset from -14:00 to +14:00 (e.g. +08:00); the default +08:00 is used instead',
    ],
    ["mobileCheck", "DIGITS", "cn", 'Numbers "DIGITS" is not one of cn, digits; the default cn is used instead'],
  ];

  for (const [prop, given, used, line] of cases) {
    it(`${prop}: ${JSON.stringify(given)} → ${JSON.stringify(used)}, a yellow status and one log line`, async () => {
      const s = await loadConfig({ [prop]: given });
      assert.equal(s.settings[prop], used);
      assert.deepEqual(s.warnings, [line]);
      assert.equal(s.statuses.length, 1, `statuses: ${JSON.stringify(s.statuses)}`);
      assert.equal(s.statuses[0].fill, "yellow");
      assert.equal(s.statuses[0].shape, "ring");
      assert.ok(s.statuses[0].text?.includes(line.slice(0, line.indexOf(' "'))), s.statuses[0].text);
    });
  }

  it("tz +15:00 also leaves the offset at +08:00 for times", async () => {
    const s = await loadConfig({ tz: "+15:00" });
    assert.equal(s.settings.offsetMinutes, 480);
  });

  it("in-range and boundary values pass silently: queue 0, rate 0, retries 10, timeout 100", async () => {
    const s = await loadConfig({ queue: "0", rate: "0", retries: "10", timeout: "100", maxLength: "1", tz: "-14:00" });
    assert.equal(s.settings.queue, 0);
    assert.equal(s.settings.rate, 0);
    assert.equal(s.settings.retries, 10);
    assert.equal(s.settings.timeout, 100);
    assert.equal(s.settings.offsetMinutes, -840);
    assert.deepEqual(s.warnings, []);
    assert.deepEqual(s.statuses, []);
  });

  it("an absent or empty value is the default, silently", async () => {
    const s = await loadConfig({ retries: "", timeout: undefined, tz: "" });
    assert.equal(s.settings.retries, 3);
    assert.equal(s.settings.timeout, 10000);
    assert.equal(s.settings.offsetMinutes, 480);
    assert.deepEqual(s.warnings, []);
  });

  it("several problems: one log line each, one status naming them all", async () => {
    const s = await loadConfig({ retries: "20", timeout: "-5" });
    assert.equal(s.warnings.length, 2);
    assert.equal(s.statuses.length, 1);
    assert.match(s.statuses[0].text!, /Timeout \(ms\).*Retries|Retries.*Timeout \(ms\)/);
  });

  it("in zh-CN the log line and status are Chinese", async () => {
    const s = await loadConfig({ retries: "20", timeout: "-5" }, "zh-CN");
    assert.deepEqual(s.warnings.sort(), [
      "超时（毫秒）“-5”低于下限 100；将改用默认值 10000",
      "重试次数“20”超过上限 10；将改用 10",
    ]);
    assert.match(s.statuses[0].text!, /超时（毫秒）、重试次数|重试次数、超时（毫秒）/);
  });

  it("sms-balance: a negative threshold is refused (off) and said", async () => {
    const flow = [
      { id: "cfg", type: "sms-config", name: "acct", url: "http://127.0.0.1:9" },
      { id: "f1", type: "tab", label: "t" },
      { id: "b", type: "sms-balance", z: "f1", config: "cfg", threshold: "-100", wires: [] },
    ];
    await helper.load(
      [
        withCatalog(configNode as never, "en-US", "sms-config.json"),
        withCatalog(balanceNode as never, "en-US", "sms-balance.json"),
      ] as never,
      flow as never,
    );
    const s = seen("b");
    assert.deepEqual(s.warnings, ['Low below "-100" is below the minimum 0; the default 0 is used instead']);
    assert.equal(s.statuses[0]?.fill, "yellow");
  });
});

describe("the editor's copy of the rules (resources/cnsms-sms.js, built from src/lib)", () => {
  type Lib = {
    numbers: typeof import("../../src/lib/platform/numbers");
    text: typeof import("../../src/lib/platform/text");
    props: typeof import("../../src/lib/props");
  };
  let lib: Lib;
  afterEach(() => helper.unload());
  // Values made in the other context have its prototypes: compare them as plain data.
  const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

  before(() => {
    // A bare context: no require, module, Buffer or process, as in a browser page.
    const file = path.join(ROOT, "resources", "cnsms-sms.js");
    const win: Record<string, unknown> = {};
    vm.runInNewContext(fs.readFileSync(file, "utf8"), { window: win }, { filename: file });
    lib = win.CnsmsSms as Lib;
    assert.ok(lib, "the bundle defines window.CnsmsSms");
  });

  it("holds the compiled lib modules verbatim", () => {
    const bundle = fs.readFileSync(path.join(ROOT, "resources", "cnsms-sms.js"), "utf8");
    for (const m of ["platform/numbers", "platform/text", "props", "platform/time"]) {
      assert.ok(bundle.includes(fs.readFileSync(path.join(ROOT, "dist", "lib", `${m}.js`), "utf8")), m);
    }
  });

  it("is the runtime's code: same numbers, same segments, same setting rules", () => {
    const input = "１３８００１３８０００，＋８６ 139-0013-9000；\u200b13700137000\ufeff, 123";
    const entries = numbers.splitMobiles(input)!;
    assert.deepEqual(plain(lib.numbers.splitMobiles(input)), entries);
    assert.deepEqual(plain(lib.numbers.parseMobiles(entries, "cn")), numbers.parseMobiles(entries, "cn"));
    assert.deepEqual(plain(lib.text.prepareText("x".repeat(65), { signature: "【朗宇信息】" })), {
      ok: true,
      text: "【朗宇信息】" + "x".repeat(65),
      length: 71,
      segments: 2,
    });
    for (const [name, v] of [
      ["retries", "20"],
      ["timeout", "-5"],
      ["rate", "1e-9"],
      ["queue", "0"],
    ] as const) {
      assert.deepEqual(
        plain(lib.props.checkNumber(v, lib.props.CONFIG_RULES[name])),
        plain(checkNumber(v, CONFIG_RULES[name])),
      );
    }
    assert.deepEqual(plain(lib.props.checkOffset("+15:00")), plain(checkOffset("+15:00")));
  });

  it("the editor's validator text is the runtime's log line", async () => {
    const s = await loadConfig({ retries: "20" });
    const tr = translator(catalog("en-US", "sms-config.json"));
    const t = (key: string, params?: Record<string, string | number>) => tr(`sms-config.${key}`, params);
    const problem = lib.props.checkNumber("20", lib.props.CONFIG_RULES.retries).problem!;
    assert.deepEqual(s.warnings, [lib.props.describeProblem(problem, t("label.retries"), t)]);
  });
});
