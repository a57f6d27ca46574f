import { Type } from 'typebox';
import { Page } from '@billing/http-api';
import type { AdminPlugin } from './index.js';
import { AuditEntry, errors } from './schemas.js';

/** Every operator action: who, what, on what, why, before and after. */
export const auditApi: AdminPlugin = async (api, { rt }) => {
  api.get(
    '/audit',
    {
      schema: {
        tags: ['admin'],
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }),
        response: { 200: Page(AuditEntry), ...errors },
      },
    },
    async (req) => {
      const rows = await rt.db
        .selectFrom('audit_log')
        .selectAll()
        .orderBy('at', 'desc')
        .limit(req.query.limit ?? 50)
        .execute();
      return {
        items: rows.map((a) => ({
          id: a.id,
          at: a.at.toISOString(),
          actor: a.actor,
          action: a.action,
          target: a.target,
          reason: a.reason,
          before: a.before,
          after: a.after,
        })),
        nextCursor: null,
      };
    },
  );
};
