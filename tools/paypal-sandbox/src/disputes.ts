/* eslint-disable @typescript-eslint/no-explicit-any -- request bodies are untyped JSON, checked field by field as PayPal does */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fromPayPalValue, toPayPalAmount } from '@billing/domain';
import { newId, type Capture, type SandboxState } from './state.js';
import type { WebhookSender } from './webhooks.js';

// PayPal's Disputes v1 as far as a seller uses it (docs/disputes.md): a dispute opened by a test
// against a capture, shown as PayPal's published CUSTOMER.DISPUTE.CREATED sample shows one, the
// seller's accept-claim and provide-evidence, and the sandbox-only adjudicate that settles it as
// PayPal's agents would. Each change is sent as a CUSTOMER.DISPUTE.* webhook.

export interface Dispute {
  dispute_id: string;
  create_time: string;
  update_time: string;
  disputed_transactions: {
    seller_transaction_id: string;
    seller: { merchant_id: string; name: string };
    items: unknown[];
    seller_protection_eligible: boolean;
  }[];
  reason: string;
  status: 'OPEN' | 'WAITING_FOR_BUYER_RESPONSE' | 'WAITING_FOR_SELLER_RESPONSE' | 'UNDER_REVIEW' | 'RESOLVED';
  dispute_amount: { currency_code: string; value: string };
  dispute_life_cycle_stage: 'INQUIRY' | 'CHARGEBACK' | 'PRE_ARBITRATION' | 'ARBITRATION';
  dispute_channel: 'INTERNAL' | 'EXTERNAL';
  dispute_outcome?: { outcome_code: string; amount_refunded?: { currency_code: string; value: string } };
  messages: { posted_by: string; time_posted: string; content: string }[];
  evidences?: { evidence_type: string; notes?: string; source: string; date: string }[];
  links: { href: string; rel: string; method: string }[];
}

export class DisputeError extends Error {
  constructor(
    readonly status: number,
    readonly issue: string,
    readonly description: string,
  ) {
    super(description);
  }
}

interface Deps {
  state: SandboxState & { disputes: Map<string, Dispute> };
  webhooks: WebhookSender;
  publicUrl: string;
  json: (req: FastifyRequest) => Record<string, any>;
  idempotent: (
    req: FastifyRequest,
    reply: FastifyReply,
    op: string,
    run: () => { status: number; body: unknown },
  ) => Promise<unknown>;
}

const now = () => new Date().toISOString();
const minor = (m: { currency_code: string; value: string }) => fromPayPalValue(m.value, m.currency_code);

/** The dispute open against a capture, if any (a refund of it is refused meanwhile). */
export function openDisputeOf(disputes: Map<string, Dispute>, captureId: string): Dispute | undefined {
  return [...disputes.values()].find(
    (d) => d.status !== 'RESOLVED' && d.disputed_transactions.some((t) => t.seller_transaction_id === captureId),
  );
}

/**
 * The `input` part of a multipart/form-data body (provide-evidence), parsed as JSON; the other
 * parts (documents) are not kept.
 */
export function multipartInput(body: string, contentType: string): unknown {
  const boundary = /boundary=("?)([^";]+)\1/.exec(contentType)?.[2];
  if (!boundary) throw new DisputeError(400, 'INVALID_REQUEST', 'multipart body without a boundary');
  for (const part of body.split(`--${boundary}`)) {
    const [head, ...rest] = part.split('\r\n\r\n');
    if (!head || !/name="input"/.test(head)) continue;
    try {
      return JSON.parse(rest.join('\r\n\r\n').replace(/\r\n$/, ''));
    } catch {
      throw new DisputeError(400, 'INVALID_REQUEST', 'the input part is not JSON');
    }
  }
  throw new DisputeError(400, 'MISSING_REQUIRED_PARAMETER', 'the input part is missing');
}

