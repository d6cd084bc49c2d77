// The tracker against a simple model (issue 13): any order and duplication of reports and of the
// send reply (open), on one or two instances, gives the summary the model gives. Run against the
// memory state and a real redis-server.
import assert from "node:assert/strict";
import fc from "fast-check";
import { trackerFor, type SummaryMsg, type Tracker } from "../../../src/lib/alerts/tracking";
import { CodeTable } from "../../../src/lib/platform/codes";
import type { AccountState } from "../../../src/lib/state/index";
import { memoryEnv, redisEnv, type Env, type EnvMaker } from "./tracking-env";

const OWNER = "model-owner";
const TIMEOUT = 10 * 60_000;
const STATUSES = ["DELIVRD", "MBBLACK", "UNDELIV"] as const;
const codes = new CodeTable("en-US");
const mobile = (i: number) => `1380000000${i}`;

interface Report {
  who: number;
  status: string;
  /** which instance's receive node gets it */
  on: 0 | 1;
}

interface Expected {
  delivered: string[];
  failed: Array<{ mobile: string; status: string; description: string }>;
  pending: string[];
  complete: boolean;
}

/** The model: the first report of each member wins, strangers count for nothing. */
function model(members: number[], reports: Report[]): Expected {
  const first = new Map<number, string>();
  for (const r of reports) if (members.includes(r.who) && !first.has(r.who)) first.set(r.who, r.status);
  const sorted = [...members].sort((a, b) => a - b);
  return {
    delivered: sorted.filter((m) => first.get(m) === "DELIVRD").map(mobile),
    failed: sorted
      .filter((m) => first.has(m) && first.get(m) !== "DELIVRD")
      .map((m) => ({ mobile: mobile(m), status: first.get(m)!, description: codes.status(first.get(m)!) })),
    pending: sorted.filter((m) => !first.has(m)).map(mobile),
    complete: first.size === members.length,
  };
}

const members = fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 6 });
// 8 and 9 are never members: reports for numbers the send did not have.
const report = fc.record({
  who: fc.integer({ min: 0, max: 9 }),
  status: fc.constantFrom(...STATUSES),
  on: fc.constantFrom<0 | 1>(0, 1),
});

interface Rig {
  env: Env;
  trackers: [Tracker, Tracker];
  got: SummaryMsg[];
}

async function rig(maker: EnvMaker, wrap: (s: AccountState) => AccountState = (s) => s): Promise<Rig> {
  const env = await maker.make();
  const got: SummaryMsg[] = [];
  // With memory both instances are one state, so one tracker (wrapped once, or it would be two).
  const wrapped = new Map<AccountState, AccountState>();
  const handle = (s: AccountState) => wrapped.get(s) ?? wrapped.set(s, wrap(s)).get(s)!;
  const trackers = [env.state, env.twin].map((s) => trackerFor(handle(s), { clock: env.clock })) as [Tracker, Tracker];
  // The send node runs on both instances (with memory both are the same tracker).
  for (const t of new Set(trackers)) {
    t.listen(OWNER, {
      offsetMinutes: 480,
      describe: (s) => codes.status(s),
      summary: (m) => got.push(m),
      error: (e) => {
        throw e;
      },
    });
  }
  return { env, trackers, got };
}

