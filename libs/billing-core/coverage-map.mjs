// This lib's own tests cover the aggregates' owners; cancel, renewals, grants and refunds are
// exercised (and measured) through the apps' in-process tests that call them.
export default (testFile) =>
  testFile.endsWith('owners-db.test.ts') ? ['src/subscriptions.ts', 'src/payments.ts'] : null;
