import { randomUUID } from 'node:crypto';
import path from 'node:path';
import amqplib from 'amqplib';
import t, { type Test } from 'tap';
import type { Locator, Page } from 'playwright-core';
import { approveInBrowser, checkout, startStack } from '@billing/e2e';
import { waitFor } from '@billing/testing';
import { launch, screenshotDir, seriousViolations } from '../src/browser.js';

// docs/admin.md and docs/api.md: the operators' portal and the buyer's billing page, in a real browser (Debian's
// Chromium driven by playwright-core) against the whole system as real processes; every page
// checked with axe-core and photographed.
const stack = await startStack({}, { homeIsBillingPage: true });
const browser = await launch();
t.teardown(async () => {
  await browser.close();
  await stack.stop();
});
const PORTAL = stack.urls['admin-portal'];
const API = stack.urls['billing-api'];
const shots = screenshotDir();
process.stdout.write(`# screenshots: ${shots}\n`);
const db = stack.tdb.db;
const rolesOf = async (userId: string) => ((await stack.auth(`/_control/users/${userId}`)).roles ?? []) as string[];

/** Every page visited: no serious accessibility violation, no script or CSP error, and a screenshot. */
async function check(t: Test, page: Page, name: string, errors: string[]) {
  t.same(await seriousViolations(page), [], `${name}: no serious or critical accessibility violation`);
  t.same(errors.splice(0), [], `${name}: no console error (CSP included)`);
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** Clicks a link and waits for the page it leads to. */
async function navigate(page: Page, link: Locator) {
  const from = page.url();
  await link.click();
  await page.waitForURL((u) => u.href !== from);
  await page.waitForLoadState();
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'Europe/Paris' });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    // Ours only: the PayPal stand-in's page (its missing favicon) is not under test here.
    if (m.type() === 'error' && !m.location().url.startsWith(stack.urls.paypal)) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors, context };
}

