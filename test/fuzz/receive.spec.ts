// Fuzz: random pushes through real HTTP into a running Node-RED (the test helper) with two
// sms-receive nodes, one whose account has receiver credentials and one open to anyone (issue 22,
// SPEC B4, B4a): methods, content types and charsets, repeated and missing names, deep and huge
// JSON, invalid UTF-8 and percent sequences, arrays of mixed elements, bodies up to and past the
// size limit, with right, wrong and missing credentials. For the whole run:
//   - Node-RED never crashes and never answers 500; every request is answered within 1 s;
//   - the event loop is never held more than 50 ms (monitorEventLoopDelay, from a clean heap);
//   - nothing a refused push (any answer but 200) carried is ever emitted;
//   - no inbound SMS is emitted twice (every one carries a nonce of its own), no report twice
//     (re-pushed on purpose); every valid inbound SMS answered OK is emitted.
// Seeded: a failure prints FUZZ_SEED (the run) and the case; FUZZ_SEED=s replays the run. `npm
// test` runs a bounded run; `npm run fuzz` sets FUZZ_LONG=1 (thousands of pushes); FUZZ_PUSHES
// sets the count.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ALL_NODES, captured, flowWith, helper, PASSWORD, RECEIVER_PASSWORD, sleep } from "../support/nr";
import { fuzzSeed, rngFor } from "../support/rng";
import { waitFor } from "../support/stub";
import { watchLoop } from "../nodes/receive-stalls";

const LONG = process.env.FUZZ_LONG === "1";
const SEED = fuzzSeed();
const PUSHES = Number(process.env.FUZZ_PUSHES ?? (LONG ? 20_000 : 1500));
const CONCURRENCY = 4;
const LIMIT = 64 * 1024;

type Rng = ReturnType<typeof rngFor>;

type Fields = Array<[string, string]>;

interface Push {
  method: string;
  path: "/fz/auth" | "/fz/open";
  query: string;
  type: string | null;
  body: Buffer | null;
  /** nonces this push carries (in msg texts and msgids) */
  nonces: string[];
  /** an inbound SMS that must come out once if the answer is 200 (a known-valid plain push) */
  mustEmit: string | null;
  /** a single report (no inbound SMS in it): pushed again, it must not come out again */
  repush: boolean;
  /** what the case was, for a failure */
  label: string;
}

const MOBILES = ["13900210021", "+8613800138000", "8613700137000", "12345", "", "1".repeat(40)];
const NASTY = [
  "%",
  "%zz",
  "%C4%E3",
  "%E4%BD",
  "%%%",
  "%00",
  "%FF%FE",
  "+",
  "%2B",
  "&",
  "=",
  "\u0000",
  "优惠50%",
  "100%AB级",
  "x.cn/s?q=%C4%E3",
];

function creds(r: Rng, path: Push["path"]): Fields {
  if (path === "/fz/open") return r.chance(0.3) ? [["receiver", "any"]] : [];
  switch (r.int(0, 5)) {
    case 0:
      return [];
    case 1:
      return [
        ["receiver", "rcv"],
        ["pswd", "wrong"],
      ];
    case 2:
      return [["pswd", RECEIVER_PASSWORD]];
    default:
      return [
        ["receiver", "rcv"],
        ["pswd", RECEIVER_PASSWORD],
      ];
  }
}

function moFields(r: Rng, nonce: string, sane: boolean): Fields {
  const f: Fields = [
    ["mobile", sane ? "13900210021" : r.pick(MOBILES)],
    ["msg", sane ? `reply ${nonce}` : `${r.pick(NASTY)}${nonce}${r.pick(NASTY)}`],
  ];
  if (r.chance(0.7)) f.push(["destcode", "10690001"]);
  if (r.chance(0.7)) f.push(["moTime", r.pick(["1012241002", "garbage", "2026-12-07 10:00:00", ""])]);
  if (!sane && r.chance(0.2)) f.push(["isems", r.pick(["1", "2", "0", ""])]);
  if (!sane && r.chance(0.2)) f.push(["emshead", r.pick([`${nonce.slice(-6)},2,1`, "x", "1,0,1", "1,300,1"])]);
  return f;
}

