export * from './server.js';
export * from './state.js';
