export * from './locks.js';
export * from './grants.js';
export * from './views.js';
export * from './cancel.js';
export * from './renewals.js';
export * from './pagination.js';
export * from './refunds.js';
