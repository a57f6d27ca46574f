import { html, time, type Html } from './html.js';
import { confirmStep, doneTo, layout, refusedPage, type Kit } from './kit.js';
import { SubscriptionDetail, type AdminSubscriptionRow } from './answers.js';

// docs/api.md, pause and resume, on a subscription's page: an operator pauses an active
// subscription until a date (the plan's longest pause when none is given), or resumes a paused one now.

/** The pause form of an active subscription, or the resume form of a paused one. */
export function pauseSection(s: AdminSubscriptionRow): Html {
  if (s.status === 'paused')
    return html`<h2>Pause</h2><p>Paused since ${time(s.pausedAt)}; resumes by itself at ${time(s.resumesAt)}. No charge and no role meanwhile; the time left in the period is given back at the resume.</p>
<form class="card" method="post" action="/subscriptions/${s.id}/resume"><!--csrf-->
<label for="resume-reason">Why resume now (kept in the audit log)</label><input id="resume-reason" name="reason" required maxlength="1000">
<p><button>Resume now…</button></p></form>`;
  if (s.status !== 'active' || s.cancelAtPeriodEnd) return html``;
  return html`<h2>Pause</h2><form class="card" method="post" action="/subscriptions/${s.id}/pause"><!--csrf-->
<label for="resumes-on">Resume on (UTC date; empty: the plan's longest pause)</label><input id="resumes-on" name="resumesOn" type="date">
<label for="pause-reason">Why pause (kept in the audit log)</label><input id="pause-reason" name="reason" required maxlength="1000">
<p><button>Pause…</button></p></form>`;
}

/** The pause and resume posts, each confirmed first. */
export function pausePages({ app, api, read, page, checked }: Kit): void {
  for (const action of ['pause', 'resume'] as const)
    app.post(
      `/subscriptions/:id/${action}`,
      checked,
      page('/subscriptions', async (req, reply) => {
        const id = (req.params as { id: string }).id;
        const back = `/subscriptions/${encodeURIComponent(id)}`;
        const { reason = '', resumesOn = '', confirm } = (req.body ?? {}) as Record<string, string | undefined>;
        const title = action === 'pause' ? 'Pause refused' : 'Resume refused';
        if (!reason.trim())
          return refusedPage(title, { status: 400, body: { detail: 'a reason is required' } }, back, '/subscriptions');
        const resumesAt = resumesOn ? new Date(`${resumesOn}T00:00:00Z`) : undefined;
        if (resumesAt && Number.isNaN(resumesAt.getTime()))
          return refusedPage(
            title,
            { status: 400, body: { detail: `"${resumesOn}" is not a date` } },
            back,
            '/subscriptions',
          );
        if (confirm !== 'yes') {
          const answer = await read(req, `/admin/api/v1/subscriptions/${encodeURIComponent(id)}`, SubscriptionDetail);
          if (!answer.ok) return refusedPage(title, answer, '/subscriptions', '/subscriptions');
          const s = answer.body;
          return layout(
            action === 'pause' ? 'Confirm the pause' : 'Confirm the resume',
            confirmStep({
              action: `/subscriptions/${id}/${action}`,
              summary:
                action === 'pause'
                  ? html`<p>Pause ${s.userId}'s <strong>${s.planId}</strong> subscription now, until ${resumesAt ? time(resumesAt.toISOString()) : "the plan's longest pause"}: nothing is charged, the role "${s.role}" is taken away until the resume, and the time left in the period is given back then.</p><p>Reason: ${reason}</p>`
                  : html`<p>Resume ${s.userId}'s <strong>${s.planId}</strong> subscription now: the role "${s.role}" is granted again, and the period goes on from where the pause stopped it.</p><p>Reason: ${reason}</p>`,
              fields: { reason, ...(resumesOn ? { resumesOn } : {}) },
              confirmLabel: action === 'pause' ? 'Pause now' : 'Resume now',
              cancelHref: back,
            }),
            { section: '/subscriptions', who: req.userId },
          );
        }
        const res = await api(req, 'POST', `/admin/api/v1/subscriptions/${encodeURIComponent(id)}/${action}`, {
          reason,
          ...(action === 'pause' && resumesAt ? { resumesAt: resumesAt.toISOString() } : {}),
        });
        if (res.status >= 400) return refusedPage(title, res, back, '/subscriptions');
        return doneTo(
          reply,
          back,
          action === 'pause' ? 'Paused; the role is taken away.' : 'Resumed; the role is granted again.',
        );
      }),
    );
}
