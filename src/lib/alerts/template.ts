// Mustache templates for SMS texts (SPEC B9). Runs in Node-RED and, bundled, in the editor: no
// Node-only API here (no Buffer, no node: imports); it needs only the `mustache` package.
import Mustache from "mustache";
import { errorReason, localError, type SmsError } from "../errors";

export { errorReason };
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
 * list or a function), `failed` (reading it threw, e.g. a getter), `work` (the rendering took more
 * than MAX_RENDER_STEPS steps, e.g. sections nested over long lists: it was stopped there).
 */
export type TemplateProblemKind = "missing" | "notText" | "failed" | "work";

export interface TemplateProblem {
  variable: string;
  within: string[];
  kind: TemplateProblemKind;
  /** for `failed`: the error's message */
  reason?: string;
}

export type RenderResult =
  | { ok: true; text: string }
  | { ok: false; problems: TemplateProblem[] }
  /**
   * the text (prefix included) grew past the limit: rendering stopped there and the text was not
   * kept; `blank` when all of it is whitespace (then it is empty for every check, as "" is)
   */
  | { ok: false; problems: null; tooLong: true; blank: boolean };

/** One rendering that failed, and the recipient it was for (personalised sends). */
export interface RenderFailure {
  problems: TemplateProblem[];
  /** position in msg.mobile */
  index?: number;
  /** the recipient's number: normalised when valid, else as given ("" when it has none) */
  mobile?: string;
}

type TextNode = { kind: "text"; text: string; name: string; within: string[] };
type ValueNode = { kind: "value" } & NameNode;
type SectionNode = { kind: "section"; inverted: boolean; children: TemplateNode[] } & NameNode;
type TemplateNode = TextNode | ValueNode | SectionNode;

type Token = [string, string, number, number, Token[]?, number?];

const TAGS: [string, string] = ["{{", "}}"];
// Our own writer with its cache off: Mustache's default writer keeps every template it ever parsed,
// and msg.template may differ on every message.
const writer = new Mustache.Writer();
(writer as unknown as { templateCache: undefined }).templateCache = undefined;

/** Problems kept in an error's details: enough to act on, bounded for a 100,000-recipient send. */
const MAX_DETAILED_PROBLEMS = 100;
const FAILED: unique symbol = Symbol("failed");

/**
 * Most steps (a piece of text, a value, a section, a list item, a step of a dotted name) one text
 * may take to render. A real SMS template takes a few dozen; a section over a list inside a section
 * over that list takes the square of its length while writing nothing, and would hold the event
 * loop for minutes. 100,000 steps take a few ms.
 */
export const MAX_RENDER_STEPS = 100_000;
/** Most sections nested in one another: the renderer recurses once per level. */
export const MAX_SECTION_DEPTH = 50;
/**
 * The longest template: 14 SMS of 700 characters, with room for sections and their tags. Parsing
 * takes time in proportion (msg.template may differ on every message): 500,000 characters held
 * the event loop for a quarter of a second.
 */
export const MAX_TEMPLATE_LENGTH = 10_000;

/** What String.prototype.trim leaves: JavaScript's \s is the same set of characters. */
const NOT_BLANK = /\S/;
/** Thrown inside a rendering to stop it: the text is over the limit, or the steps are used up. */
const OVER: unique symbol = Symbol("over");
const WORN: unique symbol = Symbol("worn");

class RenderRun {
  problems: TemplateProblem[] | null = null;
  private keys: Set<string> | null = null;
  /** UTF-16 units written so far (prefix included) */
  length = 0;
  steps = 0;
  /** past the limit: nothing more is kept */
  over = false;
  /** nothing but whitespace written so far (the prefix aside) */
  blank = true;
  constructor(
    readonly lenient: boolean,
    /** the longest text wanted: past it the rendering stops (OVER) */
    readonly limit = Infinity,
  ) {}

