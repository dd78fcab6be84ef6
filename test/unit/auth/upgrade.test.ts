import { normalizeOrigin, type OriginPolicy } from '../../../lib/auth/origins';
import { authorizeUpgrade, type ConnectRequest, tokenFromConnect } from '../../../lib/auth/upgrade';
import { createTokenVerifier } from '../../../lib/auth/verifier';
import { loadConfig } from '../../../lib/config';
import { claimsFor, createTokenKit, jwtAttacks } from '../../support/tokens';

const kit = createTokenKit();
const verifier = createTokenVerifier({ publicKey: kit.publicKeyPem, secret: kit.secret });
const SITE = 'https://games.example.com';
const listed: OriginPolicy = { kind: 'list', origins: new Set([SITE, 'https://www.example.com']) };
const unset: OriginPolicy = { kind: 'unset' };
const any: OriginPolicy = { kind: 'any' };

const decide = (origins: OriginPolicy, req: ConnectRequest) =>
  authorizeUpgrade({ verifier, origins, cookieName: 'auth_token' }, req);

const cookie = (token: string, origin?: string): ConnectRequest => ({
  headers: { Cookie: `theme=dark; auth_token=${token}`, ...(origin ? { Origin: origin } : {}) },
});
const bearer = (token: string): ConnectRequest => ({ headers: { Authorization: `Bearer ${token}` } });
const query = (token: string): ConnectRequest => ({ queryStringParameters: { token } });

const attacks = jwtAttacks(kit, { hasSecret: true }).map((a) => [a.name, a] as const);

describe('an invalid token at $connect (docs/decisions.md D2)', () => {
  it.each(attacks)('in the query: 401 for %s', (_name, attack) => {
    expect(decide(any, query(attack.token()))).toEqual({
      status: 401,
      source: 'query',
      reason: attack.reason,
    });
  });

  it.each(attacks)('in Authorization: Bearer: 401 for %s', (_name, attack) => {
    expect(decide(any, bearer(attack.token()))).toEqual({
      status: 401,
      source: 'bearer',
      reason: attack.reason,
    });
  });

  it.each(attacks)(
    'in the session cookie from a listed origin: ignored, opens unbound, for %s',
    (_name, attack) => {
      expect(decide(listed, cookie(encodeURIComponent(attack.token()), SITE))).toEqual({
        status: 200,
        bound: null,
        source: 'cookie',
        cookieIgnored: { reason: 'invalid', detail: attack.reason },
      });
    },
  );

  it('in the session cookie that is not even valid percent-encoding: ignored', () => {
    expect(decide(any, cookie('%E0%A4%A'))).toMatchObject({
      status: 200,
      bound: null,
      cookieIgnored: { reason: 'invalid' },
    });
  });

  it('a query token wins over a valid cookie: still 401', () => {
    const req = { ...cookie(kit.rs256(claimsFor(5))), queryStringParameters: { token: 'not.a.jwt' } };

    expect(decide(any, req)).toMatchObject({ status: 401, source: 'query' });
  });
});

describe('a valid token at $connect', () => {
  it.each([
    ['the query', query],
    ['Authorization: Bearer', bearer],
    ['the session cookie (any origin under stage local)', (t: string) => cookie(t)],
  ])('binds the connection through %s', (_how, how) => {
    const token = kit.rs256(claimsFor(31, { username: 'Rita', roles: ['user', 'admin'] }));

    expect(decide(any, how(token))).toMatchObject({
      status: 200,
      bound: { userId: '31', username: 'Rita', roles: ['user', 'admin'] },
    });
  });

  it('binds with an empty username when the token has none (the client value is used then)', () => {
    expect(decide(any, bearer(kit.hs256(claimsFor(31))))).toMatchObject({
      bound: { userId: '31', username: '', roles: [] },
    });
  });

  it('opens anonymously without any token', () => {
    expect(decide(listed, { headers: { Authorization: 'Basic dXNlcjpwYXNz', Origin: SITE } })).toEqual({
      status: 200,
      bound: null,
    });
  });
});