export function registerDisputes(app: FastifyInstance, deps: Deps): void {
  const { state, webhooks, json, idempotent } = deps;
  const link = (path: string, rel: string, method = 'GET') => ({ href: `${deps.publicUrl}${path}`, rel, method });
  app.addContentTypeParser('multipart/form-data', { parseAs: 'string' }, (req, body, done) => {
    try {
      done(null, { json: multipartInput(body as string, String(req.headers['content-type'])) });
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  const find = (req: FastifyRequest): Dispute => {
    const d = state.disputes.get((req.params as { id: string }).id);
    if (!d) throw new DisputeError(404, 'INVALID_RESOURCE_ID', 'Specified resource ID does not exist.');
    return d;
  };
  const send = (d: Dispute, type: 'CREATED' | 'UPDATED' | 'RESOLVED', summary: string) => {
    d.update_time = now();
    d.links = [
      link(`/v1/customer/disputes/${d.dispute_id}`, 'self'),
      ...(d.status === 'RESOLVED'
        ? []
        : [
            link(`/v1/customer/disputes/${d.dispute_id}/accept-claim`, 'accept_claim', 'POST'),
            link(`/v1/customer/disputes/${d.dispute_id}/provide-evidence`, 'provide_evidence', 'POST'),
          ]),
    ];
    webhooks.emit(`CUSTOMER.DISPUTE.${type}`, 'dispute', structuredClone(d), summary);
  };
  /** The dispute resolved: the buyer's favour takes the disputed amount back from the capture. */
  const resolve = (d: Dispute, outcome: string, buyerPaid: boolean) => {
    d.status = 'RESOLVED';
    d.dispute_outcome = { outcome_code: outcome };
    if (buyerPaid) {
      d.dispute_outcome.amount_refunded = d.dispute_amount;
      const c = state.captures.get(d.disputed_transactions[0]!.seller_transaction_id)?.capture;
      if (c) {
        c.refunded = Math.min(minor(c.amount), c.refunded + minor(d.dispute_amount));
        c.status = c.refunded >= minor(c.amount) ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
      }
    }
    send(d, 'RESOLVED', `A dispute was resolved with case # ${d.dispute_id}`);
  };
  const mustBeOpen = (d: Dispute) => {
    // PayPal's issue for an action a resolved dispute no longer offers was not found in its
    // published error list; the generic refusal stands in for it (any 422 is a refusal to us).
    if (d.status === 'RESOLVED')
      throw new DisputeError(422, 'ACTION_NOT_ALLOWED', 'This action is not allowed for this dispute ID.');
  };

  app.get('/v1/customer/disputes/:id', async (req) => find(req));

  app.post('/v1/customer/disputes/:id/accept-claim', async (req, reply) =>
    idempotent(req, reply, `accept-claim:${(req.params as { id: string }).id}`, () => {
      const d = find(req);
      mustBeOpen(d);
      const note = json(req)['note'];
      if (typeof note !== 'string' || !note.length)
        throw new DisputeError(400, 'MISSING_REQUIRED_PARAMETER', 'note is required.');
      d.messages.push({ posted_by: 'SELLER', time_posted: now(), content: note });
      resolve(d, 'ACCEPTED', true);
      return { status: 200, body: { links: [link(`/v1/customer/disputes/${d.dispute_id}`, 'self')] } };
    }),
  );

  app.post('/v1/customer/disputes/:id/provide-evidence', async (req, reply) =>
    idempotent(req, reply, `provide-evidence:${(req.params as { id: string }).id}`, () => {
      const d = find(req);
      mustBeOpen(d);
      if (!String(req.headers['content-type']).startsWith('multipart/form-data'))
        throw new DisputeError(415, 'UNSUPPORTED_MEDIA_TYPE', 'provide-evidence takes multipart/form-data.');
      const evidences = (json(req)['evidences'] ?? []) as { evidence_type?: string; notes?: string }[];
      if (!Array.isArray(evidences) || !evidences.length || !evidences.every((e) => e.evidence_type))
        throw new DisputeError(400, 'MISSING_REQUIRED_PARAMETER', 'evidences with an evidence_type are required.');
      d.evidences = [
        ...(d.evidences ?? []),
        ...evidences.map((e) => ({
          evidence_type: e.evidence_type!,
          ...(e.notes ? { notes: e.notes } : {}),
          source: 'SUBMITTED_BY_SELLER',
          date: now(),
        })),
      ];
      d.status = 'UNDER_REVIEW';
      send(d, 'UPDATED', `A dispute was updated with case # ${d.dispute_id}`);
      return { status: 200, body: { links: [link(`/v1/customer/disputes/${d.dispute_id}`, 'self')] } };
    }),
  );

  // Sandbox only (PayPal's "Settle dispute"): the dispute must be UNDER_REVIEW.
  app.post('/v1/customer/disputes/:id/adjudicate', async (req) => {
    const d = find(req);
    if (d.status !== 'UNDER_REVIEW')
      throw new DisputeError(422, 'INVALID_DISPUTE_STATUS', 'The dispute status must be UNDER_REVIEW.');
    const outcome = json(req)['adjudication_outcome'];
    if (outcome !== 'BUYER_FAVOR' && outcome !== 'SELLER_FAVOR')
      throw new DisputeError(400, 'INVALID_PARAMETER_VALUE', 'adjudication_outcome is BUYER_FAVOR or SELLER_FAVOR.');
    resolve(
      d,
      outcome === 'BUYER_FAVOR' ? 'RESOLVED_BUYER_FAVOUR' : 'RESOLVED_SELLER_FAVOUR',
      outcome === 'BUYER_FAVOR',
    );
    return { links: [link(`/v1/customer/disputes/${d.dispute_id}`, 'self')] };
  });

  /** A test opens a dispute against a capture, as a buyer would at PayPal. */
  app.post('/_control/captures/:id/dispute', async (req) => {
    const found = state.captures.get((req.params as { id: string }).id);
    if (!found) throw new DisputeError(404, 'INVALID_RESOURCE_ID', 'no such capture');
    const c: Capture = found.capture;
    const b = json(req);
    const amount = typeof b['amount'] === 'number' ? b['amount'] : minor(c.amount) - c.refunded;
    const d: Dispute = {
      dispute_id: `PP-D-${newId('', 5)}`,
      create_time: now(),
      update_time: now(),
      disputed_transactions: [
        {
          seller_transaction_id: c.id,
          seller: { merchant_id: 'RD465XN5VS364', name: 'Test Store' },
          items: [],
          seller_protection_eligible: true,
        },
      ],
      reason: typeof b['reason'] === 'string' ? b['reason'] : 'MERCHANDISE_OR_SERVICE_NOT_RECEIVED',
      status: 'OPEN',
      dispute_amount: toPayPalAmount(amount, c.amount.currency_code),
      dispute_life_cycle_stage: b['stage'] === 'CHARGEBACK' ? 'CHARGEBACK' : 'INQUIRY',
      dispute_channel: 'INTERNAL',
      messages: [{ posted_by: 'BUYER', time_posted: now(), content: String(b['message'] ?? 'I did not get it.') }],
      links: [],
    };
    state.disputes.set(d.dispute_id, d);
    send(d, 'CREATED', `A new dispute opened with Case # ${d.dispute_id}`);
    return d;
  });
  app.get('/_control/disputes', async () => [...state.disputes.values()]);
}
