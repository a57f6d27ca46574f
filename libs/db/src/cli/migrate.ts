import { APP_ROLE_SUFFIX, appUrl, defaultRoles, migrateWithRoles, type AppName } from '../roles.js';

// `npm run migrate` (docs/data.md): connected as an administrator through DATABASE_URL, it makes
// the owner and the six app roles if missing (DB_OWNER_ROLE, DB_APP_ROLE as their prefix,
// DB_APP_PASSWORD), applies the migrations as the owner, and grants each app role only the rows it
// uses. Each app then connects as its own role.
const url = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/billing';
const roles = defaultRoles();
try {
  const { applied } = await migrateWithRoles(url, roles);
  for (const name of applied) process.stdout.write(`applied: ${name}\n`);
  if (applied.length === 0) process.stdout.write('nothing to apply: the database is up to date\n');
  process.stdout.write(`roles: migrations owned by ${roles.owner}; each app connects as its own role:\n`);
  for (const app of Object.keys(APP_ROLE_SUFFIX) as AppName[]) {
    const shown = new URL(appUrl(url, roles, app));
    if (shown.password) shown.password = '***';
    process.stdout.write(`  ${app}: ${shown.toString()}\n`);
  }
} catch (err) {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
