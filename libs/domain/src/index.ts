export * from './money.js';
export * from './period.js';
export * from './proration.js';
export * from './payment-state.js';
export * from './subscription-state.js';
export * from './grants.js';
export * from './ids.js';
export * from './plan-change.js';
