const MASK = "***";

// A secret shorter than this would mask ordinary digits and words in every message; such
// passwords are still never placed in a message by our code, this is the second line of defence.
const MIN_SECRET = 3;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Builds a function that masks every given secret (raw and URL-encoded) and `pswd=` values. */
export function redactor(secrets: Array<string | undefined | null>): (text: string) => string {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (!s || s.length < MIN_SECRET) continue;
    forms.add(s);
    // A lone surrogate has no URI form (encodeURIComponent throws); URLSearchParams writes it as U+FFFD.
    try {
      forms.add(encodeURIComponent(s));
    } catch {
      /* only its raw and form-encoded forms can appear */
    }
    forms.add(new URLSearchParams({ x: s }).toString().slice(2));
  }
  const list = [...forms].sort((a, b) => b.length - a.length).map(escapeRe);
  const re = list.length ? new RegExp(list.join("|"), "g") : null;
  return (text: string) => {
    let out = String(text).replace(/(pswd|password)=[^&\s"']*/gi, `$1=${MASK}`);
    if (re) out = out.replace(re, MASK);
    return out;
  };
}

/** A short, single-line, printable excerpt of a reply body for error messages. */
export function excerpt(body: string, max = 80): string {
  const flat = body.replace(/\r\n|\r|\n/g, "\\n").replace(/[\u0000-\u001f\u007f]/g, "?");
  return flat.length > max ? flat.slice(0, max) + "…" : flat;
}
