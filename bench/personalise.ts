// Preparing a 100,000-recipient personalised send against preparing 100,000 numbers with one text
// (issue 15). Both include what happens before the first byte goes out: render, validate, group,
// and encode every request's form body as the client does. Synchronous, bounded, no network.
import { planSend, type SendPlan } from "../src/lib/alerts/personalise";
import { compileTemplate } from "../src/lib/alerts/template";
import { SmsClient } from "../src/lib/client";
import { prepareSend } from "../src/lib/prepare";

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

function time(fn: () => void, runs: number): number {
  fn(); // warm-up: JIT
  fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Each run starts without the previous run's garbage (when run with --expose-gc).
    global.gc?.();
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

function encode(plan: SendPlan): number {
  let bytes = 0;
  for (const r of plan.requests) {
    bytes += SmsClient.sendBody("demo", "demo", { mobiles: r.mobiles, text: r.text, needstatus: true }).length;
  }
  return bytes;
}

export function benchPersonalise(runs = 11): PersonaliseBench {
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

  const plain = time(() => {
    const p = prepareSend("您好，4月15日前请缴纳电费。", numbers, { signature });
    let bytes = 0;
    for (const mobiles of p.batches)
      bytes += SmsClient.sendBody("demo", "demo", { mobiles, text: p.text, needstatus: true }).length;
    if (p.count !== N || bytes < N * 12) throw new Error("plain benchmark did not prepare the send");
  }, runs);

  const personalised = time(() => {
    const plan = planSend({ payload: msg.payload, mobile: recipients, template, msg }, { signature });
    if (plan.requests.length !== N || encode(plan) < N * 100)
      throw new Error("personalised benchmark did not prepare the send");
  }, runs);

  const planOnly = time(() => {
    const plan = planSend({ payload: msg.payload, mobile: recipients, template, msg }, { signature });
    if (plan.requests.length !== N) throw new Error("personalised benchmark did not plan the send");
  }, runs);

  const threeTexts = time(() => {
    const plan = planSend({ payload: msg.payload, mobile: grouped, template: byPlan, msg }, { signature });
    if (plan.requests.length !== 3 || plan.count !== N || encode(plan) < N * 12) {
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
