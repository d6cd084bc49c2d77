// Mustache templates for SMS texts (SPEC B9). Runs in Node-RED and, bundled, in the editor: no
// Node-only API here (no Buffer, no node: imports); it needs only the `mustache` package.
import Mustache from "mustache";
import { localError, type SmsError } from "../errors";
import { t, type Lang } from "../i18n";

export type TemplateVariableKind = "value" | "section" | "inverted";

/** A name a template uses, as written; `within` lists the sections it sits in, outermost first. */
export interface TemplateVariable {
  name: string;
  kind: TemplateVariableKind;
  within: string[];
}

/**
 * Why a value could not go into the text: `missing` (undefined or null), `notText` (an object, a
 * list or a function), `failed` (reading it threw, e.g. a getter).
 */
export type TemplateProblemKind = "missing" | "notText" | "failed";

export interface TemplateProblem {
  variable: string;
  within: string[];
  kind: TemplateProblemKind;
  /** for `failed`: the error's message */
  reason?: string;
}

export type RenderResult = { ok: true; text: string } | { ok: false; problems: TemplateProblem[] };

/** One rendering that failed, and the recipient it was for (personalised sends). */
export interface RenderFailure {
  problems: TemplateProblem[];
  /** position in msg.mobile */
  index?: number;
  /** the recipient's number: normalised when valid, else as given ("" when it has none) */
  mobile?: string;
}

type TemplateNode =
  | { kind: "text"; text: string }
  | ({ kind: "value" } & NameNode)
  | ({ kind: "section"; inverted: boolean; children: TemplateNode[] } & NameNode);

type Token = [string, string, number, number, Token[]?, number?];

const TAGS: [string, string] = ["{{", "}}"];
// Our own writer with its cache off: Mustache's default writer keeps every template it ever parsed,
// and msg.template may differ on every message.
const writer = new Mustache.Writer();
(writer as unknown as { templateCache: undefined }).templateCache = undefined;

/** Problems kept in an error's details: enough to act on, bounded for a 100,000-recipient send. */
const MAX_DETAILED_PROBLEMS = 100;
const FAILED: unique symbol = Symbol("failed");

class RenderRun {
  problems: TemplateProblem[] | null = null;
  private keys: Set<string> | null = null;
  constructor(readonly lenient: boolean) {}

  add(node: { name: string; within: string[] }, kind: TemplateProblemKind, reason?: string): void {
    const key = `${kind}\u0000${node.within.join("\u0000")}\u0000${node.name}`;
    this.keys ??= new Set();
    if (this.keys.has(key)) return;
    this.keys.add(key);
    // Copies: problems travel in msg.payload, where a flow may change them; the template must not.
    const p: TemplateProblem = { variable: node.name, within: [...node.within], kind };
    if (reason !== undefined) p.reason = reason;
    (this.problems ??= []).push(p);
  }
}

/** A name as the renderer needs it: dotted names split once, at compile time. */
interface NameNode {
  name: string;
  within: string[];
  /** the steps of a dotted name (Mustache's rule: a "." after the first character), else null */
  path: string[] | null;
}

/** Mustache's Context without its cache: the view of one section level, and the level around it. */
interface Scope {
  view: unknown;
  parent: Scope | null;
}

function hasProperty(obj: unknown, name: string): boolean {
  return obj != null && typeof obj === "object" && name in obj;
}

function primitiveHasOwnProperty(value: unknown, name: string): boolean {
  return value != null && typeof value !== "object" && Object.prototype.hasOwnProperty.call(value, name);
}

/**
 * Mustache's Context.lookup step for step (mustache.js 4.2.0, lines 399-481): `.` is the current
 * view; a dotted name walks from each level outwards and counts as found when its last step exists
 * (on a string or number too); a plain name needs an object that has it. Two differences, both on
 * purpose: no per-context cache (a fresh context per recipient never hits it), and a function is
 * returned, never called: a msg can hold functions (msg.res.end of an HTTP request) and a template,
 * possibly from msg.template, must not run them. The tests hold it to Context.lookup on random views.
 */
function lookup(scope: Scope, node: NameNode): unknown {
  if (node.name === ".") return scope.view;
  for (let level: Scope | null = scope; level; level = level.parent) {
    if (node.path) {
      const path = node.path;
      let current = level.view;
      let hit = false;
      for (let i = 0; current != null && i < path.length; i++) {
        if (i === path.length - 1) hit = hasProperty(current, path[i]) || primitiveHasOwnProperty(current, path[i]);
        current = (current as Record<string, unknown>)[path[i]];
      }
      if (hit) return current;
    } else {
      // Reads before checking, as Mustache does: a null list item throws here (see look()).
      const value = (level.view as Record<string, unknown>)[node.name];
      if (hasProperty(level.view, node.name)) return value;
    }
  }
  return undefined;
}