/** Checks the one summary the run must give: at once when complete, at the timeout otherwise. */
async function expectSummary(r: Rig, msgid: string, want: Expected, before: number): Promise<void> {
  const { env, got } = r;
  const settle = async () => {
    await env.fire();
    await new Promise((res) => setTimeout(res, env.name === "redis" ? 15 : 0));
  };
  const mine = () => got.filter((m) => m.msgid === msgid);
  if (!want.complete) {
    await settle();
    assert.equal(mine().length, 0, "an incomplete send is not summed up before its timeout");
    env.clock.advance(TIMEOUT);
  }
  const until = Date.now() + 5000;
  while (mine().length < 1) {
    if (Date.now() > until) throw new Error(`no summary for ${msgid} (complete: ${want.complete})`);
    await settle();
  }
  await settle();
  assert.equal(mine().length, 1, "exactly one summary");
  const p = mine()[0].payload;
  assert.deepEqual({ delivered: p.delivered, failed: p.failed, pending: p.pending, complete: p.complete }, want);
  assert.equal(p.total, want.delivered.length + want.failed.length + want.pending.length);
  assert.equal(
    got.length,
    before + 1,
    `no summary of another send: ${got
      .slice(before)
      .map((m) => m.msgid)
      .join(",")}`,
  );
}

