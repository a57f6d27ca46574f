// This lib's own tests cover the aggregates' owners, the plain checkout, renewal charges, first payments set-based
// and PayPal's answers about a payment (on-payment-event.ts); cancel, renewals, grants
// and refunds are exercised (and measured) through the apps' in-process tests that call them.
export default (testFile) => {
  if (testFile.endsWith('owners-db.test.ts')) return ['src/subscriptions.ts', 'src/payments.ts'];
  if (testFile.endsWith('open-checkout-db.test.ts')) return ['src/checkout.ts'];
  if (testFile.endsWith('checkout-db.test.ts')) return ['src/checkout.ts', 'src/subscriptions.ts', 'src/payments.ts'];
  if (testFile.endsWith('renewal-charges-db.test.ts'))
    return ['src/renewal-charges.ts', 'src/subscriptions.ts', 'src/payments.ts'];
  if (testFile.endsWith('activations-db.test.ts'))
    return ['src/activations.ts', 'src/subscriptions.ts', 'src/payments.ts'];
  if (testFile.endsWith('refund-db.test.ts')) return ['src/refund.ts'];
  if (testFile.endsWith('save-wallet-db.test.ts')) return ['src/save-wallet.ts'];
  if (testFile.endsWith('renew-db.test.ts')) return ['src/renew.ts'];
  if (testFile.endsWith('recovery-link.test.ts')) return ['src/recovery-link.ts'];
  if (testFile.endsWith('cancel-db.test.ts')) return ['src/cancel.ts'];
  if (testFile.endsWith('remind-renewal-db.test.ts')) return ['src/remind-renewal.ts'];
  if (testFile.endsWith('change-plan-db.test.ts')) return ['src/change-plan.ts', 'src/period-prices.ts'];
  if (testFile.endsWith('on-payment-event-db.test.ts'))
    return ['src/on-payment-event.ts', 'src/save-wallet.ts', 'src/named-payments.ts'];
  if (testFile.endsWith('dispute-db.test.ts')) return ['src/dispute.ts', 'src/refund.ts'];
  if (testFile.endsWith('pause-db.test.ts')) return ['src/pause.ts', 'src/payments.ts', 'src/subscriptions.ts'];
  if (testFile.endsWith('retention-db.test.ts')) return ['src/retention.ts'];
  return null;
};
