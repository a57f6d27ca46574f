import type { Selectable } from 'kysely';
import type { CreatedAt, Generated, Timestamp, UpdatedAt } from './common.js';

/** docs/api.md, coupons at checkout: an operator's coupon; `redeemed` counts live redemptions. */
export interface CouponsTable {
  code: string;
  percent_off: number | null;
  amount_off: number | null;
  currency: string | null;
  /** The first N periods discounted; null: every period. */
  duration_periods: number | null;
  max_redemptions: number | null;
  /** At most this many live redemptions by one user (default 1); null: no limit. */
  max_redemptions_per_user: Generated<number | null>;
  redeemed: Generated<number>;
  expires_at: Timestamp | null;
  active: Generated<boolean>;
  /** docs/api.md, retention offer: the one coupon offered to buyers about to cancel. */
  retention_offer: Generated<boolean>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
export type CouponRow = Selectable<CouponsTable>;

export interface CouponRedemptionsTable {
  id: string;
  coupon_code: string;
  subscription_id: string;
  user_id: string;
  status: 'active' | 'released';
  /** The first period it discounts (0: from the first; a retention offer: the next one not yet charged). */
  from_period: Generated<number>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}
