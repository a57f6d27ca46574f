/** Why a buyer cancels (docs/api.md, cancel): the list the billing page offers, with its words. */
export const CANCEL_REASONS = {
  too_expensive: 'It costs too much',
  not_using: 'I do not use it enough',
  missing_features: 'It lacks something I need',
  switching: 'I am switching to another service',
  technical_issues: 'It did not work well',
  other: 'Another reason',
} as const;
export type CancelReason = keyof typeof CANCEL_REASONS;
export const CANCEL_REASON_CODES = Object.keys(CANCEL_REASONS) as CancelReason[];
