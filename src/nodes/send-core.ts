// What `sms-send` does with one input (SPEC B2, B7, B9): plan and check everything (the template
// rendered per recipient, equal texts grouped), send the platform requests one after another,
// emit one output per request and, with `track`, open each request's delivery tracking (its
// summary comes out of output 2 later). The node file wires it to Node-RED.
import { setMaxListeners } from "node:events";
import type { Node, NodeStatus } from "node-red";
import { planSend, type SendPlan } from "../lib/alerts/personalise";
import { compileTemplate, type Template } from "../lib/alerts/template";
import {
  DEFAULT_TRACK_TIMEOUT_MS,
  parseTrackTimeout,
  trackerFor,
  untrackedSummary,
  type SummaryMsg,
  type Tracker,
} from "../lib/alerts/tracking";
import type { SendOutcome } from "../lib/platform/client";
import { t } from "../lib/i18n";
import type { Lang } from "../lib/i18n";
import { hasRecipientObjects } from "../lib/platform/prepare";
import { toBool, toStr } from "../lib/props";
import { parsePlatformTime } from "../lib/platform/time";
import {
  asSmsError,
  failurePayload,
  nodeError,
  noConfigError,
  StatusThrottle,
  type Done,
  type Msg,
  type Send,
  type SmsConfigNode,
} from "./common";

export interface SendDef {
  mobile?: string;
  needstatus?: boolean | string;
  product?: string;
  extno?: string;
  track?: boolean | string;
  trackTimeout?: number | string;
  /** Mustache; empty = the text is msg.payload */
  template?: string;
}

/** What the core needs of Node-RED. */
export interface SendHost {
  node: Node;
  lang: Lang;
  /** a text of the sms-send catalog (key without the `sms-send.` prefix) */
  _(key: string, params?: Record<string, string | number>): string;
  /** RED.util.cloneMessage */
  clone(msg: Msg): Msg;
  /** the account (null when none is selected or it is gone) */
  config(): SmsConfigNode | null;
}

export class SendCore {
  private readonly node: Node;
  readonly status: StatusThrottle;
  /** Aborted on close: this node's sends still waiting for their turn end as "not sent". */
  private readonly stop = new AbortController();
  private readonly inputs = new Set<Promise<void>>();
  /** tracking opens under way (a close waits for them: their summaries must not be lost) */
  private readonly opens = new Set<Promise<void>>();
  private readonly track: boolean;
  private readonly timeoutMs: number;
  private readonly tracker: Tracker | null;
  private readonly unlisten: () => Promise<void> = () => Promise.resolve();
  private active = 0;
  private closing = false;
  private last: NodeStatus | null = null;
  private progress: { done: number; total: number } | null = null;
  /** the node's template, compiled at start (null: none); a broken one fails every send that uses it */
  private readonly template: Template | null = null;
  private readonly templateError: unknown = null;
  /** the last msg.template compiled: flows usually set the same one on every message */
  private lastMsgTemplate: { source: string; template: Template } | null = null;

  constructor(
    private readonly host: SendHost,
    private readonly def: SendDef,
  ) {
    this.node = host.node;
    this.status = new StatusThrottle(host.node);
    // Every send waiting for its turn listens on this signal: thousands are normal, not a leak.
    setMaxListeners(0, this.stop.signal);
    this.track = toBool(def.track, false);
    const timeout = parseTrackTimeout(def.trackTimeout);
    if (this.track && timeout === null) {
      this.node.warn(host._("warn.trackTimeout", { value: String(def.trackTimeout) }));
    }
    this.timeoutMs = timeout ?? DEFAULT_TRACK_TIMEOUT_MS;
    if (typeof def.template === "string" && def.template !== "") {
      try {
        this.template = compileTemplate(def.template, host.lang);
      } catch (e) {
        // Said at start; every send that uses the node's template fails with it (Catch nodes see it).
        this.templateError = e;
        this.node.error(errorText(e));
        this.fail("TEMPLATE");
      }
    }
    const config = host.config();
    this.tracker = config ? trackerFor(config.state) : null;
    if (!this.tracker) return;
    if (this.track) {
      const codes = config!.codes;
      this.unlisten = this.tracker.listen(this.node.id, {
        offsetMinutes: config!.settings.offsetMinutes,
        describe: (s) => codes.status(s),
        // Each summary its own message: the requests of one send share their input msg.
        summary: (msg) => this.summary(msg),
        error: (e, msgid) => this.node.warn(host._("warn.summaryFailed", { msgid, error: errorText(e) })),
      });
      // Sends tracked before a redeploy go on: show them.
      if (this.tracker.tracking(this.node.id)) this.refresh();
    } else {
      // Tracking turned off (or never on): nothing of this node's may stay behind.
      this.dropTracked("log.trackOff");
    }
  }

