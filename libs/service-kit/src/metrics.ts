import client from 'prom-client';

/** One registry a process, with the series docs/processes.md names. */
export interface Metrics {
  registry: client.Registry;
  httpRequests: client.Counter<'method' | 'route' | 'status'>;
  httpDuration: client.Histogram<'method' | 'route' | 'status'>;
  messagesConsumed: client.Counter<'queue' | 'type' | 'outcome'>;
  messageDuration: client.Histogram<'queue' | 'type' | 'outcome'>;
  outboxBacklog: client.Gauge;
  outboxPublished: client.Counter;
  jobRuns: client.Counter<'job' | 'outcome'>;
  jobItems: client.Counter<'job' | 'stage'>;
  /** Each try of a call to a payment provider: `ok`, `refused` (4xx), `try_later` (408/429), `failed` (timeout, network, 5xx). */
  providerCalls: client.Counter<'provider' | 'operation' | 'outcome'>;
  providerDuration: client.Histogram<'provider' | 'operation' | 'outcome'>;
  /** Renewal charges by what came of them (the dunning outcomes). */
  renewalCharges: client.Counter<'outcome'>;
  /** Sets how the outbox backlog is read when /metrics is scraped. */
  setOutboxBacklogReader(read: () => Promise<number>): void;
}

export function createMetrics(service: string): Metrics {
  const registry = new client.Registry();
  registry.setDefaultLabels({ service });
  client.collectDefaultMetrics({ register: registry });
  let readBacklog: (() => Promise<number>) | undefined;
  const m: Metrics = {
    registry,
    httpRequests: new client.Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by outcome',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    messagesConsumed: new client.Counter({
      name: 'messages_consumed_total',
      help: 'Consumed messages by outcome (processed, duplicate, retried, dead_lettered, invalid, requeued)',
      labelNames: ['queue', 'type', 'outcome'],
      registers: [registry],
    }),
    messageDuration: new client.Histogram({
      name: 'message_processing_duration_seconds',
      help: 'Message handling latency',
      labelNames: ['queue', 'type', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    outboxBacklog: new client.Gauge({
      name: 'outbox_backlog',
      help: 'Outbox rows committed but not yet published',
      registers: [registry],
      async collect() {
        if (!readBacklog) return;
        try {
          this.set(await readBacklog());
        } catch {
          // the database is unreachable: readiness says so; keep the last value
        }
      },
    }),
    outboxPublished: new client.Counter({
      name: 'outbox_published_total',
      help: 'Outbox rows published with a confirm',
      registers: [registry],
    }),
    jobRuns: new client.Counter({
      name: 'scheduler_job_runs_total',
      help: 'Scheduler job runs by outcome',
      labelNames: ['job', 'outcome'],
      registers: [registry],
    }),
    jobItems: new client.Counter({
      name: 'scheduler_job_items_total',
      help: 'Scheduler items by stage (due, claimed, succeeded, failed)',
      labelNames: ['job', 'stage'],
      registers: [registry],
    }),
    providerCalls: new client.Counter({
      name: 'provider_calls_total',
      help: 'Tries of payment provider calls by outcome (ok, refused, try_later, failed)',
      labelNames: ['provider', 'operation', 'outcome'],
      registers: [registry],
    }),
    providerDuration: new client.Histogram({
      name: 'provider_call_duration_seconds',
      help: 'Payment provider call latency, per try',
      labelNames: ['provider', 'operation', 'outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    renewalCharges: new client.Counter({
      name: 'renewal_charges_total',
      help: 'Renewal charges by outcome (paid, pending, declined, refused, no_payment_method, not_charged)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    setOutboxBacklogReader(read) {
      readBacklog = read;
    },
  };
  return m;
}
