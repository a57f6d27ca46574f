export * from './connection.js';
export * from './topology.js';
export * from './envelope.js';
export * from './publisher.js';
export * from './consumer.js';
export * from './outbox.js';
export * from './dead-letters.js';
