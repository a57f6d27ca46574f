import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { DisputeActionRequested, RefundRequested } from '@billing/contracts';
import type { Database, DisputeActionRow, DisputeRow, PaymentRow } from '@billing/db';
import { enqueue } from '@billing/messaging';
import type { DisputeActionInput, DisputeSeen } from '@billing/payments';
import { chargedBack } from './charge-back.js';
import { payments } from './payments.js';
import { refunds } from './refunds.js';

// The use case "a buyer disputes a payment at PayPal" (docs/disputes.md): PayPal's CUSTOMER.DISPUTE.*
// webhooks kept as one row per dispute, a lost one handled like a chargeback, refunds of the
// disputed capture held while it is open; and the operators' answers (accept the claim, send
// evidence), recorded here and sent to PayPal by the payment-worker.

type Tx = Transaction<Database>;

/** PayPal's outcome codes that mean the buyer got the money back through the dispute. */
export const DISPUTE_LOST = new Set(['RESOLVED_BUYER_FAVOUR', 'ACCEPTED']);

/** PayPal's refusals of a refund because the capture is disputed. */
export const REFUND_HELD_BY_DISPUTE = new Set(['REFUND_NOT_ALLOWED', 'REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK']);

export type DisputeOutcome =
  | 'dispute names no capture of ours'
  | 'no-op: older than what we hold'
  | 'dispute opened'
  | 'dispute updated'
  | `dispute won${string}`
  | `dispute lost${string}`;

/** A dispute as PayPal shows it, applied under the disputed payment's lock. */
export async function disputeReported(
  trx: Tx,
  d: DisputeSeen,
): Promise<{ paymentId: string | null; outcome: DisputeOutcome }> {
  let p: PaymentRow | undefined;
  for (const captureId of d.captureIds) if (!p) p = await payments.lock(trx, { captureId });
  if (!p || !d.disputeId) return { paymentId: null, outcome: 'dispute names no capture of ours' };
  const at = d.updatedAt && !Number.isNaN(Date.parse(d.updatedAt)) ? new Date(d.updatedAt) : new Date();
  const resolved = d.status === 'RESOLVED';
  const result = !resolved ? 'open' : d.outcome && DISPUTE_LOST.has(d.outcome) ? 'lost' : 'won';
  const before = await trx
    .selectFrom('disputes')
    .selectAll()
    .where('provider_dispute_id', '=', d.disputeId)
    .forUpdate()
    .executeTakeFirst();
  // A resolution is final; an update older than the one we hold changes nothing.
  if (before && (before.result !== 'open' || before.provider_updated_at > at))
    return { paymentId: p.id, outcome: 'no-op: older than what we hold' };
  const values = {
    amount: d.amount,
    currency: d.currency,
    reason: d.reason,
    status: d.status,
    stage: d.stage,
    outcome: d.outcome,
    result,
    provider_updated_at: at,
    resolved_at: resolved ? new Date() : null,
  } as const;
  if (before)
    await trx
      .updateTable('disputes')
      .set({ ...values, updated_at: sql`now()` })
      .where('id', '=', before.id)
      .execute();
  else
    await trx
      .insertInto('disputes')
      .values({
        id: randomUUID(),
        provider_dispute_id: d.disputeId,
        payment_id: p.id,
        capture_id: p.provider_capture_id ?? d.captureIds[0]!,
        ...values,
      })
      .execute();
  if (result === 'open') return { paymentId: p.id, outcome: before ? 'dispute updated' : 'dispute opened' };
  return { paymentId: p.id, outcome: await disputeResolved(trx, p, result) };
}

