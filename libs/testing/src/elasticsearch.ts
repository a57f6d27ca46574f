import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ElasticsearchStandIn {
  url: string;
  /** Raw bodies of every `_bulk` request, as they arrived. */
  bulkBodies: string[];
  /** Index templates (`PUT /_index_template/<name>`) and ILM policies (`PUT /_ilm/policy/<name>`), by name. */
  indexTemplates: Map<string, Record<string, unknown>>;
  ilmPolicies: Map<string, Record<string, unknown>>;
  /** Data streams and indices written to through `_bulk`. */
  targets: Set<string>;
  /** Every document indexed through `_bulk`. */
  documents(): Record<string, unknown>[];
  close(): Promise<void>;
}

/**
 * A local HTTP server that answers the calls winston-elasticsearch makes the way
 * Elasticsearch 8 does (`x-elastic-product` header included): cluster health, index
 * templates, ILM policies and `_bulk` (into indices or data streams). It keeps what it receives, so tests can read what left the process.
 */
export async function startElasticsearchStandIn(port = 0): Promise<ElasticsearchStandIn> {
  const bulkBodies: string[] = [];
  const indexTemplates = new Map<string, Record<string, unknown>>();
  const ilmPolicies = new Map<string, Record<string, unknown>>();
  const targets = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://x');
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(payload));
      };
      if (url.pathname === '/' && req.method === 'GET') {
        return send(200, {
          name: 'stand-in',
          cluster_name: 'billing',
          version: { number: '8.15.0', build_flavor: 'default' },
          tagline: 'You Know, for Search',
        });
      }
      if (url.pathname === '/_cluster/health')
        return send(200, { cluster_name: 'billing', status: 'green', number_of_nodes: 1 });
      const stored = /^\/(_index_template|_ilm\/policy)\/([^/]+)$/.exec(url.pathname);
      if (stored) {
        const map = stored[1] === '_index_template' ? indexTemplates : ilmPolicies;
        const name = decodeURIComponent(stored[2] as string);
        if (req.method === 'HEAD' || req.method === 'GET') {
          const found = map.get(name);
          if (!found) return send(404, { error: { type: 'resource_not_found_exception', reason: name }, status: 404 });
          return send(
            200,
            stored[1] === '_index_template'
              ? { index_templates: [{ name, index_template: found }] }
              : { [name]: { policy: found['policy'] } },
          );
        }
        if (req.method !== 'PUT') return send(405, { error: 'method not allowed', status: 405 });
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(body) as Record<string, unknown>;
        } catch {
          return send(400, { error: { type: 'parse_exception', reason: 'request body is required' }, status: 400 });
        }
        if (stored[1] === '_ilm/policy' && typeof parsed['policy'] !== 'object')
          return send(400, { error: { type: 'x_content_parse_exception', reason: 'required [policy]' }, status: 400 });
        if (stored[1] === '_index_template' && !Array.isArray(parsed['index_patterns']))
          return send(400, {
            error: { type: 'action_request_validation_exception', reason: 'index patterns are missing' },
            status: 400,
          });
        map.set(name, parsed);
        return send(200, { acknowledged: true });
      }
      if (url.pathname.endsWith('/_bulk') && (req.method === 'POST' || req.method === 'PUT')) {
        bulkBodies.push(body);
        const lines = body.split('\n').filter(Boolean);
        const items = [];
        for (let i = 0; i < lines.length; i += 2) {
          const action = JSON.parse(lines[i] as string) as Record<string, { _index?: string }>;
          const op = Object.keys(action)[0] as string;
          const target = action[op]?._index ?? url.pathname.split('/')[1] ?? '';
          targets.add(target);
          items.push({
            [op]: {
              _index: target,
              _id: String(bulkBodies.length * 1000 + i),
              status: 201,
              result: 'created',
            },
          });
        }
        return send(200, { took: 1, errors: false, items });
      }
      return send(404, {
        error: { type: 'resource_not_found_exception', reason: `no handler for ${req.method} ${url.pathname}` },
        status: 404,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    bulkBodies,
    indexTemplates,
    ilmPolicies,
    targets,
    documents() {
      return bulkBodies
        .flatMap((b) =>
          b
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        )
        .filter((d) => !('index' in d) && !('create' in d));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
