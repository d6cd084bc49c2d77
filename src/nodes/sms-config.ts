import type { NodeAPI } from "node-red";
import { queryBalance } from "../lib/platform/balance";
import { SmsClient } from "../lib/platform/client";
import { CodeTable, parseCodeOverrides, type CodeOverrides } from "../lib/platform/codes";
import { SmsError } from "../lib/errors";
import { t } from "../lib/i18n";
import { describeProblem, toStr, type Translate } from "../lib/props";
import { leaseState } from "../lib/state/registry";
import { registerConnectionTest } from "./config-test";
import { checkSettings, readSettings, SAVED_PASSWORD } from "./settings";
import { runtimeLang, type SmsConfigDef, type SmsConfigNode, type SmsCredentials } from "./common";

export = function (RED: NodeAPI): void {
  function SmsConfig(this: SmsConfigNode & { _client?: SmsClient }, def: SmsConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const checked = checkSettings(def);
    node.settings = checked.settings;
    node.lang = runtimeLang(RED, "sms-config.lang");
    const overrides: CodeOverrides | null = parseCodeOverrides(def.codes);
    node.codes = new CodeTable(node.lang, overrides ?? {});

    // A value the node cannot use as given is said once, in the log and on the status: the node
    // then runs with what the message names (the bound, or the default).
    const tr: Translate = (key, params) => RED._(`sms-config.${key}`, params);
    const adjusted: string[] = [];
    for (const { name, problem } of checked.problems) {
      const label = tr(`label.${name}`);
      node.warn(describeProblem(problem, label, tr));
      adjusted.push(label);
    }
    if (overrides === null) {
      node.warn(tr("errors.badCodes"));
      adjusted.push(tr("label.codes"));
    }
    const adjustedStatus = () => ({
      fill: "yellow" as const,
      shape: "ring" as const,
      text: tr("status.adjusted", { names: adjusted.join(node.lang === "zh-CN" ? "、" : ", ") }),
    });
    if (adjusted.length) node.status(adjustedStatus());

    let closed = false;
    const creds = (node.credentials ?? {}) as SmsCredentials;
    const s = node.settings;

    // The account's state outlives this node (a redeploy hands it to the replacing node) and is
    // shared with every other config node of the same account (SPEC B6).
    const lease = leaseState({
      url: s.url,
      account: creds.account ?? "",
      store: s.store,
      redisUrl: s.redisUrl,
      redisPrefix: s.redisPrefix,
      redisPassword: creds.redisPassword,
      redisMode: s.redisMode,
      redisMaster: s.redisMaster,
      redisSentinelPassword: creds.redisSentinelPassword,
    });
    node.state = lease.state;
    node.stateProblem = () => lease.problem();
    // One line per change of where the state lives, without the URL or any password in it.
    const reason = () => {
      const p = lease.problem();
      return p ? tr(`state.reason.${p.kind}`, { detail: p.detail }) : "";
    };
    node.stateStatus = () => {
      const p = lease.problem();
      if (!p) return null;
      const broken = p.kind === "url" || p.kind === "auth" || p.kind === "prefix";
      return {
        fill: broken ? "red" : "yellow",
        shape: "ring",
        text: broken ? tr(`status.redis.${p.kind}`) : tr("status.local"),
      };
    };
    // A config node's status is not drawn on the canvas; the nodes using it show it too.
    const showState = () => node.status(node.stateStatus() ?? (adjusted.length ? adjustedStatus() : {}));
    // One line per outage (its reason may change while it lasts: the status follows it); a wrong
    // URL or password is an error, an unreachable Redis a warning.
    const setup = () => ["url", "prefix"].includes(lease.problem()?.kind ?? "");
    let wasLocal = s.store === "redis" && setup();
    const offMode = lease.state.onMode((mode) => {
      const local = mode === "local";
      if (local && !wasLocal) {
        const kind = lease.problem()?.kind;
        if (kind === "auth" || kind === "url" || kind === "prefix") node.error(tr("state.local", { reason: reason() }));
        else node.warn(tr("state.local", { reason: reason() }));
      } else if (!local && wasLocal) node.log(tr("state.shared"));
      wasLocal = local;
      showState();
    });
    if (s.store === "redis" && setup()) {
      node.error(tr("state.local", { reason: reason() }));
      showState();
    }

    node.client = () => {
      if (node._client) return node._client;
      if (!creds.account || !creds.password) {
        throw new SmsError({ code: "NO_CONFIG", message: t("noCredentials", node.lang) });
      }
      if (closed)
        throw new SmsError({ code: "NETWORK", message: t("cancelled", node.lang), details: { cancelled: true } });
      try {
        node._client = new SmsClient({
          url: s.url,
          account: creds.account,
          password: creds.password,
          timeout: s.timeout,
          rate: s.rate,
          queue: s.queue,
          retries: s.retries,
          lang: node.lang,
          codes: overrides ?? {},
          pace: (ms) => lease.state.pace("pace", ms),
        });
      } catch {
        throw new SmsError({
          code: "NO_CONFIG",
          message: RED._("sms-config.errors.badUrl", { url: s.url }),
        });
      }
      return node._client;
    };

    node.queryBalance = async () => {
      const client = node.client();
      return queryBalance(lease.state, () => client.balance(), {
        // Another instance's query under way answers within its timeout.
        waitMs: s.timeout + 1000,
        busy: () =>
          new SmsError({
            code: 103,
            message: t("platformCode", node.lang, { code: 103, text: node.codes.balance(103) }),
            details: { description: node.codes.balance(103) },
          }),
      });
    };

    node.on("close", (_removed: boolean, done: () => void) => {
      closed = true;
      offMode();
      lease.release();
      const c = node._client;
      node._client = undefined;
      if (!c) return done();
      c.close().then(done, done);
    });
  }

  RED.nodes.registerType<SmsConfigNode, SmsConfigDef, unknown, SmsCredentials>("sms-config", SmsConfig as never, {
    credentials: {
      account: { type: "text" },
      password: { type: "password" },
      receiver: { type: "text" },
      receiverPassword: { type: "password" },
      redisPassword: { type: "password" },
      redisSentinelPassword: { type: "password" },
    },
  });

  registerConnectionTest(RED);
};
