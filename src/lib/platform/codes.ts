import { t, type Lang, type Texts } from "../i18n";

/** Send reply codes (SPEC A1). 107 is seen in the wild; 114 is the older numbering of review. */
export const SEND_CODES: Record<number, Texts> = {
  0: { "en-US": "submitted", "zh-CN": "提交成功" },
  101: { "en-US": "no such user", "zh-CN": "无此用户" },
  102: { "en-US": "wrong password", "zh-CN": "密码错" },
  103: { "en-US": "submitting too fast (rate limit)", "zh-CN": "提交过快（提交速度超过流速限制）" },
  104: { "en-US": "system busy", "zh-CN": "系统忙（因平台侧原因，暂时无法处理提交的短信）" },
  105: { "en-US": "sensitive words in the text", "zh-CN": "敏感短信（短信内容包含敏感词）" },
  106: { "en-US": "message length error", "zh-CN": "消息长度错（>536或<=0）" },
  107: { "en-US": "invalid mobile number", "zh-CN": "手机号码错误" },
  108: { "en-US": "number count error (>50000 or <=0)", "zh-CN": "手机号码个数错（发送>50000或<=0）" },
  109: { "en-US": "no quota left", "zh-CN": "无发送额度（该用户可用短信数已使用完）" },
  110: { "en-US": "outside sending hours", "zh-CN": "不在发送时间内" },
  111: { "en-US": "monthly quota exceeded", "zh-CN": "超出该账户当月发送额度限制" },
  112: { "en-US": "no such product", "zh-CN": "无此产品，用户没有订购该产品" },
  113: { "en-US": "extno format error", "zh-CN": "extno格式错（非数字或者长度不对）" },
  114: {
    "en-US": "automatic review rejected (older platform numbering)",
    "zh-CN": "自动审核驳回（旧版平台编号）",
  },
  115: { "en-US": "automatic review rejected", "zh-CN": "自动审核驳回" },
  116: {
    "en-US": "missing or illegal signature (the text must carry a 【signature】)",
    "zh-CN": "签名不合法，未带签名（用户必须带签名的前提下）",
  },
  117: { "en-US": "IP address not registered", "zh-CN": "IP地址认证错，请求调用的IP地址不是系统登记的IP地址" },
  118: { "en-US": "no send permission", "zh-CN": "用户没有相应的发送权限" },
  119: { "en-US": "account expired", "zh-CN": "用户已过期" },
  120: { "en-US": "content not on the whitelist", "zh-CN": "内容不在白名单中" },
};

/** Balance reply codes (SPEC A2). */
export const BALANCE_CODES: Record<number, Texts> = {
  0: { "en-US": "ok", "zh-CN": "成功" },
  101: { "en-US": "no such user", "zh-CN": "无此用户" },
  102: { "en-US": "wrong password", "zh-CN": "密码错" },
  103: { "en-US": "queried too often (at most once per 10 s)", "zh-CN": "查询过快（建议每10秒查询一次）" },
};

/** Delivery report statuses (SPEC A3); anything else is a carrier gateway code. */
export const REPORT_STATUSES: Record<string, Texts> = {
  DELIVRD: { "en-US": "delivered", "zh-CN": "发送成功" },
  MBBLACK: { "en-US": "number blacklisted", "zh-CN": "黑名单号码" },
  ROUTEERR: { "en-US": "channel error", "zh-CN": "通道异常" },
  REJECT: { "en-US": "review rejected", "zh-CN": "审核驳回" },
  DISTURB: { "en-US": "number received too many messages", "zh-CN": "手机号码发送次数过多" },
  EMSERR: { "en-US": "long SMS incomplete", "zh-CN": "长短信不完整" },
  SIGNERR: { "en-US": "bad signature", "zh-CN": "签名错" },
  KEYWORD: { "en-US": "sensitive word", "zh-CN": "敏感词" },
};

/** Codes the platform surely did not act on: retrying them cannot send twice. */
export const RETRY_SAFE_CODES: ReadonlySet<number> = new Set([103, 104]);

/** A per-account override: code → text, either one string or one per language. */
export type CodeOverrides = Record<string, string | Partial<Texts>>;

function pick(override: string | Partial<Texts> | undefined, lang: Lang): string | undefined {
  if (override === undefined) return undefined;
  if (typeof override === "string") return override;
  return override[lang] ?? override["en-US"] ?? override["zh-CN"];
}

export class CodeTable {
  constructor(
    private readonly lang: Lang = "en-US",
    private readonly overrides: CodeOverrides = {},
  ) {}

  send(code: number): string {
    return pick(this.overrides[String(code)], this.lang) ?? SEND_CODES[code]?.[this.lang] ?? this.unknown(code);
  }

  balance(code: number): string {
    return pick(this.overrides[`balance:${code}`], this.lang) ?? BALANCE_CODES[code]?.[this.lang] ?? this.unknown(code);
  }

  status(status: string): string {
    return (
      pick(this.overrides[status], this.lang) ??
      REPORT_STATUSES[status]?.[this.lang] ??
      t("unknownStatus", this.lang, { status })
    );
  }

  private unknown(code: number): string {
    return t("unknownCode", this.lang, { code });
  }
}

/**
 * Reads a user's override table (JSON text or an object). Keys are send codes ("116"),
 * balance codes ("balance:103") or report statuses ("UNDELIV"). Returns null when unreadable.
 */
export function parseCodeOverrides(input: unknown): CodeOverrides | null {
  let v = input;
  if (v === undefined || v === null || v === "") return {};
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      return null;
    }
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const out: CodeOverrides = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val === "string") out[k] = val;
    else if (val && typeof val === "object") {
      const o = val as Record<string, unknown>;
      const entry: Partial<Texts> = {};
      if (typeof o["en-US"] === "string") entry["en-US"] = o["en-US"];
      if (typeof o["zh-CN"] === "string") entry["zh-CN"] = o["zh-CN"];
      out[k] = entry;
    } else return null;
  }
  return out;
}
