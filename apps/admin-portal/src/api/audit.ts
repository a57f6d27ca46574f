import { keysetPage, Page } from '@billing/http-api';
import type { AdminPlugin } from './index.js';
import { AuditEntry, AuditListQuery, auditView, errors, instant } from './schemas.js';

/** Every operator action: who, what, on what, why, before and after; filtered, newest first, by cursor. */
export const auditApi: AdminPlugin = async (api, { rt }) => {
  api.get(
    '/audit',
    { schema: { tags: ['admin'], querystring: AuditListQuery, response: { 200: Page(AuditEntry), ...errors } } },
    async (req) => {
      const { actor, action, target } = req.query;
      const [from, to] = [instant(req.query.from), instant(req.query.to)];
      let q = rt.db.selectFrom('audit_log').selectAll();
      if (actor) q = q.where('actor', '=', actor);
      // `payment.refund` or a family: `subscription.cancel` matches both modes.
      if (action) q = q.where((eb) => eb.or([eb('action', '=', action), eb('action', 'like', `${action}.%`)]));
      if (target) q = q.where('target', '=', target);
      if (from) q = q.where('at', '>=', from);
      if (to) q = q.where('at', '<', to);
      const { rows, nextCursor } = await keysetPage(q, req.query.limit ?? 20, req.query.cursor, 'at');
      return { items: rows.map(auditView), nextCursor };
    },
  );
};
