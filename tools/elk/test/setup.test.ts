import t from 'tap';
import { createLogger, closeLogger, runWithCorrelation, LOG_DATA_STREAM } from '@billing/service-kit';
import { startElasticsearchStandIn, startKibanaStandIn, waitFor } from '@billing/testing';
import { POLICY_NAME, TEMPLATE_NAME, readAssets, setupElk } from '../src/setup.js';

const assets = readAssets();
const template = assets.indexTemplate as {
  index_patterns: string[];
  template: { settings: Record<string, unknown>; mappings: { properties: Record<string, Mapping> } };
};
type Mapping = { type?: string; properties?: Record<string, Mapping> };
const saved = assets.kibanaNdjson
  .split('\n')
  .filter(Boolean)
  .map(
    (l) =>
      JSON.parse(l) as {
        id: string;
        type: string;
        attributes: Record<string, any>;
        references: { id: string; name: string; type: string }[];
      },
  );

/** Whether a dotted field is mapped by the template (a `flattened` field covers what is below it). */
function mapped(field: string): boolean {
  let props: Record<string, Mapping> | undefined = template.template.mappings.properties;
  const parts = field.split('.');
  for (let i = 0; i < parts.length; i++) {
    // @timestamp and the like are one key; ECS objects are nested
    const m: Mapping | undefined = props?.[parts[i] as string];
    if (!m) return false;
    if (m.type === 'flattened') return true;
    if (i === parts.length - 1) return m.type !== undefined;
    props = m.properties;
  }
  return false;
}

function leaves(doc: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(doc).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? leaves(v as Record<string, unknown>, `${prefix}${k}.`)
      : [`${prefix}${k}`],
  );
}

const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );

t.test('installs the ILM policy, the index template and the Kibana objects; running it again is safe', async (t) => {
  const es = await startElasticsearchStandIn();
  const kibana = await startKibanaStandIn();
  t.teardown(() => Promise.all([es.close(), kibana.close()]));
  // Kibana is still starting on the first probes: the command waits for it.
  kibana.setLevel('unavailable');
  let probes = 0;
  const lines: string[] = [];
  const result = await setupElk({
    elasticsearchUrl: es.url,
    kibanaUrl: kibana.url,
    waitMs: 10_000,
    log: (l) => lines.push(l),
    sleep: async () => {
      if (++probes === 2) kibana.setLevel('available');
    },
  });
  t.ok(probes >= 2, 'waited for Kibana to be available');
  t.same(es.ilmPolicies.get(POLICY_NAME), assets.ilmPolicy, 'the ILM policy as in deploy/elk');
  const stored = es.indexTemplates.get(TEMPLATE_NAME) as Record<string, unknown>;
  t.same(stored['template'], template.template, 'the index template as in deploy/elk');
  t.same(stored['index_patterns'], ['logs-billing-*']);
  t.equal(result.kibana?.imported, saved.length, 'every saved object imported');
  t.same(
    [...kibana.objects.keys()].sort(),
    saved.map((o) => `${o.type}:${o.id}`).sort(),
    'data view, three saved searches and the dashboard are in Kibana',
  );
  t.match(lines.join('\n'), /ILM policy billing-logs installed[\s\S]*index template[\s\S]*5 saved objects imported/);

  const again = await setupElk({ elasticsearchUrl: es.url, kibanaUrl: kibana.url, waitMs: 1000 });
  t.equal(again.kibana?.imported, saved.length, 'a second run overwrites, nothing conflicts');
});

t.test('an Elasticsearch that never answers, and Kibana refusing the objects, fail with a clear reason', async (t) => {
  await t.rejects(
    setupElk({ elasticsearchUrl: 'http://127.0.0.1:9', waitMs: 50, sleep: async () => undefined }),
    /Elasticsearch did not answer within 0 s/,
  );
  const es = await startElasticsearchStandIn();
  const kibana = await startKibanaStandIn();
  t.teardown(() => Promise.all([es.close(), kibana.close()]));
  const broken = saved
    .filter((o) => o.type !== 'index-pattern')
    .map((o) => JSON.stringify(o))
    .join('\n');
  await t.rejects(
    setupElk({ elasticsearchUrl: es.url, kibanaUrl: kibana.url, assets: { ...assets, kibanaNdjson: broken } }),
    /Kibana refused the saved objects \(HTTP 200\): search billing-payments-by-user: missing_references/,
    'a saved search without its data view is refused, as Kibana does',
  );
});

