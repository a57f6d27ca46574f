/** Currencies PayPal accepts, with the number of decimals PayPal counts for each. */
export const PAYPAL_CURRENCIES = [
  'AUD',
  'BRL',
  'CAD',
  'CNY',
  'CZK',
  'DKK',
  'EUR',
  'HKD',
  'HUF',
  'ILS',
  'JPY',
  'MYR',
  'MXN',
  'TWD',
  'NZD',
  'NOK',
  'PHP',
  'PLN',
  'GBP',
  'SGD',
  'SEK',
  'CHF',
  'THB',
  'USD',
] as const;
export type Currency = (typeof PAYPAL_CURRENCIES)[number];

const ZERO_DECIMAL = new Set<string>(['JPY', 'HUF', 'TWD']);

/** The largest amount, in minor units, the system accepts anywhere. */
export const MAX_AMOUNT = 1_000_000_000;

export function isSupportedCurrency(code: string): code is Currency {
  return (PAYPAL_CURRENCIES as readonly string[]).includes(code);
}

export function minorDigits(currency: string): 0 | 2 {
  if (!isSupportedCurrency(currency)) throw new RangeError(`unsupported currency ${currency}`);
  return ZERO_DECIMAL.has(currency) ? 0 : 2;
}

export function isValidAmount(amount: unknown): amount is number {
  return typeof amount === 'number' && Number.isSafeInteger(amount) && amount > 0 && amount <= MAX_AMOUNT;
}

/** Minor units to PayPal's `{ currency_code, value }` with exactly the currency's decimals. */
export function toPayPalAmount(minor: number, currency: string): { currency_code: string; value: string } {
  if (!Number.isSafeInteger(minor) || minor < 0)
    throw new RangeError(`amount must be a non-negative integer, got ${minor}`);
  const digits = minorDigits(currency);
  if (digits === 0) return { currency_code: currency, value: String(minor) };
  const s = String(minor).padStart(3, '0');
  return { currency_code: currency, value: `${s.slice(0, -2)}.${s.slice(-2)}` };
}

/** PayPal's decimal string to minor units; refuses anything that is not exact. */
export function fromPayPalValue(value: string, currency: string): number {
  const digits = minorDigits(currency);
  // At most 10 whole digits: far above MAX_AMOUNT, and always an exact JS integer.
  const m = /^(\d{1,10})(?:\.(\d+))?$/.exec(value);
  if (!m) throw new RangeError(`malformed amount "${value}"`);
  const whole = m[1] as string;
  const frac = m[2] ?? '';
  if (frac.length > digits && /[1-9]/.test(frac.slice(digits))) {
    throw new RangeError(`amount "${value}" has more than ${digits} decimals for ${currency}`);
  }
  const fracPadded = frac.slice(0, digits).padEnd(digits, '0');
  const minor = BigInt(whole) * 10n ** BigInt(digits) + (digits ? BigInt(fracPadded) : 0n);
  return Number(minor);
}
