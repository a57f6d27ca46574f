import winston from 'winston';
import { createRequire } from 'node:module';
import type { ElasticsearchTransport } from 'winston-elasticsearch';
import { currentCorrelationId } from './context.js';
import { createRedactor } from './redact.js';
import { LOG_DATA_STREAM, toEcsDocument } from './ecs.js';

export type Logger = winston.Logger;

export interface LoggerOptions {
  service: string;
  level?: string;
  elasticsearchUrl?: string | undefined;
  /** Values never to be written, whatever key they come under (from the config). */
  secrets?: readonly string[];
  /** Where JSON lines go; stdout by default. */
  stream?: NodeJS.WritableStream;
}

/**
 * JSON lines to stdout, and to Elasticsearch when a URL is given. Redaction runs in the
 * logger's own format, before any transport sees the line, so no transport can leak.
 */
const elasticsearchTransports = new WeakSet<object>();

export function createLogger({
  service,
  level = 'info',
  elasticsearchUrl,
  secrets = [],
  stream,
}: LoggerOptions): Logger {
  const redactor = createRedactor(secrets);
  // winston runs the logger's formats before the transports filter by level: drop what is
  // below the level first, so a debug line costs no redaction walk.
  const levels = winston.config.npm.levels;
  const threshold = levels[level] ?? levels['info']!;
  const enabled = winston.format((info) => ((levels[info.level] ?? 0) <= threshold ? info : false));
  const enrich = winston.format((info) => {
    if (info['correlationId'] === undefined) {
      const id = currentCorrelationId();
      if (id) info['correlationId'] = id;
    }
    info['service'] = service;
    return redactor.info(info);
  });
  const transports: winston.transport[] = [
    stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console(),
  ];
  if (elasticsearchUrl) {
    // Loaded only when configured: the transport and its Elasticsearch client (with their own
    // dependencies) weigh about 30 MB of memory in every process that never ships a log line.
    const { ElasticsearchTransport: Transport } = createRequire(import.meta.url)('winston-elasticsearch') as {
      ElasticsearchTransport: typeof ElasticsearchTransport;
    };
    // ECS documents into the data stream `logs-billing-default`; its index template and ILM
    // policy come from `deploy/elk` (installed by `elk-setup`), not from the library, whose own
    // template call does not work with the 8.x client. Without them Elasticsearch's built-in
    // `logs-*-*` template takes the stream: nothing is refused, fields are mapped dynamically.
    const es = new Transport({
      level,
      dataStream: true,
      index: LOG_DATA_STREAM,
      ensureIndexTemplate: false,
      transformer: toEcsDocument,
      clientOpts: { node: elasticsearchUrl, requestTimeout: 5000, maxRetries: 2 },
      flushInterval: 1000,
      retryLimit: 3,
    });
    es.on('error', (err: Error) =>
      process.stderr.write(
        `${JSON.stringify({ level: 'warn', service, message: 'elasticsearch transport error', error: redactor.string(String(err?.message ?? err)) })}\n`,
      ),
    );
    transports.push(es);
    elasticsearchTransports.add(es);
  }
  return winston.createLogger({
    level,
    format: winston.format.combine(enabled(), enrich(), winston.format.timestamp(), winston.format.json()),
    transports,
    exitOnError: false,
  });
}

/** Flushes and closes every transport (the Elasticsearch one buffers). */
export async function closeLogger(logger: Logger): Promise<void> {
  const es = logger.transports.find((t) => elasticsearchTransports.has(t)) as
    | (ElasticsearchTransport & { flush?: () => Promise<unknown> })
    | undefined;
  if (es?.flush) await es.flush().catch(() => undefined);
  logger.close();
}
