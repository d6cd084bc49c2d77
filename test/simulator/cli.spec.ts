import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { request } from "undici";
import { waitFor } from "../support/stub";

const CLI = path.join(__dirname, "../../../dist/simulator/cli.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI with args that must make it exit on its own (bounded by the mocha timeout). */
function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    // A CLI that wrongly starts listening instead of exiting is stopped here, so the test fails
    // on its assertions rather than hanging.
    const guard = setInterval(() => {
      if (/listening on/.test(stdout)) child.kill("SIGTERM");
    }, 20);
    child.once("close", (code) => {
      clearInterval(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("simulator CLI flags", () => {
  it("refuses an unknown flag (a typo like --prot) with exit 2, naming it, and the help", async () => {
    const r = await run(["--prot", "0"]);
    assert.equal(r.code, 2, `exit code; stdout=${r.stdout}`);
    assert.match(r.stderr, /--prot/);
    assert.match(r.stderr, /Usage: sms-simulator/);
    assert.doesNotMatch(r.stdout, /listening/);
  });

  it("refuses a flag without its value with exit 2", async () => {
    const r = await run(["--port"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--port/);
    assert.match(r.stderr, /Usage: sms-simulator/);
  });

  it("refuses a stray positional argument and a port that is not a port", async () => {
    for (const args of [["18080"], ["--port", "abc"], ["--port", "70000"], ["--report-delay", "-1"]]) {
      const r = await run(args);
      assert.equal(r.code, 2, `exit code for ${args.join(" ")}`);
      assert.match(r.stderr, /Usage: sms-simulator/);
    }
  });

  it("--help prints the help and exits 0", async () => {
    const r = await run(["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: sms-simulator/);
    assert.match(r.stdout, /--push-style/);
  });

  it("takes --flag=value and the push variant flags", async () => {
    const child = spawn(
      process.execPath,
      [CLI, "--port=0", "--account=acme", "--password", "pw", "--time-format", "iso", "--push-style", "json"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    try {
      await waitFor(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out), 10_000, "simulator start");
      const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1];
      const res = await request(`${url}/sim/config`);
      const cfg = (await res.body.json()) as { timeFormat: string; pushStyle: string };
      assert.equal(cfg.timeFormat, "iso");
      assert.equal(cfg.pushStyle, "json");
      const accounts = (await (await request(`${url}/sim/accounts`)).body.json()) as Array<{ account: string }>;
      assert.deepEqual(
        accounts.map((a) => a.account),
        ["acme"],
      );
    } finally {
      const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    }
  });

  it("refuses a push variant flag with a value it does not know, listing the allowed ones", async () => {
    const r = await run(["--time-format", "yyyy"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--time-format/);
    assert.match(r.stderr, /YYMMDDhhmm/);
  });
});
