import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { FastifyRequest } from 'fastify';
import type { Database } from '@billing/db';
import { AppError } from '@billing/service-kit';

export const COOKIE = 'billing_admin';

/** docs/admin.md: a valid token whose roles include `admin`; 401 without one, 403 with one lacking it. */
export function requireAdmin(authenticate: (req: FastifyRequest) => Promise<void>) {
  return async (req: FastifyRequest) => {
    await authenticate(req);
    if (!req.userRoles.includes('admin')) throw new AppError('forbidden', 'this needs the admin role');
  };
}

/** Every operator action is kept: who, what, on what, why, before and after. */
export async function audit(
  trx: Transaction<Database>,
  e: { actor: string; action: string; target: string; reason: string | null; before: unknown; after: unknown },
): Promise<void> {
  await trx
    .insertInto('audit_log')
    .values({
      id: randomUUID(),
      actor: e.actor,
      action: e.action,
      target: e.target,
      reason: e.reason,
      before: e.before === undefined || e.before === null ? null : JSON.stringify(e.before),
      after: e.after === undefined || e.after === null ? null : JSON.stringify(e.after),
    })
    .execute();
}

/** The operator making the request: the JWT's `sub`. */
export const actor = (req: { userId: string }): string => req.userId;
