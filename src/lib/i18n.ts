/** Languages every user-visible text of the core exists in. */
export type Lang = "en-US" | "zh-CN";

export type Texts = Record<Lang, string>;

/** Picks zh-CN for any Chinese locale string (zh, zh-CN, zh_CN.UTF-8, zh-Hans), en-US otherwise. */
export function toLang(value: unknown): Lang {
  return typeof value === "string" && /^zh/i.test(value) ? "zh-CN" : "en-US";
}

/** Fills `{name}` placeholders; unknown names stay visible so a missing value is noticed. */
export function fill(template: string, params: Record<string, unknown> = {}): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in params ? String(params[k]) : m));
}

/** Every message the core produces, in both languages. */
export const MESSAGES = {
  invalidPayload: {
    "en-US": "msg.payload must be the SMS text (a string or a number), got {type}",
    "zh-CN": "msg.payload 必须是短信内容（字符串或数字），实际为 {type}",
  },
  emptyMessage: {
    "en-US": "The SMS text is empty",
    "zh-CN": "短信内容为空",
  },
  messageTooLong: {
    "en-US": "The SMS text is {length} characters long (signature included); at most {max} are allowed",
    "zh-CN": "短信内容长度为 {length} 个字符（含签名），最多允许 {max} 个",
  },
  noMobile: {
    "en-US": "No recipient: set the node's numbers or msg.mobile",
    "zh-CN": "没有接收号码：请设置节点的号码或 msg.mobile",
  },
  invalidMobile: {
    "en-US": "{count} invalid mobile number(s): {list}; nothing was sent",
    "zh-CN": "{count} 个手机号码无效：{list}；短信未发送",
  },
  invalidMobileType: {
    "en-US": "msg.mobile must be a string or an array of numbers, got {type}",
    "zh-CN": "msg.mobile 必须是字符串或号码数组，实际为 {type}",
  },
  noConfig: {
    "en-US": "No SMS account configured: select an sms-config node",
    "zh-CN": "未配置短信账号：请选择一个 sms-config 配置节点",
  },
  noCredentials: {
    "en-US": "The SMS account has no account name or password set",
    "zh-CN": "短信账号未设置账号名或密码",
  },
  queueFull: {
    "en-US": "Too many SMS waiting for this account ({max}); this one was not sent",
    "zh-CN": "该账号等待发送的短信过多（{max} 条），本条未发送",
  },
  cancelled: {
    "en-US": "The node was stopped or redeployed before this SMS was sent; it was not sent",
    "zh-CN": "短信发送前节点已停止或重新部署，本条未发送",
  },
  timeoutUnknown: {
    "en-US": "No reply from the platform within {timeout} ms; the SMS may or may not have been sent",
    "zh-CN": "平台在 {timeout} 毫秒内没有应答；短信可能已发送，也可能未发送",
  },
  timeout: {
    "en-US": "No reply from the platform within {timeout} ms",
    "zh-CN": "平台在 {timeout} 毫秒内没有应答",
  },
  connectFailed: {
    "en-US": "Could not connect to the platform ({reason}); nothing was sent",
    "zh-CN": "无法连接短信平台（{reason}）；短信未发送",
  },
  connectFailedQuery: {
    "en-US": "Could not connect to the platform ({reason})",
    "zh-CN": "无法连接短信平台（{reason}）",
  },
  tlsFailed: {
    "en-US":
      "The secure connection to the platform was refused ({reason}): check the URL (https or http, host name) and the platform's certificate; nothing was sent",
    "zh-CN": "与短信平台的安全连接被拒绝（{reason}）：请检查 URL（https 还是 http、主机名）及平台的证书；短信未发送",
  },
  tlsFailedQuery: {
    "en-US":
      "The secure connection to the platform was refused ({reason}): check the URL (https or http, host name) and the platform's certificate",
    "zh-CN": "与短信平台的安全连接被拒绝（{reason}）：请检查 URL（https 还是 http、主机名）及平台的证书",
  },
  networkUnknown: {
    "en-US": "The connection failed after the request was sent ({reason}); the SMS may or may not have been sent",
    "zh-CN": "请求发出后连接中断（{reason}）；短信可能已发送，也可能未发送",
  },
  networkQuery: {
    "en-US": "The connection to the platform failed ({reason})",
    "zh-CN": "与短信平台的连接中断（{reason}）",
  },
  httpStatusUnknown: {
    "en-US": "The platform answered HTTP {status}; the SMS may or may not have been sent",
    "zh-CN": "短信平台返回 HTTP {status}；短信可能已发送，也可能未发送",
  },
  httpStatus: {
    "en-US": "The platform answered HTTP {status}",
    "zh-CN": "短信平台返回 HTTP {status}",
  },
  badResponseUnknown: {
    "en-US": 'Unreadable reply from the platform: "{excerpt}"; the SMS may or may not have been sent',
    "zh-CN": "无法识别平台的应答：“{excerpt}”；短信可能已发送，也可能未发送",
  },
  badResponse: {
    "en-US": 'Unreadable reply from the platform: "{excerpt}"',
    "zh-CN": "无法识别平台的应答：“{excerpt}”",
  },
  platformCode: {
    "en-US": "Platform error {code}: {text}",
    "zh-CN": "平台错误 {code}：{text}",
  },
  batchFailed: {
    "en-US": "Batch {index} of {count} failed: {reason} ({unsent} number(s) not sent)",
    "zh-CN": "第 {index}/{count} 批发送失败：{reason}（{unsent} 个号码未发送）",
  },
  unknownCode: {
    "en-US": "unknown code {code} (see the platform's documentation)",
    "zh-CN": "未知代码 {code}（请查阅平台文档）",
  },
  unknownStatus: {
    "en-US": "carrier gateway status {status}: not delivered",
    "zh-CN": "运营商网关状态 {status}：未送达",
  },
  templateType: {
    "en-US": "The template must be a string, got {type}",
    "zh-CN": "模板必须是字符串，实际为 {type}",
  },
  templateInvalid: {
    "en-US": "The template is not valid: {reason}",
    "zh-CN": "模板无效：{reason}",
  },
  templateUnclosedSection: {
    "en-US": "The template's section {{#{name}}} is never closed: add {{/{name}}}",
    "zh-CN": "模板中的区块 {{#{name}}} 没有结束标签：请添加 {{/{name}}}",
  },
  templateMismatchedSection: {
    "en-US":
      'The template\'s section {{#{name}}} is closed by "{excerpt}" (character {pos}): close it with {{/{name}}}',
    "zh-CN": "模板中的区块 {{#{name}}} 被第 {pos} 个字符处的“{excerpt}”结束：应使用 {{/{name}}}",
  },
  templateUnopenedSection: {
    "en-US": 'The template\'s "{excerpt}" (character {pos}) closes a section that was never opened',
    "zh-CN": "模板第 {pos} 个字符处的“{excerpt}”没有对应的区块开始标签",
  },
  templateUnclosedTag: {
    "en-US": 'The template has a tag that is never closed: "{excerpt}" (character {pos})',
    "zh-CN": "模板中有未闭合的标签：“{excerpt}”（第 {pos} 个字符）",
  },
  templatePartial: {
    "en-US": "The template uses a partial {{>{name}}}, which is not supported",
    "zh-CN": "模板使用了子模板 {{>{name}}}，不支持子模板",
  },
  templateMissing: {
    "en-US": "Template variable(s) without a value: {names}{where}; nothing was sent",
    "zh-CN": "模板变量没有值：{names}{where}；短信未发送",
  },
  templateNotText: {
    "en-US":
      "Template variable(s) holding an object, a list or a function, not a text: {names}{where}; use one of its fields ({{payload.field}}) or a section ({{#list}}…{{/list}}); nothing was sent",
    "zh-CN":
      "模板变量的值是对象、列表或函数，不是文本：{names}{where}；请使用其中的字段（如 {{payload.field}}）或区块（{{#list}}…{{/list}}）；短信未发送",
  },
  templateFailed: {
    "en-US": "Template variable(s) could not be read: {names}{where} ({reason}); nothing was sent",
    "zh-CN": "无法读取模板变量：{names}{where}（{reason}）；短信未发送",
  },
  templateWhere: {
    "en-US": ", for {count} recipient(s): {list}",
    "zh-CN": "，涉及 {count} 个接收人：{list}",
  },
  templateVariableIn: {
    "en-US": "{{{name}}} (in section {sections})",
    "zh-CN": "{{{name}}}（位于区块 {sections} 中）",
  },
  recipientLabel: {
    "en-US": "msg.mobile[{index}] ({mobile})",
    "zh-CN": "msg.mobile[{index}]（{mobile}）",
  },
  recipientLabelNoMobile: {
    "en-US": "msg.mobile[{index}]",
    "zh-CN": "msg.mobile[{index}]",
  },
  recipientEmpty: {
    "en-US": "The SMS text is empty for {count} recipient(s): {list}; nothing was sent",
    "zh-CN": "{count} 个接收人的短信内容为空：{list}；短信未发送",
  },
  recipientTooLong: {
    "en-US":
      "The SMS text is longer than {max} characters (signature included) for {count} recipient(s): {list} (longest {length}); nothing was sent",
    "zh-CN": "{count} 个接收人的短信内容超过 {max} 个字符（含签名）：{list}（最长 {length} 个）；短信未发送",
  },
  // The "Test connection" route (src/nodes/config-test.ts) answers in the editor's language.
  badUrl: {
    "en-US": 'The platform URL "{url}" is not a valid http(s) URL',
    "zh-CN": "平台地址“{url}”不是有效的 http(s) 地址",
  },
  recipientInvalidMobile: {
    "en-US": "{count} recipient(s) without a valid mobile number: {list}; nothing was sent",
    "zh-CN": "{count} 个接收人没有有效的手机号码：{list}；短信未发送",
  },
} satisfies Record<string, Texts>;

export type MessageKey = keyof typeof MESSAGES;

export function t(key: MessageKey, lang: Lang, params?: Record<string, unknown>): string {
  return fill(MESSAGES[key][lang], params);
}
