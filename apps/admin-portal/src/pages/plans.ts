import type { FastifyRequest } from 'fastify';
import { PAYPAL_CURRENCIES, fromPayPalValue } from '@billing/domain';
import { badge, diff, esc, link, major, money, table, type Html, html } from './html.js';
import { confirmStep, doneTo, layout, notFound, queryOf, refusedPage, type Kit } from './kit.js';
import { auditTable } from './payments.js';
import { AuditPage, PlanPage, type PlanRow } from './answers.js';

const PERIODS: [string, string][] = [
  ['P1M', 'every month (P1M)'],
  ['P3M', 'every 3 months (P3M)'],
  ['P1Y', 'every year (P1Y)'],
  ['P1W', 'every week (P1W)'],
  ['P7D', 'every 7 days (P7D)'],
  ['P1D', 'every day (P1D)'],
];

function planForm(p: PlanRow | null | undefined): Html {
  const v = (k: keyof PlanRow, d = '') => esc(p?.[k] ?? d);
  const currency = p?.currency ?? 'USD';
  const periods =
    p && !PERIODS.some(([x]) => x === p.period) ? [[p.period, p.period] as [string, string], ...PERIODS] : PERIODS;
  return html`<form class="card" method="post" action="${p ? html`/plans/${p.id}` : '/plans'}"><!--csrf-->
${p ? html`<p>Plan id <strong class="mono">${p.id}</strong> (an id never changes)</p>` : html`<label for="id">Id (a slug: a-z, 0-9, -)</label><input id="id" name="id" required pattern="[a-z0-9\\-]{1,64}">`}
<label for="name">Name</label><input id="name" name="name" required maxlength="200" value="${v('name')}">
<label for="description">Description</label><textarea id="description" name="description" maxlength="2000">${v('description')}</textarea>
<label for="amount">Price (in the currency's units, e.g. 4.99)</label><input id="amount" name="amount" required inputmode="decimal" value="${p ? esc(major(p.amount, p.currency)) : ''}">
<label for="currency">Currency</label><select id="currency" name="currency">${PAYPAL_CURRENCIES.map((c) => html`<option${c === currency ? html` selected` : ''}>${c}</option>`)}</select>
<label for="period">Billed</label><select id="period" name="period">${periods.map(([x, t]) => html`<option value="${x}"${x === (p?.period ?? 'P1M') ? html` selected` : ''}>${t}</option>`)}</select>
<label for="trialPeriod">Free trial before the first charge (ISO 8601: P14D, P1M; empty: none)</label><input id="trialPeriod" name="trialPeriod" maxlength="40" pattern="P(T)?[0-9]{1,5}[YMWDHS]" value="${v('trialPeriod')}">
<label for="dunningSchedule">Retries of a failed renewal, from its first failure (ISO 8601, comma-separated: P1D, P3D, P5D; empty: the default)</label><input id="dunningSchedule" name="dunningSchedule" maxlength="400" value="${p?.dunningSchedule?.join(', ') ?? ''}">
<label for="maxPause">Longest pause a buyer may take (ISO 8601: P1M, P3M; empty: P3M)</label><input id="maxPause" name="maxPause" maxlength="40" pattern="P(T)?[0-9]{1,5}[YMWDHS]" value="${v('maxPause')}">
<label for="role">Role granted</label><input id="role" name="role" required value="${v('role')}">
<label for="active">On sale</label><select id="active" name="active"><option value="true"${p?.active === false ? '' : html` selected`}>yes</option><option value="false"${p?.active === false ? html` selected` : ''}>no (existing subscriptions keep their terms)</option></select>
<label for="reason">Reason (kept in the audit log)</label><input id="reason" name="reason" required maxlength="1000">
<p><button>Save…</button> <a class="button secondary" href="/plans">Cancel</a></p></form>`;
}

