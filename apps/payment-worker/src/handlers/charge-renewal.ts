import type { PlanChangeChargeRequested, RenewalChargeRequested } from '@billing/contracts';
import type { Db } from '@billing/db';
import { CAPTURE_NEEDED, decideCharge, recordCharge, renewalOutcome, type ChargeOutcome } from '@billing/billing-core';
import type { StepHandler } from '@billing/messaging';
import type { ChargeVaultedInput } from '@billing/payments';
import { answerOf, captureApproved } from '../payments/capture.js';
import { recordAnswer, type PaymentContext } from '../payments/context.js';

/** `payment.renewal.requested`: the scheduler claimed a renewal; charge the buyer's vaulted wallet. */
export function chargeRenewalHandler(ctx: PaymentContext): StepHandler<typeof RenewalChargeRequested> {
  return async ({ db, envelope, logger }) => {
    const outcome = await chargeRenewal(ctx, db, envelope.data.paymentId);
    logger.info('renewal charged', { paymentId: envelope.data.paymentId, outcome });
    // Counted once the step has committed: a retried step counts its final outcome only.
    if (outcome !== 'no-op') ctx.metrics?.renewalCharges.inc({ outcome: renewalOutcome(outcome) });
  };
}

/**
 * Charges a renewal payment with the vaulted PayPal wallet (a retry reuses the same request id):
 * decide under the payment's lock, charge with no transaction held, record under the lock again.
 */
export async function chargeRenewal(ctx: PaymentContext, db: Db, paymentId: string): Promise<ChargeOutcome> {
  const decision = await recordAnswer(ctx, db, paymentId, (trx, ctx) => decideCharge(ctx, trx, paymentId));
  return typeof decision === 'string' ? decision : chargeDecided(ctx, db, paymentId, decision);
}

/** The charge decided on, made and recorded (with the answers recorded at the same time, when the context batches them). */
export async function chargeDecided(
  ctx: PaymentContext,
  db: Db,
  paymentId: string,
  charge: ChargeVaultedInput,
): Promise<ChargeOutcome> {
  const answer = await answerOf(ctx.provider.chargeVaulted(charge));
  const outcome = ctx.charges
    ? await ctx.charges.record(paymentId, answer)
    : await recordAnswer(ctx, db, paymentId, (trx, ctx) => recordCharge(ctx, trx, paymentId, answer));
  return outcome === CAPTURE_NEEDED ? captureApproved(ctx, db, paymentId) : outcome;
}

/** `payment.plan-change.requested`: billing-api accepted a plan change; charge its payment like a renewal. */
export function chargePlanChangeHandler(ctx: PaymentContext): StepHandler<typeof PlanChangeChargeRequested> {
  return async ({ db, envelope, logger }) => {
    const outcome = await chargeRenewal(ctx, db, envelope.data.paymentId);
    logger.info('plan change charged', { paymentId: envelope.data.paymentId, outcome });
  };
}
