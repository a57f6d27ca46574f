import t from 'tap';
import { loggableUrl } from '../src/http.js';
import { createRedactor } from '../src/redact.js';

t.test('a logged URL keeps its path and our allow-listed query keys only', async (t) => {
  t.equal(loggableUrl('/v1/checkout/return?token=5O190127TN364715T&PayerID=QYR5Z8XDVJNXQ'), '/v1/checkout/return');
  t.equal(
    loggableUrl('/v1/checkout/vault-return?approval_token_id=5C991763VB2781612&approval_session_id=5C991763VB2781612'),
    '/v1/checkout/vault-return',
  );
  t.equal(loggableUrl('/v1/subscriptions?limit=2&cursor=abc&PayerID=X'), '/v1/subscriptions?limit=2&cursor=abc');
  t.equal(loggableUrl('/v1/plans'), '/v1/plans');
});

t.test('the redactor hides payer, customer and approval-session ids by key and in query strings', async (t) => {
  const r = createRedactor();
  t.same(r.info({ payerId: 'QYR5Z8XDVJNXQ', customer_id: 'C1', approval_session_id: 'S1', orderId: 'O1' }), {
    payerId: '[REDACTED]',
    customer_id: '[REDACTED]',
    approval_session_id: '[REDACTED]',
    orderId: 'O1',
  });
  t.equal(r.string('/x?PayerID=QYR5Z8XDVJNXQ&a=1'), '/x?PayerID=[REDACTED]&a=1');
});
