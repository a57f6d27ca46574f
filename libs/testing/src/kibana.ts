import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SavedObject {
  id: string;
  type: string;
  attributes: Record<string, unknown>;
  references?: { id: string; name: string; type: string }[];
}

export interface KibanaStandIn {
  url: string;
  /** Saved objects imported, by `type:id`. */
  objects: Map<string, SavedObject>;
  /** What `/api/status` reports; tests flip it to make Kibana "still starting". */
  setLevel(level: 'available' | 'degraded' | 'unavailable'): void;
  close(): Promise<void>;
}

const TYPES = new Set(['index-pattern', 'search', 'dashboard', 'visualization', 'lens', 'config', 'tag']);

/**
 * A local HTTP server answering Kibana 8's status API and its saved-objects import API
 * (`POST /api/saved_objects/_import`, multipart `file`, `kbn-xsrf` required), with Kibana's
 * documented checks: the `.ndjson` extension, known types, conflicts without `overwrite`,
 * and references that must resolve to an object in the file or one already saved
 * (`missing_references`). Imported objects are kept for tests to read.
 */
export async function startKibanaStandIn(port = 0): Promise<KibanaStandIn> {
  const objects = new Map<string, SavedObject>();
  let level = 'available';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const send = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify(payload));
        };
        const bad = (message: string, status = 400) =>
          send(status, {
            statusCode: status,
            error: status === 415 ? 'Unsupported Media Type' : 'Bad Request',
            message,
          });
        if (url.pathname === '/api/status' && req.method === 'GET') {
          return send(level === 'available' ? 200 : 503, {
            name: 'kibana',
            version: { number: '8.15.3' },
            status: { overall: { level, summary: `All services are ${level}` } },
          });
        }
        if (url.pathname === '/api/saved_objects/_import' && req.method === 'POST') {
          if (!req.headers['kbn-xsrf']) return bad('Request must contain a kbn-xsrf header.');
          const form = await new Request('http://x', {
            method: 'POST',
            headers: { 'content-type': req.headers['content-type'] ?? '' },
            body: Buffer.concat(chunks),
          })
            .formData()
            .catch(() => null);
          const file = form?.get('file');
          if (!file || typeof file === 'string') return bad('[request body.file]: expected value of type [Stream]');
          if (!file.name.endsWith('.ndjson'))
            return bad(`Invalid file extension ${file.name.slice(file.name.lastIndexOf('.'))}`);
          const overwrite = url.searchParams.get('overwrite') === 'true';
          let incoming: SavedObject[];
          try {
            incoming = (await file.text())
              .split('\n')
              .filter((l) => l.trim())
              .map((l) => JSON.parse(l) as SavedObject);
          } catch (err) {
            return bad(`Unexpected token in the file: ${(err as Error).message}`);
          }
          const inFile = new Set(incoming.map((o) => `${o.type}:${o.id}`));
          const errors: unknown[] = [];
          const ok: SavedObject[] = [];
          for (const o of incoming) {
            const meta = { title: o.attributes?.['title'] };
            if (!TYPES.has(o.type)) {
              errors.push({ id: o.id, type: o.type, meta, error: { type: 'unsupported_type' } });
              continue;
            }
            const missing = (o.references ?? []).filter(
              (r) => !inFile.has(`${r.type}:${r.id}`) && !objects.has(`${r.type}:${r.id}`),
            );
            if (missing.length > 0) {
              errors.push({
                id: o.id,
                type: o.type,
                meta,
                error: { type: 'missing_references', references: missing.map((r) => ({ type: r.type, id: r.id })) },
              });
              continue;
            }
            if (!overwrite && objects.has(`${o.type}:${o.id}`)) {
              errors.push({ id: o.id, type: o.type, meta, error: { type: 'conflict' } });
              continue;
            }
            ok.push(o);
          }
          for (const o of ok) objects.set(`${o.type}:${o.id}`, o);
          return send(200, {
            success: errors.length === 0,
            successCount: ok.length,
            successResults: ok.map((o) => ({ type: o.type, id: o.id, meta: { title: o.attributes?.['title'] } })),
            warnings: [],
            ...(errors.length ? { errors } : {}),
          });
        }
        return send(404, { statusCode: 404, error: 'Not Found', message: 'Not Found' });
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    objects,
    setLevel(l) {
      level = l;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
