// UTC offsets (`+08:00`): a small shared piece, below both the settings (props.ts) and the
// platform's times (platform/time.ts) that use it.

/** Parses `+08:00`, `+0800`, `+8`, `-05:30`, `Z`; returns minutes east of UTC, or null. */
export function parseOffset(tz: string): number | null {
  const s = tz.trim();
  if (s === "Z" || s === "z") return 0;
  const m = /^([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(s);
  if (!m) return null;
  const h = Number(m[2]);
  const min = m[3] ? Number(m[3]) : 0;
  // Real zones span -12:00 to +14:00; the settings accept up to 14:00 either way, not 14:59.
  if (min > 59 || h * 60 + min > 14 * 60) return null;
  return (m[1] === "-" ? -1 : 1) * (h * 60 + min);
}

export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? "-" : "+";
  const a = Math.abs(minutes);
  return `${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}