/** `lookup`, recording a value that cannot be read (a throwing getter) instead of throwing. */
function look(scope: Scope, node: NameNode, run: RenderRun): unknown {
  try {
    return lookup(scope, node);
  } catch (e) {
    if (run.lenient) throw e;
    // Mustache throws for a plain name inside a section over a list item that is null or
    // undefined ({{#items}}{{name}}{{/items}} with items [null]): the name has no value there.
    if (scope.view === null || scope.view === undefined) run.add(node, "missing");
    else run.add(node, "failed", e instanceof Error ? e.message : String(e));
    return FAILED;
  }
}

// Mirrors Mustache's Writer.renderTokens / renderSection / renderInverted / escapedValue, with
// escaping off, and records every value that has no text instead of writing "" or "[object Object]".
function renderNodes(nodes: TemplateNode[], scope: Scope, run: RenderRun): string {
  let out = "";
  for (const node of nodes) {
    if (node.kind === "text") {
      out += node.text;
      continue;
    }
    const value = look(scope, node, run);
    if (value === FAILED) continue;
    if (node.kind === "value") {
      if (typeof value === "string") out += value;
      else if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
        out += String(value);
      else if (value === undefined || value === null) {
        if (!run.lenient) run.add(node, "missing");
      } else if (run.lenient) out += String(value);
      else run.add(node, "notText");
    } else if (node.inverted) {
      if (!value || (Array.isArray(value) && value.length === 0)) out += renderNodes(node.children, scope, run);
    } else if (!value) {
      // a falsy section renders nothing: that is how a template says "only when present"
    } else if (Array.isArray(value)) {
      for (const item of value) out += renderNodes(node.children, { view: item, parent: scope }, run);
    } else if (typeof value === "object" || typeof value === "string" || typeof value === "number") {
      out += renderNodes(node.children, { view: value, parent: scope }, run);
    } else if (typeof value === "function") {
      // A function (a Mustache lambda) is code, not data an SMS can be built from.
      run.add(node, "notText");
    } else {
      out += renderNodes(node.children, scope, run);
    }
  }
  return out;
}

export class Template {
  /** @internal use compileTemplate */
  constructor(
    readonly source: string,
    private readonly nodes: TemplateNode[],
    readonly variables: readonly TemplateVariable[],
  ) {}

  /** Renders against `view` (the msg, plus `recipient` in a personalised send); never throws. */
  tryRender(view: unknown): RenderResult {
    const run = new RenderRun(false);
    const text = renderNodes(this.nodes, { view, parent: null }, run);
    return run.problems ? { ok: false, problems: run.problems } : { ok: true, text };
  }

  /** Renders against `view` or throws a TEMPLATE SmsError naming every variable without a text. */
  render(view: unknown, lang: Lang = "en-US"): string {
    const r = this.tryRender(view);
    if (!r.ok) throw templateProblemError([{ problems: r.problems }], lang);
    return r.text;
  }

  /** @internal what Mustache.render would give for a view without functions (missing → "", objects → String()) */
  renderLenient(view: unknown): string {
    return renderNodes(this.nodes, { view, parent: null }, new RenderRun(true));
  }
}

/** What Mustache.render (escaping off) gives for a view without functions: what the tests compare with. */
export function renderLikeMustache(template: Template, view: unknown): string {
  return template.renderLenient(view);
}

export function isTemplate(value: unknown): value is Template {
  return value instanceof Template;
}

/**
 * Parses a template once (validate it when the node starts: a syntax error is a TEMPLATE error
 * saying what is wrong and where) and lists the variables it uses.
 */
export function compileTemplate(source: unknown, lang: Lang = "en-US"): Template {
  if (typeof source !== "string") throw localError("TEMPLATE", "templateType", lang, { type: kindOf(source) });
  let tokens: Token[];
  try {
    tokens = writer.parse(source, TAGS) as Token[];
  } catch (e) {
    throw syntaxError(source, e instanceof Error ? e.message : String(e), lang);
  }
  const variables: TemplateVariable[] = [];
  const seen = new Set<string>();
  const build = (list: Token[], within: string[]): TemplateNode[] => {
    const nodes: TemplateNode[] = [];
    for (const [type, value, , , children] of list) {
      if (type === "text") nodes.push({ kind: "text", text: value });
      else if (type === "name" || type === "&" || type === "#" || type === "^") {
        const kind: TemplateVariableKind = type === "#" ? "section" : type === "^" ? "inverted" : "value";
        const key = `${kind}\u0000${within.join("\u0000")}\u0000${value}`;
        if (!seen.has(key)) {
          seen.add(key);
          variables.push({ name: value, kind, within: [...within] });
        }
        const path = value.indexOf(".") > 0 ? value.split(".") : null;
        if (kind === "value") nodes.push({ kind: "value", name: value, within, path });
        else {
          const inner = build(children ?? [], [...within, value]);
          nodes.push({ kind: "section", name: value, within, path, inverted: kind === "inverted", children: inner });
        }
      } else if (type === ">") {
        // Mustache renders an unknown partial as nothing: we have no partials, so say so.
        throw localError("TEMPLATE", "templatePartial", lang, { name: value }, { details: { template: source } });
      }
      // "!" comments and "=" delimiter changes produce no text.
    }
    return nodes;
  };
  return new Template(source, build(tokens, []), variables);
}

