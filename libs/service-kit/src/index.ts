export * from './config.js';
export * from './context.js';
export * from './redact.js';
export * from './logger.js';
export * from './metrics.js';
export * from './errors.js';
export * from './http.js';
export * from './lifecycle.js';
