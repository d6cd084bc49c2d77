// Root hooks (loaded through .mocharc "require"): across the whole suite, no distinctive password
// may appear in anything written to stdout/stderr, any Node-RED log event, status, error, warning
// or message a node sent. Failures of this audit fail the run.
import { inspect } from "node:util";
import { PASSWORD, RECEIVER_PASSWORD, spiesSeen } from "./nr";

// The client tests' account password is distinctive too.
const SECRETS = [PASSWORD, RECEIVER_PASSWORD, "Pw-Zebra-7781"];
const leaks: string[] = [];
let current = "";

function scan(where: string, text: string): void {
  for (const s of SECRETS) if (text.includes(s)) leaks.push(`${current}: ${where} contains ${s.slice(0, 3)}…`);
}

const writes: Array<[NodeJS.WriteStream, NodeJS.WriteStream["write"]]> = [];

export const mochaHooks = {
  beforeAll(): void {
    for (const stream of [process.stdout, process.stderr]) {
      const original = stream.write.bind(stream) as NodeJS.WriteStream["write"];
      writes.push([stream, stream.write]);
      stream.write = ((chunk: unknown, ...rest: unknown[]) => {
        scan(stream === process.stdout ? "stdout" : "stderr", String(chunk));
        return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as NodeJS.WriteStream["write"];
    }
  },
  beforeEach(this: Mocha.Context): void {
    current = this.currentTest?.fullTitle() ?? "";
  },
  afterEach(): void {
    for (const spy of spiesSeen.splice(0)) {
      for (const args of spy.args)
        scan("a node's log/status/error/send", inspect(args, { depth: 8, maxStringLength: null, maxArrayLength: 50 }));
    }
  },
  afterAll(): void {
    for (const [stream, write] of writes.splice(0)) stream.write = write;
    if (leaks.length) throw new Error(`secrets leaked:\n${[...new Set(leaks)].slice(0, 20).join("\n")}`);
  },
};