function reportFields(r: Rng, nonce: string): Fields {
  const f: Fields = [
    ["msgid", nonce],
    ["mobile", r.pick(MOBILES.slice(0, 3))],
    ["status", r.pick(["DELIVRD", "UNDELIV", "ERR:104", ""])],
  ];
  if (r.chance(0.8)) f.push(["reportTime", r.pick(["1012241002", "x"])]);
  return f;
}

function mess(r: Rng, f: Fields): Fields {
  const out = [...f];
  if (r.chance(0.3) && out.length) out.splice(r.int(0, out.length - 1), 1); // a missing name
  if (r.chance(0.3) && out.length) out.push(out[r.int(0, out.length - 1)]); // a repeated one
  if (r.chance(0.3)) out.push([r.pick(["__proto__", "constructor", "a[b]", "x", ""]), r.pick(NASTY)]);
  if (r.chance(0.05)) for (let i = r.int(990, 1100); i > 0; i--) out.push(["a", "1"]);
  return out;
}

function formBytes(r: Rng, f: Fields): Buffer {
  const enc = (s: string) => (r.chance(0.8) ? encodeURIComponent(s) : s);
  const text = f.map(([k, v]) => `${enc(k)}=${enc(v)}`).join(r.chance(0.95) ? "&" : "&&");
  if (r.chance(0.1)) return Buffer.concat([Buffer.from(text, "latin1"), Buffer.from([0xc4, 0xe3, 0xff, 0x80, 0xc0])]);
  return Buffer.from(text, "utf8");
}

function jsonValue(r: Rng, depth = 0): unknown {
  switch (r.int(0, depth > 3 ? 4 : 7)) {
    case 0:
      return null;
    case 1:
      return r.pick([0, -1, 1.5, 12345678901234567890, true]);
    case 2:
    case 3:
      return r.pick(NASTY);
    case 4:
      return "x".repeat(r.int(0, 300));
    case 5:
      return Array.from({ length: r.int(0, 4) }, () => jsonValue(r, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: r.int(0, 4) }, (_, i) => [`k${i}`, jsonValue(r, depth + 1)]));
  }
}

function element(r: Rng, i: number, nonce: string, path: Push["path"], nonces: string[]): unknown {
  const n = `${nonce}e${i}`;
  nonces.push(n);
  switch (r.int(0, 5)) {
    case 0:
      return jsonValue(r);
    case 1:
      return Object.fromEntries(mess(r, [...creds(r, path), ...reportFields(r, n)]));
    default:
      return Object.fromEntries(mess(r, [...creds(r, path), ...moFields(r, n, r.chance(0.5))]));
  }
}