  /** The status: progress or queued count while sending, else the last outcome; the tracked count after it. */
  private readonly current = (): NodeStatus => {
    const _ = this.host._;
    let s: NodeStatus;
    if (this.progress) s = { fill: "blue", shape: "dot", text: _("status.progress", this.progress) };
    else if (this.active > 0) s = { fill: "blue", shape: "dot", text: _("status.queued", { count: this.active }) };
    else s = this.last ?? {};
    const tracked = this.track && this.tracker ? this.tracker.tracking(this.node.id) : 0;
    if (!tracked) return s;
    const text = _("status.tracking", { count: tracked });
    return { fill: s.fill ?? "green", shape: s.shape ?? "dot", text: s.text ? `${s.text} · ${text}` : text };
  };

  // Evaluated only when shown (at most every 100 ms): the translated text is costly per message.
  private refresh(): void {
    this.status.set(this.current);
  }

  input(msg: Msg, send: Send, done: Done): void {
    const p = this.handle(msg, send, done).catch((e: unknown) => done(e as Error));
    this.inputs.add(p);
    void p.finally(() => this.inputs.delete(p));
  }

  /** The template of this msg: msg.template wins over the node's ("" = none); null = the payload is the text. */
  private templateFor(msg: Msg): Template | null {
    if (msg.template === undefined || msg.template === null) {
      if (this.templateError) throw this.templateError;
      return this.template;
    }
    if (msg.template === "") return null;
    if (typeof msg.template === "string" && this.lastMsgTemplate?.source === msg.template) {
      return this.lastMsgTemplate.template;
    }
    const template = compileTemplate(msg.template, this.host.lang);
    this.lastMsgTemplate = { source: msg.template as string, template };
    return template;
  }

  private async handle(msg: Msg, send: Send, done: Done): Promise<void> {
    const { host, def } = this;
    const lang = host.lang;
    const config = host.config();
    const base = { msgid: null, mobiles: 0, segments: 0, batch: { index: 0, count: 0 } };
    let plan: SendPlan;
    let client;
    try {
      if (!config) throw noConfigError(lang);
      const s = config.settings;
      // Everything is rendered and checked before the first request: an error sends nothing.
      plan = planSend(
        { payload: msg.payload, mobile: msg.mobile ?? def.mobile, template: this.templateFor(msg), msg },
        { signature: s.signature, maxLength: s.maxLength, mobileCheck: s.mobileCheck, lang },
      );
      client = config.client();
    } catch (e) {
      const err = asSmsError(e);
      msg.payload = failurePayload(err, base);
      this.fail(err.code);
      done(nodeError(err));
      return;
    }

    const s = config.settings;
    // With tracking, reports are asked for: a msg that says needstatus false is sent untracked.
    const needstatus = this.track ? toBool(msg.needstatus, true) : toBool(msg.needstatus, toBool(def.needstatus, true));
    const tracked = this.track && needstatus && this.tracker !== null;
    const product = toStr(msg.product) || toStr(def.product) || s.product;
    const extno = toStr(msg.extno) || toStr(def.extno) || s.extno;
    const requests = plan.requests;
    const count = requests.length;
    // A personalised msg.mobile (one object per recipient) is not copied into every output.
    const recipients = hasRecipientObjects(msg.mobile) ? msg.mobile : null;
    const original = count > 1 ? host.clone(withoutMobile(msg)) : msg;
    // The input as it came, for the delivery summaries: one copy shared by the requests.
    const kept = tracked ? host.clone(msg) : null;
    let warned = false;

    this.active++;
    const progress = count > 1 ? { done: 0, total: count } : null;
    if (progress) this.progress = progress;
    this.refresh();
    // Another instance (Redis) must know a tracked request is under way before the platform can
    // report it: told as each request starts (a request may wait long in the account's queue).
    const starting = tracked ? () => this.tracker!.expect() : undefined;
    try {
      for (let i = 0; i < count; i++) {
        const request = requests[i];
        const mobiles = request.mobiles;
        const batch = { index: i + 1, count };
        let r: SendOutcome;
        try {
          r = await client.send(
            { mobiles, text: request.text, needstatus, product, extno },
            this.stop.signal,
            starting,
          );
        } catch (e) {
          const err = asSmsError(e);
          // Whom a flow may send to again as msg.mobile: never one that may have received the SMS
          // (SPEC B2: numbers). A personalised send also gives the recipient objects back.
          const left = requests.slice(err.outcomeUnknown ? i + 1 : i);
          const unsent = left.flatMap((q) => q.mobiles);
          const unsentRecipients = recipients
            ? { unsentRecipients: left.flatMap((q) => (q.recipients ?? []).map((k) => recipients[k])) }
            : {};
          const resptime = typeof err.details.resptime === "string" ? err.details.resptime : null;
          msg.payload = failurePayload(err, {
            msgid: null,
            mobiles: mobiles.length,
            segments: request.segments,
            batch,
            unsent,
            ...unsentRecipients,
            resptime: resptime && parsePlatformTime(resptime, s.offsetMinutes),
            resptimeRaw: resptime,
          });
          msg.mobile = mobiles;
          this.fail(err.code);
          const message =
            count > 1
              ? t("batchFailed", lang, { index: i + 1, count, reason: err.message, unsent: unsent.length })
              : err.message;
          done(nodeError(err, message));
          return;
        }
        // Sent: nothing below may turn it into a failure.
        const sentAt = Date.now();
        // Every output but the last is a copy, so each keeps the input's other properties.
        const out = i === count - 1 ? msg : host.clone(original);
        {
          out.payload = {
            code: 0,
            ok: true,
            description: r.description,
            msgid: r.msgid,
            resptime: parsePlatformTime(r.resptime, s.offsetMinutes),
            resptimeRaw: r.resptime,
            mobiles: mobiles.length,
            segments: request.segments,
            batch,
          };
          out.msgid = r.msgid;
          out.mobile = mobiles;
          // After a redeploy the wires lead nowhere: the log keeps the msgid of what was sent.
          if (this.closing)
            this.node.log(host._("log.sentWhileClosing", { msgid: String(r.msgid), count: mobiles.length }));
          send(out);
          if (progress) progress.done = i + 1;
          const msgid = r.msgid;
          this.last = { fill: "green", shape: "dot", text: msgid ?? host._("status.sent") };
          if (tracked) {
            const request = { msgid, mobiles, sentAt, batch, msg: kept! };
            if (msgid) this.open({ ...request, msgid, warn: () => !warned && (warned = true) });
            else {
              // Without a msgid no report can ever be matched: its summary says so now.
              this.node.warn(host._("warn.noMsgid"));
              this.untracked(request);
            }
          }
          this.refresh();
        }
      }
      done();
    } finally {
      this.active--;
      if (this.progress === progress) this.progress = null;
      this.refresh();
    }
  }

