import t from 'tap';
import { fromPayPalValue, isValidAmount, MAX_AMOUNT, minorDigits, toPayPalAmount } from '../src/money.js';

t.test('minor units to PayPal decimal strings', async (t) => {
  t.same(toPayPalAmount(499, 'USD'), { currency_code: 'USD', value: '4.99' });
  t.same(toPayPalAmount(5, 'EUR'), { currency_code: 'EUR', value: '0.05' });
  t.same(toPayPalAmount(0, 'USD'), { currency_code: 'USD', value: '0.00' });
  t.same(toPayPalAmount(500, 'JPY'), { currency_code: 'JPY', value: '500' });
  t.same(toPayPalAmount(1234, 'HUF'), { currency_code: 'HUF', value: '1234' });
  t.same(toPayPalAmount(MAX_AMOUNT, 'USD'), { currency_code: 'USD', value: '10000000.00' });
  t.throws(() => toPayPalAmount(1.5, 'USD'));
  t.throws(() => toPayPalAmount(-1, 'USD'));
  t.throws(() => toPayPalAmount(100, 'XXX'));
});

t.test('PayPal decimal strings to minor units, exactly', async (t) => {
  t.equal(fromPayPalValue('4.99', 'USD'), 499);
  t.equal(fromPayPalValue('4.9', 'USD'), 490);
  t.equal(fromPayPalValue('4', 'USD'), 400);
  t.equal(fromPayPalValue('4.990', 'USD'), 499);
  t.equal(fromPayPalValue('500', 'JPY'), 500);
  t.equal(fromPayPalValue('0.10', 'EUR'), 10);
  t.throws(() => fromPayPalValue('4.999', 'USD'), /decimals/);
  t.throws(() => fromPayPalValue('1.5', 'JPY'), /decimals/);
  t.throws(() => fromPayPalValue('-1.00', 'USD'), /malformed/);
  t.throws(() => fromPayPalValue('1e3', 'USD'), /malformed/);
  t.throws(() => fromPayPalValue('', 'USD'), /malformed/);
});

t.test('amount bounds and digits', async (t) => {
  t.equal(minorDigits('TWD'), 0);
  t.equal(minorDigits('GBP'), 2);
  t.ok(isValidAmount(1));
  t.ok(isValidAmount(MAX_AMOUNT));
  t.notOk(isValidAmount(MAX_AMOUNT + 1));
  t.notOk(isValidAmount(0));
  t.notOk(isValidAmount(-5));
  t.notOk(isValidAmount(2.5));
  t.notOk(isValidAmount('100'));
});

t.test('more than ten whole digits is refused', async (t) => {
  t.throws(() => fromPayPalValue('12345678901.00', 'USD'), /malformed/);
  t.equal(fromPayPalValue('9999999999.99', 'USD'), 999_999_999_999);
});
