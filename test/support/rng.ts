// Seeded randomness for the fuzz harnesses: a failure names its seed, and the same seed gives the
// same inputs again (FUZZ_SEED).

/** The run's seed: FUZZ_SEED when given (a replay), else one from the clock. */
export const fuzzSeed = (): number =>
  process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() * 2654435761) >>> 0;

/** mulberry32: small, fast, good enough to pick inputs; one stream per case (a case replays alone). */
export function rngFor(seed: number, index: number) {
  let a = (seed + Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const chance = (p: number) => next() < p;
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)];
  return { next, int, chance, pick };
}
