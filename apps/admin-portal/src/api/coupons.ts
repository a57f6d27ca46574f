import { Type } from 'typebox';
import { transact, type CouponRow } from '@billing/db';
import { createCoupon, setCouponActive } from '@billing/billing-core';
import { isSupportedCurrency } from '@billing/domain';
import { Nullable, Page, Ts } from '@billing/http-api';
import { AppError } from '@billing/service-kit';
import { actor, audit } from '../admin.js';
import type { AdminPlugin } from './index.js';
import { errors } from './schemas.js';

const Code = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
export const Coupon = Type.Object({
  code: Type.String(),
  percentOff: Nullable(Type.Integer()),
  amountOff: Nullable(Type.Integer()),
  currency: Nullable(Type.String()),
  durationPeriods: Nullable(Type.Integer()),
  maxRedemptions: Nullable(Type.Integer()),
  maxRedemptionsPerUser: Nullable(Type.Integer()),
  redeemed: Type.Integer(),
  expiresAt: Nullable(Ts),
  active: Type.Boolean(),
  /** docs/api.md, retention offer: the coupon offered to buyers about to cancel. */
  retentionOffer: Type.Boolean(),
  createdAt: Ts,
});

const view = (c: CouponRow) => ({
  code: c.code,
  percentOff: c.percent_off,
  amountOff: c.amount_off === null ? null : Number(c.amount_off),
  currency: c.currency,
  durationPeriods: c.duration_periods,
  maxRedemptions: c.max_redemptions,
  maxRedemptionsPerUser: c.max_redemptions_per_user,
  redeemed: c.redeemed,
  expiresAt: c.expires_at?.toISOString() ?? null,
  active: c.active,
  retentionOffer: c.retention_offer,
  createdAt: c.created_at.toISOString(),
});

/** docs/api.md, coupons at checkout: coupons, created by operators, only deactivated (never deleted). */
export const couponsApi: AdminPlugin = async (api, { rt }) => {
  api.get('/coupons', { schema: { tags: ['admin'], response: { 200: Page(Coupon), ...errors } } }, async () => ({
    items: (await rt.db.selectFrom('coupons').selectAll().orderBy('created_at', 'desc').execute()).map(view),
    nextCursor: null,
  }));

  api.post(
    '/coupons',
    {
      schema: {
        tags: ['admin'],
        body: Type.Object(
          {
            code: Code,
            percentOff: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
            amountOff: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })),
            currency: Type.Optional(Type.String({ minLength: 3, maxLength: 3 })),
            durationPeriods: Nullable(Type.Integer({ minimum: 1, maximum: 10_000 })),
            maxRedemptions: Nullable(Type.Integer({ minimum: 1 })),
            /** Default 1; null: no limit per user. */
            maxRedemptionsPerUser: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
            expiresAt: Nullable(Type.String({ format: 'date-time' })),
            /** docs/api.md, retention offer: offer this one to buyers about to cancel (unmarks the previous). */
            retentionOffer: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 201: Coupon, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const percent = b.percentOff !== undefined;
      const amount = b.amountOff !== undefined;
      if (percent === amount) throw new AppError('validation', 'give either percentOff or amountOff with its currency');
      if (amount && (!b.currency || !isSupportedCurrency(b.currency)))
        throw new AppError('validation', 'amountOff needs a currency PayPal supports');
      if (percent && b.currency) throw new AppError('validation', 'a percentage takes no currency');
      const row = await transact(rt.db, async (trx) => {
        const c = await createCoupon(trx, {
          code: b.code,
          percentOff: b.percentOff ?? null,
          amountOff: b.amountOff ?? null,
          currency: b.currency ?? null,
          durationPeriods: b.durationPeriods ?? null,
          maxRedemptions: b.maxRedemptions ?? null,
          maxRedemptionsPerUser: b.maxRedemptionsPerUser === undefined ? 1 : b.maxRedemptionsPerUser,
          expiresAt: b.expiresAt ?? null,
          retentionOffer: b.retentionOffer ?? false,
        });
        if (!c) throw new AppError('validation', `a coupon "${b.code}" exists already`);
        await audit(trx, {
          actor: actor(req),
          action: 'coupon.create',
          target: `coupon:${c.code}`,
          reason: null,
          before: null,
          after: view(c),
        });
        return c;
      });
      return reply.status(201).send(view(row));
    },
  );

  api.patch(
    '/coupons/:code',
    {
      schema: {
        tags: ['admin'],
        params: Type.Object({ code: Code }),
        body: Type.Object({ active: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: Coupon, ...errors },
      },
    },
    async (req) =>
      transact(rt.db, async (trx) => {
        const cur = await trx
          .selectFrom('coupons')
          .selectAll()
          .where('code', '=', req.params.code)
          .forUpdate()
          .executeTakeFirst();
        if (!cur) throw new AppError('not-found', 'no such coupon');
        const row = (await setCouponActive(trx, cur.code, req.body.active))!;
        await audit(trx, {
          actor: actor(req),
          action: 'coupon.update',
          target: `coupon:${cur.code}`,
          reason: null,
          before: view(cur),
          after: view(row),
        });
        return view(row);
      }),
  );
};