/** The dispute is over: lost, the money went back through it (a chargeback); won, the held refunds go out. */
async function disputeResolved(
  trx: Tx,
  p: PaymentRow,
  result: 'lost' | 'won',
): Promise<`dispute won${string}` | `dispute lost${string}`> {
  const held = await trx
    .selectFrom('refunds')
    .selectAll()
    .where('payment_id', '=', p.id)
    .where('status', '=', 'requested')
    .forUpdate()
    .execute();
  if (result === 'won') {
    for (const r of held) await enqueue(trx, RefundRequested, { refundId: r.id });
    return held.length ? `dispute won; ${held.length} held refund(s) sent` : 'dispute won';
  }
  for (const r of held)
    await refunds.transition(trx, r, { type: 'failed' }, { failure_reason: 'the dispute returned the money' });
  const reversed = await chargedBack(trx, p, 'dispute lost');
  return `dispute lost; payment ${reversed}`;
}

/** The open dispute of a payment, if any (its refunds are held). */
export async function openDispute(db: Kysely<Database>, paymentId: string): Promise<DisputeRow | undefined> {
  return db
    .selectFrom('disputes')
    .selectAll()
    .where('payment_id', '=', paymentId)
    .where('result', '=', 'open')
    .orderBy('created_at')
    .executeTakeFirst();
}

export type DisputeActionRefusal = 'not-found' | 'dispute-resolved' | 'dispute-action-pending';

/**
 * An operator asks to accept a dispute's claim or to send evidence: recorded `requested` and sent
 * to PayPal by the payment-worker after the commit. The dispute's lock orders concurrent requests.
 */
export async function requestDisputeAction(
  trx: Tx,
  disputeId: string,
  action: DisputeActionRow['action'],
  note: string,
  requestedBy: string | null,
): Promise<DisputeActionRow | DisputeActionRefusal> {
  const d = await trx.selectFrom('disputes').selectAll().where('id', '=', disputeId).forUpdate().executeTakeFirst();
  if (!d) return 'not-found';
  if (d.result !== 'open') return 'dispute-resolved';
  const pending = await trx
    .selectFrom('dispute_actions')
    .select('id')
    .where('dispute_id', '=', d.id)
    .where('status', '=', 'requested')
    .executeTakeFirst();
  if (pending) return 'dispute-action-pending';
  const row = await trx
    .insertInto('dispute_actions')
    .values({ id: randomUUID(), dispute_id: d.id, action, note, status: 'requested', requested_by: requestedBy })
    .returningAll()
    .executeTakeFirstOrThrow();
  await enqueue(trx, DisputeActionRequested, { disputeActionId: row.id });
  return row;
}

/** What an action comes to before PayPal is called: nothing left to send, or the call. */
export async function disputeActionToSend(
  db: Kysely<Database>,
  actionId: string,
): Promise<'no-op' | (DisputeActionInput & { action: DisputeActionRow['action'] })> {
  const a = await db
    .selectFrom('dispute_actions')
    .innerJoin('disputes', 'disputes.id', 'dispute_actions.dispute_id')
    .select([
      'dispute_actions.action',
      'dispute_actions.note',
      'dispute_actions.status',
      'disputes.provider_dispute_id',
    ])
    .where('dispute_actions.id', '=', actionId)
    .executeTakeFirst();
  if (!a || a.status !== 'requested') return 'no-op';
  return {
    action: a.action,
    disputeId: a.provider_dispute_id,
    note: a.note,
    idempotencyKey: `${actionId}:dispute`,
  };
}

/** PayPal's answer to an action: `sent`, or `refused` with PayPal's issue. Only a `requested` one moves. */
export async function disputeActionAnswered(
  db: Kysely<Database>,
  actionId: string,
  refusal: { status: number; issue: string | null } | null,
): Promise<'no-op' | 'sent' | 'refused'> {
  const status = refusal ? 'refused' : 'sent';
  const r = await db
    .updateTable('dispute_actions')
    .set({
      status,
      failure_reason: refusal ? `${refusal.status} ${refusal.issue ?? ''}`.trim() : null,
      updated_at: sql`now()`,
    })
    .where('id', '=', actionId)
    .where('status', '=', 'requested')
    .executeTakeFirst();
  return r.numUpdatedRows > 0n ? status : 'no-op';
}
