#!/usr/bin/env node
// `npx nx serve elk` / `node dist/elk-setup/main.js` (compose's elk-setup): installs the ILM
// policy and index template in Elasticsearch, and the saved searches and dashboard in Kibana
// when KIBANA_URL is set. Safe to run again.
import { setupElk } from './setup.js';

const elasticsearchUrl = process.env['ELASTICSEARCH_URL'];
if (!elasticsearchUrl) {
  process.stderr.write('ELASTICSEARCH_URL is not set: give the Elasticsearch address, e.g. http://127.0.0.1:9200\n');
  process.exit(78);
}
const waitSeconds = Number(process.env['ELK_WAIT_SECONDS'] ?? 180);
try {
  await setupElk({
    elasticsearchUrl,
    kibanaUrl: process.env['KIBANA_URL'] || undefined,
    waitMs: (Number.isFinite(waitSeconds) ? waitSeconds : 180) * 1000,
    log: (line) => process.stdout.write(`${line}\n`),
  });
} catch (err) {
  process.stderr.write(`elk-setup failed: ${(err as Error).message}\n`);
  process.exit(1);
}
