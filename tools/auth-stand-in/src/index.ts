export * from './server.js';
export * from './jwt.js';
