export * from './envelope.js';
export * from './topology.js';
export * from './messages/notifications.js';
export * from './messages/internal.js';
export * from './http/problem.js';
export * from './http/health.js';