  /**
   * Counts `n` steps; past the budget the rendering stops (WORN) with a `work` problem naming the
   * innermost section it was in (`inside`: the node is that section, an item of its list).
   */
  step(node: { name: string; within: string[] }, n = 1, inside = false): void {
    if ((this.steps += n) <= MAX_RENDER_STEPS || this.lenient) return;
    const path = inside ? [...node.within, node.name] : node.within;
    this.add({ name: path.length ? path[path.length - 1] : "", within: path.slice(0, -1) }, "work");
    throw WORN;
  }

  /**
   * Counts a piece of the text: true when it is to be kept. Past the limit nothing more is kept,
   * and the rendering stops (OVER) at once, or, while the text is only whitespace so far, at its
   * first other character: a text of nothing but whitespace is empty, however long, as
   * prepareText has it (that check comes first), and that takes reading on (bounded by the steps).
   */
  grow(piece: string): boolean {
    if (this.blank && NOT_BLANK.test(piece)) {
      this.blank = false;
      if (this.over) throw OVER;
    }
    if (this.over) return false;
    if ((this.length += piece.length) <= this.limit) return true;
    this.over = true;
    if (!this.blank) throw OVER;
    return false;
  }

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
  /** 1 at the top, one more per section level: a name is looked up at most this many times */
  depth: number;
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
  // A lookup walks each section level outwards, each step of a dotted name at each level.
  run.step(node, scope.depth * (node.path ? node.path.length : 1));
  try {
    return lookup(scope, node);
  } catch (e) {
    if (run.lenient) throw e;
    // Mustache throws for a plain name inside a section over a list item that is null or
    // undefined ({{#items}}{{name}}{{/items}} with items [null]): the name has no value there.
    if (scope.view === null || scope.view === undefined) run.add(node, "missing");
    else run.add(node, "failed", errorReason(e));
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
//
// Every piece is counted as it is written and every step against the budget, so that a rendering
// stops as soon as its text is over the limit (or its steps are used up): no list, however long,
// and no value, however large, makes it build more than the limit (SPEC B9a).
function renderNodes(nodes: TemplateNode[], scope: Scope, run: RenderRun, parts: string[]): void {
  for (const node of nodes) {
    if (node.kind === "text") {
      run.step(node);
      if (run.grow(node.text)) parts.push(node.text);
      continue;
    }
    const value = look(scope, node, run);
    if (value === FAILED) continue;
    if (node.kind === "value") {
      const text = valueText(node, value, run);
      if (text !== undefined && run.grow(text)) parts.push(text);
      continue;
    }
    try {
      section(node, value, scope, run, parts);
    } catch (e) {
      // A list that cannot be read (a proxy whose traps throw): its section has no text.
      if (e === OVER || e === WORN || run.lenient) throw e;
      run.add(node, "failed", errorReason(e));
    }
  }
}

function section(node: SectionNode, value: unknown, scope: Scope, run: RenderRun, parts: string[]): void {
  if (node.inverted) {
    if (!value || (Array.isArray(value) && value.length === 0)) renderNodes(node.children, scope, run, parts);
  } else if (!value) {
    // a falsy section renders nothing: that is how a template says "only when present"
  } else if (Array.isArray(value)) {
    const depth = scope.depth + 1;
    // By index, as Mustache does; every item is a step, also those that write nothing.
    for (let i = 0; i < value.length; i++) {
      run.step(node, 1, true);
      renderNodes(node.children, { view: value[i], parent: scope, depth }, run, parts);
    }
  } else if (typeof value === "object" || typeof value === "string" || typeof value === "number") {
    renderNodes(node.children, { view: value, parent: scope, depth: scope.depth + 1 }, run, parts);
  } else if (typeof value === "function") {
    // A function (a Mustache lambda) is code, not data an SMS can be built from.
    run.add(node, "notText");
  } else {
    renderNodes(node.children, scope, run, parts);
  }
}

/**
 * renderNodes for a template without sections (most SMS templates): one level, one piece per
 * node, so the pieces fit an array made to size. Rendering 100,000 texts: ~15 % less time.
 */
function renderFlat(nodes: readonly (TextNode | ValueNode)[], scope: Scope, run: RenderRun, prefix: string): string {
  const parts = new Array<string>(nodes.length + 1);
  parts[0] = prefix;
  run.length = prefix.length;
  for (let k = 0; k < nodes.length; k++) {
    const node = nodes[k];
    let piece: string | undefined;
    if (node.kind === "text") piece = node.text;
    else {
      const value = look(scope, node, run);
      if (value !== FAILED) piece = valueText(node, value, run) ?? "";
    }
    // Counted before the join: a 100,000-character value is never copied into a text.
    if (piece !== undefined && run.grow(piece)) parts[k + 1] = piece;
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
   * it is one string, as it is sent, instead of two). Rendering stops as soon as the text, prefix
   * included, is longer than `limit` (`tooLong`; problems found before that point win), or when
   * it takes more than MAX_RENDER_STEPS steps (a `work` problem).
   */
  tryRender(view: unknown, prefix = "", limit = Infinity): RenderResult {
    const run = new RenderRun(false, limit);
    let text = "";
    try {
      text = this.renderWith(view, run, prefix);
    } catch (e) {
      if (e !== OVER && e !== WORN) throw e;
    }
    if (run.problems) return { ok: false, problems: run.problems };
    return run.over ? { ok: false, problems: null, tooLong: true, blank: run.blank } : { ok: true, text };
  }

  /**
   * Renders against `view` or throws a TEMPLATE SmsError naming every variable without a text;
   * a text longer than `limit` is null (rendering stopped there), or "" when it is only whitespace.
   */
  renderWithin(view: unknown, limit: number, lang: Lang = "en-US"): string | null {
    const r = this.tryRender(view, "", limit);
    if (r.ok) return r.text;
    if (r.problems) throw templateProblemError([{ problems: r.problems }], lang);
    return r.blank ? "" : null;
  }

  /** Renders against `view` or throws a TEMPLATE SmsError naming every variable without a text. */
  render(view: unknown, lang: Lang = "en-US"): string {
    return this.renderWithin(view, Infinity, lang)!;
  }

  /** @internal what Mustache.render would give for a view without functions (missing → "", objects → String()) */
  renderLenient(view: unknown): string {
    return this.renderWith(view, new RenderRun(true), "");
  }

  private renderWith(view: unknown, run: RenderRun, prefix: string): string {
    const scope: Scope = { view, parent: null, depth: 1 };
    if (this.flat) return renderFlat(this.flat, scope, run, prefix);
    const parts = [prefix];
    run.length = prefix.length;
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
  if (source.length > MAX_TEMPLATE_LENGTH) {
    const details = { details: { template: source.slice(0, 100) + "…" } };
    throw localError("TEMPLATE", "templateTooLong", lang, { length: source.length, max: MAX_TEMPLATE_LENGTH }, details);
  }
  let tokens: Token[];
  try {
    tokens = writer.parse(source, TAGS) as Token[];
  } catch (e) {
    throw syntaxError(source, errorReason(e), lang);
  }
  const variables: TemplateVariable[] = [];
  const seen = new Set<string>();
  const build = (list: Token[], within: string[]): TemplateNode[] => {
    // The renderer recurses once per level; Mustache's parser does not mind a thousand levels.
    if (within.length > MAX_SECTION_DEPTH) {
      throw localError(
        "TEMPLATE",
        "templateTooDeep",
        lang,
        { max: MAX_SECTION_DEPTH },
        { details: { template: source } },
      );
    }
    const nodes: TemplateNode[] = [];
    for (const [type, value, , , children] of list) {
      // A text's name and sections say where a rendering ran out of steps (a `work` problem).
      if (type === "text") nodes.push({ kind: "text", text: value, name: "", within });
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

/** Items an error message lists before it says how many more there are. */
const SHOWN = 10;

function shown(items: readonly string[], max = SHOWN): string {
  const list = items.slice(0, max).join(", ");
  return items.length > max ? `${list} … (+${items.length - max})` : list;
}

function variableLabel(p: TemplateProblem, lang: Lang): string {
  // Out of steps: the sections it was in, outermost first ({{#a}} › {{#b}}), or the whole template.
  if (p.kind === "work") {
    if (!p.variable) return t("templateWhole", lang);
    return [...p.within, p.variable].map((name) => `{{#${name}}}`).join(" › ");
  }
  if (!p.within.length) return `{{${p.variable}}}`;
  return t("templateVariableIn", lang, { name: p.variable, sections: p.within.join(" › ") });
}

/** "msg.mobile[3] (13800138000)": where a user finds the recipient in the msg they sent. */
export function recipientLabel(index: number, mobile: string | undefined, lang: Lang): string {
  return mobile ? t("recipientLabel", lang, { index, mobile }) : t("recipientLabelNoMobile", lang, { index });
}

const PROBLEM_KEYS = {
  missing: "templateMissing",
  notText: "templateNotText",
  failed: "templateFailed",
  work: "templateTooMuchWork",
} as const;

/**
 * One TEMPLATE error for every rendering that failed (one per recipient in a personalised send):
 * the message names the variables of the first failure's kind and the recipients they failed for;
 * `details.problems` has each problem (the first 100), `details.recipients` every failing index.
 */
export function templateProblemError(failures: readonly RenderFailure[], lang: Lang): SmsError {
  const all = new TemplateFailures(lang);
  for (const f of failures) all.add(f);
  return all.error();
}

/**
 * templateProblemError, gathered as the failures come: a send planned in slices keeps no
 * failure beyond what its error says (the first problems and labels, every failing index), and
 * has nothing left to go through at the end (50,000 failing recipients took tens of ms there).
 */
export class TemplateFailures {
  /** the kind of the first failure: the message is about that kind */
  private kind: TemplateProblemKind | null = null;
  private first = "";
  private reason = "";
  private readonly names: string[] = [];
  private readonly variables = new Set<string>();
  private readonly seen = new Set<string>();
  /** labels of the first failing recipients (the message names the first 10, then a count) */
  private readonly recipients: string[] = [];
  private failing = 0;
  private readonly problems: Record<string, unknown>[] = [];
  private readonly indexes: number[] = [];

  constructor(private readonly lang: Lang) {}

  /** renderings that failed */
  count = 0;

  add(f: RenderFailure): void {
    this.count++;
    const kind = (this.kind ??= f.problems[0].kind);
    let hit = false;
    for (const p of f.problems) {
      if (this.problems.length < MAX_DETAILED_PROBLEMS) {
        this.problems.push(f.index === undefined ? { ...p } : { ...p, index: f.index, mobile: f.mobile ?? "" });
      }
      if (p.kind !== kind) continue;
      if (!hit && !this.names.length) this.first = p.variable;
      hit = true;
      this.variables.add(p.variable);
      const key = p.within.length ? `${p.variable}\u0000${p.within.join("\u0000")}` : p.variable;
      if (!this.seen.has(key)) {
        this.seen.add(key);
        const label = variableLabel(p, this.lang);
        if (!this.names.includes(label)) this.names.push(label);
      }
      if (!this.reason && p.reason) this.reason = p.reason;
    }
    if (f.index !== undefined) this.indexes.push(f.index);
    if (hit && f.index !== undefined && this.failing++ < SHOWN) {
      this.recipients.push(recipientLabel(f.index, f.mobile, this.lang));
    }
  }

  error(): SmsError {
    const kind = this.kind!;
    const lang = this.lang;
    const more = this.failing > SHOWN ? ` … (+${this.failing - SHOWN})` : "";
    const list = this.recipients.join(", ") + more;
    const where = this.failing ? t("templateWhere", lang, { count: this.failing, list }) : "";
    const details: Record<string, unknown> = {
      variable: this.first,
      variables: [...this.variables],
      problems: this.problems,
    };
    if (this.indexes.length) details.recipients = this.indexes;
    return localError(
      "TEMPLATE",
      PROBLEM_KEYS[kind],
      lang,
      { names: shown(this.names), where, reason: this.reason, steps: MAX_RENDER_STEPS },
      { details },
    );
  }
}
