export * from './locks.js';
export * from './grants.js';
export * from './views.js';
