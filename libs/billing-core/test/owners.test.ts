import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';

// One owner per aggregate (docs/architecture.md): each billing table is written by one module of
// libs/billing-core/src; migrations change the schema and may move old rows.
const root = join(import.meta.dirname, '..', '..', '..');
const OWNERS: Record<string, string> = {
  subscriptions: 'libs/billing-core/src/subscriptions.ts',
  payments: 'libs/billing-core/src/payments.ts',
  refunds: 'libs/billing-core/src/refunds.ts',
  payment_method_requests: 'libs/billing-core/src/payment-method-requests.ts',
  role_grants: 'libs/billing-core/src/grants.ts',
  plan_changes: 'libs/billing-core/src/change-plan.ts',
  coupons: 'libs/billing-core/src/coupons.ts',
  coupon_redemptions: 'libs/billing-core/src/coupons.ts',
  receipts: 'libs/billing-core/src/receipts.ts',
  document_counters: 'libs/billing-core/src/receipts.ts',
};
const TABLES = Object.keys(OWNERS).join('|');
const WRITE = new RegExp(
  `(?:updateTable|insertInto|deleteFrom|mergeInto|replaceInto)\\(\\s*['"\`](${TABLES})\\b|\\b(?:update|insert\\s+into|delete\\s+from)\\s+(${TABLES})\\b`,
  'gi',
);

/** Every write to an owned table in a source text: the table named, by line. */
export function writesIn(text: string): { table: string; line: number }[] {
  const found: { table: string; line: number }[] = [];
  for (const m of text.matchAll(WRITE)) {
    const table = (m[1] ?? m[2])!.toLowerCase();
    found.push({ table, line: text.slice(0, m.index).split('\n').length });
  }
  return found;
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(path);
  }
  return out;
}

t.test('the detector sees the ways a write can be spelled', async (t) => {
  t.same(
    writesIn("await trx.updateTable('subscriptions').set({})").map((w) => w.table),
    ['subscriptions'],
  );
  t.same(
    writesIn('trx.insertInto("payments").values(x)').map((w) => w.table),
    ['payments'],
  );
  t.same(
    writesIn("db.updateTable('payments as p')").map((w) => w.table),
    ['payments'],
  );
  t.same(
    writesIn('sql`UPDATE subscriptions SET status = 1`').map((w) => w.table),
    ['subscriptions'],
  );
  t.same(
    writesIn('sql`delete from payments where x`').map((w) => w.table),
    ['payments'],
  );
  t.same(
    writesIn("trx.updateTable('refunds').set({})").map((w) => w.table),
    ['refunds'],
  );
  t.same(
    writesIn(
      "trx.insertInto('role_grants'); db.updateTable('payment_method_requests'); sql`insert into document_counters (k)`",
    ).map((w) => w.table),
    ['role_grants', 'payment_method_requests', 'document_counters'],
  );
  t.same(
    writesIn("selectFrom('payments').where('status', '=', 'x'); updateTable('audit_log'); insertInto('outbox')"),
    [],
    'reads and other tables are not writes',
  );
});

t.test('no module but its owner writes a billing table', async (t) => {
  const files = ['apps', 'libs', 'tools']
    .flatMap((top) => readdirSync(join(root, top)).map((p) => join(root, top, p, 'src')))
    .filter((dir) => {
      try {
        return statSync(dir).isDirectory();
      } catch {
        return false;
      }
    })
    .flatMap((dir) => sources(dir));
  t.ok(files.length > 50, `${files.length} source files read`);
  const stray: string[] = [];
  for (const file of files) {
    const rel = relative(root, file);
    if (rel.startsWith('libs/db/src/migrations/')) continue;
    for (const w of writesIn(readFileSync(file, 'utf8'))) {
      if (OWNERS[w.table] !== rel) stray.push(`${rel}:${w.line} writes ${w.table}`);
    }
  }
  t.same(stray, [], 'writes outside the owners');
});