t.test('the template fits the logs: the data stream matches it, every field the apps write is mapped', async (t) => {
  t.ok(glob(template.index_patterns[0] as string).test(LOG_DATA_STREAM), `${LOG_DATA_STREAM} falls under the template`);
  t.equal(template.template.settings['index.lifecycle.name'], POLICY_NAME, 'the template names the ILM policy');

  const es = await startElasticsearchStandIn();
  t.teardown(() => es.close());
  const logger = createLogger({ service: 'payment-worker', elasticsearchUrl: es.url, stream: process.stderr });
  // The shapes the apps log (libs/payments' PayPal adapter, the consumers, the HTTP hook).
  runWithCorrelation('corr-42', () => {
    logger.info('paypal response', {
      provider: 'paypal',
      op: 'captureOrder',
      paymentId: 'pay-1',
      userId: 'user-7',
      attempt: 1,
      status: 201,
      ms: 84,
      requestId: 'capture-pay-1',
      summary: { id: 'ORDER-1', status: 'COMPLETED', captures: [{ id: 'CAP-1', status: 'COMPLETED' }] },
    });
    logger.warn('paypal refused', {
      provider: 'paypal',
      requestId: 'capture-pay-2',
      op: 'captureOrder',
      paymentId: 'pay-2',
      attempt: 1,
      status: 422,
      issue: 'INSTRUMENT_DECLINED',
      detail: 'The instrument presented was declined',
      ms: 40,
    });
    logger.error('message dead-lettered after its last attempt', {
      messageId: 'm-1',
      type: 'payment.capture.requested',
      queue: 'payment-worker.commands',
      attempts: 5,
      err: new Error('boom'),
    });
    logger.info('http request', {
      method: 'POST',
      url: '/v1/subscriptions',
      route: '/v1/subscriptions',
      status: 201,
      ms: 12.5,
    });
    logger.info('subscription activated', {
      subscriptionId: 'sub-1',
      paymentId: 'pay-1',
      userId: 'user-7',
      planId: 'pro',
    });
  });
  await waitFor(() => es.documents().length >= 5, { what: 'five documents', timeoutMs: 10_000 });
  await closeLogger(logger);
  t.same([...es.targets], [LOG_DATA_STREAM], 'written to the data stream');
  t.ok(
    es.bulkBodies.every((b) => b.includes('{"create":')),
    'with `create`, as data streams require',
  );
  const docs = es.documents();
  for (const doc of docs) {
    const unmapped = leaves(doc).filter((f) => !mapped(f));
    t.same(unmapped, [], `"${String(doc['message'])}": every field is mapped`);
  }
  const doc = (message: string) => docs.find((d) => d['message'] === message) as any;
  const [response, refused, dead, request, activated] = [
    'paypal response',
    'paypal refused',
    'message dead-lettered after its last attempt',
    'http request',
    'subscription activated',
  ].map(doc);
  t.match(response, {
    service: { name: 'payment-worker' },
    log: { level: 'info' },
    trace: { id: 'corr-42' },
    user: { id: 'user-7' },
    payment: { id: 'pay-1' },
    event: { duration: 84_000_000 },
    provider: {
      name: 'paypal',
      operation: 'captureOrder',
      status_code: 201,
      request_id: 'capture-pay-1',
      response: { status: 'COMPLETED' },
    },
  });
  t.match(refused, {
    log: { level: 'warn' },
    provider: { issue: 'INSTRUMENT_DECLINED', status_code: 422, request_id: 'capture-pay-2' },
  });
  t.match(dead, {
    message_bus: { message_id: 'm-1', queue: 'payment-worker.commands' },
    error: { type: 'Error', message: 'boom' },
    billing: { attempts: 5 },
  });
  t.match(request, {
    http: { request: { method: 'POST' }, response: { status_code: 201 }, route: '/v1/subscriptions' },
    url: { original: '/v1/subscriptions' },
  });
  t.match(activated, { subscription: { id: 'sub-1' }, plan: { id: 'pro' } });
});

t.test('the saved searches and the dashboard only name fields the template maps', async (t) => {
  const searches = saved.filter((o) => o.type === 'search');
  t.same(searches.map((s) => s.attributes['title']).sort(), ['Dead letters', 'PayPal errors', 'Payments by user']);
  for (const s of searches) {
    const source = JSON.parse(s.attributes['kibanaSavedObjectMeta'].searchSourceJSON);
    const fields = [
      ...(s.attributes['columns'] as string[]),
      ...(s.attributes['sort'] as string[][]).map((x) => x[0] as string),
      ...[...String(source.query.query).matchAll(/([\w.@]+)\s*:/g)].map((m) => m[1] as string),
    ];
    t.same(
      fields.filter((f) => !mapped(f)),
      [],
      `${s.attributes['title']}: every field is mapped`,
    );
    t.ok(
      s.references.some((r) => r.name === source.indexRefName && r.id === 'billing-logs'),
      `${s.attributes['title']}: reads the billing logs data view`,
    );
  }
  const view = saved.find((o) => o.type === 'index-pattern');
  t.ok(view && glob(String(view.attributes['title'])).test(LOG_DATA_STREAM), 'the data view covers the data stream');
  const dashboard = saved.find((o) => o.type === 'dashboard')!;
  const panels = JSON.parse(dashboard.attributes['panelsJSON']) as { panelRefName: string }[];
  t.equal(panels.length, 3);
  for (const p of panels) {
    const ref = dashboard.references.find((r) => r.name === p.panelRefName);
    t.ok(ref && searches.some((s) => s.id === ref.id), `panel ${p.panelRefName} shows a saved search of the file`);
  }
});
