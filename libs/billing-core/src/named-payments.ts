import { sql, type Transaction } from 'kysely';
import type { Database } from '@billing/db';
import { isUuid } from '@billing/domain';

/** The payments a window's messages name: by our id, PayPal's order id or its capture id. */
export interface NamedPayments {
  ids: Set<string>;
  orders: Set<string>;
  captures: Set<string>;
}

export const namedPayments = (): NamedPayments => ({ ids: new Set(), orders: new Set(), captures: new Set() });

/**
 * Locks up front every payment `named` names and then their subscriptions, both in id order, in
 * one statement (docs/messages.md, windows side by side): a window that then
 * applies its messages in any order takes no lock on them another window could hold while it
 * waits for one of this window's. Ids that are not UUIDs name nothing of ours and are left out.
 */
export async function lockNamedPayments(trx: Transaction<Database>, named: NamedPayments): Promise<void> {
  const ids = [...named.ids].filter(isUuid);
  const orders = [...named.orders];
  const captures = [...named.captures];
  if (!ids.length && !orders.length && !captures.length) return;
  // One round trip: the payments locked (in id order) before their subscriptions (in id order).
  await sql`with p as materialized (
      select subscription_id from payments
      where id = any(${ids}::uuid[]) or provider_order_id = any(${orders}::text[]) or provider_capture_id = any(${captures}::text[])
      order by id for update)
    select 1 from subscriptions where id in (select subscription_id from p) order by id for update`.execute(trx);
}
