import assert from "node:assert/strict";
import fc from "fast-check";
import Mustache from "mustache";
import {
  compileTemplate,
  errorReason,
  MAX_RENDER_STEPS,
  MAX_SECTION_DEPTH,
  MAX_TEMPLATE_LENGTH,
  renderLikeMustache,
  type Template,
} from "../../../src/lib/alerts/template";
import { SmsError } from "../../../src/lib/errors";

function thrown(fn: () => unknown): SmsError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SmsError, `not an SmsError: ${String(e)}`);
    return e;
  }
  throw new Error("did not throw");
}

const render = (source: string, view: object) => compileTemplate(source).render(view);

describe("lib/alerts/template", () => {
  describe("rendering", () => {
    it("fills dotted names and top-level names from the msg", () => {
      const msg = { topic: "boiler 3", payload: { temperature: 93.5, sensor: { id: "T-17" } } };
      assert.equal(
        render("{{topic}}: {{payload.temperature}}°C at {{payload.sensor.id}}", msg),
        "boiler 3: 93.5°C at T-17",
      );
    });

    it("writes numbers, zero and booleans as Mustache does", () => {
      assert.equal(
        render("{{a}}|{{b}}|{{c}}|{{d}}|{{e}}", { a: 0, b: -1.25, c: 1e21, d: false, e: true }),
        "0|-1.25|1e+21|false|true",
      );
    });

    it("never escapes: < & \" ' / = ` stay as they are, in every tag form", () => {
      const view = { payload: `<b>A&B "quoted" 'single' a/b c=d \`x\`</b>` };
      const raw = view.payload;
      assert.equal(render("{{payload}}", view), raw);
      assert.equal(render("{{{payload}}}", view), raw);
      assert.equal(render("{{&payload}}", view), raw);
      assert.equal(render("{{#payload}}{{.}}{{/payload}}", view), raw);
    });

    it("leaves Mustache's global escape and template cache alone", () => {
      const escape = Mustache.escape;
      const cacheSize = () => Object.keys((Mustache.templateCache as unknown as { _cache: object })._cache).length;
      const before = cacheSize();
      for (let i = 0; i < 50; i++) render(`{{x}} ${i} <&>`, { x: "<" });
      assert.equal(Mustache.escape, escape);
      assert.equal(Mustache.render("{{x}}", { x: "<&>" }), "&lt;&amp;&gt;");
      // Every distinct msg.template would otherwise stay in Mustache's process-wide cache forever.
      assert.equal(cacheSize(), before + 1);
    });

    it("sections: truthy, falsy, lists, objects, and names resolved in the section first, then outside", () => {
      const view = {
        topic: "outer",
        payload: {
          alarm: true,
          quiet: false,
          zero: 0,
          empty: [],
          items: [{ name: "pump", topic: "inner" }, { name: "fan" }],
          tags: ["a", "b"],
          sensor: { id: "S1" },
        },
      };
      assert.equal(render("{{#payload.alarm}}ALARM {{topic}}{{/payload.alarm}}", view), "ALARM outer");
      assert.equal(render("[{{#payload.quiet}}x{{/payload.quiet}}{{#payload.zero}}y{{/payload.zero}}]", view), "[]");
      assert.equal(render("[{{#payload.empty}}x{{/payload.empty}}]", view), "[]");
      assert.equal(render("{{#payload.items}}{{name}}/{{topic}};{{/payload.items}}", view), "pump/inner;fan/outer;");
      assert.equal(render("{{#payload.tags}}<{{.}}>{{/payload.tags}}", view), "<a><b>");
      assert.equal(render("{{#payload.sensor}}{{id}}{{/payload.sensor}}", view), "S1");
      assert.equal(render("{{#payload.absent}}never{{/payload.absent}}ok", view), "ok");
    });

    it("inverted sections render when the value is missing, false, empty or an empty list", () => {
      const view = { payload: { quiet: false, empty: [], text: "", list: [1], on: true } };
      assert.equal(
        render(
          "{{^payload.absent}}1{{/payload.absent}}{{^payload.quiet}}2{{/payload.quiet}}{{^payload.empty}}3{{/payload.empty}}{{^payload.text}}4{{/payload.text}}{{^payload.list}}5{{/payload.list}}{{^payload.on}}6{{/payload.on}}",
          view,
        ),
        "1234",
      );
    });

    it("keeps comments out, honours set delimiters and standalone lines", () => {
      assert.equal(render("a{{! a comment }}b", {}), "ab");
      assert.equal(render("{{=<% %>=}}<% payload %> {{not a tag}}", { payload: "x" }), "x {{not a tag}}");
      assert.equal(
        render("Alarms:\n{{#payload}}\n- {{.}}\n{{/payload}}\nend", { payload: ["a", "b"] }),
        "Alarms:\n- a\n- b\nend",
      );
    });

    it("renders an empty string value as nothing, without an error", () => {
      assert.equal(render("[{{payload}}]", { payload: "" }), "[]");
    });
  });

  describe("values that are no text", () => {
    it("a name that resolves to undefined or null is a TEMPLATE error naming it", () => {
      const e = thrown(() =>
        render("{{topic}}: {{payload.temperature}}", { topic: "t", payload: { temperature: null } }),
      );
      assert.equal(e.code, "TEMPLATE");
      assert.equal(e.details.variable, "payload.temperature");
      assert.match(e.message, /\{\{payload\.temperature\}\}/);
      const e2 = thrown(() => render("{{payload.temperatur}}", { payload: { temperature: 1 } }));
      assert.match(e2.message, /\{\{payload\.temperatur\}\}/);
    });

    it("names every missing variable of one rendering, once each, in template order", () => {
      const e = thrown(() => render("{{b}} {{a}} {{b}} {{c}}", { c: 1 }));
      assert.deepEqual(e.details.variables, ["b", "a"]);
      assert.match(e.message, /\{\{b\}\}, \{\{a\}\}/);
    });

    it("an object or a list rendered as a value is a TEMPLATE error, never [object Object]", () => {
      for (const [source, variable] of [
        ["{{payload}}", "payload"],
        ["{{payload.list}}", "payload.list"],
        ["{{.}}", "."],
      ] as const) {
        const e = thrown(() => render(source, { payload: { list: [1, 2] } }));
        assert.equal(e.code, "TEMPLATE");
        assert.equal(e.details.variable, variable);
        assert.equal((e.details.problems as { kind: string }[])[0].kind, "notText");
      }
    });

    it("a missing {{.}} inside a section names the section it is in", () => {
      const e = thrown(() => render("{{#payload.list}}{{.}}{{/payload.list}}", { payload: { list: ["a", null] } }));
      assert.equal(e.details.variable, ".");
      assert.deepEqual((e.details.problems as { within: string[] }[])[0].within, ["payload.list"]);
      assert.match(e.message, /\{\{\.\}\} \(in section payload\.list\)/);
    });

    it("a function in the msg is refused and never called; a throwing getter is reported", () => {
      let calls = 0;
      const fn = () => {
        calls++;
        return "ran";
      };
      const view = {
        res: { end: fn },
        list: [fn],
        get bad(): string {
          throw new Error("boom");
        },
      };
      for (const source of [
        "{{res.end}}",
        "{{#res.end}}x{{/res.end}}",
        "{{^res.end}}x{{/res.end}}",
        "{{#list}}{{.}}{{/list}}",
      ]) {
        const r = compileTemplate(source).tryRender(view);
        assert.equal(r.ok, source.startsWith("{{^"), source);
        if (!r.ok) assert.equal(r.problems?.[0].kind, "notText");
      }
      assert.equal(calls, 0);
      const e = thrown(() => render("{{bad}}", view));
      assert.equal(e.code, "TEMPLATE");
      assert.equal(e.details.variable, "bad");
      assert.match(e.message, /could not be read: \{\{bad\}\} \(boom\)/);
    });

    it("a name inside a section over a null list item has no value (Mustache itself throws a TypeError there)", () => {
      const view = { payload: { items: [{ name: "pump" }, null] } };
      assert.throws(() => Mustache.render("{{#payload.items}}{{name}}{{/payload.items}}", view), TypeError);
      const e = thrown(() => render("{{#payload.items}}{{name}}{{/payload.items}}", view));
      assert.deepEqual(e.details.problems, [{ variable: "name", within: ["payload.items"], kind: "missing" }]);
    });

    it("tryRender reports problems without throwing, with the section path", () => {
      const t = compileTemplate("{{#a}}{{#b}}{{x}}{{/b}}{{/a}}");
      const r = t.tryRender({ a: { b: [{}] } });
      assert.equal(r.ok, false);
      if (!r.ok) assert.deepEqual(r.problems, [{ variable: "x", within: ["a", "b"], kind: "missing" }]);
    });

    it("messages exist in zh-CN", () => {
      const e = thrown(() => compileTemplate("{{x}}").render({}, "zh-CN"));
      assert.match(e.message, /模板变量没有值：\{\{x\}\}/);
    });
  });

  describe("bounded rendering (SPEC B9a)", () => {
    /** A list of `n` items whose `v` counts its reads: how far a rendering went. */
    function counted(n: number, piece: string) {
      const reads = { n: 0 };
      const item = {
        get v() {
          reads.n++;
          return piece;
        },
      };
      return { reads, items: Array.from({ length: n }, () => item) };
    }

    it("stops as soon as the text (prefix included) is past the limit: a list of 100,000 items is read up to it", () => {
      const { reads, items } = counted(100_000, "ab");
      const t = compileTemplate("{{#items}}{{v}}{{/items}}");
      const r = t.tryRender({ items }, "【签】", 703);
      assert.deepEqual(r, { ok: false, problems: null, tooLong: true, blank: false });
      // 3 for the prefix, 2 per item: the item that takes the text past 703 is the last one read.
      assert.equal(reads.n, 351);
      assert.deepEqual(t.tryRender({ items: items.slice(0, 350) }, "【签】", 703), {
        ok: true,
        text: "【签】" + "ab".repeat(350),
      });
    });

    it("stops at a value before joining it: a 100,000-character value is never copied into a text", () => {
      const big = "x".repeat(100_000);
      const t = compileTemplate("Dear {{name}}, {{payload.big}}");
      assert.deepEqual(t.tryRender({ name: "Li", payload: { big } }, "", 700), {
        ok: false,
        problems: null,
        tooLong: true,
        blank: false,
      });
      assert.equal(t.renderWithin({ name: "Li", payload: { big } }, 700), null);
      assert.equal(t.renderWithin({ name: "Li", payload: { big: "ok" } }, 700), "Dear Li, ok");
    });

    it("a text of only whitespace past the limit is blank (empty for the checks), and one with more is not", () => {
      const t = compileTemplate("{{#items}}{{v}}{{/items}}{{tail}}");
      const spaces = counted(1000, " \u3000\t");
      assert.deepEqual(t.tryRender({ items: spaces.items, tail: "" }, "【签】", 10), {
        ok: false,
        problems: null,
        tooLong: true,
        blank: true,
      });
      assert.equal(t.renderWithin({ items: spaces.items, tail: " " }, 10), "");
      const late = counted(1000, " ");
      assert.deepEqual(t.tryRender({ items: late.items, tail: "x" }, "", 10), {
        ok: false,
        problems: null,
        tooLong: true,
        blank: false,
      });
    });

    it("problems found before the limit win over it", () => {
      const t = compileTemplate("{{missing}}{{#items}}{{v}}{{/items}}");
      const r = t.tryRender({ items: counted(1000, "ab").items }, "", 10);
      assert.equal(r.ok, false);
      assert.deepEqual(!r.ok && r.problems, [{ variable: "missing", within: [], kind: "missing" }]);
    });

    it(`sections over a list nested in sections over it stop after ${MAX_RENDER_STEPS} steps: a TEMPLATE error naming them`, () => {
      // 400³ = 64,000,000 item steps writing nothing: without a budget, seconds of a blocked event loop.
      const a = Array.from({ length: 400 }, () => ({}));
      const t = compileTemplate("x{{#a}}{{#a}}{{#a}}{{/a}}{{/a}}{{/a}}");
      const r = t.tryRender({ a });
      assert.equal(r.ok, false);
      assert.deepEqual(!r.ok && r.problems, [{ variable: "a", within: ["a", "a"], kind: "work" }]);
      for (const [lang, text] of [
        ["en-US", /more than 100000 steps to render, in \{\{#a\}\} › \{\{#a\}\} › \{\{#a\}\}/],
        ["zh-CN", /模板渲染超过 100000 步，位于 \{\{#a\}\} › \{\{#a\}\} › \{\{#a\}\}/],
      ] as const) {
        const e = thrown(() => t.render({ a }, lang));
        assert.equal(e.code, "TEMPLATE");
        assert.match(e.message, text);
      }
      // Steps run out at the top level too (here just after a section took all but one): the
      // template as a whole is named.
      const e = thrown(() => compileTemplate("{{#a}}{{/a}}x").render({ a: new Array(MAX_RENDER_STEPS - 1).fill(1) }));
      assert.match(e.message, /in the template/);
      assert.equal(compileTemplate("{{#a}}{{/a}}x").render({ a: new Array(MAX_RENDER_STEPS - 2).fill(1) }), "x");
    });

    it(`a template longer than ${MAX_TEMPLATE_LENGTH} characters is a TEMPLATE error (parsing takes time in proportion)`, () => {
      assert.equal(
        compileTemplate("{{v}}" + "x".repeat(MAX_TEMPLATE_LENGTH - 5)).render({ v: "" }).length,
        MAX_TEMPLATE_LENGTH - 5,
      );
      for (const [lang, text] of [
        ["en-US", /^The template is 500000 characters long; at most 10000 are allowed$/],
        ["zh-CN", /^模板长度为 500000 个字符，最多允许 10000 个$/],
      ] as const) {
        const e = thrown(() => compileTemplate("{{payload}}".repeat(45_454) + "{{x}}x", lang));
        assert.equal(e.code, "TEMPLATE");
        assert.match(e.message, text);
      }
    });

    it("a list of ordinary length is no work: 20,000 items, most of them writing nothing", () => {
      const items = Array.from({ length: 20_000 }, (_, i) => ({ alarm: i % 5000 === 0, name: `p${i}` }));
      const text = render("{{#payload.items}}{{#alarm}}{{name}} {{/alarm}}{{/payload.items}}", { payload: { items } });
      assert.equal(text, "p0 p5000 p10000 p15000 ");
    });

    it(`sections nested more than ${MAX_SECTION_DEPTH} deep are a TEMPLATE error when compiled`, () => {
      const nest = (n: number) => "{{#a}}".repeat(n) + "x" + "{{/a}}".repeat(n);
      assert.equal(compileTemplate(nest(MAX_SECTION_DEPTH)).render({ a: true }), "x");
      for (const n of [MAX_SECTION_DEPTH + 1, 800]) {
        const e = thrown(() => compileTemplate(nest(n)));
        assert.equal(e.code, "TEMPLATE");
        assert.match(e.message, /more than 50 deep/);
      }
      assert.match(thrown(() => compileTemplate(nest(51), "zh-CN")).message, /超过 50 层/);
    });

    it("a list that cannot be read (a proxy whose traps throw) is a `failed` problem, never a throw", () => {
      const list = new Proxy([1, 2], {
        get(target, key) {
          if (key === "length") throw new Error("no length");
          return Reflect.get(target, key) as unknown;
        },
      });
      const r = compileTemplate("{{#list}}{{.}}{{/list}}").tryRender({ list });
      assert.equal(r.ok, false);
      assert.deepEqual(!r.ok && r.problems, [{ variable: "list", within: [], kind: "failed", reason: "no length" }]);
    });

    it("errorReason never throws and is bounded, whatever was thrown", () => {
      const nasty = Object.create(Error.prototype, {
        message: {
          get() {
            throw new Error("again");
          },
        },
      }) as Error;
      const noString = {
        toString() {
          throw new Error("no");
        },
      };
      assert.equal(errorReason(nasty), "?");
      assert.equal(errorReason(noString), "?");
      assert.equal(errorReason(Object.create(null)), "?");
      assert.equal(errorReason(new Error("x".repeat(1000))), "x".repeat(200) + "…");
      assert.equal(errorReason(42), "42");
      // A getter throwing such a value is still reported as a problem, not thrown.
      const r = compileTemplate("{{bad}}").tryRender({
        get bad() {
          throw nasty;
        },
      });
      assert.deepEqual(!r.ok && r.problems, [{ variable: "bad", within: [], kind: "failed", reason: "?" }]);
    });
  });

  describe("syntax", () => {
    const cases: [string, RegExp, RegExp][] = [
      ["{{#a}}x", /section \{\{#a\}\} is never closed: add \{\{\/a\}\}/, /区块 \{\{#a\}\} 没有结束标签/],
      ["{{#a}}x{{/b}}", /section \{\{#a\}\} is closed by "\{\{\/b\}\}" \(character 8\)/, /第 8 个字符/],
      ["x{{/a}}", /"\{\{\/a\}\}" \(character 2\) closes a section that was never opened/, /“\{\{\/a\}\}”/],
      ["Temp {{payload.t", /tag that is never closed: "\{\{payload\.t" \(character 6\)/, /“\{\{payload\.t”/],
      ["{{{x}}", /never closed: "\{\{\{x\}\}" \(character 1\)/, /“\{\{\{x\}\}”/],
      ["{{> footer}}", /partial \{\{>footer\}\}/, /\{\{>footer\}\}/],
      ["{{= =}}", /not valid: Invalid tags/, /无效/],
    ];
    for (const [source, en, zh] of cases) {
      it(`refuses ${JSON.stringify(source)} with a TEMPLATE error that says why`, () => {
        const e = thrown(() => compileTemplate(source));
        assert.equal(e.code, "TEMPLATE");
        assert.match(e.message, en);
        assert.match(thrown(() => compileTemplate(source, "zh-CN")).message, zh);
      });
    }

    it("refuses a template that is not a string", () => {
      const e = thrown(() => compileTemplate({ text: "x" }));
      assert.equal(e.code, "TEMPLATE");
      assert.match(e.message, /must be a string, got object/);
    });
  });

  describe("variables", () => {
    it("lists the names a template uses, in order, once each, with their kind and enclosing sections", () => {
      const t = compileTemplate(
        "{{topic}} {{{payload.v}}} {{&payload.v}} {{#payload.items}}{{name}}{{^ok}}!{{/ok}}{{/payload.items}}{{! c }}{{topic}}",
      );
      assert.deepEqual(t.variables, [
        { name: "topic", kind: "value", within: [] },
        { name: "payload.v", kind: "value", within: [] },
        { name: "payload.items", kind: "section", within: [] },
        { name: "name", kind: "value", within: ["payload.items"] },
        { name: "ok", kind: "inverted", within: ["payload.items"] },
      ]);
      assert.deepEqual(compileTemplate("plain text").variables, []);
    });
  });

  describe("agrees with Mustache.render", () => {
    const names = ["a", "b", "a.b", "b.c", "list", "."];
    // Templates of text, values, sections and inverted sections, nested up to three deep.
    const { template } = fc.letrec<{ template: string; part: string }>((tie) => ({
      template: fc.array(tie("part"), { maxLength: 5 }).map((parts) => parts.join("")),
      part: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.constantFrom("x", " ", "<&>", "\n", '"'),
        fc.constantFrom(...names).map((n) => `{{${n}}}`),
        fc.constantFrom(...names).map((n) => `{{{${n}}}}`),
        fc
          .tuple(fc.constantFrom("#", "^"), fc.constantFrom("a", "b", "a.b", "list"), tie("template"))
          .map(([k, n, inner]) => `{{${k}${n}}}${inner}{{/${n}}}`),
      ),
    }));
    const leaf = fc.oneof(
      fc.constantFrom(null, undefined, true, false, 0, 1, "", "v", "<&>"),
      fc.integer(),
      fc.string({ maxLength: 3 }),
    );
    const view = fc.letrec<{ value: unknown; obj: Record<string, unknown> }>((tie) => ({
      value: fc.oneof({ depthSize: "small" }, leaf, tie("obj"), fc.array(tie("value"), { maxLength: 3 })),
      obj: fc.record(
        { a: tie("value"), b: tie("value"), c: tie("value"), list: fc.array(tie("value"), { maxLength: 3 }) },
        { requiredKeys: [], noNullPrototype: true },
      ),
    })).obj;

    it("on random templates and views: same text whenever ours renders, and the same text as Mustache when told to fill in", () => {
      fc.assert(
        fc.property(template, view, (source, v) => {
          const t: Template = compileTemplate(source);
          let expected: string;
          try {
            expected = Mustache.render(source, v, {}, { escape: (s: unknown) => String(s) });
          } catch (e) {
            // Mustache throws for a name in a section over a null list item: ours reports it.
            assert.throws(() => renderLikeMustache(t, v), { message: (e as Error).message });
            assert.equal(t.tryRender(v).ok, false);
            return;
          }
          assert.equal(renderLikeMustache(t, v), expected);
          const r = t.tryRender(v);
          if (r.ok) assert.equal(r.text, expected);
        }),
        { numRuns: 3000 },
      );
    });

    it("on random names through objects, lists, strings, numbers and prototypes: the same values", () => {
      const name = fc
        .array(fc.constantFrom("a", "b", "list", "length", "0", "1", "constructor", "name", "toString", ""), {
          minLength: 1,
          maxLength: 4,
        })
        // Functions (Object.prototype's) are walked through but never the value: Mustache calls
        // those, we refuse them (tested above).
        .filter((steps) => !["constructor", "toString"].includes(steps[steps.length - 1]))
        .map((steps) => steps.join("."));
      fc.assert(
        fc.property(fc.oneof(name, fc.constantFrom(".", ".a", "a.", "__proto__")), view, (n, v) => {
          for (const source of [`{{{${n}}}}`, `[{{#${n}}}x{{/${n}}}]`, `[{{^${n}}}x{{/${n}}}]`]) {
            let t: Template;
            try {
              t = compileTemplate(source);
            } catch {
              continue; // e.g. a name Mustache cannot close
            }
            const expected = Mustache.render(source, v, {}, { escape: (s: unknown) => String(s) });
            assert.equal(renderLikeMustache(t, v), expected, source);
          }
        }),
        { numRuns: 3000 },
      );
    });

    it("templates without sections (rendered in one pass) on random views: the same text, and the same problems with a prefix", () => {
      const flat = fc
        .array(
          fc.oneof(
            fc.constantFrom("x", " ", "<&>", "\n", "您好"),
            fc.constantFrom(...names, "list.length", "a.a.b", "c").map((n) => `{{${n}}}`),
            fc.constantFrom(...names).map((n) => `{{&${n}}}`),
            fc.constant("{{! note }}"),
          ),
          { maxLength: 8 },
        )
        .map((parts) => parts.join(""));
      fc.assert(
        fc.property(flat, view, fc.constantFrom("", "【签名】", "{{a}}"), (source, v, prefix) => {
          const t = compileTemplate(source);
          let expected: string;
          try {
            expected = Mustache.render(source, v, {}, { escape: (s: unknown) => String(s) });
          } catch (e) {
            assert.throws(() => renderLikeMustache(t, v), { message: (e as Error).message });
            return;
          }
          assert.equal(renderLikeMustache(t, v), expected);
          const r = t.tryRender(v);
          const withPrefix = t.tryRender(v, prefix);
          if (r.ok) {
            assert.equal(r.text, expected);
            assert.deepEqual(withPrefix, { ok: true, text: prefix + expected });
          } else assert.deepEqual(withPrefix, r);
        }),
        { numRuns: 3000 },
      );
    });

    it("a prefix goes before the text with sections too, and is never rendered", () => {
      const t = compileTemplate("{{#list}}[{{.}}]{{/list}}{{^list}}none{{/list}}");
      assert.deepEqual(t.tryRender({ list: [1, "b"] }, "{{list}} "), { ok: true, text: "{{list}} [1][b]" });
      assert.deepEqual(t.tryRender({ list: [] }, "【签名】"), { ok: true, text: "【签名】none" });
    });

    it("on a fixed corpus, including dotted names through primitives and lists", () => {
      const corpus: [string, object][] = [
        ["{{a.length}} {{a.0}}", { a: "xyz" }],
        ["{{list.length}} {{list.1.n}}", { list: [{ n: 1 }, { n: 2 }] }],
        ["{{#a}}{{length}}{{/a}}", { a: "xyz", length: 9 }],
        ["{{#list}}{{#.}}[{{.}}]{{/.}}{{/list}}", { list: [["p", "q"], "r", 0] }],
        ["{{#a.b}}{{c}}{{/a.b}}", { a: { b: { c: "in" } }, c: "out" }],
        ["{{#a}}{{b.c}}{{/a}}", { a: { b: {} }, b: { c: "outer" } }],
        ["  {{#a}}\n  x\n  {{/a}}\n", { a: true }],
      ];
      for (const [source, v] of corpus) {
        const expected = Mustache.render(source, v, {}, { escape: (s: unknown) => String(s) });
        assert.equal(renderLikeMustache(compileTemplate(source), v), expected, source);
      }
      // A dotted name not found in the section is looked up outside it: Mustache's rule, ours too.
      assert.deepEqual(compileTemplate("{{#a}}{{b.c}}{{/a}}").tryRender({ a: { b: {} }, b: { c: "outer" } }), {
        ok: true,
        text: "outer",
      });
    });
  });
});
