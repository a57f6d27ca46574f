import type { Migration } from 'kysely';
import * as initial from './20261126T1400_initial.js';

/** Every migration in order; names are timestamps, and a shipped migration is never edited. */
export const migrations: Record<string, Migration> = {
  '20261126T1400_initial': initial,
};
