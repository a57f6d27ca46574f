import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// At most one open renewal payment per subscription and period (docs/scheduler.md, renewals and dunning): a second
// one, left by concurrent scheduler replicas before this index, is cancelled as replaced;
// should PayPal still capture it, the late capture is refunded in full.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`update payments p set status = 'cancelled', failure_reason = 'replaced', updated_at = now()
    where p.kind = 'renewal' and p.status in ('created','pending','approved')
      and exists (select 1 from payments o where o.subscription_id = p.subscription_id and o.period_index = p.period_index
        and o.kind = 'renewal' and o.status in ('created','pending','approved') and (o.created_at, o.id) < (p.created_at, p.id))`.execute(
    db,
  );
  await sql`create unique index payments_one_open_renewal_per_period on payments (subscription_id, period_index)
    where kind = 'renewal' and status in ('created','pending','approved')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index payments_one_open_renewal_per_period`.execute(db);
}
