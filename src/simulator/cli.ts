#!/usr/bin/env node
import { Simulator } from "./simulator";

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
  -h, --help                  this text
`;

function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-h" || a === "--help") out.help = "1";
    else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
      else if (i + 1 < argv.length) out[a.slice(2)] = argv[++i];
      else throw new Error(`missing value for ${a}`);
    } else throw new Error(`unexpected argument ${a}`);
  }
  return out;
}

async function main(): Promise<void> {
  let args: Record<string, string>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  const port = Number(args.port ?? 18080);
  const sim = new Simulator({
    host: args.host ?? "127.0.0.1",
    port,
    accounts: [{ account: args.account ?? "demo", password: args.password ?? "demo" }],
    reportUrl: args["report-url"] ?? "",
    moUrl: args["mo-url"] ?? "",
    receiver: args.receiver ?? "",
    receiverPassword: args["receiver-password"] ?? "",
    reportDelayMs: args["report-delay"] !== undefined ? Number(args["report-delay"]) : undefined,
    log: (l) => process.stderr.write(l + "\n"),
  });
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