/** The plan catalogue: list, create, edit a prefilled form; every change confirmed and audited. */
export function planPages(kit: Kit): void {
  const { app, api, read, page, checked } = kit;
  /** The plans (the admin API answers every plan at once); none when it refused. */
  const readPlans = async (req: FastifyRequest) => {
    const answer = await read(req, '/admin/api/v1/plans', PlanPage);
    return { body: { items: answer.ok ? answer.body.items : [] } };
  };
  app.get(
    '/plans',
    page('/plans', async (req) => {
      const { body } = await readPlans(req);
      return layout(
        'Plans',
        html`<p><a class="button" href="/plans/new">New plan</a></p>${table(
          'Plans',
          [
            {
              head: 'Plan',
              cell: (p) => html`${link(`/plans/${p.id}/edit`, p.name)}<br><span class="mono muted">${p.id}</span>`,
            },
            { head: 'Price', cell: (p) => html`${money(p.amount, p.currency)} / ${p.period}`, num: true },
            {
              head: 'Trial',
              cell: (p) => (p.trialPeriod ? esc(p.trialPeriod) : html`<span class="muted">none</span>`),
            },
            { head: 'Role', cell: (p) => esc(p.role) },
            {
              head: 'On sale',
              cell: (p) => (p.active ? badge('active') : badge('expired', 'off sale')),
            },
            {
              head: 'Subscriptions',
              cell: (p) => link(`/subscriptions?planId=${encodeURIComponent(p.id)}`, 'see'),
            },
            { head: '', cell: (p) => link(`/plans/${p.id}/edit`, 'Edit') },
          ],
          body.items ?? [],
          'No plan yet: create the first one.',
        )}`,
        { section: '/plans', who: req.userId, flash: queryOf(req)['done'] },
      );
    }),
  );
  app.get(
    '/plans/new',
    page('/plans', async (req) => layout('New plan', planForm(null), { section: '/plans', who: req.userId })),
  );
  app.get(
    '/plans/:id/edit',
    page('/plans', async (req) => {
      const id = (req.params as { id: string }).id;
      const { body } = await readPlans(req);
      const plan = (body.items ?? []).find((p) => p.id === id);
      if (!plan) return notFound('Plan', id, '/plans', req.userId);
      const audit = await read(
        req,
        `/admin/api/v1/audit?target=${encodeURIComponent(`plan:${id}`)}&limit=20`,
        AuditPage,
      );
      return layout(
        `Edit ${plan.name}`,
        html`${planForm(plan)}<h2>Changes</h2>${auditTable(audit.ok ? audit.body.items : [])}`,
        {
          section: '/plans',
          who: req.userId,
        },
      );
    }),
  );

  const save = (editing: boolean) =>
    page('/plans', async (req, reply) => {
      const b = (req.body ?? {}) as Record<string, string | undefined>;
      const id = editing ? (req.params as { id: string }).id : (b['id'] ?? '');
      const back = editing ? `/plans/${encodeURIComponent(id)}/edit` : '/plans/new';
      const currency = b['currency'] ?? 'USD';
      let amount: number;
      try {
        amount = fromPayPalValue((b['amount'] ?? '').trim(), currency);
      } catch {
        return refusedPage(
          'Plan refused',
          { status: 400, body: { detail: `"${b['amount']}" is not a price in ${currency} (e.g. 4.99)` } },
          back,
          '/plans',
        );
      }
      if (!(b['reason'] ?? '').trim())
        return refusedPage('Plan refused', { status: 400, body: { detail: 'a reason is required' } }, back, '/plans');
      const plan = {
        name: b['name'] ?? '',
        description: b['description'] ?? '',
        amount,
        currency,
        period: b['period'] ?? '',
        role: b['role'] ?? '',
        active: b['active'] !== 'false',
        trialPeriod: (b['trialPeriod'] ?? '').trim() || null,
        // docs/scheduler.md: checked by the admin API (ISO durations, each later than the one before).
        dunningSchedule: (b['dunningSchedule'] ?? '').trim()
          ? (b['dunningSchedule'] ?? '').split(',').map((d) => d.trim())
          : null,
        maxPause: (b['maxPause'] ?? '').trim() || null,
      };
      const current = editing ? (await readPlans(req)).body.items.find((p) => p.id === id) : null;
      if (editing && !current)
        return refusedPage('Plan refused', { status: 404, body: { detail: `no plan ${id}` } }, '/plans', '/plans');
      if (b['confirm'] !== 'yes')
        return layout(
          editing ? 'Confirm the change' : 'Confirm the new plan',
          confirmStep({
            action: editing ? `/plans/${id}` : '/plans',
            summary: editing
              ? html`<p>Change plan <strong>${id}</strong>. Existing subscriptions keep the price and period they were bought at.</p>${diff(
                  { ...current!, amount: major(current!.amount, current!.currency) },
                  { ...current, ...plan, amount: major(plan.amount, plan.currency) },
                )}<p>Reason: ${b['reason']}</p>`
              : html`<p>Create plan <strong>${id}</strong>: ${plan.name}, ${money(plan.amount, plan.currency)} / ${plan.period}${plan.trialPeriod ? html` after a free trial of ${plan.trialPeriod}` : ''}, role ${plan.role}${plan.active ? ', on sale now' : ''}.</p><p>Reason: ${b['reason']}</p>`,
            fields: Object.fromEntries(
              Object.entries({ ...b, id }).filter(
                ([k, v]) => k !== '_csrf' && k !== 'confirm' && typeof v === 'string',
              ),
            ) as Record<string, string>,
            confirmLabel: editing ? 'Save the change' : 'Create the plan',
            cancelHref: back,
          }),
          { section: '/plans', who: req.userId },
        );
      const res = editing
        ? await api(req, 'PATCH', `/admin/api/v1/plans/${encodeURIComponent(id)}`, { ...plan, reason: b['reason'] })
        : await api(req, 'POST', '/admin/api/v1/plans', { id, ...plan, reason: b['reason'] });
      if (res.status >= 400) return refusedPage('Plan refused', res, back, '/plans');
      return doneTo(reply, '/plans', editing ? `Plan ${id} saved.` : `Plan ${id} created.`);
    });
  app.post('/plans', checked, save(false));
  app.post('/plans/:id', checked, save(true));
}
