import { AppError } from '@billing/service-kit';
import type { AuthClient } from '@billing/auth-client';
import { COOKIE } from '../admin.js';
import { PORTAL_CSS, PORTAL_JS } from './assets.js';
import { html, type Html } from './html.js';
import { CSRF_FIELD, layout, type Kit } from './kit.js';

function loginForm(csrfField: Html, login = ''): Html {
  return html`<form class="card" method="post" action="/login">${csrfField}<label for="login">Login</label><input id="login" name="login" autocomplete="username" value="${login}" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button>Sign in</button></p></form>`;
}

/** Sign-in through the Auth service, sign-out, and the portal's own static files. */
export function authPages({ app, csrf, checked }: Kit, { auth }: { auth: AuthClient }): void {
  app.get('/assets/portal.css', async (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=300').send(PORTAL_CSS),
  );
  app.get('/assets/portal.js', async (_req, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(PORTAL_JS),
  );
  const loginPage = (csrfField: Html, extra = html``, login = '') =>
    layout('Sign in', html`${extra}${loginForm(csrfField, login)}`, { signedIn: false })
      .toString()
      .replaceAll(CSRF_FIELD.toString(), '');
  app.get('/login', async (_req, reply) => reply.type('text/html').send(loginPage(csrf(reply))));
  // Sign-in attempts are limited per client address: guessing passwords costs time (docs/admin.md).
  app.post(
    '/login',
    { ...checked, config: { rateLimit: { max: 10, timeWindow: '5 minutes' } } },
    async (req, reply) => {
      const { login, password } = (req.body ?? {}) as { login?: string; password?: string };
      let token: string | null = null;
      try {
        token = typeof login === 'string' && typeof password === 'string' ? await auth.login(login, password) : null;
      } catch {
        throw new AppError('auth-service-unavailable', 'the Auth service is unreachable; try again shortly', {
          'retry-after': '5',
        });
      }
      if (!token)
        return reply
          .status(401)
          .type('text/html')
          .send(
            loginPage(
              csrf(reply),
              html`<p class="error" role="alert">Wrong login or password.</p>`,
              typeof login === 'string' ? login : '',
            ),
          );
      const secure = req.protocol === 'https';
      reply.setCookie(COOKIE, token, { httpOnly: true, sameSite: 'strict', secure, path: '/' });
      return reply.redirect('/payments', 303);
    },
  );
  app.post('/logout', checked, async (_req, reply) => {
    reply.clearCookie(COOKIE, { path: '/' });
    return reply.redirect('/login', 303);
  });
}
