import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { FastifyRequest } from 'fastify';
import type { Db } from '@billing/db';
import { AppError, toProblem } from '@billing/service-kit';

export interface StoredAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

const KEY = /^[\x20-\x7e]{1,255}$/;
const RETENTION_MS = 24 * 3_600_000;
const ABANDONED_MS = 60_000;

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** Method, path, query and canonical body: what makes two requests "the same". */
export function fingerprint(req: FastifyRequest): string {
  const [path, query = ''] = req.url.split('?');
  const q = new URLSearchParams(query);
  q.sort();
  return createHash('sha256')
    .update(`${req.method}\n${path}\n${q.toString()}\n${canonical(req.body ?? null)}`)
    .digest('hex');
}

/**
 * docs/api.md's Idempotency-Key: per user and key, 24 hours, the first answer replayed, another
 * fingerprint 422, a request still running 409 (abandoned after 60 s), 429 and 5xx not kept.
 * `run` is the request's work; it answers or throws as usual.
 */
export async function withIdempotency(
  db: Db,
  req: FastifyRequest,
  userId: string,
  run: () => Promise<StoredAnswer>,
): Promise<StoredAnswer> {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return run();
  const key = Array.isArray(raw) ? (raw[0] ?? '') : raw;
  if (!KEY.test(key)) throw new AppError('validation', 'Idempotency-Key must be 1 to 255 printable ASCII characters');
  const fp = fingerprint(req);
  const claimed = await db
    .insertInto('idempotency_keys')
    .values({
      user_id: userId,
      key,
      fingerprint: fp,
      state: 'in_flight',
      expires_at: new Date(Date.now() + RETENTION_MS),
    })
    .onConflict((oc) =>
      oc
        .columns(['user_id', 'key'])
        .doUpdateSet({
          fingerprint: fp,
          state: 'in_flight',
          response_status: null,
          response_body: null,
          response_headers: null,
          created_at: sql`now()`,
          expires_at: new Date(Date.now() + RETENTION_MS),
        })
        // take over an expired key, or one whose request was abandoned
        .where((eb) =>
          eb.or([
            eb('idempotency_keys.expires_at', '<', sql<Date>`now()`),
            eb.and([
              eb('idempotency_keys.state', '=', 'in_flight'),
              eb(
                'idempotency_keys.created_at',
                '<',
                sql<Date>`now() - ${sql.lit(`${ABANDONED_MS / 1000} seconds`)}::interval`,
              ),
            ]),
          ]),
        ),
    )
    .returning('key')
    .executeTakeFirst();
  if (!claimed) {
    const row = await db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('user_id', '=', userId)
      .where('key', '=', key)
      .executeTakeFirst();
    if (!row) throw new AppError('idempotency-key-in-flight', 'the first request with this key is still running');
    if (row.fingerprint !== fp)
      throw new AppError('idempotency-key-reused', 'this Idempotency-Key was used for a different request');
    if (row.state === 'in_flight')
      throw new AppError('idempotency-key-in-flight', 'the first request with this key is still running; retry later');
    return {
      status: row.response_status ?? 200,
      body: row.response_body,
      headers: { ...(row.response_headers ?? {}), 'idempotent-replayed': 'true' },
    };
  }
  let answer: StoredAnswer;
  try {
    answer = await run();
  } catch (err) {
    const { status, body, headers } = toProblem(err);
    if (status === 429 || status >= 500) {
      await db.deleteFrom('idempotency_keys').where('user_id', '=', userId).where('key', '=', key).execute();
    } else {
      await store(db, userId, key, { status, body: { ...body, instance: req.url.split('?')[0] }, headers });
    }
    throw err;
  }
  if (answer.status === 429 || answer.status >= 500)
    await db.deleteFrom('idempotency_keys').where('user_id', '=', userId).where('key', '=', key).execute();
  else await store(db, userId, key, answer);
  return answer;
}

async function store(db: Db, userId: string, key: string, a: StoredAnswer): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({
      state: 'done',
      response_status: a.status,
      response_body: JSON.stringify(a.body ?? null),
      response_headers: JSON.stringify(a.headers),
    })
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .execute();
}
