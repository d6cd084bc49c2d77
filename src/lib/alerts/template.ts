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

type TextNode = { kind: "text"; text: string };
type ValueNode = { kind: "value" } & NameNode;
type TemplateNode =
  TextNode | ValueNode | ({ kind: "section"; inverted: boolean; children: TemplateNode[] } & NameNode);

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
      const last = path.length - 1;
      let current = level.view;
      for (let i = 0; current != null && i < last; i++) current = (current as Record<string, unknown>)[path[i]];
      if (current == null) continue;
      const value = (current as Record<string, unknown>)[path[last]];
      if (found(current, path[last], value) || primitiveHasOwnProperty(current, path[last])) return value;
    } else {
      // Reads before checking, as Mustache does: a null list item throws here (see look()).
      const value = (level.view as Record<string, unknown>)[node.name];
      if (found(level.view, node.name, value)) return value;
    }
  }
  return undefined;
}

/**
 * Mustache's hasProperty (`name in obj`, objects only), given the value already read: a value
 * other than undefined read from an object is there, so the `in` (a slow lookup by a name known
 * only at run time) is left for undefined. Rendering 100,000 texts: ~10 % less time.
 */
function found(obj: unknown, name: string, value: unknown): boolean {
  if (obj === null || typeof obj !== "object") return false;
  return value !== undefined || name in obj;
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

/**
 * A {{value}}'s text, as Mustache's escapedValue writes it with escaping off; a value that has no
 * text (missing, an object, a function) is recorded as a problem instead, and gives undefined.
 */
function valueText(node: NameNode, value: unknown, run: RenderRun): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === undefined || value === null) {
    if (!run.lenient) run.add(node, "missing");
    return undefined;
  }
  if (run.lenient) return String(value);
  run.add(node, "notText");
  return undefined;
}

// Mirrors Mustache's Writer.renderTokens / renderSection / renderInverted, and records every
// value that has no text instead of writing "" or "[object Object]". The pieces go into `parts`
// and are joined once: one flat string instead of a chain of concatenations that the engine
// flattens later (when the text is grouped, and again when its body is encoded).
function renderNodes(nodes: TemplateNode[], scope: Scope, run: RenderRun, parts: string[]): void {
  for (const node of nodes) {
    if (node.kind === "text") {
      parts.push(node.text);
      continue;
    }
    const value = look(scope, node, run);
    if (value === FAILED) continue;
    if (node.kind === "value") {
      const text = valueText(node, value, run);
      if (text !== undefined) parts.push(text);
    } else if (node.inverted) {
      if (!value || (Array.isArray(value) && value.length === 0)) renderNodes(node.children, scope, run, parts);
    } else if (!value) {
      // a falsy section renders nothing: that is how a template says "only when present"
    } else if (Array.isArray(value)) {
      for (const item of value) renderNodes(node.children, { view: item, parent: scope }, run, parts);
    } else if (typeof value === "object" || typeof value === "string" || typeof value === "number") {
      renderNodes(node.children, { view: value, parent: scope }, run, parts);
    } else if (typeof value === "function") {
      // A function (a Mustache lambda) is code, not data an SMS can be built from.
      run.add(node, "notText");
    } else {
      renderNodes(node.children, scope, run, parts);
    }
  }
}

/**
 * renderNodes for a template without sections (most SMS templates): one level, one piece per
 * node, so the pieces fit an array made to size. Rendering 100,000 texts: ~15 % less time.
 */
function renderFlat(nodes: readonly (TextNode | ValueNode)[], scope: Scope, run: RenderRun, prefix: string): string {
  const parts = new Array<string>(nodes.length + 1);
  parts[0] = prefix;
  for (let k = 0; k < nodes.length; k++) {
    const node = nodes[k];
    if (node.kind === "text") parts[k + 1] = node.text;
    else {
      const value = look(scope, node, run);
      if (value !== FAILED) parts[k + 1] = valueText(node, value, run) ?? "";
    }
  }
  return parts.join("");
}

export class Template {
  /** the nodes when there is no section: those render with renderFlat */
  private readonly flat: readonly (TextNode | ValueNode)[] | null;

  /** @internal use compileTemplate */
  constructor(
    readonly source: string,
    private readonly nodes: TemplateNode[],
    readonly variables: readonly TemplateVariable[],
  ) {
    this.flat = nodes.every((n) => n.kind !== "section") ? (nodes as (TextNode | ValueNode)[]) : null;
  }

  /**
   * Renders against `view` (the msg, plus `recipient` in a personalised send); never throws.
   * `prefix` comes before the text in the result (a personalised send's signature: the text with
   * it is one string, as it is sent, instead of two).
   */
  tryRender(view: unknown, prefix = ""): RenderResult {
    const run = new RenderRun(false);
    const text = this.renderWith(view, run, prefix);
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
    return this.renderWith(view, new RenderRun(true), "");
  }

  private renderWith(view: unknown, run: RenderRun, prefix: string): string {
    const scope: Scope = { view, parent: null };
    if (this.flat) return renderFlat(this.flat, scope, run, prefix);
    const parts = [prefix];
    renderNodes(this.nodes, scope, run, parts);
    return parts.join("");
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
