export * from './database.js';
export * from './broker.js';
export * from './tcp-proxy.js';
export * from './wait.js';
export * from './process.js';
export * from './elasticsearch.js';
export * from './app-checks.js';
export * from './jwt.js';
