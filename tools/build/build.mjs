#!/usr/bin/env node
// `npm run build`: the production build. Each app, the migration, catalog and elk-setup CLIs and the two
// stand-ins become one JavaScript file under dist/ (ESM, Node 20, with source maps), our own
// libs bundled in, every npm package left to node_modules. Production runs `node dist/...`;
// tsx stays a development tool.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
process.chdir(root);
const APPS = ['billing-api', 'webhook-gateway', 'admin-portal', 'payment-worker', 'role-worker', 'scheduler'];
const entryPoints = {
  ...Object.fromEntries(APPS.map((app) => [`${app}/main`, `apps/${app}/src/main.ts`])),
  'migrate/main': 'libs/db/src/cli/migrate.ts',
  'catalog-import/main': 'libs/db/src/cli/catalog-import.ts',
  'paypal-sandbox/main': 'tools/paypal-sandbox/src/main.ts',
  'auth-stand-in/main': 'tools/auth-stand-in/src/main.ts',
  'elk-setup/main': 'tools/elk/src/main.ts',
};

/** npm packages stay external (installed with `npm ci --omit=dev`); @billing/* workspace libs are bundled. */
const externalPackages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith('@billing/') ? undefined : { path: args.path, external: true },
    );
  },
};

// `--outdir <dir>` builds elsewhere than dist/ (the e2e suites build their own copy: tools/e2e/build-apps.mjs).
const outIndex = process.argv.indexOf('--outdir');
const outdir = outIndex > 0 ? path.resolve(process.argv[outIndex + 1]) : path.join(root, 'dist');
rmSync(outdir, { recursive: true, force: true });
const started = Date.now();
const result = await build({
  entryPoints,
  outdir,
  // esbuild takes its working directory when imported, before the chdir above.
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  sourcesContent: false,
  metafile: true,
  logLevel: 'warning',
  plugins: [externalPackages],
  // Some packages still reach for require(): give ESM bundles one.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
});
// The buyer's billing page's script, for the browser (apps/billing-api/src/routes/billing-page.ts
// serves it; the same options as there, PAGE_SCRIPT_BUILD).
const page = await build({
  entryPoints: { 'billing-api/public/billing': 'apps/billing-api/src/page/billing.client.ts' },
  outdir,
  absWorkingDir: root,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  metafile: true,
  logLevel: 'warning',
});
Object.assign(result.metafile.outputs, page.metafile.outputs);
const outputs = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js'));
for (const [file, o] of outputs)
  process.stdout.write(`${file.padEnd(36)} ${(o.bytes / 1024).toFixed(0).padStart(5)} KiB\n`);
process.stdout.write(
  `built ${outputs.length} entry points in ${Date.now() - started} ms (version ${JSON.parse(readFileSync('package.json', 'utf8')).version})\n`,
);
