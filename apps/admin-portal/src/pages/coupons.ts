import { PAYPAL_CURRENCIES, fromPayPalValue } from '@billing/domain';
import { badge, money, table, time, type Html, html } from './html.js';
import { confirmStep, doneTo, layout, queryOf, refusedPage, type Kit } from './kit.js';
import { CouponPage, type CouponRow } from './answers.js';

const off = (c: CouponRow): Html =>
  c.percentOff !== null ? html`${c.percentOff}% off` : html`${money(c.amountOff, c.currency ?? '')} off`;

/** Coupons (docs/api.md, coupons at checkout): the list, a new one, and turning one off or on, each confirmed. */
export function couponPages(kit: Kit): void {
  const { app, api, read, page, checked } = kit;
  app.get(
    '/coupons',
    page('/coupons', async (req) => {
      const answer = await read(req, '/admin/api/v1/coupons', CouponPage);
      if (!answer.ok) return refusedPage('Coupons', answer, '/coupons', '/coupons');
      const { body } = answer;
      return layout(
        'Coupons',
        html`${table(
          'Coupons',
          [
            { head: 'Code', cell: (c) => html`<span class="mono">${c.code}</span>` },
            { head: 'Discount', cell: off },
            {
              head: 'For',
              cell: (c) =>
                c.durationPeriods === null ? html`every period` : html`the first ${c.durationPeriods} period(s)`,
            },
            {
              head: 'Redeemed',
              cell: (c) =>
                html`${c.redeemed}${c.maxRedemptions === null ? '' : html` of ${c.maxRedemptions}`}${c.maxRedemptionsPerUser === null ? '' : html` (${c.maxRedemptionsPerUser} per user)`}`,
              num: true,
            },
            { head: 'Expires', cell: (c) => time(c.expiresAt) },
            {
              head: 'State',
              cell: (c) =>
                html`${c.active ? badge('active') : badge('expired', 'off')}${c.retentionOffer ? html` ${badge('requested', 'retention offer')}` : ''}`,
            },
            {
              head: '',
              cell: (c) =>
                html`<form method="post" action="/coupons/${c.code}/active"><!--csrf--><input type="hidden" name="active" value="${c.active ? 'false' : 'true'}"><button class="secondary">${c.active ? 'Turn off…' : 'Turn on…'}</button></form>`,
            },
          ],
          body.items ?? [],
          'No coupon yet.',
        )}<h2>New coupon</h2><form class="card" method="post" action="/coupons"><!--csrf-->
<label for="code">Code</label><input id="code" name="code" required pattern="[A-Za-z0-9_\\-]{1,64}">
<label for="percent">Percent off (or leave empty and give an amount)</label><input id="percent" name="percentOff" inputmode="numeric">
<label for="amount">Amount off</label><input id="amount" name="amountOff" inputmode="decimal">
<label for="currency">Currency of the amount</label><select id="currency" name="currency"><option value="">—</option>${PAYPAL_CURRENCIES.map((c) => html`<option>${c}</option>`)}</select>
<label for="duration">For the first N periods (empty: every period)</label><input id="duration" name="durationPeriods" inputmode="numeric">
<label for="max">At most N redemptions (empty: no limit)</label><input id="max" name="maxRedemptions" inputmode="numeric">
<label for="per-user">At most N redemptions by one user (empty: 1)</label><input id="per-user" name="maxRedemptionsPerUser" inputmode="numeric">
<label for="expires">Expires (empty: never)</label><input id="expires" name="expiresAt" type="date">
<label><input type="checkbox" name="retentionOffer" value="yes"> Offer it once to buyers about to cancel (the retention offer; replaces the current one)</label>
<p><button>Create…</button></p></form>`,
        { section: '/coupons', who: req.userId, flash: queryOf(req)['done'] },
      );
    }),
  );

  app.post(
    '/coupons',
    checked,
    page('/coupons', async (req, reply) => {
      const b = (req.body ?? {}) as Record<string, string | undefined>;
      const int = (v: string | undefined) => (v && v.trim() ? Number(v) : undefined);
      const currency = b['currency'] || undefined;
      let amountOff: number | undefined;
      try {
        amountOff = b['amountOff']?.trim() && currency ? fromPayPalValue(b['amountOff'].trim(), currency) : undefined;
      } catch {
        return refusedPage(
          'Coupon refused',
          { status: 400, body: { detail: `"${b['amountOff']}" is not an amount in ${currency}` } },
          '/coupons',
          '/coupons',
        );
      }
      const coupon = {
        code: b['code'] ?? '',
        ...(int(b['percentOff']) !== undefined ? { percentOff: int(b['percentOff']) } : {}),
        ...(amountOff !== undefined ? { amountOff, currency } : {}),
        durationPeriods: int(b['durationPeriods']) ?? null,
        maxRedemptions: int(b['maxRedemptions']) ?? null,
        maxRedemptionsPerUser: int(b['maxRedemptionsPerUser']) ?? 1,
        expiresAt: b['expiresAt'] ? new Date(`${b['expiresAt']}T00:00:00Z`).toISOString() : null,
        ...(b['retentionOffer'] === 'yes' ? { retentionOffer: true } : {}),
      };
      if (b['confirm'] !== 'yes')
        return layout(
          'Confirm the new coupon',
          confirmStep({
            action: '/coupons',
            summary: html`<p>Create coupon <strong class="mono">${coupon.code}</strong>: ${coupon.percentOff !== undefined ? html`${coupon.percentOff}% off` : amountOff !== undefined ? html`${money(amountOff, currency!)} off` : 'no discount given'}, ${coupon.durationPeriods === null ? 'every period' : html`the first ${coupon.durationPeriods} period(s)`}, ${coupon.maxRedemptions === null ? 'no limit' : html`at most ${coupon.maxRedemptions} redemptions`}, at most ${coupon.maxRedemptionsPerUser} per user${coupon.retentionOffer ? html`; offered to buyers about to cancel` : ''}.</p>`,
            fields: Object.fromEntries(
              Object.entries(b).filter(([k, v]) => k !== '_csrf' && k !== 'confirm' && typeof v === 'string'),
            ) as Record<string, string>,
            confirmLabel: 'Create the coupon',
            cancelHref: '/coupons',
          }),
          { section: '/coupons', who: req.userId },
        );
      const res = await api(req, 'POST', '/admin/api/v1/coupons', coupon);
      if (res.status >= 400) return refusedPage('Coupon refused', res, '/coupons', '/coupons');
      return doneTo(reply, '/coupons', `Coupon ${coupon.code} created.`);
    }),
  );

  app.post(
    '/coupons/:code/active',
    checked,
    page('/coupons', async (req, reply) => {
      const code = (req.params as { code: string }).code;
      const { active, confirm } = (req.body ?? {}) as Record<string, string | undefined>;
      if (confirm !== 'yes')
        return layout(
          active === 'true' ? 'Confirm: turn the coupon on' : 'Confirm: turn the coupon off',
          confirmStep({
            action: `/coupons/${code}/active`,
            summary: html`<p>${active === 'true' ? 'Buyers can redeem' : 'Buyers can no longer redeem'} <strong class="mono">${code}</strong>; subscriptions that redeemed it keep their discount.</p>`,
            fields: { active: active ?? 'false' },
            confirmLabel: active === 'true' ? 'Turn on' : 'Turn off',
            cancelHref: '/coupons',
          }),
          { section: '/coupons', who: req.userId },
        );
      const res = await api(req, 'PATCH', `/admin/api/v1/coupons/${encodeURIComponent(code)}`, {
        active: active === 'true',
      });
      if (res.status >= 400) return refusedPage('Refused', res, '/coupons', '/coupons');
      return doneTo(reply, '/coupons', `Coupon ${code} turned ${active === 'true' ? 'on' : 'off'}.`);
    }),
  );
}
