// Templates and personalised texts in sms-send (SPEC B9), in a real Node-RED against the
// simulator: what the platform receives is what the tests look at.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startSimulator, type Simulator } from "../../src/simulator/simulator";
import { waitFor } from "../support/stub";
import { captured, collect, flowWith, helper, PASSWORD, sleep, type FlowNode } from "../support/nr";
import { loadWithCatalog, type Lang } from "./send-catalog";

const A = "13800138000";
const B = "13900139000";
const C = "13700137000";
const SIG = "【朗宇信息】";

type Payload = Record<string, unknown> & { code: unknown; batch: { index: number; count: number } };
type ErrorMsg = { payload: Payload; error: { message: string } };

const sendNode = (o: Record<string, unknown> = {}): FlowNode => ({
  id: "s",
  type: "sms-send",
  config: "cfg",
  mobile: A,
  needstatus: true,
  template: "",
  wires: [["out"]],
  ...o,
});

describe("nodes/sms-send templates and personalised texts (SPEC B9, against the simulator)", function () {
  this.timeout(30_000);
  let sim: Simulator;
  beforeEach(async () => {
    sim = await startSimulator({ accounts: [{ account: "demo", password: PASSWORD }] });
  });
  afterEach(async () => {
    await helper.unload();
    await sim.close();
  });

  async function start(send: Record<string, unknown> = {}, cfg: Record<string, unknown> = {}, lang: Lang = "en-US") {
    await loadWithCatalog(flowWith({ url: sim.url, signature: SIG, ...cfg }, [sendNode(send)]), lang);
    return { out: collect("out"), caught: collect("caught") };
  }
  const texts = () => sim.requests.map((r) => r.params.msg);
  const statusTexts = () =>
    (helper.getNode("s").status as unknown as { args: Array<[{ text?: string }]> }).args.map((a) => a[0]?.text ?? "");

  describe("rendering against the msg", () => {
    const cases: Array<[string, string, Record<string, unknown>, string]> = [
      [
        "dotted names",
        "{{topic}}: {{payload.sensor.name}} at {{payload.value}}°C",
        {
          topic: "boiler-1",
          payload: { sensor: { name: "T1" }, value: 85.5 },
        },
        "boiler-1: T1 at 85.5°C",
      ],
      [
        "numbers and booleans",
        "{{payload.count}} alarms, ack={{payload.ack}}, {{payload.zero}}",
        {
          payload: { count: 3, ack: false, zero: 0 },
        },
        "3 alarms, ack=false, 0",
      ],
      [
        "sections over a list and an inverted section",
        "{{#payload.items}}[{{name}}]{{/payload.items}}{{^payload.none}} none{{/payload.none}}",
        {
          payload: { items: [{ name: "a" }, { name: "b" }], none: [] },
        },
        "[a][b] none",
      ],
      [
        "no HTML escaping of < & \" '",
        "{{payload.text}} & {{{payload.text}}}",
        {
          payload: { text: `<b> & "q" 'x'` },
        },
        `<b> & "q" 'x' & <b> & "q" 'x'`,
      ],
      ["Chinese and emoji", "{{payload.who}}您好 😀", { payload: { who: "王先生" } }, "王先生您好 😀"],
    ];
    for (const [name, template, msg, text] of cases) {
      it(`${name}: ${JSON.stringify(text)}`, async () => {
        const { out } = await start({ template });
        helper.getNode("s").receive(msg as never);
        const [m] = await out.next();
        assert.deepEqual(texts(), [SIG + text]);
        assert.equal((m.payload as Payload).code, 0);
      });
    }

    it("msg.template overrides the node's; an empty msg.template sends msg.payload as it is", async () => {
      const { out } = await start({ template: "node: {{payload}}" });
      helper.getNode("s").receive({ payload: "x", template: "msg: {{payload}}" } as never);
      helper.getNode("s").receive({ payload: "{{not a template}}", template: "" } as never);
      helper.getNode("s").receive({ payload: "y" } as never);
      await out.next(3);
      assert.deepEqual(texts(), [`${SIG}msg: x`, `${SIG}{{not a template}}`, `${SIG}node: y`]);
    });
  });

  describe("validation before anything is sent", () => {
    for (const [lang, message] of [
      ["en-US", /\{\{payload\.temperature\}\}/],
      ["zh-CN", /\{\{payload\.temperature\}\}.*短信未发送|短信未发送.*\{\{payload\.temperature\}\}/],
    ] as const) {
      it(`a variable without a value is a TEMPLATE error naming it (${lang}); nothing is sent`, async () => {
        const { caught } = await start({ template: "{{topic}}: {{payload.temperature}}°C" }, {}, lang);
        helper.getNode("s").receive({ topic: "boiler", payload: { temp: 85 } } as never);
        const [m] = (await caught.next()) as unknown as ErrorMsg[];
        assert.equal(m.payload.code, "TEMPLATE");
        assert.equal(m.payload.ok, false);
        assert.equal(m.payload.variable, "payload.temperature");
        assert.match(m.error.message, message);
        assert.equal(sim.requests.length, 0);
      });
    }

    it("a recipient's missing field names the variable and the recipient; nobody gets an SMS", async () => {
      const { caught, out } = await start({ template: "{{recipient.name}}, your bill is {{recipient.amount}}" });
      const mobile = [
        { mobile: A, name: "王先生", amount: 12 },
        { mobile: B, amount: 30 },
        { mobile: C, name: "赵先生", amount: 7 },
      ];
      helper.getNode("s").receive({ payload: {}, mobile } as never);
      const [m] = (await caught.next()) as unknown as ErrorMsg[];
      assert.equal(m.payload.code, "TEMPLATE");
      assert.match(m.error.message, /\{\{recipient\.name\}\}/);
      assert.match(m.error.message, new RegExp(`msg\\.mobile\\[1\\] \\(${B}\\)`));
      assert.deepEqual(m.payload.recipients, [1]);
      await sleep(100);
      assert.equal(sim.requests.length, 0);
      assert.equal(out.msgs.length, 0);
    });

    it("zh-CN: the recipient is named in Chinese", async () => {
      const { caught } = await start({ template: "{{recipient.name}}您好" }, {}, "zh-CN");
      helper.getNode("s").receive({ payload: {}, mobile: [{ mobile: A }] } as never);
      const [m] = (await caught.next()) as unknown as ErrorMsg[];
      assert.equal(m.payload.code, "TEMPLATE");
      assert.match(m.error.message, /\{\{recipient\.name\}\}/);
      assert.match(m.error.message, new RegExp(A));
      assert.match(m.error.message, /[\u4e00-\u9fff]/);
      assert.equal(sim.requests.length, 0);
    });

    it("an over-long rendered text and an invalid number name the recipient; nothing is sent", async () => {
      const { caught } = await start({ template: "{{recipient.note}}" }, { maxLength: 20 });
      helper.getNode("s").receive({
        payload: {},
        mobile: [
          { mobile: A, note: "short" },
          { mobile: B, note: "x".repeat(30) },
        ],
      } as never);
      const [long] = (await caught.next()) as unknown as ErrorMsg[];
      assert.equal(long.payload.code, "MESSAGE_TOO_LONG");
      assert.match(long.error.message, new RegExp(`msg\\.mobile\\[1\\] \\(${B}\\)`));
      helper.getNode("s").receive({
        payload: {},
        mobile: [
          { mobile: A, note: "a" },
          { mobile: "12345", note: "b" },
        ],
      } as never);
      const [, bad] = (await caught.next(2)) as unknown as ErrorMsg[];
      assert.equal(bad.payload.code, "INVALID_MOBILE");
      assert.deepEqual(bad.payload.invalid, ["12345"]);
      assert.match(bad.error.message, /msg\.mobile\[1\] \(12345\)/);
      assert.equal(sim.requests.length, 0);
    });

    it("a broken node template is said at start, fails each send that uses it, and msg.template still works", async () => {
      const { caught, out } = await start({ template: "{{#alarm}}open" });
      const errors = (helper.getNode("s").error as unknown as { args: unknown[][] }).args.map((a) => String(a[0]));
      assert.ok(
        errors.some((e) => /\{\{#alarm\}\}/.test(e)),
        errors.join(" | "),
      );
      helper.getNode("s").receive({ payload: "x" } as never);
      const [m] = (await caught.next()) as unknown as ErrorMsg[];
      assert.equal(m.payload.code, "TEMPLATE");
      helper.getNode("s").receive({ payload: "x", template: "ok {{payload}}" } as never);
      await out.next();
      assert.deepEqual(texts(), [`${SIG}ok x`]);
    });
  });

  describe("personalised sends: msg.mobile as recipient objects", () => {
    it("equal texts share a request; requests in order of first appearance, one output each with its batch", async () => {
      const { out } = await start({ template: "{{recipient.name}}：{{payload.notice}}" });
      const mobile = [
        { mobile: A, name: "王先生" },
        { mobile: B, name: "李女士" },
        { mobile: C, name: "王先生" },
        { mobile: `+86${B}`, name: "李女士" }, // the same number and text again: sent once
      ];
      helper.getNode("s").receive({ payload: { notice: "明天停水" }, mobile, topic: "water" } as never);
      const msgs = await out.next(2);
      assert.deepEqual(
        sim.requests.map((r) => [r.params.mobile, r.params.msg]),
        [
          [`${A},${C}`, `${SIG}王先生：明天停水`],
          [B, `${SIG}李女士：明天停水`],
        ],
      );
      assert.deepEqual(
        msgs.map((m) => [(m.payload as Payload).batch, m.mobile, (m.payload as Payload).mobiles, m.topic]),
        [
          [{ index: 1, count: 2 }, [A, C], 2, "water"],
          [{ index: 2, count: 2 }, [B], 1, "water"],
        ],
      );
      assert.notEqual(msgs[0].msgid, msgs[1].msgid);
    });

    it("a plain number among recipient objects gets the template with an empty recipient", async () => {
      const { out } = await start({ template: "{{#recipient.name}}{{recipient.name}}，{{/recipient.name}}明天停水" });
      helper.getNode("s").receive({ payload: {}, mobile: [{ mobile: A, name: "王先生" }, B] } as never);
      await out.next(2);
      assert.deepEqual(texts(), [`${SIG}王先生，明天停水`, `${SIG}明天停水`]);
    });

    it("3 texts for 100,000 recipients: requests of at most 50,000 numbers, texts in order of first appearance", async function () {
      this.timeout(60_000);
      sim.configure({ account: "demo", products: { "1001": 1_000_000 } });
      const { out } = await start({ template: "{{recipient.plan}} 套餐将于 {{payload.due}} 续费" });
      // Interleaved: A 60,000, B 30,000, C 10,000; A first, then B, then C.
      const plans = (i: number) => (i % 10 < 6 ? "A" : i % 10 < 9 ? "B" : "C");
      const number = (i: number) => `1${3 + (i % 7)}${String(i).padStart(9, "0")}`;
      const mobile = Array.from({ length: 100_000 }, (_, i) => ({ mobile: number(i), plan: plans(i) }));
      helper.getNode("s").receive({ payload: { due: "4月15日" }, mobile } as never);
      const msgs = await out.next(4, 40_000);
      const expected = (plan: string) => mobile.filter((r) => r.plan === plan).map((r) => r.mobile);
      const a = expected("A");
      assert.deepEqual(
        sim.requests.map((r) => [r.params.msg, r.params.mobile.split(",").length]),
        [
          [`${SIG}A 套餐将于 4月15日 续费`, 50_000],
          [`${SIG}A 套餐将于 4月15日 续费`, 10_000],
          [`${SIG}B 套餐将于 4月15日 续费`, 30_000],
          [`${SIG}C 套餐将于 4月15日 续费`, 10_000],
        ],
      );
      assert.deepEqual(sim.requests[0].params.mobile.split(","), a.slice(0, 50_000));
      assert.deepEqual(sim.requests[1].params.mobile.split(","), a.slice(50_000));
      assert.deepEqual(sim.requests[2].params.mobile.split(","), expected("B"));
      assert.deepEqual(sim.requests[3].params.mobile.split(","), expected("C"));
      assert.deepEqual(
        msgs.map((m) => (m.payload as Payload).batch.index),
        [1, 2, 3, 4],
      );
      // No output carries the 100,000 recipient objects: each has its own request's numbers.
      assert.deepEqual(
        msgs.map((m) => (m.mobile as string[]).length),
        [50_000, 10_000, 30_000, 10_000],
      );
    });

    it("the account's rate paces the requests; the status shows the progress (n/N sent)", async () => {
      const { out } = await start({ template: "{{recipient.name}}您好" }, { rate: 2 });
      const mobile = [A, B, C].map((m, i) => ({ mobile: m, name: `用户${i}` }));
      helper.getNode("s").receive({ payload: {}, mobile } as never);
      await out.next(3);
      const at = sim.requests.map((r) => Date.parse(r.at));
      // 2 requests/s: started at least 500 ms apart (the arrival may shift by a few ms); each
      // step of the progress stays long enough for the status (shown at most every 100 ms).
      assert.ok(at[1] - at[0] >= 450 && at[2] - at[1] >= 450, `arrivals ${at.map((t) => t - at[0])}`);
      const shown = statusTexts();
      assert.ok(shown.includes("1/3 sent") && shown.includes("2/3 sent"), shown.join(" | "));
      await waitFor(() => statusTexts().at(-1) === (out.msgs[2].msgid as string), 5000, "the last msgid");
    });

    it("a failing request stops the rest; payload.unsent the numbers, unsentRecipients the objects surely not sent", async () => {
      // One SMS part of quota: the first request goes out, the second is refused (109).
      sim.configure({ account: "demo", products: { "1001": 1 } });
      const { out, caught } = await start({ template: "{{recipient.name}}您好" });
      const mobile = [
        { mobile: A, name: "甲" },
        { mobile: B, name: "乙" },
        { mobile: C, name: "丙", extra: 1 },
      ];
      helper.getNode("s").receive({ payload: {}, mobile } as never);
      const [m] = (await caught.next()) as unknown as ErrorMsg[];
      assert.equal(out.msgs.length, 1);
      assert.equal(m.payload.code, 109);
      assert.deepEqual(m.payload.batch, { index: 2, count: 3 });
      // SPEC B2: unsent holds numbers; a personalised send also gives the recipient objects back.
      assert.deepEqual(m.payload.unsent, [B, C]);
      assert.deepEqual(m.payload.unsentRecipients, [mobile[1], mobile[2]]);
      assert.match(m.error.message, /\(2 number\(s\) not sent\)/);
    });

    it("with tracking: one delivery summary per request", async () => {
      let server: http.Server | undefined;
      try {
        await loadWithCatalog(
          flowWith({ url: sim.url, signature: SIG }, [
            sendNode({
              template: "{{recipient.name}}您好",
              track: true,
              trackTimeout: "1",
              wires: [["out"], ["out2"]],
            }),
            {
              id: "r",
              type: "sms-receive",
              config: "cfg",
              path: "/sms/personal",
              reassemble: true,
              partTimeout: 600,
              wires: [[], []],
            },
          ]),
        );
        // Node-RED's HTTP node server (of this load) on a real port, for the simulator's reports.
        const listening = http.createServer(captured.httpNode!);
        server = listening;
        await new Promise<void>((r) => listening.listen(0, "127.0.0.1", r));
        sim.reportUrl = `http://127.0.0.1:${(listening.address() as AddressInfo).port}/sms/personal`;
        const out = collect("out");
        const out2 = collect("out2");
        const mobile = [
          { mobile: A, name: "甲" },
          { mobile: B, name: "乙" },
          { mobile: C, name: "甲" },
        ];
        helper.getNode("s").receive({ payload: {}, mobile, topic: "notice" } as never);
        const sent = await out.next(2);
        const summaries = await out2.next(2, 15_000);
        const byBatch = summaries
          .map((m) => m.payload as { msgid: string; delivered: string[]; complete: boolean; batch: { index: number } })
          .sort((x, y) => x.batch.index - y.batch.index);
        assert.deepEqual(
          byBatch.map((p) => [p.msgid, p.delivered, p.complete]),
          [
            [sent[0].msgid, [C, A].sort(), true],
            [sent[1].msgid, [B], true],
          ],
        );
        assert.ok(summaries.every((m) => m.topic === "notice"));
      } finally {
        await helper.unload();
        server?.closeAllConnections();
        await new Promise((r) => (server ? server.close(r) : r(undefined)));
      }
    });
  });
  describe("within bounds, and no input breaks the node (SPEC B9a, issue 22)", () => {
    const caughtOnce = async (caught: { msgs: unknown[]; next: (n?: number) => Promise<unknown[]> }) => {
      const [m] = (await caught.next()) as ErrorMsg[];
      await sleep(100);
      assert.equal(caught.msgs.length, 1, "one Catch");
      return m;
    };

    it("a template rendering 100,000 characters for each of 50,000 recipients: MESSAGE_TOO_LONG naming them, nothing sent", async function () {
      this.timeout(60_000);
      const { caught, out } = await start({ template: "{{recipient.name}}：{{payload.notice}}" });
      const mobile = Array.from({ length: 50_000 }, (_, i) => ({
        mobile: `139${String(i).padStart(8, "0")}`,
        name: "王",
      }));
      // Each text would be 100,000 characters: 5,000,000,000 in all (the process died of it).
      helper.getNode("s").receive({ payload: { notice: "停水".repeat(50_000) }, mobile } as never);
      const m = await caughtOnce(caught);
      assert.equal(m.payload.code, "MESSAGE_TOO_LONG");
      assert.equal(m.payload.outcomeUnknown, false);
      assert.equal((m.payload.recipients as number[]).length, 50_000);
      assert.match(
        m.error.message,
        /longer than 700 characters .* for 50000 recipient\(s\): msg\.mobile\[0\] \(13900000000\)/,
      );
      assert.equal(sim.requests.length, 0);
      assert.equal(out.msgs.length, 0);
      // The node goes on.
      helper.getNode("s").receive({ payload: { notice: "明天停水" }, mobile: mobile.slice(0, 2) } as never);
      await out.next();
      assert.deepEqual(texts(), [`${SIG}王：明天停水`]);
    });

    it("the same SMS to one person once: a text holding the signature and the same text without it are one request (issue 22)", async () => {
      const { out } = await start({ template: "{{recipient.text}}" }, { signature: "【朗宇】" });
      helper.getNode("s").receive({
        payload: {},
        mobile: [
          { mobile: "13800138000", text: "【朗宇】您好，明天停水" },
          { mobile: "+86 138 0013 8000", text: "您好，明天停水" },
        ],
      } as never);
      const [m] = await out.next();
      await sleep(100);
      assert.deepEqual(
        sim.requests.map((r) => [r.params.mobile, r.params.msg]),
        [["13800138000", "【朗宇】您好，明天停水"]],
      );
      assert.deepEqual(m.mobile, ["13800138000"]);
      assert.equal(out.msgs.length, 1);
    });

    const getter = (target: Record<string, unknown>, key: string): Record<string, unknown> =>
      Object.defineProperty(target, key, {
        enumerable: true,
        configurable: true,
        get() {
          throw new Error(`no ${key}`);
        },
      });
    const refused: Array<[string, () => Record<string, unknown>, Record<string, unknown>, string, RegExp]> = [
      [
        "msg.mobile = [{ mobile: { toString: 1 } }] (issue 22)",
        () => ({ payload: "x", mobile: [{ mobile: { toString: 1 } }] }),
        {},
        "INVALID_MOBILE",
        /msg\.mobile\[0\] \(\[object\]\); nothing was sent/,
      ],
      [
        "a getter that throws on msg.payload",
        () => getter({ mobile: A }, "payload"),
        {},
        "INVALID_PAYLOAD",
        /msg\.payload could not be read \(no payload\)/,
      ],
      [
        "a getter that throws on msg.mobile",
        () => getter({ payload: "x" }, "mobile"),
        {},
        "INVALID_MOBILE",
        /msg\.mobile could not be read/,
      ],
      [
        "a getter that throws on msg.template",
        () => getter({ payload: "x" }, "template"),
        {},
        "TEMPLATE",
        /msg\.template could not be read/,
      ],
      [
        "a getter that throws on msg.product",
        () => getter({ payload: "x" }, "product"),
        {},
        "INVALID_PAYLOAD",
        /msg\.product could not be read/,
      ],
      [
        "a getter that throws in a recipient's field the template reads",
        () => ({ payload: {}, mobile: [getter({ mobile: A }, "name")] }),
        { template: "{{recipient.name}}您好" },
        "TEMPLATE",
        /could not be read: \{\{recipient\.name\}\}, for 1 recipient\(s\): msg\.mobile\[0\] \(13800138000\) \(no name\)/,
      ],
      [
        "a getter that throws in a recipient's mobile",
        () => ({ payload: "x", mobile: [getter({}, "mobile"), { mobile: B }] }),
        {},
        "INVALID_MOBILE",
        /msg\.mobile\[0\]; nothing was sent/,
      ],
    ];
    for (const [name, make, node, code, message] of refused) {
      it(`${name}: ${code}, outcome known, nothing sent, one Catch; the node goes on`, async () => {
        const { caught, out } = await start(node);
        helper.getNode("s").receive(make() as never);
        const m = await caughtOnce(caught);
        assert.equal(m.payload.code, code);
        assert.equal(m.payload.ok, false);
        assert.equal(m.payload.outcomeUnknown, false);
        assert.match(m.error.message, message);
        assert.equal(sim.requests.length, 0);
        helper.getNode("s").receive({ payload: "ok", mobile: B, template: "" } as never);
        await out.next();
        assert.deepEqual(texts(), [`${SIG}ok`]);
      });
    }

    it("a frozen msg is sent, and its output is a copy carrying the result (never an error after the SMS left)", async () => {
      const { caught, out } = await start();
      helper.getNode("s").receive(Object.freeze({ payload: "x", mobile: A, topic: "t" }) as never);
      const [m] = await out.next();
      assert.equal((m.payload as Payload).code, 0);
      assert.equal(m.topic, "t");
      assert.deepEqual(m.mobile, [A]);
      assert.equal(sim.requests.length, 1);
      await sleep(100);
      assert.equal(caught.msgs.length, 0);
      // Refused before sending, a frozen msg reaches the Catch node with its failure all the same.
      helper.getNode("s").receive(Object.freeze({ payload: "x", mobile: "123" }) as never);
      const f = await caughtOnce(caught);
      assert.equal(f.payload.code, "INVALID_MOBILE");
    });

    it("a msg the runtime cannot copy for a second wire: sent once, one warning, no error", async () => {
      await loadWithCatalog(flowWith({ url: sim.url, signature: SIG }, [sendNode({ wires: [["out", "out2"]] })]));
      const out = collect("out");
      const out2 = collect("out2");
      const caught = collect("caught");
      helper.getNode("s").receive(getter({ payload: "x", mobile: A }, "secret") as never);
      await out.next();
      await waitFor(
        () => (helper.getNode("s").warn as unknown as { args: unknown[][] }).args.length > 0,
        5000,
        "a warning",
      );
      const warned = (helper.getNode("s").warn as unknown as { args: unknown[][] }).args.map((a) => String(a[0]));
      assert.match(warned[0], /The SMS was sent \(msgid \d+\), but the msg could not be copied/);
      await sleep(100);
      assert.equal(sim.requests.length, 1);
      assert.equal(caught.msgs.length, 0);
      assert.equal(out2.msgs.length, 0);
    });
  });
});