  /** Starts tracking one request; output 1 does not wait for it. */
  private open(o: {
    msgid: string;
    mobiles: string[];
    sentAt: number;
    batch: { index: number; count: number };
    msg: Msg;
    /** true the first time it is asked for this send: one warning per send, not per batch */
    warn: () => boolean;
  }): void {
    const tracker = this.tracker!;
    const p = tracker
      .open({
        msgid: o.msgid,
        mobiles: o.mobiles,
        owner: this.node.id,
        sentAt: o.sentAt,
        timeoutMs: this.timeoutMs,
        batch: o.batch,
        msg: o.msg,
      })
      .then((opened) => {
        if (opened.dropped.length && o.warn()) {
          this.node.warn(this.host._("warn.trackDropped", { msgid: o.msgid, props: opened.dropped.join(", ") }));
        }
      })
      .catch((e: unknown) => {
        this.node.warn(this.host._("warn.trackFailed", { msgid: o.msgid, error: errorText(e) }));
        // Tracking did not start: no summary would come; it comes now, every number pending.
        this.untracked(o);
      })
      .finally(() => {
        this.opens.delete(p);
        this.refresh();
      });
    this.opens.add(p);
  }

  private summary(msg: SummaryMsg): void {
    this.node.send([null, this.host.clone(msg as unknown as Msg)]);
    this.refresh();
  }

  private untracked(o: {
    msgid: string | null;
    mobiles: string[];
    sentAt: number;
    batch: { index: number; count: number };
    msg: Msg;
  }): void {
    const offsetMinutes = this.host.config()?.settings.offsetMinutes ?? 480;
    this.summary(untrackedSummary(o.msg, { ...o, now: Date.now(), offsetMinutes }));
  }

  private fail(code: unknown): void {
    this.last = { fill: "red", shape: "ring", text: String(code) };
    this.refresh();
  }

  /** Drops this node's tracked sends, with one log line when there were any. */
  private async drop(logKey: string): Promise<void> {
    const count = await this.tracker!.drop(this.node.id);
    if (count) this.node.log(this.host._(logKey, { count }));
  }

  private dropTracked(logKey: string): void {
    this.drop(logKey).catch((e: unknown) => this.node.warn(errorText(e)));
  }

  /**
   * Queued sends of this node fail as not sent; a request under way finishes (bounded by the
   * config's timeout) so its outcome is reported, not lost, and so is its tracking. A redeploy
   * keeps the tracked sends for the replacing node (same id); removed for good, they go (unless
   * other instances share them through Redis).
   */
  async close(removed: boolean): Promise<void> {
    this.closing = true;
    // Summaries due from now on wait for the replacing node; those under way leave through this one.
    const listening = this.unlisten();
    this.stop.abort();
    await Promise.allSettled([...this.inputs]);
    await Promise.allSettled([...this.opens]);
    await listening;
    try {
      // With shared Redis other instances running this node carry on with them (or they expire).
      const config = this.host.config();
      const shared = config?.settings.store === "redis" && config.state.mode === "shared";
      if (removed && this.track && this.tracker && !shared) await this.drop("log.dropped");
    } catch (e) {
      this.node.warn(errorText(e));
    }
    this.status.stop();
  }
}

/** A shallow copy of the msg without msg.mobile (each output sets its own). */
function withoutMobile(msg: Msg): Msg {
  const copy = { ...msg };
  delete copy.mobile;
  return copy;
}

function errorText(e: unknown): string {
  return String((e as Error)?.message ?? e);
}
