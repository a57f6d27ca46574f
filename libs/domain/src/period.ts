/** A billing period: one positive integer count of one ISO 8601 unit. */
export interface Period {
  readonly count: number;
  readonly unit: 'Y' | 'M' | 'W' | 'D' | 'H' | 'MIN' | 'S';
}

const DATE_UNITS = { Y: 'Y', M: 'M', W: 'W', D: 'D' } as const;
const TIME_UNITS = { H: 'H', M: 'MIN', S: 'S' } as const;
const FIXED_MS: Record<'W' | 'D' | 'H' | 'MIN' | 'S', number> = {
  W: 7 * 86_400_000,
  D: 86_400_000,
  H: 3_600_000,
  MIN: 60_000,
  S: 1_000,
};
const MAX_COUNT = 10_000;

/** Parses `P1M`, `P1Y`, `P2W`, `P7D`, `PT30S`, `PT5M`, `PT1H`; anything else is null. */
export function parsePeriod(text: string): Period | null {
  const m = /^P(?:(\d{1,5})([YMWD])|T(\d{1,5})([HMS]))$/.exec(text);
  if (!m) return null;
  const count = Number(m[1] ?? m[3]);
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) return null;
  const unit = m[2] ? DATE_UNITS[m[2] as keyof typeof DATE_UNITS] : TIME_UNITS[m[4] as keyof typeof TIME_UNITS];
  return { count, unit };
}

export function isValidPeriod(text: string): boolean {
  return parsePeriod(text) !== null;
}

function mustParse(period: string | Period): Period {
  if (typeof period !== 'string') return period;
  const p = parsePeriod(period);
  if (!p) throw new RangeError(`malformed period "${period}"`);
  return p;
}

function addMonthsAnchored(start: Date, months: number): Date {
  const y = start.getUTCFullYear();
  const mo = start.getUTCMonth() + months;
  const targetYear = y + Math.floor(mo / 12);
  const targetMonth = ((mo % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(targetYear, targetMonth + 1, 0)).getUTCDate();
  const day = Math.min(start.getUTCDate(), lastDay);
  return new Date(
    Date.UTC(
      targetYear,
      targetMonth,
      day,
      start.getUTCHours(),
      start.getUTCMinutes(),
      start.getUTCSeconds(),
      start.getUTCMilliseconds(),
    ),
  );
}

/**
 * The k-th boundary from an anchor: start + k·period, always computed from the anchor
 * (Jan 31 + P1M = Feb 28/29, + P2M = Mar 31), never by stepping from the previous boundary.
 */
export function periodBoundary(anchor: Date, period: string | Period, k: number): Date {
  const p = mustParse(period);
  if (p.unit === 'Y') return addMonthsAnchored(anchor, 12 * p.count * k);
  if (p.unit === 'M') return addMonthsAnchored(anchor, p.count * k);
  return new Date(anchor.getTime() + FIXED_MS[p.unit] * p.count * k);
}

/** Index k of the period containing `at`: boundary(k) ≤ at < boundary(k+1); negative before the anchor. */
export function periodIndexAt(anchor: Date, period: string | Period, at: Date): number {
  const p = mustParse(period);
  const t = at.getTime();
  let k: number;
  if (p.unit === 'Y' || p.unit === 'M') {
    const monthsPer = p.unit === 'Y' ? 12 * p.count : p.count;
    const months = (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + (at.getUTCMonth() - anchor.getUTCMonth());
    k = Math.floor(months / monthsPer);
  } else {
    k = Math.floor((t - anchor.getTime()) / (FIXED_MS[p.unit] * p.count));
  }
  // The estimate never undershoots: boundary k+1 always falls in a later month than `at`
  // (or is exact for fixed units), so it only has to step back past a clamped month end.
  while (periodBoundary(anchor, p, k).getTime() > t) k -= 1;
  return k;
}

/** The period `[start, end)` with index k. */
export function periodWindow(anchor: Date, period: string | Period, k: number): { start: Date; end: Date } {
  return { start: periodBoundary(anchor, period, k), end: periodBoundary(anchor, period, k + 1) };
}