function build(seed: number, index: number): Push {
  const r = rngFor(seed, index);
  const nonce = `fz${seed.toString(36)}n${index}`;
  const path = r.chance(0.5) ? "/fz/auth" : "/fz/open";
  const nonces = [nonce];
  const method = r.pick(["GET", "GET", "POST", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]);
  const sane = r.chance(0.3);
  if (sane) {
    // A valid plain inbound SMS with the right credentials: must come out exactly once.
    const f: Fields = [
      ...(path === "/fz/auth" ? creds({ ...r, int: () => 5 }, path) : []),
      ...moFields(r, nonce, true),
    ];
    const qs = new URLSearchParams(f).toString();
    const asGet = r.chance(0.5);
    return {
      method: asGet ? "GET" : "POST",
      path,
      query: asGet ? qs : "",
      type: asGet ? null : "application/x-www-form-urlencoded",
      body: asGet ? null : Buffer.from(qs),
      nonces,
      mustEmit: `reply ${nonce}`,
      repush: false,
      label: `sane ${asGet ? "GET" : "POST"}`,
    };
  }
  const isMo = r.chance(0.6);
  const fields = mess(r, [...creds(r, path), ...(isMo ? moFields(r, nonce, false) : reportFields(r, nonce))]);
  const shape = r.int(0, 9);
  let type: string | null = r.pick([
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=gbk",
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "text/plain; charset=nonsense",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    null,
  ]);
  let body: Buffer | null = null;
  let query = "";
  let label = `fields ${method}`;
  if (shape <= 2) {
    query = formBytes(r, fields).toString("latin1");
    if (query.length > 6000) query = query.slice(0, 6000);
  } else if (shape <= 5) {
    body = formBytes(r, fields);
    label = "form body";
  } else if (shape === 6) {
    const items = Array.from({ length: r.chance(0.1) ? r.int(900, 1100) : r.int(0, 6) }, (_, i) =>
      element(r, i, nonce, path, nonces),
    );
    body = Buffer.from(JSON.stringify(items));
    type = r.chance(0.8) ? "application/json" : type;
    label = `array of ${items.length}`;
  } else if (shape === 7) {
    const o: Record<string, unknown> = Object.fromEntries(fields);
    for (let k = r.int(0, 3); k > 0; k--) o[`extra${k}`] = jsonValue(r);
    if (r.chance(0.3)) o.msgid = r.pick([12345678901234567890, nonce, null, { a: 1 }]);
    body = Buffer.from(JSON.stringify(o));
    type = r.chance(0.8) ? "application/json" : type;
    label = "json object";
  } else if (shape === 8) {
    // Deep or huge JSON, up to and past the limit.
    const kind = r.int(0, 3);
    const size = r.chance(0.2) ? r.int(LIMIT, LIMIT + 4096) : r.int(1000, LIMIT - 200);
    const text =
      kind === 0
        ? "[".repeat(size)
        : kind === 1
          ? `{"x":${'{"a":'.repeat(Math.floor(size / 5))}1`
          : kind === 2
            ? `{"mobile":"13900210021","msg":"${nonce}","x":[${Array.from({ length: Math.floor(size / 4) }, () => '"1"').join(",")}]}`
            : `{"s":"${"\\\\".repeat(Math.floor(size / 2))}"}`;
    body = Buffer.from(text);
    type = "application/json";
    label = `deep/huge json ${kind} ${text.length}`;
  } else {
    // Raw bytes: invalid UTF-8, percent runs, separators.
    const n = r.chance(0.2) ? r.int(LIMIT - 100, LIMIT + 100) : r.int(0, 2000);
    const bytes = Buffer.alloc(n);
    const alphabet = r.chance(0.3) ? [0x61, 0x26] : [0x26, 0x3d, 0x25, 0x61, 0xc4, 0xe3, 0xff, 0x80, 0x2b, 0x7b, 0x5b];
    // "a&a&a…" (one name repeated) or random bytes of the separators, escapes and bad UTF-8.
    for (let i = 0; i < n; i++) bytes[i] = alphabet.length === 2 ? alphabet[i % 2] : r.pick(alphabet);
    body = bytes;
    label = `raw ${n}`;
  }
  if (method === "GET" || method === "HEAD") {
    if (body && !query) query = body.toString("latin1").slice(0, 6000);
    body = null;
  }
  const repush = !isMo && (shape <= 5 || shape === 7);
  return { method, path, query, type, body, nonces, mustEmit: null, repush, label };
}

interface Outcome {
  status: number;
  ms: number;
}

async function send(base: string, p: Push): Promise<Outcome> {
  const started = performance.now();
  const url = new URL(`${base}${p.path}`);
  const res = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: p.method,
        // Raw, as sent: the client must not re-encode what the case built.
        path: p.query ? `${p.path}?${p.query.replace(/[\s#\u0000-\u001f\u007f-\uffff]/g, encodeURIComponent)}` : p.path,
        headers: {
          ...(p.type ? { "content-type": p.type } : {}),
          ...(p.body ? { "content-length": p.body.length } : {}),
        },
        timeout: 1000,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 1 s")));
    req.on("error", reject);
    req.end(p.body ?? undefined);
  });
  return { status: res, ms: performance.now() - started };
}

