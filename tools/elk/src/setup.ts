import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@elastic/elasticsearch';

/**
 * Installs what Elasticsearch and Kibana need for the apps' logs (README "Operating"):
 * the ILM policy `billing-logs`, the index template `billing-logs` (data streams
 * `logs-billing-*`, ECS mappings), and in Kibana the data view, the saved searches and the
 * dashboard of `deploy/elk/kibana.ndjson`. Every step overwrites what is there, so running it
 * again (each deploy, each `docker compose up`) is safe.
 */
export const POLICY_NAME = 'billing-logs';
export const TEMPLATE_NAME = 'billing-logs';

export interface ElkAssets {
  ilmPolicy: { policy: Record<string, unknown> };
  indexTemplate: Record<string, unknown>;
  kibanaNdjson: string;
}

/** deploy/elk, found from this file both in the source tree and in the production build. */
export function findAssetsDir(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'deploy', 'elk');
    if (existsSync(path.join(candidate, 'index-template.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`deploy/elk not found above ${from}`);
  }
}

export function readAssets(dir = findAssetsDir()): ElkAssets {
  const json = (f: string) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>;
  return {
    ilmPolicy: json('ilm-policy.json') as ElkAssets['ilmPolicy'],
    indexTemplate: json('index-template.json'),
    kibanaNdjson: readFileSync(path.join(dir, 'kibana.ndjson'), 'utf8'),
  };
}

export interface SetupOptions {
  elasticsearchUrl: string;
  kibanaUrl?: string | undefined;
  assets?: ElkAssets;
  /** How long to wait for Elasticsearch and Kibana to answer (they start slowly). */
  waitMs?: number;
  log?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

export interface SetupResult {
  policy: string;
  template: string;
  kibana?: { imported: number };
}

async function until<T>(what: string, waitMs: number, sleep: (ms: number) => Promise<void>, probe: () => Promise<T>) {
  const deadline = Date.now() + waitMs;
  let last: unknown;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline)
      throw new Error(
        `${what} did not answer within ${Math.round(waitMs / 1000)} s: ${(last as Error)?.message ?? last}`,
      );
    await sleep(2000);
  }
}

interface KibanaImportAnswer {
  success: boolean;
  successCount: number;
  errors?: { id: string; type: string; error: { type: string; references?: unknown[] } }[];
}

export async function setupElk(opts: SetupOptions): Promise<SetupResult> {
  const assets = opts.assets ?? readAssets();
  const waitMs = opts.waitMs ?? 180_000;
  const log = opts.log ?? (() => undefined);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  const es = new Client({ node: opts.elasticsearchUrl, requestTimeout: 10_000, maxRetries: 1 });
  try {
    await until('Elasticsearch', waitMs, sleep, () => es.cluster.health({ wait_for_status: 'yellow', timeout: '5s' }));
    await es.ilm.putLifecycle({ name: POLICY_NAME, policy: assets.ilmPolicy.policy as never });
    log(`ILM policy ${POLICY_NAME} installed`);
    await es.indices.putIndexTemplate({ name: TEMPLATE_NAME, ...(assets.indexTemplate as object) } as never);
    log(
      `index template ${TEMPLATE_NAME} installed (${(assets.indexTemplate['index_patterns'] as string[]).join(', ')})`,
    );
  } finally {
    await es.close();
  }
  const result: SetupResult = { policy: POLICY_NAME, template: TEMPLATE_NAME };
  if (!opts.kibanaUrl) return result;

  const kibana = opts.kibanaUrl.replace(/\/$/, '');
  await until('Kibana', waitMs, sleep, async () => {
    const res = await fetch(`${kibana}/api/status`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status?: { overall?: { level?: string } } };
    if (body.status?.overall?.level !== 'available')
      throw new Error(`status ${body.status?.overall?.level ?? res.status}`);
  });
  const form = new FormData();
  form.append('file', new Blob([assets.kibanaNdjson], { type: 'application/ndjson' }), 'kibana.ndjson');
  const res = await fetch(`${kibana}/api/saved_objects/_import?overwrite=true`, {
    method: 'POST',
    headers: { 'kbn-xsrf': 'true' },
    body: form,
    signal: AbortSignal.timeout(30_000),
  });
  const answer = (await res.json()) as KibanaImportAnswer & { message?: string };
  if (!res.ok || !answer.success) {
    const why = answer.errors?.map((e) => `${e.type} ${e.id}: ${e.error.type}`).join('; ') ?? answer.message;
    throw new Error(`Kibana refused the saved objects (HTTP ${res.status}): ${why}`);
  }
  log(`Kibana: ${answer.successCount} saved objects imported (data view, saved searches, dashboard)`);
  return { ...result, kibana: { imported: answer.successCount } };
}
