import type { NodeAPI } from "node-red";
import { SmsClient } from "../lib/client";
import { CodeTable, parseCodeOverrides, type CodeOverrides } from "../lib/codes";
import { SmsError } from "../lib/errors";
import { t } from "../lib/i18n";
import { describeProblem, toStr, type Translate } from "../lib/props";
import { BALANCE_WINDOW_MS, checkSettings, readSettings, SAVED_PASSWORD } from "./settings";
import { runtimeLang, type BalanceAnswer, type SmsConfigDef, type SmsConfigNode, type SmsCredentials } from "./common";

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
    if (adjusted.length) {
      const names = adjusted.join(node.lang === "zh-CN" ? "、" : ", ");
      node.status({ fill: "yellow", shape: "ring", text: tr("status.adjusted", { names }) });
    }

    let closed = false;
    let lastQuery = -Infinity;
    let lastAnswer: { outcome?: BalanceAnswer["outcome"]; error?: SmsError } | null = null;
    let inFlight: Promise<BalanceAnswer> | null = null;

    node.client = () => {
      if (node._client) return node._client;
      const creds = (node.credentials ?? {}) as SmsCredentials;
      if (!creds.account || !creds.password) {
        throw new SmsError({ code: "NO_CONFIG", message: t("noCredentials", node.lang) });
      }
      if (closed)
        throw new SmsError({ code: "NETWORK", message: t("cancelled", node.lang), details: { cancelled: true } });
      try {
        node._client = new SmsClient({
          url: node.settings.url,
          account: creds.account,
          password: creds.password,
          timeout: node.settings.timeout,
          rate: node.settings.rate,
          queue: node.settings.queue,
          retries: node.settings.retries,
          lang: node.lang,
          codes: overrides ?? {},
        });
      } catch {
        throw new SmsError({
          code: "NO_CONFIG",
          message: RED._("sms-config.errors.badUrl", { url: node.settings.url }),
        });
      }
      return node._client;
    };

    node.queryBalance = () => {
      if (inFlight) return inFlight.then((a) => ({ ...a, cached: true }));
      if (lastAnswer && Date.now() - lastQuery < BALANCE_WINDOW_MS) {
        if (lastAnswer.error) return Promise.reject(lastAnswer.error);
        return Promise.resolve({ outcome: lastAnswer.outcome!, cached: true });
      }
      let client: SmsClient;
      try {
        client = node.client();
      } catch (e) {
        return Promise.reject(e);
      }
      lastQuery = Date.now();
      inFlight = client.balance().then(
        (outcome) => {
          lastAnswer = { outcome };
          return { outcome, cached: false };
        },
        (error: SmsError) => {
          lastAnswer = { error };
          throw error;
        },
      );
      const settle = () => {
        inFlight = null;
      };
      inFlight.then(settle, settle);
      return inFlight;
    };

    node.on("close", (_removed: boolean, done: () => void) => {
      closed = true;
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
    },
  });

  // "Test connection" in the config dialog: a balance query with what the dialog holds. A saved
  // password comes back from the editor as a placeholder, so it is looked up server-side.
  RED.httpAdmin.post("/sms-config/test", RED.auth.needsPermission("sms-config.write"), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const id = typeof body.id === "string" ? body.id : "";
    const saved = (id ? RED.nodes.getCredentials(id) : null) as SmsCredentials | null;
    const account = toStr(body.account) || saved?.account || "";
    let password = typeof body.password === "string" ? body.password : "";
    if (password === SAVED_PASSWORD || password === "") password = saved?.password ?? "";
    const settings = readSettings(body as Partial<SmsConfigDef>);
    const lang = runtimeLang(RED, "sms-config.lang");
    if (!account || !password) {
      res.json({ ok: false, code: "NO_CONFIG", message: t("noCredentials", lang) });
      return;
    }
    let client: SmsClient | undefined;
    try {
      client = new SmsClient({ url: settings.url, account, password, timeout: settings.timeout, retries: 0, lang });
      const r = await client.balance();
      res.json({ ok: true, code: 0, products: r.products });
    } catch (e) {
      const err =
        e instanceof SmsError
          ? e
          : new SmsError({ code: "NO_CONFIG", message: RED._("sms-config.errors.badUrl", { url: settings.url }) });
      res.json({ ok: false, code: err.code, message: err.message });
    } finally {
      await client?.close();
    }
  });
};