// What operators look at: alice and bob paid (alice first, so her payment is the oldest), 24
// shoppers left their checkout pending: 26 payments, more than one page.
const alice = await checkout(stack, 'user-alice');
await approveInBrowser(alice.approvalUrl);
const bobToken = await stack.tokenFor('user-bob');
const bobCheckout = await fetch(`${API}/v1/subscriptions`, {
  method: 'POST',
  headers: { authorization: `Bearer ${bobToken}`, 'content-type': 'application/json' },
  body: JSON.stringify({ planId: 'team-monthly' }),
});
const bob = (await bobCheckout.json()) as { subscriptionId: string; paymentId: string; approvalUrl: string };
await approveInBrowser(bob.approvalUrl);
for (let i = 0; i < 24; i++) await checkout(stack, `shopper-${String(i).padStart(2, '0')}`);
const subStatus = async (id: string) =>
  (await db.selectFrom('subscriptions').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
await waitFor(
  async () =>
    (await subStatus(alice.subscriptionId)) === 'active' && (await subStatus(bob.subscriptionId)) === 'active',
  {
    what: 'alice and bob active',
    timeoutMs: 30_000,
  },
);

const { page, errors } = await newPage();

t.test('sign in through the Auth service, land on payments', async (t) => {
  await page.goto(`${PORTAL}/payments`);
  t.match(page.url(), /\/login$/, 'signed out: sent to the sign-in form');
  await check(t, page, '01-sign-in', errors);
  await page.getByLabel('Login').fill('admin');
  await page.getByLabel('Password').fill('wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Wrong login or password.').waitFor();
  t.equal(await page.getByLabel('Login').inputValue(), 'admin', 'the login stays typed');
  errors.splice(0); // the browser logs the 401 itself
  await page.getByLabel('Password').fill('admin-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/payments$/);
  t.equal(await page.locator('h1').textContent(), 'Payments');
});

t.test('home: the figures and the charts', async (t) => {
  await page.goto(`${PORTAL}/`);
  const stat = (label: string) => page.locator('.stat', { hasText: label }).locator('.v').textContent();
  t.equal((await stat('Active subscriptions'))?.trim(), '2');
  t.equal(
    (await page.locator('.stat', { hasText: 'Monthly recurring revenue' }).locator('.v').innerText()).replace(
      /\s+/g,
      ' ',
    ),
    '€29.00 $9.99',
    'MRR per currency',
  );
  t.ok(await page.locator('svg[aria-label^="Revenue per day"] rect').count(), 'revenue bars drawn');
  t.match(
    await page.locator('svg[aria-label^="Active subscriptions per plan"]').textContent(),
    /pro-monthly.*1 \/ 25/s,
  );
  await check(t, page, '02-home', errors);
});

t.test('revenue: MRR per month with its movements, and the same as CSV', async (t) => {
  // docs/admin.md, revenue. Alice and bob have paid this month: new MRR in USD and in EUR.
  await navigate(page, page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Revenue' }));
  const month = new Date().toISOString().slice(0, 7);
  const usd = page.getByRole('table', { name: 'Revenue movements in USD' });
  t.match(await usd.locator('tr', { hasText: month }).textContent(), /\$9\.99\s*\$9\.99/, 'MRR and new: alice');
  t.ok(await page.getByRole('table', { name: 'Revenue movements in EUR' }).isVisible(), 'bob pays in EUR');
  await check(t, page, '02a-revenue', errors);
  const csv = await page.request.get(`${PORTAL}/revenue.csv`);
  t.equal(csv.status(), 200);
  t.match(csv.headers()['content-type'], /text\/csv/);
  const lines = (await csv.text()).trim().split('\n');
  t.equal(lines[0], 'currency,month,mrr,new,expansion,contraction,churn,reactivation,churn_rate');
  t.ok(lines.includes(`USD,${month},9.99,9.99,0.00,0.00,0.00,0.00,`), 'this month in USD');
});

t.test('payments: pages both ways, filters that keep their values, times in the zone of the browser', async (t) => {
  await page.goto(`${PORTAL}/payments`);
  const rows = page.locator('table[aria-label="Payments"] tbody tr');
  t.equal(await rows.count(), 20, 'twenty on the first page');
  t.equal(await rows.filter({ hasText: 'user-alice' }).count(), 0, "alice's payment is older");
  const firstTime = await rows.first().locator('time').last();
  t.match(
    await firstTime.getAttribute('title'),
    /^UTC \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \(shown in Europe\/Paris\)$/,
  );
  t.notMatch(await firstTime.textContent(), /UTC|\.\d{3}/, 'shown in the local zone, no milliseconds');
  await check(t, page, '03-payments', errors);
  await navigate(page, page.getByRole('link', { name: 'Next →' }));
  t.equal(await rows.count(), 6, 'six on the second');
  t.equal(await rows.filter({ hasText: 'user-alice' }).count(), 1, "alice's payment reached by paging");
  await navigate(page, page.getByRole('link', { name: '← Previous' }));
  t.equal(await rows.count(), 20, 'and back');
  await page.getByLabel('Status').selectOption('completed');
  await page.getByRole('button', { name: 'Search' }).click();
  t.equal(await page.getByLabel('Status').inputValue(), 'completed', 'the select keeps its value');
  t.equal(await rows.count(), 2);
  t.equal(await rows.locator('.badge', { hasText: 'completed' }).count(), 2, 'status badges');
  await page.getByLabel('User').fill('user-nobody');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('No payment matches these filters.').waitFor();
  t.equal(await page.getByLabel('User').inputValue(), 'user-nobody', 'the box keeps what was searched');
  await check(t, page, '04-payments-empty', errors);
});

t.test('a refund in major units, confirmed, sent to PayPal', async (t) => {
  await page.goto(`${PORTAL}/payments?userId=user-alice`);
  await page.locator('table[aria-label="Payments"] tbody tr').first().getByRole('link').first().click();
  await page.getByRole('heading', { name: /^Payment / }).waitFor();
  const facts = await page.locator('dl.facts').textContent();
  t.match(facts, /PayPal order/);
  t.match(facts, /Pays for/);
  t.match(await page.getByRole('link', { name: 'user-alice' }).first().getAttribute('href'), '/users/user-alice');
  t.equal(await page.getByLabel(/Amount to refund \(USD/).inputValue(), '9.99', 'prefilled with what is left');
  await check(t, page, '05-payment', errors);
  await page.getByLabel(/Amount to refund/).fill('2.50');
  await page.getByLabel(/Reason/).fill('goodwill: slow support');
  await page.getByRole('button', { name: 'Refund…' }).click();
  await page.getByRole('heading', { name: 'Please confirm' }).waitFor();
  t.match(await page.locator('.confirm').textContent(), /Refund \$2\.50 of the \$9\.99 payment/);
  t.equal(
    await db
      .selectFrom('refunds')
      .select('id')
      .execute()
      .then((r) => r.length),
    0,
    'nothing refunded before the confirmation',
  );
  await check(t, page, '06-refund-confirm', errors);
  await page.getByRole('button', { name: 'Refund 2.50 USD' }).click();
  await page.getByText(/Refund of 2.50 USD requested/).waitFor();
  const refunds = await waitFor(
    async () => {
      const r = (await stack.paypal('/_control/refunds')) as { amount: { value: string; currency_code: string } }[];
      return r.length ? r : null;
    },
    { what: 'the refund at PayPal' },
  );
  t.same(
    refunds.map((r) => r.amount),
    [{ value: '2.50', currency_code: 'USD' }],
    'PayPal refunded 2.50 USD, once',
  );
  await waitFor(
    async () =>
      (
        await db
          .selectFrom('payments')
          .select('refunded_amount')
          .where('id', '=', alice.paymentId)
          .executeTakeFirstOrThrow()
      ).refunded_amount === 250,
    { what: 'the refund recorded' },
  );
  await page.reload();
  t.match(await page.locator('table[aria-label="Refunds"]').textContent(), /\$2\.50.*goodwill/s);
  t.equal(await page.getByLabel(/Amount to refund/).inputValue(), '7.49', 'what is left now');
});

t.test('users: search, one user, a grant confirmed and applied at the Auth service', async (t) => {
  await page.goto(`${PORTAL}/users`);
  await page.getByLabel('User id contains').fill('ali');
  await page.getByRole('button', { name: 'Search' }).click();
  const rows = page.locator('table[aria-label="Users"] tbody tr');
  t.equal(await rows.count(), 1);
  await check(t, page, '07-users', errors);
  await rows.getByRole('link', { name: 'user-alice' }).click();
  await page.getByRole('heading', { name: 'User user-alice' }).waitFor();
  await page.getByLabel('Role', { exact: true }).fill('beta-tester');
  await page.getByLabel(/Reason/).fill('early access programme');
  await page.getByRole('button', { name: 'Grant…' }).click();
  t.match(await page.locator('.confirm').textContent(), /Give user-alice the role beta-tester/);
  await page.getByRole('button', { name: 'Grant beta-tester' }).click();
  await page.getByText('Granting "beta-tester"…').waitFor();
  await waitFor(async () => (await rolesOf('user-alice')).includes('beta-tester'), {
    what: 'the role at the Auth service',
  });
  await page.reload();
  t.match(await page.locator('table[aria-label="Role grants"]').textContent(), /beta-tester.*manual/s);
  t.match(
    await page.locator('table[aria-label="Operator actions"]').textContent(),
    /role\.grant.*early access programme/s,
  );
  await check(t, page, '08-user', errors);
});

t.test('a dead letter: body and attempts shown, replayed (dies again, no copy), then discarded', async (t) => {
  const conn = await amqplib.connect(stack.vhost.url);
  const ch = await conn.createConfirmChannel();
  const messageId = randomUUID();
  const envelope = {
    id: messageId,
    type: 'payment.check.requested',
    version: 1,
    occurredAt: new Date().toISOString(),
    correlationId: randomUUID(),
    data: { orderId: 42 },
  };
  ch.sendToQueue('billing.payment-worker', Buffer.from(JSON.stringify(envelope)), {
    persistent: true,
    messageId,
    type: envelope.type,
  });
  await ch.waitForConfirms();
  await conn.close();
  await waitFor(
    () => db.selectFrom('dead_letters').select('id').where('message_id', '=', messageId).executeTakeFirst(),
    {
      what: 'the message dead-lettered',
    },
  );
  await page.goto(`${PORTAL}/dead-letters?status=open`);
  t.equal(await page.getByLabel('State').inputValue(), 'open');
  await page.getByRole('link', { name: 'payment.check.requested' }).click();
  t.match(await page.locator('pre').textContent(), /"orderId": 42/, 'the body, pretty-printed');
  t.match(await page.locator('dl.facts').textContent(), /Attempts0/);
  await check(t, page, '09-dead-letter', errors);
  await page.getByLabel(/Reason/).fill('the order service was fixed');
  await page.getByRole('button', { name: 'Replay…' }).click();
  await page.getByRole('button', { name: 'Replay', exact: true }).click();
  await page.getByText('Replayed: the message is back on its queue.').waitFor();
  await waitFor(
    async () =>
      (
        await db
          .selectFrom('dead_letters')
          .select('died_again_at')
          .where('message_id', '=', messageId)
          .executeTakeFirstOrThrow()
      ).died_again_at,
    { what: 'the replay dead-lettered again' },
  );
  t.equal(
    (await db.selectFrom('dead_letters').select('id').where('message_id', '=', messageId).execute()).length,
    1,
    'still one dead letter for the message',
  );
  await page.reload();
  t.match(await page.locator('dl.facts').textContent(), /1×, last/);
  await page.getByLabel(/Reason/).fill('bad data at the source: cannot be fixed');
  await page.getByRole('button', { name: 'Discard…' }).click();
  await page.getByRole('button', { name: 'Discard', exact: true }).click();
  await page.getByText('Discarded.').waitFor();
  t.match(await page.locator('dl.facts').textContent(), /discarded/);
  t.match(await page.getByText(/Discarded by user-admin/).textContent(), /cannot be fixed/);
});

t.test('a subscription: detail, cancelled now with a confirmation; the role goes, the rest is refunded', async (t) => {
  await page.goto(`${PORTAL}/subscriptions?status=active`);
  t.equal(await page.getByLabel('Status').inputValue(), 'active');
  await check(t, page, '10-subscriptions', errors);
  await page.locator('tr', { hasText: 'user-bob' }).getByRole('link').first().click();
  await page.getByRole('heading', { name: /^Subscription / }).waitFor();
  t.match(await page.locator('dl.facts').textContent(), /Current period/);
  await page.getByLabel(/Immediately/).check();
  await page.getByLabel(/Reason/).fill('customer asked by phone');
  await page.getByRole('button', { name: 'Cancel subscription…' }).click();
  t.match(await page.locator('.confirm').textContent(), /Cancel user-bob's team-monthly subscription now/);
  await check(t, page, '11-cancel-confirm', errors);
  await page.getByRole('button', { name: 'Cancel now and refund' }).click();
  await page.getByText('Cancelled now; refunds are on their way.').waitFor();
  t.equal(await subStatus(bob.subscriptionId), 'cancelled');
  t.match(await page.locator('dl.facts').textContent(), /Cancelled/);
  t.notMatch(await page.locator('dl.facts').textContent(), /Current period/, 'no period end on a cancelled one');
  await waitFor(async () => !(await rolesOf('user-bob')).includes('team'), { what: "bob's role revoked" });
  await waitFor(
    async () =>
      ((await stack.paypal('/_control/refunds')) as { amount: { currency_code: string } }[]).some(
        (r) => r.amount.currency_code === 'EUR',
      ),
    { what: "bob's pro-rata refund at PayPal" },
  );
  await check(t, page, '12-subscription', errors);
});

t.test('plans: the edit form is prefilled; the change is confirmed and audited', async (t) => {
  await page.goto(`${PORTAL}/plans`);
  await check(t, page, '13-plans', errors);
  await page.locator('tr', { hasText: 'pro-monthly' }).getByRole('link', { name: 'Edit' }).click();
  t.equal(await page.getByLabel('Name').inputValue(), 'Pro (monthly)');
  t.equal(await page.getByLabel(/^Price/).inputValue(), '9.99');
  t.equal(await page.getByLabel('Currency', { exact: true }).inputValue(), 'USD');
  await page.getByLabel('Name').fill('Pro');
  await page.getByLabel(/Retries of a failed renewal/).fill('P1D, P3D, P5D');
  await page.getByLabel(/Reason/).fill('shorter name');
  await page.getByRole('button', { name: 'Save…' }).click();
  t.match(await page.locator('.confirm').textContent(), /name: Pro \(monthly\) → Pro/);
  await page.getByRole('button', { name: 'Save the change' }).click();
  await page.getByText('Plan pro-monthly saved.').waitFor();
  t.match(await db.selectFrom('plans').selectAll().where('id', '=', 'pro-monthly').executeTakeFirstOrThrow(), {
    name: 'Pro',
    dunning_schedule: ['P1D', 'P3D', 'P5D'],
  });
  await navigate(page, page.locator('tr', { hasText: 'pro-monthly' }).getByRole('link', { name: 'Edit' }));
  t.equal(await page.getByLabel(/Retries of a failed renewal/).inputValue(), 'P1D, P3D, P5D', 'shown as saved');
});

t.test('coupons: created with a confirmation, turned off; a buyer cannot redeem it then', async (t) => {
  await page.goto(`${PORTAL}/coupons`);
  await page.getByText('No coupon yet.').waitFor();
  await page.getByLabel('Code').fill('SPRING10');
  await page.getByLabel(/Percent off/).fill('10');
  await page.getByLabel(/first N periods/).fill('3');
  await page.getByRole('button', { name: 'Create…' }).click();
  t.match(await page.locator('.confirm').textContent(), /SPRING10: 10% off, the first 3 period\(s\), no limit/);
  await page.getByRole('button', { name: 'Create the coupon' }).click();
  await page.getByText('Coupon SPRING10 created.').waitFor();
  t.match(await page.locator('table[aria-label="Coupons"]').textContent(), /SPRING10.*10% off.*the first 3 period/s);
  await check(t, page, '14a-coupons', errors);
  await page.getByRole('button', { name: 'Turn off…' }).click();
  await page.getByRole('button', { name: 'Turn off', exact: true }).click();
  await page.getByText('Coupon SPRING10 turned off.').waitFor();
  const token = await stack.tokenFor('user-coupon-late');
  const res = await fetch(`${API}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ planId: 'pro-monthly', couponCode: 'SPRING10' }),
  });
  t.equal(res.status, 422, 'an inactive coupon is refused at checkout');
});

t.test('audit: every action with before and after, filtered, the filter kept', async (t) => {
  await page.goto(`${PORTAL}/audit`);
  const text = await page.locator('table[aria-label="Audit log"]').textContent();
  for (const action of [
    'payment.refund',
    'role.grant',
    'dead-letter.replay',
    'dead-letter.discard',
    'subscription.cancel.immediately',
    'plan.update',
  ])
    t.match(text, action, `${action} is there`);
  t.ok(await page.locator('table[aria-label="Audit log"] del').count(), 'before values shown');
  await check(t, page, '14-audit', errors);
  await page.getByLabel('Action').selectOption('role.grant');
  await page.getByRole('button', { name: 'Search' }).click();
  t.equal(await page.getByLabel('Action').inputValue(), 'role.grant');
  t.equal(await page.locator('table[aria-label="Audit log"] tbody tr').count(), 1);
  await page.locator('table[aria-label="Audit log"]').getByRole('link', { name: 'user:user-alice' }).click();
  await page.getByRole('heading', { name: 'User user-alice' }).waitFor();
});

t.test('a dispute: on the home page, evidence sent and a claim accepted from the payment page', async (t) => {
  // docs/disputes.md: dora disputes her payment at PayPal; operators see it and answer through PayPal.
  const dora = await checkout(stack, 'user-dora');
  await approveInBrowser(dora.approvalUrl);
  await waitFor(async () => (await subStatus(dora.subscriptionId)) === 'active', { what: 'dora active' });
  const captureId = (
    await db
      .selectFrom('payments')
      .select('provider_capture_id')
      .where('id', '=', dora.paymentId)
      .executeTakeFirstOrThrow()
  ).provider_capture_id!;
  const opened = (await stack.paypal(`/_control/captures/${captureId}/dispute`, {})) as { dispute_id: string };
  const dispute = () =>
    db.selectFrom('disputes').selectAll().where('payment_id', '=', dora.paymentId).executeTakeFirst();
  await waitFor(async () => Boolean(await dispute()), { what: 'the dispute recorded' });

  await page.goto(`${PORTAL}/`);
  const open = page.getByRole('table', { name: 'Open disputes' });
  t.match(await open.textContent(), /user-dora.*\$9\.99.*merchandise or service not received.*open/is);
  await check(t, page, '14-home-dispute', errors);
  await navigate(page, open.getByRole('link').first());
  await page.getByRole('heading', { name: 'Disputes' }).waitFor();
  t.match(await page.locator('#disputes + .card').textContent(), new RegExp(opened.dispute_id));
  await check(t, page, '15-payment-dispute', errors);

  await page.getByLabel('Evidence for PayPal (text)').fill('Dora signed in 14 times this month.');
  await page.getByRole('button', { name: 'Send evidence' }).click();
  await page.getByText(/Evidence recorded/).waitFor();
  await waitFor(async () => (await dispute())?.status === 'UNDER_REVIEW', { what: 'the evidence at PayPal' });
  const calls = (await stack.paypal('/_control/calls')) as { path: string; body: unknown }[];
  t.match(
    calls.filter((c) => c.path.endsWith(`/${opened.dispute_id}/provide-evidence`)),
    [{ body: { evidences: [{ evidence_type: 'OTHER', notes: 'Dora signed in 14 times this month.' }] } }],
    'PayPal got the evidence once',
  );

  await page.reload();
  await page.getByLabel('Note to the buyer').fill('Sorry; refunded.');
  await page.getByRole('button', { name: 'Accept the claim…' }).click();
  await page.getByRole('heading', { name: 'Please confirm' }).waitFor();
  t.match(await page.locator('.confirm').textContent(), /PayPal refunds the buyer/);
  await check(t, page, '16-dispute-accept-confirm', errors);
  await page.getByRole('button', { name: 'Accept the claim' }).click();
  await page.getByText(/Claim accepted/).waitFor();
  await waitFor(async () => (await dispute())?.result === 'lost', { what: 'the claim accepted at PayPal' });
  await waitFor(async () => (await subStatus(dora.subscriptionId)) === 'cancelled', {
    what: "dora's subscription ends",
  });
  await page.reload();
  t.match(await page.locator('#disputes + .card').textContent(), /resolved.*lost.*accepted/is);
  t.equal(await page.getByRole('button', { name: 'Send evidence' }).count(), 0, 'no answer to a resolved dispute');
});

t.test('a signed-in user without the admin role gets a 403 page with a way out', async (t) => {
  const other = await newPage();
  await other.page.goto(`${PORTAL}/login`);
  await other.page.getByLabel('Login').fill('alice');
  await other.page.getByLabel('Password').fill('alice-password');
  await other.page.getByRole('button', { name: 'Sign in' }).click();
  await other.page.getByText(/does not hold the admin role/).waitFor();
  other.errors.splice(0); // the 403 itself
  await check(t, other.page, '15-forbidden', other.errors);
  await other.page.getByRole('button', { name: 'Sign out' }).click();
  await other.page.waitForURL(/\/login$/);
  await other.context.close();
});

t.test("the buyer's billing page: purchase at PayPal to active without a reload, then cancel and resume", async (t) => {
  const buyer = await newPage();
  const p = buyer.page;
  const token = await stack.tokenFor('user-dave');
  await p.goto(`${API}/billing#token=${token}`);
  t.notMatch(p.url(), /token=/, 'the token leaves the address bar');
  await p.getByText('You have no subscription.').waitFor();
  await check(t, p, '16-billing-empty', buyer.errors);
  await p.locator('.plan', { hasText: 'Pro' }).getByRole('button', { name: 'Subscribe' }).click();
  await p.waitForURL(/\/checkoutnow\?token=/);
  await p.getByRole('button', { name: 'Approve' }).click();
  await p.waitForURL(/\/billing\?checkout=success/);
  await p.getByText('Payment received: your subscription is active.').waitFor({ timeout: 30_000 });
  t.match(await p.locator('[data-subscription]').textContent(), /active.*Renews on/s);
  await p.locator('#history').getByText('completed').waitFor();
  t.match(await p.locator('#history').textContent(), /First payment.*\$9\.99.*completed/s);
  // The grant reaches the Auth service through the role-worker, after the activation commits.
  await waitFor(async () => (await rolesOf('user-dave')).includes('premium'), {
    what: 'the role granted at the Auth service',
    timeoutMs: 20_000,
  });
  t.ok((await rolesOf('user-dave')).includes('premium'), 'the role was granted at the Auth service');
  await check(t, p, '17-billing-active', buyer.errors);
  p.once('dialog', (d) => void d.accept());
  await p.getByLabel('Why are you cancelling?').selectOption('too_expensive');
  await p.getByRole('button', { name: 'Cancel at period end' }).click();
  await p.getByText('Cancelled: your subscription ends at the period end.').waitFor();
  // docs/api.md, cancel: the reason kept, and counted on the operators' home while the subscription is set to end.
  t.equal(
    (
      await db
        .selectFrom('subscriptions')
        .select('cancel_reason')
        .where('user_id', '=', 'user-dave')
        .executeTakeFirstOrThrow()
    ).cancel_reason,
    'too_expensive',
  );
  await page.goto(`${PORTAL}/`);
  t.match(
    await page.getByRole('table', { name: 'Cancel reasons this month' }).textContent(),
    /It costs too much\s*1/,
    "counted on the portal's home",
  );
  await p.getByRole('button', { name: 'Resume subscription' }).waitFor();
  t.match(await p.locator('[data-subscription]').textContent(), /Ends on/);
  await p.getByRole('button', { name: 'Resume subscription' }).click();
  await p.getByText('Resumed: your subscription renews as before.').waitFor();
  await p.getByRole('button', { name: 'Cancel at period end' }).waitFor();
  const sub = await db
    .selectFrom('subscriptions')
    .selectAll()
    .where('user_id', '=', 'user-dave')
    .executeTakeFirstOrThrow();
  t.equal(sub.cancel_at_period_end, false);

  // A link with another user's token never switches the tab silently (login CSRF): the page says
  // whose it is and asks first.
  t.equal(await p.locator('#who').textContent(), 'Signed in as user-dave', 'the page says whose it is');
  const erin = await stack.tokenFor('user-erin');
  await p.goto(`${API}/billing#token=${erin}`);
  await p.getByText('This link signs you in as user-erin. This page is signed in as user-dave.').waitFor();
  await check(t, p, '18a-billing-switch', buyer.errors);
  await p.getByRole('button', { name: 'Stay signed in as before' }).click();
  await p.locator('[data-subscription]').waitFor();
  t.equal(await p.locator('#who').textContent(), 'Signed in as user-dave', 'kept: still dave');
  t.match(await p.locator('[data-subscription]').textContent(), /Pro/, "dave's subscription shown");
  // A buyer who gives up at PayPal lands on a clear page (erin, after switching on purpose).
  await p.goto(`${API}/billing#token=${erin}`);
  await p.getByRole('button', { name: 'Switch account' }).click();
  await p.getByText('You have no subscription.').waitFor();
  t.equal(await p.locator('#who').textContent(), 'Signed in as user-erin');
  await p.locator('.plan', { hasText: 'Team' }).getByRole('button', { name: 'Subscribe' }).click();
  await p.waitForURL(/\/checkoutnow\?token=/);
  await p.getByRole('button', { name: 'Cancel' }).click();
  await p.waitForURL(/\/billing\?checkout=cancelled/);
  await p.getByText('Checkout cancelled: you were not charged.').waitFor();
  await check(t, p, '18-billing-cancelled', buyer.errors);
  await buyer.context.close();
});

t.test(
  'the billing page: a plan change previewed then confirmed; a coupon at checkout, a bad one refused',
  async (t) => {
    // docs/api.md, plan changes and coupons at checkout, from the buyer's page.
    const admin = async (path: string, body: unknown) => {
      const res = await fetch(`${stack.urls['admin-portal']}/admin/api/v1${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await stack.tokenFor('ops-page', ['admin'])}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
      t.equal(res.status, 201, `${path} created`);
    };
    await admin('/plans', {
      id: 'pro-plus',
      name: 'Pro Plus',
      description: 'more',
      amount: 1999,
      currency: 'USD',
      period: 'P1M',
      role: 'premium',
      active: true,
      reason: 'a bigger plan',
    });
    await admin('/coupons', {
      code: 'PAGE10',
      percentOff: 10,
      durationPeriods: 1,
      maxRedemptions: null,
      expiresAt: null,
    });

    const buyer = await newPage();
    const p = buyer.page;
    await p.goto(`${API}/billing#token=${await stack.tokenFor('user-dave')}`);
    const card = p.locator('[data-subscription]');
    await card.getByLabel('Change plan to').selectOption('pro-plus');
    await card.getByRole('button', { name: 'Preview plan change' }).click();
    await card.getByText(/is charged now to your saved PayPal wallet; the new plan starts now\./).waitFor();
    const quoted = Number(
      /\$(\d+\.\d\d) is charged/.exec((await card.locator('[data-preview]').textContent()) ?? '')![1],
    );
    t.ok(quoted > 0 && quoted <= 10, `the prorated difference quoted: $${quoted}`);
    await check(t, p, '20-billing-change-preview', buyer.errors);
    await card.getByRole('button', { name: 'Confirm plan change' }).click();
    await p.getByText('Plan change requested: the difference is being charged').waitFor();
    await waitFor(
      async () =>
        (
          await db
            .selectFrom('subscriptions')
            .select('plan_id')
            .where('user_id', '=', 'user-dave')
            .executeTakeFirstOrThrow()
        ).plan_id === 'pro-plus',
      { what: "dave's plan switched once the difference was charged", timeoutMs: 30_000 },
    );
    const upgrade = await db
      .selectFrom('payments')
      .selectAll()
      .where('user_id', '=', 'user-dave')
      .where('kind', '=', 'upgrade')
      .executeTakeFirstOrThrow();
    t.equal(upgrade.amount, Math.round(quoted * 100), 'charged what the preview said');
    t.equal(upgrade.status, 'completed');
    await p.reload();
    await p.locator('#history').getByText('Plan change').waitFor();
    t.match(await card.textContent(), /Pro Plus/);

    await p.goto(`${API}/billing#token=${await stack.tokenFor('user-gina')}`);
    await p.getByRole('button', { name: 'Switch account' }).click();
    await p.getByText('You have no subscription.').waitFor();
    // The Pro plan, renamed "Pro" by the plans test above ("Pro Plus" holds the word too).
    const proCard = p.locator('.plan').filter({ has: p.getByRole('heading', { name: 'Pro', exact: true }) });
    await p.getByLabel('Coupon code (optional)').fill('NOPE');
    await proCard.getByRole('button', { name: 'Subscribe' }).click();
    await p.locator('#status').getByText(/NOPE/).waitFor();
    t.match(p.url(), /\/billing/, 'a coupon refused: still on the page, nothing bought');
    // The browser reports the API's refusal as a failed load: that one is expected.
    t.match(buyer.errors.splice(0), [/status of 422/], "the refusal is the API's 422");
    await check(t, p, '21-billing-coupon-refused', buyer.errors);
    await p.getByLabel('Coupon code (optional)').fill('PAGE10');
    await proCard.getByRole('button', { name: 'Subscribe' }).click();
    await p.waitForURL(/\/checkoutnow\?token=/);
    const gina = await db.selectFrom('payments').selectAll().where('user_id', '=', 'user-gina').execute();
    t.match(
      gina.map((x) => [x.kind, x.amount]),
      [['initial', 899]],
      'the order at PayPal is for the price less the coupon',
    );
    await buyer.context.close();
  },
);

t.test('a free trial: offered on a plan in the portal, started from the billing page, nothing charged', async (t) => {
  // The operator offers a 14-day trial on the yen plan.
  await page.goto(`${PORTAL}/plans/yen-monthly/edit`);
  t.equal(await page.getByLabel(/Free trial/).inputValue(), '', 'no trial yet');
  await page.getByLabel(/Free trial/).fill('P14D');
  await page.getByLabel(/Reason/).fill('a trial offer');
  await page.getByRole('button', { name: 'Save…' }).click();
  t.match(await page.locator('.confirm').textContent(), /trialPeriod: .*→ P14D/);
  await page.getByRole('button', { name: 'Save the change' }).click();
  await page.getByText('Plan yen-monthly saved.').waitFor();
  t.match(await page.locator('tr', { hasText: 'yen-monthly' }).textContent(), /P14D/, 'the list shows the trial');

  // A buyer starts it: PayPal's page saves the wallet, no payment is taken.
  const buyer = await newPage();
  const p = buyer.page;
  await p.goto(`${API}/billing#token=${await stack.tokenFor('user-frank')}`);
  const card = p.locator('.plan', { hasText: 'Yen plan' });
  await card.getByText('after a free trial (P14D)').waitFor({ timeout: 10_000 });
  await card.getByRole('button', { name: 'Subscribe' }).click();
  await p.waitForURL(/\/agreements\/approve\?approval_session_id=/);
  await p.getByRole('button', { name: 'Agree and continue' }).click();
  await p.waitForURL(/\/billing\?checkout=success/);
  await p.getByText(/Your free trial has started: nothing is charged until/).waitFor({ timeout: 30_000 });
  t.match(await p.locator('[data-subscription]').textContent(), /trialing.*Free trial until/s);
  await check(t, p, '19-billing-trial', buyer.errors);
  const sub = await db
    .selectFrom('subscriptions')
    .selectAll()
    .where('user_id', '=', 'user-frank')
    .executeTakeFirstOrThrow();
  t.match(sub, { status: 'trialing', plan_id: 'yen-monthly', trial_period: 'P14D' });
  t.equal(
    (await db.selectFrom('payments').select('id').where('subscription_id', '=', sub.id).execute()).length,
    0,
    'no payment during the trial',
  );
  await waitFor(async () => (await rolesOf('user-frank')).includes('yen'), { what: 'the role granted at once' });
  // The buyer changes their mind: the trial ends at its end and nothing will be charged.
  p.once('dialog', (d) => void d.accept());
  await p.getByRole('button', { name: 'Cancel at trial end' }).click();
  await p.getByText(/it ends then, nothing will be charged/).waitFor();
  await p.getByRole('button', { name: 'Resume subscription' }).waitFor();
  t.equal(
    (
      await db
        .selectFrom('subscriptions')
        .select('cancel_at_period_end')
        .where('id', '=', sub.id)
        .executeTakeFirstOrThrow()
    ).cancel_at_period_end,
    true,
  );
  // The operator sees it as a trial.
  await page.goto(`${PORTAL}/subscriptions/${sub.id}`);
  t.match(await page.locator('.card').first().textContent(), /trialing.*Free trial/s);
  await check(t, page, '20-subscription-trial', errors);
  await buyer.context.close();
});

t.test('a recovery link from the message: the wallet replaced from the billing page, signed in nowhere', async (t) => {
  // docs/api.md, recovery links. Rita's wallet is revoked at PayPal: the message asking her for a
  // new one carries the link; a browser with no token opens it.
  const rita = await checkout(stack, 'user-rita');
  await approveInBrowser(rita.approvalUrl);
  await waitFor(async () => (await subStatus(rita.subscriptionId)) === 'active', { what: 'rita active' });
  const before = await db
    .selectFrom('subscriptions')
    .selectAll()
    .where('id', '=', rita.subscriptionId)
    .executeTakeFirstOrThrow();
  await stack.paypal(`/_control/vault/${before.vault_id}/delete`, {});
  const note = await waitFor(
    async () =>
      (await stack.notifications()).find(
        (n) => n.type === 'subscription.payment_method_required' && n.data['subscriptionId'] === rita.subscriptionId,
      ) ?? null,
    { what: 'subscription.payment_method_required for rita', timeoutMs: 20_000 },
  );
  const buyer = await newPage();
  const p = buyer.page;
  await p.goto(note.data['recoveryUrl'] as string);
  await p.getByRole('heading', { name: 'Update your payment method' }).waitFor();
  t.notMatch(p.url(), /recover=/, 'the token leaves the address bar');
  t.equal(await p.locator('#who').isVisible(), false, 'nobody is signed in');
  await check(t, p, '22-billing-recovery', buyer.errors);
  await p.getByRole('button', { name: 'Update payment method' }).click();
  await p.waitForURL(/\/agreements\/approve\?approval_session_id=/);
  await p.getByRole('button', { name: 'Agree and continue' }).click();
  await p.waitForURL(/\/billing\?.*payment_method=saved/);
  const after = await waitFor(
    async () => {
      const s = await db
        .selectFrom('subscriptions')
        .selectAll()
        .where('id', '=', rita.subscriptionId)
        .executeTakeFirstOrThrow();
      return s.vault_id && s.vault_id !== before.vault_id ? s : null;
    },
    { what: "rita's new wallet saved", timeoutMs: 20_000 },
  );
  t.equal(after.payment_method_required, null, 'nothing asked of her any more');
  await buyer.context.close();
});

t.test('pause and resume: the buyer pauses on the billing page, an operator resumes from the portal', async (t) => {
  // docs/api.md, pause and resume.
  const erin = await checkout(stack, 'user-erin');
  await approveInBrowser(erin.approvalUrl);
  await waitFor(async () => (await rolesOf('user-erin')).includes('premium'), { what: 'erin active with her role' });
  const buyer = await newPage();
  const p = buyer.page;
  await p.goto(`${API}/billing#token=${await stack.tokenFor('user-erin')}`);
  const card = p.locator(`[data-subscription="${erin.subscriptionId}"]`);
  await card.getByRole('button', { name: 'Pause subscription' }).waitFor();
  const until = new Date(Date.now() + 20 * 86_400_000).toISOString().slice(0, 10);
  await card.getByLabel('Resume on (optional)').fill(until);
  p.once('dialog', (d) => void d.accept());
  await card.getByRole('button', { name: 'Pause subscription' }).click();
  await p.getByText('Paused: nothing is charged until it resumes.').waitFor();
  await card.getByRole('button', { name: 'Resume now' }).waitFor();
  t.match(await card.textContent(), /paused.*Paused since/s);
  t.equal(await subStatus(erin.subscriptionId), 'paused');
  t.equal(
    (
      await db
        .selectFrom('subscriptions')
        .select('resumes_at')
        .where('id', '=', erin.subscriptionId)
        .executeTakeFirstOrThrow()
    ).resumes_at?.toISOString(),
    `${until}T00:00:00.000Z`,
  );
  await waitFor(async () => !(await rolesOf('user-erin')).includes('premium'), { what: 'the role taken away' });
  await check(t, p, '20-billing-paused', buyer.errors);
  await buyer.context.close();

  await page.goto(`${PORTAL}/subscriptions/${erin.subscriptionId}`);
  t.match(await page.locator('main').textContent(), /Paused since.*resumes by itself/s);
  await check(t, page, '21-subscription-paused', errors);
  await page.getByLabel('Why resume now (kept in the audit log)').fill('support ticket 123: back early');
  await page.getByRole('button', { name: 'Resume now…' }).click();
  await page.getByRole('heading', { name: 'Please confirm' }).waitFor();
  await page.getByRole('button', { name: 'Resume now' }).click();
  await page.getByText('Resumed; the role is granted again.').waitFor();
  t.equal(await subStatus(erin.subscriptionId), 'active');
  await waitFor(async () => (await rolesOf('user-erin')).includes('premium'), { what: 'the role granted again' });
  t.ok(await page.getByRole('button', { name: 'Pause…' }).isVisible(), 'an active one can be paused from the portal');
  const audit = await db.selectFrom('audit_log').selectAll().where('action', '=', 'subscription.resume').execute();
  t.match(audit, [{ target: `subscription:${erin.subscriptionId}`, reason: 'support ticket 123: back early' }]);
});

t.test('a retention offer: set on the coupon form, made once to a buyer cancelling, accepted', async (t) => {
  // docs/api.md, retention offer.
  await page.goto(`${PORTAL}/coupons`);
  await page.getByLabel('Code').fill('STAY50');
  await page.getByLabel(/^Percent off/).fill('50');
  await page.getByLabel(/For the first N periods/).fill('1');
  await page.getByLabel(/Offer it once to buyers about to cancel/).check();
  await page.getByRole('button', { name: 'Create…' }).click();
  await page.getByRole('heading', { name: 'Please confirm' }).waitFor();
  t.match(await page.locator('.confirm').textContent(), /offered to buyers about to cancel/);
  await page.getByRole('button', { name: 'Create the coupon' }).click();
  await page.getByText('Coupon STAY50 created.').waitFor();
  t.match(await page.getByRole('table', { name: 'Coupons' }).textContent(), /STAY50.*retention offer/s);

  const erin = await db
    .selectFrom('subscriptions')
    .selectAll()
    .where('user_id', '=', 'user-erin')
    .where('status', '=', 'active')
    .executeTakeFirstOrThrow();
  const buyer = await newPage();
  const p = buyer.page;
  await p.goto(`${API}/billing#token=${await stack.tokenFor('user-erin')}`);
  const card = p.locator(`[data-subscription="${erin.id}"]`);
  await card.getByLabel('Why are you cancelling?').selectOption('too_expensive');
  await card.getByRole('button', { name: 'Cancel at period end' }).click();
  await card.getByRole('heading', { name: 'Before you go' }).waitFor();
  t.match(await card.textContent(), /50% off for 1 period\(s\).*\$4\.99 instead of \$9\.99.*made once/s);
  await check(t, p, '22-billing-retention-offer', buyer.errors);
  await card.getByRole('button', { name: 'Accept the offer' }).click();
  await p.getByText('Offer accepted: thank you for staying.').waitFor();
  t.match(await db.selectFrom('coupon_redemptions').selectAll().where('subscription_id', '=', erin.id).execute(), [
    { coupon_code: 'STAY50', from_period: 1 },
  ]);
  t.match(await db.selectFrom('subscriptions').selectAll().where('id', '=', erin.id).executeTakeFirstOrThrow(), {
    status: 'active',
    cancel_at_period_end: false,
  });
  await buyer.context.close();
});

t.test('a page view is counted once in the metrics', async (t) => {
  const count = async () => {
    const text = await (await fetch(`${PORTAL}/metrics`)).text();
    const line = (route: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('http_requests_total{') && l.includes(`route="${route}"`))
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    return { page: line('/payments'), api: line('/admin/api/v1/payments') };
  };
  const before = await count();
  await page.goto(`${PORTAL}/payments`);
  const after = await count();
  t.equal(after.page - before.page, 1, 'the page once');
  t.equal(after.api - before.api, 0, 'its inner API call not counted as a request');
});
