import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '@billing/db';

type Tx = Transaction<Database>;

/**
 * The one writer of `payment_method_requests` (docs/architecture.md, one owner per aggregate): a
 * buyer saving a wallet through PayPal's vault approval (docs/api.md, replacing the payment
 * method; a trial's or a free first period's checkout). A request is `pending` until PayPal's
 * setup token is approved (`completed`, with the payment token), refused (`failed`), or given up
 * or left unapproved past its time (`cancelled`); only a pending one moves.
 */
export const paymentMethodRequests = {
  /** A new request, pending, for PayPal's setup token. */
  async open(
    db: Kysely<Database>,
    r: { id: string; subscriptionId: string; userId: string; setupTokenId: string },
  ): Promise<void> {
    await db
      .insertInto('payment_method_requests')
      .values({
        id: r.id,
        subscription_id: r.subscriptionId,
        user_id: r.userId,
        setup_token_id: r.setupTokenId,
        status: 'pending',
      })
      .execute();
  },

  /** The pending request of a setup token ends unapproved; its subscription's id, or undefined if none was pending. */
  async cancelPending(trx: Tx, setupTokenId: string): Promise<string | undefined> {
    const r = await trx
      .updateTable('payment_method_requests')
      .set({ status: 'cancelled', updated_at: sql`now()` })
      .where('setup_token_id', '=', setupTokenId)
      .where('status', '=', 'pending')
      .returning('subscription_id')
      .executeTakeFirst();
    return r?.subscription_id;
  },

  /** PayPal refused to turn the approved setup token into a payment token. */
  async fail(trx: Tx, id: string): Promise<void> {
    await trx
      .updateTable('payment_method_requests')
      .set({ status: 'failed', updated_at: sql`now()` })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
  },

  /** The wallet is saved: PayPal's payment token. */
  async complete(trx: Tx, id: string, paymentTokenId: string): Promise<void> {
    await trx
      .updateTable('payment_method_requests')
      .set({ status: 'completed', payment_token_id: paymentTokenId, updated_at: sql`now()` })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
  },

  /** Marks requests as looked at (reconciliation asked PayPal about them) without changing them. */
  async touchMany(trx: Tx, ids: readonly string[], at: Date): Promise<void> {
    if (ids.length === 0) return;
    await trx
      .updateTable('payment_method_requests')
      .set({ updated_at: at })
      .where('id', 'in', [...ids])
      .execute();
  },
};
