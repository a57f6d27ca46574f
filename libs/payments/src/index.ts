export * from './provider.js';
export * from './paypal/adapter.js';
export * from './paypal/parse.js';