describe('browser origins (docs/decisions.md D8)', () => {
  const valid = () => kit.rs256(claimsFor(8));

  it.each([
    ['a foreign site', 'https://evil.example'],
    ['a sibling subdomain (same site, other origin)', 'https://evil.example.com'],
    ['the site over http', 'http://games.example.com'],
    ['the site on another port', 'https://games.example.com:8443'],
    ['a sandboxed page ("null")', 'null'],
    ['an empty Origin', ''],
  ])('refuses %s with 403 when WS_ALLOWED_ORIGINS is set, before looking at tokens', (_what, origin) => {
    expect(decide(listed, { headers: { Origin: origin, Authorization: 'Bearer not.a.jwt' } })).toEqual({
      status: 403,
      origin,
    });
  });

  it('accepts a listed origin whatever the header name case', () => {
    expect(decide(listed, { headers: { origin: 'https://WWW.example.com' } })).toEqual({
      status: 200,
      bound: null,
    });
  });

  it('lets upgrades without Origin through (non-browser clients), but the cookie does not bind them', () => {
    expect(decide(listed, cookie(valid()))).toMatchObject({
      status: 200,
      bound: null,
      cookieIgnored: { reason: 'origin', detail: 'no origin' },
    });
  });

  it('binds the cookie from a listed origin', () => {
    expect(decide(listed, cookie(valid(), SITE))).toMatchObject({ status: 200, bound: { userId: '8' } });
  });

  it('never binds the cookie in a deployed stage without a list, but lets the upgrade through', () => {
    expect(decide(unset, cookie(valid(), 'https://evil.example'))).toMatchObject({
      status: 200,
      bound: null,
      cookieIgnored: { reason: 'origin', detail: 'origin not listed' },
    });
    expect(decide(unset, cookie(valid(), SITE))).toMatchObject({ bound: null });
  });

  it('still binds a Bearer or query token from a browser whose origin is allowed (the token proves itself)', () => {
    expect(
      decide(unset, { headers: { Origin: 'https://evil.example', Authorization: `Bearer ${valid()}` } }),
    ).toMatchObject({
      status: 200,
      bound: { userId: '8' },
      source: 'bearer',
    });
  });

  it('binds the cookie from any origin under stage local without a list', () => {
    expect(decide(any, cookie(valid(), 'https://evil.example'))).toMatchObject({ bound: { userId: '8' } });
  });
});

describe('WS_ALLOWED_ORIGINS', () => {
  it('parses a comma-separated list into the form browsers send', () => {
    const config = loadConfig({
      STAGE: 'prod',
      WS_ALLOWED_ORIGINS: ' https://Example.com/ , https://www.example.com:443,',
    });

    expect(config.auth.origins).toEqual({
      kind: 'list',
      origins: new Set(['https://example.com', 'https://www.example.com']),
    });
  });

  it.each([
    ['prod', { kind: 'unset' }],
    ['dev', { kind: 'unset' }],
    ['local', { kind: 'any' }],
  ])('means %s → %j when unset', (stage, policy) => {
    expect(loadConfig({ STAGE: stage }).auth.origins).toEqual(policy);
  });

  it.each([
    'example.com',
    'https://example.com/app',
    'ftp://example.com',
    '*',
    'https://user@example.com',
    ',',
  ])('names the variable for %j', (value) => {
    expect(() => loadConfig({ WS_ALLOWED_ORIGINS: value })).toThrow(/^WS_ALLOWED_ORIGINS: /);
  });

  it('normalizes default ports away', () => {
    expect(normalizeOrigin('http://localhost:80')).toBe('http://localhost');
    expect(normalizeOrigin('http://localhost:5173')).toBe('http://localhost:5173');
  });
});

describe('tokenFromConnect', () => {
  it('reads the configured cookie name only, percent-decoded', () => {
    const req = { headers: { cookie: 'xauth_token=a; auth_token2=b; session=%41%42' } };

    expect(tokenFromConnect(req, 'auth_token')).toBeUndefined();
    expect(tokenFromConnect(req, 'session')).toEqual({ token: 'AB', source: 'cookie' });
  });
});
