import type { DisputeActionRequested } from '@billing/contracts';
import { disputeActionAnswered, disputeActionToSend } from '@billing/billing-core';
import type { StepHandler } from '@billing/messaging';
import { answerOf } from '../payments/capture.js';
import type { PaymentContext } from '../payments/context.js';

/**
 * `payment.dispute.action.requested` (docs/disputes.md): an operator's answer to a dispute goes to
 * PayPal (accept the claim, or evidence), one PayPal-Request-Id per action, so a redelivery after
 * a crash is answered by PayPal as the first call was; no transaction is held while PayPal answers.
 */
export function sendDisputeActionHandler(ctx: PaymentContext): StepHandler<typeof DisputeActionRequested> {
  return async ({ db, envelope, logger }) => {
    const id = envelope.data.disputeActionId;
    const call = await disputeActionToSend(db, id);
    if (call === 'no-op') {
      logger.info('dispute action: nothing to send', { disputeActionId: id });
      return;
    }
    const answer = await answerOf(
      call.action === 'accept_claim'
        ? ctx.provider.acceptDisputeClaim(call)
        : ctx.provider.provideDisputeEvidence(call),
    );
    const outcome = await disputeActionAnswered(db, id, answer instanceof Error ? answer : null);
    logger.info('dispute action sent', {
      disputeActionId: id,
      disputeId: call.disputeId,
      action: call.action,
      outcome,
    });
  };
}
