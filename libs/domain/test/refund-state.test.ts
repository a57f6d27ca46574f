import t from 'tap';
import { applyRefundEvent, REFUND_STATUSES, refundOpen, type RefundEvent } from '../src/refund-state.js';

// The refund machine (docs/api.md, refunds): every status against every event.
const EVENTS: RefundEvent[] = [{ type: 'provider_pending' }, { type: 'provider_completed' }, { type: 'failed' }];

t.test('each status against each event', async (t) => {
  const table = Object.fromEntries(
    REFUND_STATUSES.map((s) => [s, EVENTS.map((e) => applyRefundEvent(s, e)?.status ?? null)]),
  );
  t.same(table, {
    requested: ['pending', 'completed', 'failed'],
    pending: [null, 'completed', 'failed'],
    completed: [null, null, null],
    failed: [null, 'completed', null],
  });
});

t.test('a completed refund never moves again; a failed one only to completed, on the word of PayPal', async (t) => {
  for (const e of EVENTS) t.equal(applyRefundEvent('completed', e), null, `completed + ${e.type}`);
  t.equal(applyRefundEvent('failed', { type: 'provider_pending' }), null);
  t.equal(applyRefundEvent('failed', { type: 'failed' }), null);
  t.same(applyRefundEvent('failed', { type: 'provider_completed' }), { status: 'completed' });
});

t.test('open refunds are those still under way', async (t) => {
  t.same(REFUND_STATUSES.filter(refundOpen), ['requested', 'pending']);
});
