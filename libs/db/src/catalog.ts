import { isSupportedCurrency, isValidAmount, isValidPeriod, periodWindow } from '@billing/domain';
import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';

export interface PlanInput {
  id: string;
  name: string;
  description: string;
  amount: number;
  currency: string;
  period: string;
  role: string;
  active: boolean;
  /** docs/api.md, free trials: a free trial before the first period; absent or null: none. */
  trialPeriod?: string | null;
  /** docs/scheduler.md: the retries of a failed renewal, from its first failure; absent or null: DUNNING_RETRY_MS. */
  dunningSchedule?: string[] | null;
  /** docs/api.md, pause: the longest pause; absent or null: P3M. */
  maxPause?: string | null;
}

const FIELDS = ['id', 'name', 'description', 'amount', 'currency', 'period', 'role', 'active'] as const;
const OPTIONAL = ['trialPeriod', 'dunningSchedule', 'maxPause'] as const;

/** A plan entry as its table row's columns (the trial's column is snake_case; none means null). */
export function planColumns(p: PlanInput) {
  const { trialPeriod, dunningSchedule, maxPause, ...rest } = p;
  return {
    ...rest,
    trial_period: trialPeriod ?? null,
    dunning_schedule: dunningSchedule ?? null,
    max_pause: maxPause ?? null,
  };
}

/** docs/admin.md's plan rules; returns what is wrong with one entry, or nothing. */
export function planProblems(v: unknown): string[] {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return ['must be an object'];
  const p = v as Record<string, unknown>;
  const out: string[] = [];
  for (const k of Object.keys(p))
    if (![...FIELDS, ...OPTIONAL].includes(k as never)) out.push(`unknown property "${k}"`);
  if (typeof p['id'] !== 'string' || !/^[a-z0-9-]{1,64}$/.test(p['id'])) out.push('id must be a slug [a-z0-9-]{1,64}');
  if (typeof p['name'] !== 'string' || !p['name'].trim() || p['name'].length > 200)
    out.push('name must be 1 to 200 characters');
  if (typeof p['description'] !== 'string' || p['description'].length > 2000)
    out.push('description must be a string of at most 2000 characters');
  if (!isValidAmount(p['amount'])) out.push('amount must be a positive integer of minor units, at most 1000000000');
  if (typeof p['currency'] !== 'string' || !isSupportedCurrency(p['currency']))
    out.push('currency must be one PayPal supports');
  if (typeof p['period'] !== 'string' || !isValidPeriod(p['period']))
    out.push('period must be one positive integer unit (P1M, P1Y, P7D, PT30S, ...)');
  if (typeof p['role'] !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(p['role']))
    out.push('role must be 1 to 100 letters, digits or _.:-');
  if (typeof p['active'] !== 'boolean') out.push('active must be true or false');
  const trial = p['trialPeriod'];
  if (trial !== undefined && trial !== null && (typeof trial !== 'string' || !isValidPeriod(trial)))
    out.push('trialPeriod must be null or one positive integer unit (P14D, P1M, PT30S, ...)');
  const schedule = p['dunningSchedule'];
  if (schedule !== undefined && schedule !== null && !isDunningSchedule(schedule))
    out.push(
      'dunningSchedule must be null or 1 to 10 positive integer units (P1D, PT12H, ...), each later than the one before',
    );
  const maxPause = p['maxPause'];
  if (maxPause !== undefined && maxPause !== null && (typeof maxPause !== 'string' || !isValidPeriod(maxPause)))
    out.push('maxPause must be null or one positive integer unit (P3M, P30D, PT1M, ...)');
  return out;
}

/** 1 to 10 ISO durations, each later than the one before (measured from one instant: months vary). */
function isDunningSchedule(v: unknown): v is string[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > 10) return false;
  if (!v.every((d) => typeof d === 'string' && isValidPeriod(d))) return false;
  const from = new Date(Date.UTC(2001, 0, 31));
  const ends = v.map((d: string) => periodWindow(from, d, 0).end.getTime());
  return ends.every((e, i) => i === 0 || e > ends[i - 1]!);
}

/** Creates or updates each plan by id, all or nothing; an unchanged plan is left as it is. */
export async function importCatalog(
  db: Kysely<Database>,
  entries: unknown,
): Promise<{ created: number; updated: number; unchanged: number }> {
  if (!Array.isArray(entries)) throw new Error('the catalog must be a JSON array of plans');
  const problems = entries.flatMap((e, i) =>
    planProblems(e).map(
      (p) =>
        `entry ${i}${typeof (e as { id?: unknown })?.id === 'string' ? ` (${(e as { id: string }).id})` : ''}: ${p}`,
    ),
  );
  const ids = entries.map((e) => (e as { id?: unknown }).id);
  ids.forEach((id, i) => {
    if (ids.indexOf(id) !== i) problems.push(`entry ${i} (${String(id)}): id appears twice`);
  });
  if (problems.length) throw new Error(problems.join('\n'));
  const counts = { created: 0, updated: 0, unchanged: 0 };
  await db.transaction().execute(async (trx) => {
    for (const entry of entries as PlanInput[]) {
      const p = planColumns(entry);
      const cur = await trx.selectFrom('plans').selectAll().where('id', '=', p.id).forUpdate().executeTakeFirst();
      if (!cur) {
        await trx.insertInto('plans').values(p).execute();
        counts.created++;
      } else if (
        FIELDS.some((f) => String(f === 'currency' ? cur.currency : cur[f]) !== String(p[f])) ||
        cur.trial_period !== p.trial_period ||
        cur.max_pause !== p.max_pause ||
        JSON.stringify(cur.dunning_schedule) !== JSON.stringify(p.dunning_schedule)
      ) {
        await trx
          .updateTable('plans')
          .set({ ...p, updated_at: sql`now()` })
          .where('id', '=', p.id)
          .execute();
        counts.updated++;
      } else counts.unchanged++;
    }
  });
  return counts;
}
