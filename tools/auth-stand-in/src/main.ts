import { buildAuthStandIn } from './server.js';

const port = Number(process.env['PORT'] ?? 4000);
const secret = process.env['JWT_SECRET'];
const privateKey = process.env['JWT_PRIVATE_KEY']?.replace(/\\n/g, '\n');
if (!secret && !privateKey) {
  process.stderr.write('auth-stand-in: JWT_SECRET (HS256) or JWT_PRIVATE_KEY (RS256) is required\n');
  process.exit(78);
}
const { app } = buildAuthStandIn({
  signer: privateKey ? { alg: 'RS256', privateKey } : { alg: 'HS256', secret: secret as string },
  serviceToken: process.env['AUTH_SERVICE_TOKEN'] ?? 'dev-service-token',
  ...(process.env['JWT_ISSUER'] ? { issuer: process.env['JWT_ISSUER'] } : {}),
  ...(process.env['JWT_AUDIENCE'] ? { audience: process.env['JWT_AUDIENCE'] } : {}),
});
await app.listen({ port, host: process.env['HOST'] ?? '0.0.0.0' });
process.stdout.write(`auth-stand-in listening on ${port}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
