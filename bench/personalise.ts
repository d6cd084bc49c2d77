// Preparing a 100,000-recipient personalised send against preparing 100,000 numbers with one text
// (issue 15). Both include what happens before the first byte goes out: render, validate, group,
// and encode every request's form body as the client does (2 bodies of 50,000 numbers against
// 100,000 bodies of one number: that is the work a personalised send adds). The two run in turns,
// so that their ratio is taken under the same load. Synchronous, bounded, no network.
import { planSend, type SendPlan } from "../src/lib/alerts/personalise";
import { compileTemplate } from "../src/lib/alerts/template";
import { SmsClient } from "../src/lib/platform/client";
import { prepareSend } from "../src/lib/platform/prepare";

export interface PersonaliseBench {
  /** median ms: 100,000 recipient objects, a distinct text each (100,000 requests) */
  personalise_100k_ms: number;
  /** median ms: 100,000 numbers, one text (prepareSend, 2 requests) */
  plain_100k_ms: number;
  personalise_vs_plain: number;
  /** median ms: the same as personalise_100k_ms without encoding the 100,000 bodies */
  personalise_plan_100k_ms: number;
  /** median ms: 100,000 recipient objects rendering to 3 texts (3 requests) */
  personalise_3texts_100k_ms: number;
  personalise_3texts_vs_plain: number;
  /** median ms: rendering the same 100,000 distinct texts, nothing else */
  render_only_100k_ms: number;
}

const N = 100_000;
const SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄"];
const number = (i: number) => `1${3 + (i % 7)}${String(i).padStart(9, "0")}`;

/** One run's wall time in ms, starting without the previous run's garbage (with --expose-gc). */
function once(fn: () => void): number {
  global.gc?.();
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(times: number[]): number {
  return [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

function time(fn: () => void, runs: number): number {
  fn(); // warm-up: JIT
  fn();
  return median(Array.from({ length: runs }, () => once(fn)));
}

/**
 * Medians of `a` and `b` run in turns after the same warm-up: a ratio of the two is then taken
 * under the same machine load (other processes on a shared machine come and go during a run).
 */
function timePair(a: () => void, b: () => void, runs: number): [number, number] {
  for (let i = 0; i < 3; i++) {
    a();
    b();
  }
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < runs; i++) {
    ta.push(once(a));
    tb.push(once(b));
  }
  return [median(ta), median(tb)];
}

/** Each request's form body, as the client encodes it before sending (SmsClient.send). */
function encode(client: SmsClient, plan: SendPlan): number {
  let bytes = 0;
  for (const r of plan.requests) bytes += client.body({ mobiles: r.mobiles, text: r.text, needstatus: true }).length;
  return bytes;
}

export function benchPersonalise(runs = 21): PersonaliseBench {
  const signature = "【朗宇信息】";
  const msg = { topic: "bill", payload: { month: "2024年3月", due: "4月15日" } };
  const recipients = Array.from({ length: N }, (_, i) => ({
    mobile: number(i),
    name: `${SURNAMES[i % SURNAMES.length]}先生`,
    meter: `M${String(i).padStart(7, "0")}`,
    reading: 100 + (i % 900) + i / 1000,
  }));
  const grouped = recipients.map((r, i) => ({ mobile: r.mobile, plan: ["A", "B", "C"][i % 3] }));
  const numbers = recipients.map((r) => r.mobile);
  const personal =
    "{{recipient.name}}您好，电表{{recipient.meter}} {{payload.month}}读数 {{recipient.reading}} 度，请于{{payload.due}}前缴费。";
  const byPlan = "您好，您的套餐{{recipient.plan}}将于{{payload.due}}续费。";
  const template = compileTemplate(personal);
  // No request is made: the client only encodes bodies here.
  const client = new SmsClient({ url: "http://127.0.0.1:9", account: "demo", password: "demo" });

  const [plain, personalised] = timePair(
    () => {
      const p = prepareSend("您好，4月15日前请缴纳电费。", numbers, { signature });
      let bytes = 0;
      for (const mobiles of p.batches) bytes += client.body({ mobiles, text: p.text, needstatus: true }).length;
      if (p.count !== N || bytes < N * 12) throw new Error("plain benchmark did not prepare the send");
    },
    () => {
      const plan = planSend({ payload: msg.payload, mobile: recipients, template, msg }, { signature });
      if (plan.requests.length !== N || encode(client, plan) < N * 100)
        throw new Error("personalised benchmark did not prepare the send");
    },
    runs,
  );

  const planOnly = time(() => {
    const plan = planSend({ payload: msg.payload, mobile: recipients, template, msg }, { signature });
    if (plan.requests.length !== N) throw new Error("personalised benchmark did not plan the send");
  }, runs);

  const threeTexts = time(() => {
    const plan = planSend({ payload: msg.payload, mobile: grouped, template: byPlan, msg }, { signature });
    if (plan.requests.length !== 3 || plan.count !== N || encode(client, plan) < N * 12) {
      throw new Error("grouped benchmark did not prepare the send");
    }
  }, runs);

  const renderOnly = time(() => {
    let length = 0;
    for (const recipient of recipients) {
      const view = Object.create(msg) as Record<string, unknown>;
      view.recipient = recipient;
      const r = template.tryRender(view);
      if (r.ok) length += r.text.length;
    }
    if (length < N * 20) throw new Error("render benchmark rendered nothing");
  }, runs);

  void client.close();
  return {
    personalise_100k_ms: +personalised.toFixed(1),
    plain_100k_ms: +plain.toFixed(1),
    personalise_vs_plain: +(personalised / plain).toFixed(2),
    personalise_plan_100k_ms: +planOnly.toFixed(1),
    personalise_3texts_100k_ms: +threeTexts.toFixed(1),
    personalise_3texts_vs_plain: +(threeTexts / plain).toFixed(2),
    render_only_100k_ms: +renderOnly.toFixed(1),
  };
}

if (require.main === module) process.stdout.write(JSON.stringify(benchPersonalise()) + "\n");
