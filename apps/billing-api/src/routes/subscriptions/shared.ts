import type { Kysely, Transaction } from 'kysely';
import type { Database } from '@billing/db';
import { AuthUnavailableError, type AuthClient } from '@billing/auth-client';
import { PlanChangeRefused, subscriptions } from '@billing/billing-core';
import { isUuid } from '@billing/http-api';
import { AppError } from '@billing/service-kit';
import { Problem } from '../../schemas.js';

/** The problems a subscription's routes can answer with (docs/api.md, errors). */
export const errors = {
  400: Problem,
  401: Problem,
  404: Problem,
  409: Problem,
  413: Problem,
  415: Problem,
  422: Problem,
  429: Problem,
  502: Problem,
  503: Problem,
};

/** The caller's own subscription, locked or read; another user's, or a malformed id, is 404. */
export function ownSubscriptions(db: Kysely<Database>) {
  return {
    async lockOwn(trx: Transaction<Database>, id: string, userId: string) {
      const row = isUuid(id) ? await subscriptions.lock(trx, id, userId) : undefined;
      if (!row) throw new AppError('not-found', 'no such subscription');
      return row;
    },
    /** Read without a lock. */
    async readOwn(id: string, userId: string) {
      const row = isUuid(id)
        ? await db
            .selectFrom('subscriptions')
            .selectAll()
            .where('id', '=', id)
            .where('user_id', '=', userId)
            .executeTakeFirst()
        : undefined;
      if (!row) throw new AppError('not-found', 'no such subscription');
      return row;
    },
  };
}

/** The user's roles at the Auth service; unreachable: 503 `auth-service-unavailable`, nothing recorded. */
export function rolesReader(auth: AuthClient) {
  return async (userId: string): Promise<string[]> => {
    try {
      return await auth.getRoles(userId);
    } catch (err) {
      if (err instanceof AuthUnavailableError)
        throw new AppError(
          'auth-service-unavailable',
          'the Auth service is unreachable; nothing was recorded, try again shortly',
          { 'retry-after': '5' },
        );
      throw err;
    }
  };
}

/** A plan change billing-core refused, as the API's problem. */
export const refused = (err: unknown): never => {
  if (err instanceof PlanChangeRefused) throw new AppError(err.code, err.message);
  throw err;
};
