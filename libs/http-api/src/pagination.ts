import { sql, type SelectQueryBuilder } from 'kysely';
import { isUuid } from '@billing/domain';
import { AppError } from '@billing/service-kit';

/** Opaque cursors: the last row's creation time and id, so pages stay stable under inserts. */
export function encodeCursor(row: { created_at: Date; id: string }): string {
  return cursorOf(row.created_at, row.id);
}

function cursorOf(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): { at: Date; id: string } | null {
  if (!cursor) return null;
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const date = new Date(at ?? '');
  if (!id || !isUuid(id) || Number.isNaN(date.getTime()))
    throw new AppError('validation', 'querystring.cursor is not a cursor this API gave out');
  return { at: date, id };
}

/**
 * One page of a list, newest first (docs/api.md: `{ items, nextCursor }`), by keyset on
 * (created_at, id), or on another time column of the row (`at` for the audit log, `dead_at`
 * for dead letters).
 */
export async function keysetPage<
  DB,
  TB extends keyof DB,
  O extends { id: string },
  C extends string & keyof O = 'created_at' & keyof O,
>(
  query: SelectQueryBuilder<DB, TB, O>,
  limit: number,
  cursorText: string | undefined,
  column: C = 'created_at' as C,
): Promise<{ rows: O[]; nextCursor: string | null }> {
  const cursor = decodeCursor(cursorText);
  // Postgres keeps microseconds, the cursor milliseconds: order and compare at the cursor's precision.
  const at = sql`date_trunc('milliseconds', ${sql.ref(column)})`;
  let q = query;
  if (cursor) q = q.where(sql<boolean>`(${at}, id) < (${cursor.at}::timestamptz, ${cursor.id}::uuid)`);
  const rows = await q
    .orderBy(at, 'desc')
    .orderBy(sql.ref('id'), 'desc')
    .limit(limit + 1)
    .execute();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    rows: page,
    nextCursor: rows.length > limit && last ? cursorOf(last[column] as Date, last.id) : null,
  };
}
