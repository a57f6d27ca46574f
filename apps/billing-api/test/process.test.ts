import t from 'tap';
import { createMigratedTestDb } from '@billing/db/testing';
import { checkProcessContract, createTestVhost } from '@billing/testing';

const [tdb, vhost] = await Promise.all([createMigratedTestDb(), createTestVhost()]);
t.teardown(async () => {
  await tdb.drop();
  await vhost.drop();
});

checkProcessContract(t, {
  entry: 'apps/billing-api/src/main.ts',
  required: 'PAYPAL_CLIENT_ID',
  env: () => ({ DATABASE_URL: tdb.url, AMQP_URL: vhost.url }),
});
