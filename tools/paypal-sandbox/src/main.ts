import { buildSandbox } from './server.js';

const port = Number(process.env['PORT'] ?? 4100);
const { app } = buildSandbox({
  clientId: process.env['PAYPAL_CLIENT_ID'] ?? 'sandbox-client-id',
  clientSecret: process.env['PAYPAL_CLIENT_SECRET'] ?? 'sandbox-client-secret',
  webhookId: process.env['PAYPAL_WEBHOOK_ID'] ?? 'WH-SANDBOX',
  webhookUrl: process.env['WEBHOOK_URL'],
  publicUrl: process.env['PUBLIC_URL'] ?? `http://127.0.0.1:${port}`,
  webhookRetryBaseMs: Number(process.env['WEBHOOK_RETRY_BASE_MS'] ?? 1000),
});
await app.listen({ port, host: process.env['HOST'] ?? '0.0.0.0' });
process.stdout.write(`paypal-sandbox listening on ${port}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
