// What the HTTP apps share: the views of our rows as the API shows them, their TypeBox schemas, and keyset pages.
export * from './views.js';
export * from './schemas.js';
export * from './pagination.js';
export { isUuid } from '@billing/domain';