function syntaxError(source: string, reason: string, lang: Lang): SmsError {
  const details = { details: { template: source } };
  let m = /^Unclosed section "(.*)" at (\d+)$/s.exec(reason);
  if (m) {
    const pos = Number(m[2]);
    if (pos >= source.length) return localError("TEMPLATE", "templateUnclosedSection", lang, { name: m[1] }, details);
    return localError(
      "TEMPLATE",
      "templateMismatchedSection",
      lang,
      { name: m[1], excerpt: excerpt(source, pos), pos: pos + 1 },
      details,
    );
  }
  m = /^Unopened section "(.*)" at (\d+)$/s.exec(reason);
  if (m) {
    const pos = Number(m[2]);
    return localError(
      "TEMPLATE",
      "templateUnopenedSection",
      lang,
      { excerpt: excerpt(source, pos), pos: pos + 1 },
      details,
    );
  }
  if (/^Unclosed tag at \d+$/.test(reason)) {
    // Mustache reports where it gave up (the end); the user needs where the tag began.
    let pos = Math.max(0, source.lastIndexOf("{{"));
    while (pos > 0 && source[pos - 1] === "{") pos--;
    return localError(
      "TEMPLATE",
      "templateUnclosedTag",
      lang,
      { excerpt: excerpt(source, pos), pos: pos + 1 },
      details,
    );
  }
  return localError("TEMPLATE", "templateInvalid", lang, { reason }, details);
}

/** The tag starting at `pos`, short enough for one line of an error message. */
function excerpt(source: string, pos: number): string {
  const rest = source.slice(pos).split(/\r?\n/, 1)[0];
  const close = rest.indexOf("}}");
  if (close >= 0 && close < 40) return rest.slice(0, close + (rest[close + 2] === "}" ? 3 : 2));
  return rest.length > 40 ? rest.slice(0, 40) + "…" : rest;
}

function kindOf(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}

function shown(items: readonly string[], max = 10): string {
  const list = items.slice(0, max).join(", ");
  return items.length > max ? `${list} … (+${items.length - max})` : list;
}

function variableLabel(p: TemplateProblem, lang: Lang): string {
  if (!p.within.length) return `{{${p.variable}}}`;
  return t("templateVariableIn", lang, { name: p.variable, sections: p.within.join(" › ") });
}

/** "msg.mobile[3] (13800138000)": where a user finds the recipient in the msg they sent. */
export function recipientLabel(index: number, mobile: string | undefined, lang: Lang): string {
  return mobile ? t("recipientLabel", lang, { index, mobile }) : t("recipientLabelNoMobile", lang, { index });
}

const PROBLEM_KEYS = { missing: "templateMissing", notText: "templateNotText", failed: "templateFailed" } as const;

/**
 * One TEMPLATE error for every rendering that failed (one per recipient in a personalised send):
 * the message names the variables of the first failure's kind and the recipients they failed for;
 * `details.problems` has each problem (the first 100), `details.recipients` every failing index.
 */
export function templateProblemError(failures: readonly RenderFailure[], lang: Lang): SmsError {
  const kind = failures[0].problems[0].kind;
  const names: string[] = [];
  const recipients: string[] = [];
  let reason = "";
  for (const f of failures) {
    let hit = false;
    for (const p of f.problems) {
      if (p.kind !== kind) continue;
      hit = true;
      const label = variableLabel(p, lang);
      if (!names.includes(label)) names.push(label);
      if (!reason && p.reason) reason = p.reason;
    }
    if (hit && f.index !== undefined) recipients.push(recipientLabel(f.index, f.mobile, lang));
  }
  const where = recipients.length
    ? t("templateWhere", lang, { count: recipients.length, list: shown(recipients) })
    : "";

  const problems: Record<string, unknown>[] = [];
  const indexes: number[] = [];
  for (const f of failures) {
    if (f.index !== undefined) indexes.push(f.index);
    for (const p of f.problems) {
      if (problems.length >= MAX_DETAILED_PROBLEMS) break;
      problems.push(f.index === undefined ? { ...p } : { ...p, index: f.index, mobile: f.mobile ?? "" });
    }
  }
  const first = failures[0].problems.find((p) => p.kind === kind)!;
  const details: Record<string, unknown> = {
    variable: first.variable,
    variables: [...new Set(failures.flatMap((f) => f.problems.filter((p) => p.kind === kind).map((p) => p.variable)))],
    problems,
  };
  if (indexes.length) details.recipients = indexes;
  return localError("TEMPLATE", PROBLEM_KEYS[kind], lang, { names: shown(names), where, reason }, { details });
}