describe(`fuzz: sms-receive, random pushes through real HTTP (FUZZ_SEED=${SEED})`, function () {
  this.timeout(LONG ? 0 : 120_000);
  let server: http.Server | null = null;

  after(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server!.close(r));
    }
    await helper.unload();
  });

  it(`${PUSHES} pushes: no crash, no 500, each answered within 1 s, loop never held 50 ms, nothing refused emitted, nothing twice`, async () => {
    const flow = flowWith({}, [
      {
        id: "ra",
        type: "sms-receive",
        config: "cfg",
        path: "/fz/auth",
        reassemble: true,
        partTimeout: 600,
        wires: [["out"], ["out2"]],
      },
      {
        id: "ro",
        type: "sms-receive",
        config: "cfg2",
        path: "/fz/open",
        reassemble: true,
        partTimeout: 600,
        wires: [["out"], ["out2"]],
      },
    ]);
    flow.splice(2, 0, { id: "cfg2", type: "sms-config", name: "open", timeout: 2000, rate: 0 });
    await helper.load(
      ALL_NODES as never,
      flow as never,
      {
        cfg: { account: "demo", password: PASSWORD, receiver: "rcv", receiverPassword: RECEIVER_PASSWORD },
        cfg2: { account: "demo2", password: PASSWORD },
      } as never,
    );
    const emitted: string[] = [];
    for (const id of ["out", "out2"]) {
      helper.getNode(id).on("input", (m: Record<string, unknown>) => emitted.push(JSON.stringify(m.payload)));
    }
    server = http.createServer(captured.httpNode!);
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const refused: Array<{ i: number; nonce: string }> = [];
    const mustEmit: Array<{ i: number; text: string }> = [];
    const failures: string[] = [];
    const fail = (i: number, p: Push, what: string) =>
      failures.push(`FUZZ_SEED=${SEED} case ${i} (${p.method} ${p.path} ${p.type ?? "-"} ${p.label}): ${what}`);

    const loop = watchLoop(50);
    let nextCase = 0;
    const worker = async () => {
      while (nextCase < PUSHES) {
        const i = nextCase++;
        const p = build(SEED, i);
        let o: Outcome;
        try {
          o = await send(base, p);
        } catch (e) {
          fail(i, p, `no answer: ${(e as Error).message}`);
          continue;
        }
        if (o.ms > 1000) fail(i, p, `answered after ${Math.round(o.ms)} ms`);
        if (o.status >= 500) fail(i, p, `HTTP ${o.status}`);
        if (o.status !== 200) for (const n of p.nonces) refused.push({ i, nonce: n });
        else if (p.mustEmit) mustEmit.push({ i, text: p.mustEmit });
        // Reports pushed again on purpose: never emitted twice. (A plain inbound SMS has no id:
        // pushed twice, it is two SMS.)
        if (o.status === 200 && p.repush) {
          const again = await send(base, p).catch(() => null);
          if (again && again.status >= 500) fail(i, p, `re-push: HTTP ${again.status}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await sleep(200);
    const held = loop.stop();
    // monitorEventLoopDelay's figure; a late tick the process did not spend busy (descheduled on
    // a loaded machine) or spent in the collector is said, not counted as ours.
    if (held.maxMs >= 50)
      console.log(`receive fuzz: loop delay ${held.maxMs.toFixed(1)} ms; late ticks ${JSON.stringify(held.stalls)}`);
    if (held.ours.length)
      failures.push(`FUZZ_SEED=${SEED}: event loop held ${JSON.stringify(held.ours)} (ms, cpu ms, gc ms)`);

    await waitFor(
      () => mustEmit.every((m) => emitted.some((e) => e.includes(m.text))),
      10_000,
      "every valid inbound SMS answered OK emitted",
    ).catch((e: Error) => failures.push(`FUZZ_SEED=${SEED}: ${e.message}`));

    const all = emitted.join("\n");
    for (const { i, nonce } of refused) {
      // A nonce is a prefix of its elements' (…n12e3): match it whole.
      if (new RegExp(`${nonce}(?![e0-9])`).test(all))
        failures.push(`FUZZ_SEED=${SEED} case ${i}: refused push emitted`);
    }
    const counts = new Map<string, number>();
    for (const e of emitted) {
      for (const n of new Set(e.match(/fz[0-9a-z]+n\d+(?:e\d+)?/g) ?? [])) counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    for (const [n, c] of counts) if (c > 1) failures.push(`FUZZ_SEED=${SEED}: ${n} emitted ${c} times`);
    if (failures.length) console.log(`receive fuzz failed: replay with FUZZ_SEED=${SEED}`);
    assert.ok(failures.length === 0, failures.slice(0, 20).join("\n"));
    assert.ok(emitted.length > 0, "the run emitted something");
  });
});
