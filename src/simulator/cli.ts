#!/usr/bin/env node
import { parseArgs } from "node:util";
import { PUSH_CHARSETS } from "./charset";
import { Simulator } from "./simulator";
import { MOBILE_FORMATS, PUSH_STYLES, TIME_FORMATS, type PushVariant } from "./variants";

const HELP = `Usage: sms-simulator [options]

A stand-in for the HttpBatchSendSM SMS platform, for testing flows offline.

  --host <addr>               listen address (default 127.0.0.1)
  --port <n>                  port (default 18080; 0 = any free port)
  --account <name>            account name (default demo)
  --password <pw>             account password (default demo)
  --report-url <url>          where delivery reports are pushed
  --mo-url <url>              where inbound SMS are pushed
  --receiver <name>           receiver sent in pushes
  --receiver-password <pw>    pswd sent in pushes
  --report-delay <ms>         delay before reports are pushed (default 100)

How pushes look (field variants; default: the platform's documented GET, UTF-8, YYMMDDhhmm):
  --push-style <s>            ${PUSH_STYLES.join(" | ")}
  --time-format <f>           ${TIME_FORMATS.join(" | ")}
  --mobile-format <f>         ${MOBILE_FORMATS.join(" | ")}
  --push-charset <c>          ${PUSH_CHARSETS.join(" | ")} (percent-encoding of get/form pushes)
  --declare-charset           name the charset in the push's content-type
  --report-extras             reports carry notifyTime, batchSeq, uid, price, chargeCount
  --batch-reports <n>         reports of one send as JSON arrays of up to n per POST
  --msgid-as-number           msgid as a bare JSON number in JSON reports
  --extra <key=value>         an extra param on every push (repeatable)
  -h, --help                  this text
`;

const OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  account: { type: "string" },
  password: { type: "string" },
  "report-url": { type: "string" },
  "mo-url": { type: "string" },
  receiver: { type: "string" },
  "receiver-password": { type: "string" },
  "report-delay": { type: "string" },
  "push-style": { type: "string" },
  "time-format": { type: "string" },
  "mobile-format": { type: "string" },
  "push-charset": { type: "string" },
  "declare-charset": { type: "boolean" },
  "report-extras": { type: "boolean" },
  "batch-reports": { type: "string" },
  "msgid-as-number": { type: "boolean" },
  extra: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

class UsageError extends Error {}

function whole(flag: string, raw: string | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > max) throw new UsageError(`--${flag} must be a whole number 0-${max}, got "${raw}"`);
  return n;
}

function oneOf<T extends string>(flag: string, raw: string | undefined, allowed: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!allowed.includes(raw as T)) throw new UsageError(`--${flag} must be one of ${allowed.join(", ")}, got "${raw}"`);
  return raw as T;
}

function pushVariant(v: ReturnType<typeof read>["values"]): PushVariant {
  const extra: Record<string, string> = {};
  for (const kv of v.extra ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--extra must be key=value, got "${kv}"`);
    extra[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const out: PushVariant = {
    pushStyle: oneOf("push-style", v["push-style"], PUSH_STYLES),
    timeFormat: oneOf("time-format", v["time-format"], TIME_FORMATS),
    mobileFormat: oneOf("mobile-format", v["mobile-format"], MOBILE_FORMATS),
    pushCharset: oneOf("push-charset", v["push-charset"], PUSH_CHARSETS),
    declareCharset: v["declare-charset"],
    reportExtras: v["report-extras"],
    batchReports: whole("batch-reports", v["batch-reports"]),
    msgidAsNumber: v["msgid-as-number"],
    extra: Object.keys(extra).length ? extra : undefined,
  };
  return out;
}

function read(argv: string[]) {
  // strict: an unknown flag (`--prot 18099`) or a flag without its value is an error, never a
  // silently ignored setting.
  return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
}

async function main(): Promise<void> {
  let sim: Simulator;
  try {
    const { values: v } = read(process.argv.slice(2));
    if (v.help) {
      process.stdout.write(HELP);
      return;
    }
    sim = new Simulator({
      host: v.host ?? "127.0.0.1",
      port: whole("port", v.port, 65535) ?? 18080,
      accounts: [{ account: v.account ?? "demo", password: v.password ?? "demo" }],
      reportUrl: v["report-url"] ?? "",
      moUrl: v["mo-url"] ?? "",
      receiver: v.receiver ?? "",
      receiverPassword: v["receiver-password"] ?? "",
      reportDelayMs: whole("report-delay", v["report-delay"]),
      log: (l) => process.stderr.write(l + "\n"),
      ...pushVariant(v),
    });
  } catch (e) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes; ours are UsageErrors.
    const usage = e instanceof UsageError || String((e as { code?: string }).code).startsWith("ERR_PARSE_ARGS");
    if (!usage) throw e;
    process.stderr.write(`sms-simulator: ${(e as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  await sim.listen();
  process.stdout.write(`sms-simulator listening on ${sim.url}\n`);
  const stop = () => {
    void sim.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((e: Error) => {
  process.stderr.write(`sms-simulator: ${e.message}\n`);
  process.exit(1);
});
