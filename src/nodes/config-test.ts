// "Test connection" in the config dialog (sms-config): an admin route the editor calls with what
// the dialog holds. Kept apart from the node itself: it shares nothing with a running config node.
import type { NodeAPI } from "node-red";
import { SmsClient } from "../lib/platform/client";
import { SmsError } from "../lib/errors";
import { t, toLang } from "../lib/i18n";
import { toStr } from "../lib/props";
import { readSettings, SAVED_PASSWORD } from "./settings";
import type { SmsConfigDef, SmsCredentials } from "./common";

export function registerConnectionTest(RED: NodeAPI): void {
  // A balance query with what the dialog holds. A saved
  // password comes back from the editor as a placeholder, so it is looked up server-side.
  RED.httpAdmin.post("/sms-config/test", RED.auth.needsPermission("sms-config.write"), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const id = typeof body.id === "string" ? body.id : "";
    const saved = (id ? RED.nodes.getCredentials(id) : null) as SmsCredentials | null;
    const account = toStr(body.account) || saved?.account || "";
    let password = typeof body.password === "string" ? body.password : "";
    if (password === SAVED_PASSWORD || password === "") password = saved?.password ?? "";
    const settings = readSettings(body as Partial<SmsConfigDef>);
    // The answer is read in the editor: in the editor's language (it sends its own), not the server's.
    const lang = toLang(body.lang);
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
          : new SmsError({ code: "NO_CONFIG", message: t("badUrl", lang, { url: settings.url }) });
      res.json({ ok: false, code: err.code, message: err.message });
    } finally {
      await client?.close();
    }
  });
}
