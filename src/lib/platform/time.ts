import { formatOffset, parseOffset } from "../offset";

export { formatOffset, parseOffset };

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function iso(y: number, mo: number, d: number, h: number, mi: number, s: number, offset: number): string | null {
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59) return null;
  return `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${formatOffset(offset)}`;
}

/** Formats an instant as `YYYY-MM-DDTHH:mm:ss±hh:mm` in the given offset (no fractions). */
export function formatInstant(ms: number, offsetMinutes: number): string {
  const d = new Date(Math.floor(ms / 1000) * 1000 + offsetMinutes * 60_000);
  return iso(
    d.getUTCFullYear(),
    d.getUTCMonth() + 1,
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    offsetMinutes,
  )!;
}

// `yyyy-MM-dd HH:mm:ss` (platform time) and ISO 8601: `T` or a space, optional seconds and
// fraction, optional `Z` or offset (`+08:00`, `+0800`, `+08`).
const DASHED = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * Reads a platform timestamp: `yyyyMMddHHmmss` (14), `YYMMDDhhmmss` (12), `YYMMDDhhmm` (10),
 * epoch milliseconds (13, also as a number), `yyyy-MM-dd HH:mm:ss` and ISO 8601 (SPEC A5).
 * Wall-clock forms without an offset are in the platform's offset; two-digit years are 20YY. A time
 * with its own offset is shown in the platform's offset; fractions are cut. Anything unreadable
 * gives null (callers keep the raw string).
 */
export function parsePlatformTime(raw: unknown, offsetMinutes: number): string | null {
  if (typeof raw !== "string" && typeof raw !== "number") return null;
  const s = String(raw).trim();
  const n = (a: number, b: number) => Number(s.slice(a, b));
  if (!/^\d+$/.test(s)) return s.length <= 40 ? parseDashed(s, offsetMinutes) : null;
  switch (s.length) {
    case 14:
      return iso(n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14), offsetMinutes);
    case 12:
      return iso(2000 + n(0, 2), n(2, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), offsetMinutes);
    case 10:
      return iso(2000 + n(0, 2), n(2, 4), n(4, 6), n(6, 8), n(8, 10), 0, offsetMinutes);
    case 13:
      return formatInstant(Number(s), offsetMinutes);
    default:
      return null;
  }
}

function parseDashed(s: string, offsetMinutes: number): string | null {
  const m = DASHED.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi] = [1, 2, 3, 4, 5].map((i) => Number(m[i]));
  const sec = m[6] === undefined ? 0 : Number(m[6]);
  // Checked as a wall-clock time first, so 24:00 or 30 February is null rather than rolled over.
  if (iso(y, mo, d, h, mi, sec, 0) === null) return null;
  if (m[7] === undefined) return iso(y, mo, d, h, mi, sec, offsetMinutes);
  const given = parseOffset(m[7]);
  if (given === null) return null;
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0–99 as 1900–1999.
  const wall = new Date(Date.UTC(2000, 0, 1, h, mi, sec));
  wall.setUTCFullYear(y, mo - 1, d);
  return formatInstant(wall.getTime() - given * 60_000, offsetMinutes);
}

/** Formats an instant as the platform writes it: `yyyyMMddHHmmss` (14) or `YYMMDDhhmm` (10). */
export function platformStamp(ms: number, offsetMinutes: number, form: "14" | "10" = "14"): string {
  const d = new Date(ms + offsetMinutes * 60_000);
  const full =
    pad(d.getUTCFullYear(), 4) +
    pad(d.getUTCMonth() + 1) +
    pad(d.getUTCDate()) +
    pad(d.getUTCHours()) +
    pad(d.getUTCMinutes()) +
    pad(d.getUTCSeconds());
  return form === "14" ? full : full.slice(2, 12);
}
