import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ElasticsearchStandIn {
  url: string;
  /** Raw bodies of every `_bulk` request, as they arrived. */
  bulkBodies: string[];
  /** Every document indexed through `_bulk`. */
  documents(): Record<string, unknown>[];
  close(): Promise<void>;
}

/**
 * A local HTTP server that answers the calls winston-elasticsearch makes the way
 * Elasticsearch 8 does (`x-elastic-product` header included): cluster health, index
 * templates and `_bulk`. It keeps what it receives, so tests can read what left the process.
 */
export async function startElasticsearchStandIn(port = 0): Promise<ElasticsearchStandIn> {
  const bulkBodies: string[] = [];
  const templates = new Set<string>();
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
      const tpl = /^\/_index_template\/(.+)$/.exec(url.pathname);
      if (tpl) {
        const name = decodeURIComponent(tpl[1] as string);
        if (req.method === 'HEAD' || req.method === 'GET') return send(templates.has(name) ? 200 : 404, {});
        templates.add(name);
        return send(200, { acknowledged: true });
      }
      if (url.pathname.endsWith('/_bulk') && (req.method === 'POST' || req.method === 'PUT')) {
        bulkBodies.push(body);
        const lines = body.split('\n').filter(Boolean);
        const items = [];
        for (let i = 0; i < lines.length; i += 2)
          items.push({
            index: {
              _index: 'billing-logs',
              _id: String(bulkBodies.length * 1000 + i),
              status: 201,
              result: 'created',
            },
          });
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
