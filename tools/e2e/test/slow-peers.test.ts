import t from 'tap';
import { waitFor } from '@billing/testing';
import { brokenInvariants } from '../src/invariants.js';
import { startStack } from '../src/stack.js';

// Issue 8, defect 4: no database connection is held across a call to the outside world, so a
// slow peer with many messages in flight causes no error, no hand-back and no delay beyond it.
const stack = await startStack();
t.teardown(() => stack.stop());

const counter = async (app: 'role-worker' | 'payment-worker', outcome: string) => {
  const text = await (await fetch(`${stack.urls[app]}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^messages_consumed_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
};

t.test('the Auth service answering in 2 s per call with 50 role changes in flight: no error, no hand-back', async (t) => {
  const admin = await stack.tokenFor('slow-admin', ['user', 'admin']);
  const users = Array.from({ length: 50 }, (_, i) => `slow-user-${i}`);
  for (const u of users) await stack.tokenFor(u);
  await stack.auth('/_control/delay', { ms: 2_000 });
  t.teardown(() => stack.auth('/_control/delay', { ms: 0 }));
  const started = Date.now();
  const answers = await Promise.all(users.map((u) => fetch(`${stack.urls['admin-portal']}/admin/api/v1/users/${u}/roles`, {
    method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'vip', reason: 'slow peer test' }),
  }).then((r) => r.status)));
  t.ok(answers.every((s) => s === 202), 'every grant accepted');
  await waitFor(async () => {
    const roles = await Promise.all(users.map(async (u) => ((await stack.auth(`/_control/users/${u}`)).roles ?? []) as string[]));
    return roles.every((r) => r.includes('vip'));
  }, { what: 'every role granted at the Auth stand-in', timeoutMs: 120_000, intervalMs: 500 });
  const took = Date.now() - started;
  const requeued = await counter('role-worker', 'requeued');
  const retried = await counter('role-worker', 'retried');
  t.comment(`50 role changes through a 2 s Auth service: ${took} ms; handed back ${requeued}, retried ${retried}`);
  t.equal(requeued, 0, 'no message handed back for want of a database connection');
  t.equal(retried, 0, 'no message failed');
  t.same(await brokenInvariants(stack), []);
});
