export * from './locks.js';
export * from './grants.js';
export * from './periods.js';
export * from './cancel.js';
export * from './renewals.js';
export * from './refunds.js';
export * from './subscriptions.js';
export * from './payments.js';