function modelSuite(maker: EnvMaker, runs: number): void {
  describe(`tracking model (${maker.name})`, function () {
    this.timeout(120_000);
    afterEach(() => maker.cleanup());

    it("reports and the send reply in any order, duplicated, on either instance: the model's summary", async () => {
      const r = await rig(maker);
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          members,
          fc.array(report, { maxLength: 16 }),
          fc.nat(),
          fc.nat(3),
          async (ms, reports, openAt, dups) => {
            const msgid = `seq${++run}`;
            // Duplicates: some reports pushed again later, as the platform does.
            const all = [...reports, ...reports.slice(0, dups)];
            const at = openAt % (all.length + 1);
            const before = r.got.length;
            // As sms-send does before each tracked request: reports that beat its reply are kept.
            await r.trackers[0].expect();
            for (let i = 0; i <= all.length; i++) {
              if (i === at) {
                await r.trackers[0].open({
                  msgid,
                  mobiles: ms.map(mobile),
                  owner: OWNER,
                  sentAt: r.env.clock.now(),
                  timeoutMs: TIMEOUT,
                  batch: { index: 1, count: 1 },
                  msg: { topic: msgid },
                });
              }
              if (i < all.length) await r.trackers[all[i].on].report(msgid, mobile(all[i].who), all[i].status);
            }
            await expectSummary(r, msgid, model(ms, all), before);
          },
        ),
        { numRuns: runs },
      );
    });

    it("reports and the send reply racing (state operations interleaved any way): the model's summary", async () => {
      let sched: fc.Scheduler | null = null;
      // Every state operation waits for the scheduler while a race runs: the interleaving is its choice.
      const wrap = (s: AccountState): AccountState =>
        new Proxy(s, {
          get(target, prop, receiver) {
            const v = Reflect.get(target, prop, receiver) as unknown;
            if (typeof v !== "function" || prop === "onDue" || prop === "onMode") {
              return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
            }
            return (...args: unknown[]) => {
              const call = () => (v as (...a: unknown[]) => unknown).apply(target, args);
              return sched ? sched.schedule(Promise.resolve(), String(prop)).then(call) : call();
            };
          },
        });
      const r = await rig(maker, wrap);
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.scheduler(),
          members,
          fc.array(fc.record({ who: fc.integer({ min: 0, max: 9 }), on: fc.constantFrom<0 | 1>(0, 1) }), {
            maxLength: 12,
          }),
          async (s, ms, pushes) => {
            const msgid = `race${++run}`;
            // One status per number here: which of two racing reports is "first" is the race's to decide.
            const reports: Report[] = pushes.map((p) => ({ ...p, status: STATUSES[p.who % 3] }));
            const before = r.got.length;
            await r.trackers[0].expect();
            sched = s;
            const work = [
              r.trackers[0].open({
                msgid,
                mobiles: ms.map(mobile),
                owner: OWNER,
                sentAt: r.env.clock.now(),
                timeoutMs: TIMEOUT,
                batch: { index: 1, count: 1 },
                msg: { topic: msgid },
              }),
              ...reports.map((p) => r.trackers[p.on].report(msgid, mobile(p.who), p.status)),
            ];
            try {
              await s.waitFor(Promise.all(work));
            } finally {
              sched = null;
            }
            // Anything the race left scheduled (a deadline moved to now) runs unscheduled from here.
            await s.waitIdle();
            await expectSummary(r, msgid, model(ms, reports), before);
          },
        ),
        { numRuns: runs },
      );
    });

    it("a second, different report for a number racing with its summary (finish) never changes the first one", async () => {
      let sched: fc.Scheduler | null = null;
      const wrap = (s: AccountState): AccountState =>
        new Proxy(s, {
          get(target, prop, receiver) {
            const v = Reflect.get(target, prop, receiver) as unknown;
            if (typeof v !== "function" || prop === "onDue" || prop === "onMode") {
              return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
            }
            return (...args: unknown[]) => {
              const call = () => (v as (...a: unknown[]) => unknown).apply(target, args);
              return sched ? sched.schedule(Promise.resolve(), String(prop)).then(call) : call();
            };
          },
        });
      const r = await rig(maker, wrap);
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.scheduler(),
          members,
          fc.array(fc.record({ who: fc.integer({ min: 0, max: 7 }), status: fc.constantFrom(...STATUSES) }), {
            maxLength: 6,
          }),
          fc.array(
            fc.record({ who: fc.integer({ min: 0, max: 7 }), on: fc.constantFrom<0 | 1>(0, 1), shift: fc.nat(2) }),
            {
              minLength: 1,
              maxLength: 8,
            },
          ),
          async (s, ms, firsts, seconds) => {
            const msgid = `late${++run}`;
            await r.trackers[0].expect();
            await r.trackers[0].open({
              msgid,
              mobiles: ms.map(mobile),
              owner: OWNER,
              sentAt: r.env.clock.now(),
              timeoutMs: TIMEOUT,
              batch: { index: 1, count: 1 },
              msg: { topic: msgid },
            });
            const first = new Map<number, string>();
            for (const f of firsts) {
              await r.trackers[0].report(msgid, mobile(f.who), f.status);
              if (ms.includes(f.who) && !first.has(f.who)) first.set(f.who, f.status);
            }
            // Each racing report differs from the number's first one, if it had one.
            const racing = seconds.map((x) => {
              const had = first.get(x.who);
              const i = had ? (STATUSES.indexOf(had as (typeof STATUSES)[number]) + 1 + (x.shift % 2)) % 3 : x.shift;
              return { ...x, status: STATUSES[i] };
            });
            sched = s;
            let summary: SummaryMsg | null = null;
            try {
              await s.waitFor(
                Promise.all([
                  r.trackers[0].finish(msgid, { describe: (st) => codes.status(st) }).then((m) => (summary = m)),
                  ...racing.map((x) => r.trackers[x.on].report(msgid, mobile(x.who), x.status)),
                ]),
              );
            } finally {
              sched = null;
            }
            await s.waitIdle();
            assert.ok(summary, "the summary");
            const p = (summary as SummaryMsg).payload;
            const status = new Map<string, string>();
            for (const d of p.delivered) status.set(d, "DELIVRD");
            for (const f of p.failed) status.set(f.mobile, f.status);
            for (const m of ms) {
              const had = first.get(m);
              const got = status.get(mobile(m));
              if (had) assert.equal(got, had, `${mobile(m)} keeps its first report`);
              else if (got !== undefined) {
                // A racing report may land in time (it is then this number's first), or miss it.
                assert.ok(
                  racing.some((x) => x.who === m && x.status === got),
                  `${mobile(m)}: ${got}`,
                );
              } else assert.ok(p.pending.includes(mobile(m)));
            }
            assert.equal(p.total, ms.length);
          },
        ),
        { numRuns: runs },
      );
    });
  });
}

modelSuite(memoryEnv(), 300);

describe("tracking model: redis", function () {
  this.timeout(180_000);
  const maker = redisEnv();
  modelSuite(maker, 40);
});
