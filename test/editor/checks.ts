// What a person sees in the editor, measured in the page: text cut off or wrapped where it should
// not be, fields marked invalid, texts not in the editor's language.
import type { Page } from "playwright-core";

/**
 * In the open edit tray (the topmost), what a reader cannot read whole: a label wider than its
 * column or wrapped onto a second line, a field pushed below its label, a placeholder or a menu
 * option longer than its field (measured in the field's own font), a hint that wraps back under the
 * label, a block whose text runs out of it.
 */
export function cutInTray(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const canvas = document.createElement("canvas").getContext("2d")!;
    const textWidth = (el: Element, text: string) => {
      const cs = getComputedStyle(el);
      canvas.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
      return canvas.measureText(text).width;
    };
    const inner = (el: HTMLElement) => {
      const cs = getComputedStyle(el);
      return el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    };
    const visible = (el: Element) => (el as HTMLElement).offsetParent !== null && el.getClientRects().length > 0;
    const trays = document.querySelectorAll(".red-ui-tray");
    const tray = trays[trays.length - 1];
    if (!tray) return ["no edit tray is open"];
    for (const row of tray.querySelectorAll(".form-row")) {
      const label = row.firstElementChild;
      if (!label || label.tagName !== "LABEL" || !visible(label)) continue;
      const text = (label.textContent ?? "").trim();
      if (!text) continue;
      if (label.scrollWidth > label.clientWidth + 1) out.push(`label cut: "${text}"`);
      const lh = parseFloat(getComputedStyle(label).lineHeight) || 20;
      if (label.getBoundingClientRect().height > lh * 1.5) out.push(`label wrapped: "${text}"`);
      const field = label.nextElementSibling;
      if (field && visible(field) && field.getBoundingClientRect().top >= label.getBoundingClientRect().bottom - 2)
        out.push(`field below its label: "${text}"`);
    }
    for (const el of tray.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>(
      "input[placeholder], textarea[placeholder]",
    )) {
      if (!visible(el) || !el.placeholder) continue;
      if (el.tagName === "TEXTAREA") {
        // A textarea wraps its placeholder: it must fit the rows shown.
        const cs = getComputedStyle(el);
        const probe = document.createElement("div");
        probe.style.cssText = `position:absolute;visibility:hidden;white-space:pre-wrap;overflow-wrap:break-word;width:${inner(el)}px;font:${cs.font};line-height:${cs.lineHeight}`;
        probe.textContent = el.placeholder;
        document.body.appendChild(probe);
        const need = probe.getBoundingClientRect().height;
        probe.remove();
        const room = el.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
        if (need > room + 1) out.push(`placeholder cut: "${el.placeholder}"`);
      } else if (textWidth(el, el.placeholder) > inner(el)) out.push(`placeholder cut: "${el.placeholder}"`);
    }
    for (const el of tray.querySelectorAll<HTMLSelectElement>("select")) {
      if (!visible(el)) continue;
      // Any option may be the one shown in the closed menu, beside its arrow (about 24 px).
      for (const o of el.options)
        if (textWidth(el, o.text) + 24 > inner(el)) out.push(`option cut: "${o.text}" (${el.id})`);
    }
    for (const el of tray.querySelectorAll(".form-row > span")) {
      if (visible(el) && el.getClientRects().length > 1)
        out.push(`hint wrapped under its label: "${(el.textContent ?? "").trim()}"`);
    }
    for (const el of tray.querySelectorAll(".form-tips, .form-row.sms-count, .sms-config-hint, .form-row")) {
      if (visible(el) && el.scrollWidth > el.clientWidth + 1)
        out.push(`text runs out of its block: "${(el.textContent ?? "").trim().slice(0, 60)}"`);
    }
    return out;
  });
}

/** The fields of the open tray marked invalid (a red border), by id. */
export function invalidInTray(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const trays = document.querySelectorAll(".red-ui-tray");
    const tray = trays[trays.length - 1];
    return [...(tray?.querySelectorAll(".input-error") ?? [])].map((el) => el.id || el.className);
  });
}

/** In the help sidebar at its width now: each block whose text (a code line, say) runs out of it. */
export function cutInHelp(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const panels = document.querySelectorAll(".red-ui-help");
    const help = panels[panels.length - 1];
    if (!help) return ["no help shown"];
    const right = help.getBoundingClientRect().right;
    const out: string[] = [];
    for (const el of help.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width && (r.right > right + 1 || el.scrollWidth > el.clientWidth + 1))
        out.push(`${el.tagName.toLowerCase()}: "${(el.textContent ?? "").trim().slice(0, 60)}"`);
    }
    return [...new Set(out)];
  });
}

/**
 * The texts the open tray shows a reader (not what they typed): labels, tab names, options (but the
 * list of accounts), placeholders, tips and hints, the tray's title.
 */
export function textsInTray(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const trays = document.querySelectorAll(".red-ui-tray");
    const tray = trays[trays.length - 1];
    if (!tray) return [];
    const visible = (el: Element) => (el as HTMLElement).offsetParent !== null && el.getClientRects().length > 0;
    const out: string[] = [];
    const add = (s: string | null | undefined) => {
      const t = (s ?? "").replace(/\s+/g, " ").trim();
      if (t) out.push(t);
    };
    add(tray.querySelector(".red-ui-tray-titlebar")?.textContent);
    for (const el of tray.querySelectorAll("label, .red-ui-tab-label, .form-tips, .sms-count, .sms-config-hint"))
      if (visible(el)) add(el.textContent);
    for (const el of tray.querySelectorAll<HTMLInputElement>("input[placeholder], textarea[placeholder]"))
      if (visible(el)) add(el.placeholder);
    // The node's own menus; not the list of accounts nor Node-RED's list of flows (names users chose).
    for (const el of tray.querySelectorAll<HTMLSelectElement>("select"))
      if (visible(el) && /^node-(config-)?input-/.test(el.id) && !/-config$/.test(el.id))
        for (const o of el.options) add(o.text);
    for (const el of tray.querySelectorAll("button")) if (visible(el)) add(el.textContent);
    return out;
  });
}

/** The help sidebar's prose: what is not code, a property's name or its type. */
export function textsInHelp(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const panels = document.querySelectorAll(".red-ui-help");
    const help = panels[panels.length - 1]?.cloneNode(true) as HTMLElement | undefined;
    if (!help) return [];
    for (const el of help.querySelectorAll("code, pre, dt, .property-type")) el.remove();
    return [...help.querySelectorAll("p, dd, li, h3, h4")]
      .map((el) => (el.textContent ?? "").replace(/\s+/g, " ").trim())
      .filter(Boolean);
  });
}

/**
 * Words of English (or another Latin-script language) left in a text once the names that are not
 * translated are taken out: message properties and template names (`msg.mobile`, `{{topic}}`),
 * URLs, codes in capitals (`QUEUE_FULL`, `DELIVRD`), product and protocol names, the default key
 * prefix `cnsms:`, and the values a message carries (`overflow`, `critical`).
 */
export function latinWords(text: string): string[] {
  const names =
    /msg(?:\.\w+)+|\bcnsms:|\{\{[^}]*\}\}|\b(?:https?|rediss?):\/\/\S*|\b[A-Z][A-Z0-9_]{1,}\b|\b(?:Redis|Node-RED|Mustache|Dashboard|Catch|IPv4|IPv6|nginx|README|sms-[a-z]+|ms|msg|payload|topic|mobile|critical|overflow|window|cap|hours)\b|\b[a-z]+\.[a-z.]+\b/g;
  return text.replace(names, " ").match(/[A-Za-z]{2,}/g) ?? [];
}
