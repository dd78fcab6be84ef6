/** The demo page's HTTP side: static files only from its folder, the WebSocket port, dev tokens the gateway accepts. */
import path from 'node:path';
import { createTokenVerifier } from '../../../lib/auth/verifier';
import { createDemoPage } from '../../../scripts/demo-page';

const root = path.resolve(__dirname, '..', '..', '..', 'demo');
const SECRET = 'test-secret-test-secret-test-secret';
const page = createDemoPage({ root, wsPort: 9998, secret: SECRET });

describe('demo page server', () => {
  it('serves the page at / and its files under /demo/', async () => {
    const index = await page.handle({ method: 'GET', path: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toMatch(/^text\/html/);
    expect(index.body).toContain('/demo/app.js');
    const js = await page.handle({ method: 'GET', path: '/demo/app.js' });
    expect([js.statusCode, js.headers['content-type']]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect(JSON.parse((await page.handle({ method: 'GET', path: '/demo/config.json' })).body)).toEqual({
      ws_port: 9998,
    });
  });

  it.each([
    '/demo/../package.json',
    '/demo/..%2Fpackage.json',
    '/demo/.env',
    '/demo/sub/app.js',
    '/demo/missing.js',
    '/etc/passwd',
  ])('answers 404 for %s', async (p) => {
    expect((await page.handle({ method: 'GET', path: p })).statusCode).toBe(404);
  });

  it('mints an HS256 token the gateway verifier accepts', async () => {
    const res = await page.handle({
      method: 'POST',
      path: '/demo/token',
      body: '{"user_id":"4","username":"John"}',
    });
    expect(res.statusCode).toBe(200);
    const { token } = JSON.parse(res.body) as { token: string };
    expect(createTokenVerifier({ secret: SECRET }).verify(token)).toEqual({
      userId: '4',
      username: 'John',
      roles: ['user'],
    });
  });

  it.each([
    ['not JSON', 'nope'],
    ['a non-numeric id', '{"user_id":"john","username":"John"}'],
    ['id 0', '{"user_id":"0","username":"John"}'],
    ['an empty name', '{"user_id":"4","username":" "}'],
  ])('refuses a token request with %s', async (_what, body) => {
    expect((await page.handle({ method: 'POST', path: '/demo/token', body })).statusCode).toBe(400);
  });

  it('has no token endpoint without a dev secret', async () => {
    const bare = createDemoPage({ root, wsPort: 9998 });
    const res = await bare.handle({
      method: 'POST',
      path: '/demo/token',
      body: '{"user_id":"4","username":"J"}',
    });
    expect(res.statusCode).toBe(503);
    expect(res.body).not.toContain('secret-');
  });
});
