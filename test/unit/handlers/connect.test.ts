/**
 * `$connect` (handlers/connect.ts) invoked directly: API Gateway's upgrade event, a Lambda context,
 * the function's middy chain, in-memory adapters. What the client sees is the status code; what
 * the gateway did is read from the fakes (registered connections, welcome invocations, counters)
 * and from the next frame the connection sends.
 */
import { createConnectHandler } from '../../../handlers/connect';
import { createObservability } from '../../../lib/runtime/lambda';
import { lambdaContext, MANAGEMENT_ENDPOINT, webSocket } from '../../support/lambda-events';
import { claimsFor, nowSecs } from '../../support/tokens';
import {
  APP_ORIGIN,
  createHarness,
  type Harness,
  identityOf,
  newUserId,
  replyOf,
  tokenFor,
  tokens,
} from './harness';

let h: Harness;
beforeEach(() => {
  h = createHarness();
});

/** The frame a page sends after `$connect` when it has no token of its own: the credential form. */
const credentialForm = (userId: string) => ({
  type: 'system.authenticate',
  user_id: userId,
  username: 'typed',
});

describe('$connect', () => {
  it.each([
    ['a ?token= query parameter', (token: string) => ({ query: { token } })],
    [
      'an Authorization: Bearer header',
      (token: string) => ({ headers: { Origin: APP_ORIGIN, Authorization: `Bearer ${token}` } }),
    ],
    [
      'the session cookie from an allowed origin',
      (token: string) => ({ headers: { Origin: APP_ORIGIN, Cookie: `theme=dark; auth_token=${token}` } }),
    ],
  ])('binds the connection to the user of %s and triggers the welcome', async (_how, request) => {
    const userId = newUserId();
    const socket = webSocket();

    const result = await h.connect(socket.connect(request(tokenFor(userId))), lambdaContext('connect'));

    expect(result).toEqual({ statusCode: 200, body: '' });
    expect(await h.deps.store.allConnections()).toEqual([socket.connectionId]);
    expect(h.fakes.welcome.requests).toEqual([
      { connectionId: socket.connectionId, endpoint: MANAGEMENT_ENDPOINT },
    ]);
    // Bound: the credential form naming that user is accepted without a token (docs/decisions.md D8).
    const reply = await h.message(socket.message(credentialForm(userId)), lambdaContext('default'));
    expect(replyOf(reply)).toMatchObject({
      type: 'system.authenticated',
      user_id: userId,
      username: identityOf(userId).username,
    });
  });

  it('opens an anonymous connection without credentials, registered for broadcasts and welcomed', async () => {
    const socket = webSocket();

    const result = await h.connect(socket.connect(), lambdaContext('connect'));

    expect(result).toEqual({ statusCode: 200, body: '' });
    expect(await h.deps.store.allConnections()).toEqual([socket.connectionId]);
    expect(h.fakes.welcome.requests).toEqual([
      { connectionId: socket.connectionId, endpoint: MANAGEMENT_ENDPOINT },
    ]);
    const reply = await h.message(socket.message(credentialForm(newUserId())), lambdaContext('default'));
    expect(replyOf(reply)).toMatchObject({
      type: 'system.error',
      message: 'Authentication failed: a verified token is required',
    });
  });

  it.each([
    [
      'query',
      'a forged ?token=',
      () => ({ query: { token: tokens.hs256(claimsFor('7'), 'not-the-secret') } }),
    ],
    [
      'bearer',
      'an expired Bearer token',
      () => ({
        headers: { Authorization: `Bearer ${tokens.hs256(claimsFor('7', { exp: nowSecs() - 3600 }))}` },
      }),
    ],
    ['query', 'a truncated ?token=', () => ({ query: { token: tokenFor('7').slice(0, -10) } })],
  ])('answers 401 to %s credentials: %s, and registers nothing', async (source, _what, request) => {
    const socket = webSocket();

    const result = await h.connect(socket.connect(request()), lambdaContext('connect'));

    expect(result).toEqual({ statusCode: 401, body: 'Unauthorized' });
    expect(await h.deps.store.allConnections()).toEqual([]);
    expect(h.fakes.welcome.requests).toEqual([]);
    expect(h.count('ws_gateway_connect_refused_total', { reason: `invalid_${source}_token` })).toBe(1);
  });

  it('answers 403 to an origin that is not allowed, before looking at the token', async () => {
    const socket = webSocket();

    const result = await h.connect(
      socket.connect({
        headers: { Origin: 'https://evil.example', Authorization: `Bearer ${tokenFor('7')}` },
      }),
      lambdaContext('connect'),
    );

    expect(result).toEqual({ statusCode: 403, body: 'Forbidden' });
    expect(await h.deps.store.allConnections()).toEqual([]);
    expect(h.count('ws_gateway_connect_refused_total', { reason: 'origin' })).toBe(1);
  });

  it.each([
    ['expired', () => tokens.hs256(claimsFor('7', { exp: nowSecs() - 3600 })), APP_ORIGIN, 'invalid'],
    ['valid but sent without an Origin', () => tokenFor('7'), undefined, 'origin'],
  ])(
    'opens the connection unbound when the session cookie is %s, and counts it',
    async (_what, token, origin, reason) => {
      const socket = webSocket();

      const result = await h.connect(
        socket.connect({ headers: { Origin: origin, Cookie: `auth_token=${token()}` } }),
        lambdaContext('connect'),
      );

      expect(result).toEqual({ statusCode: 200, body: '' });
      expect(await h.deps.store.allConnections()).toEqual([socket.connectionId]);
      expect(h.count('ws_gateway_connect_cookie_ignored_total', { reason })).toBe(1);
      const reply = await h.message(socket.message(credentialForm('7')), lambdaContext('default'));
      expect(replyOf(reply)).toMatchObject({ type: 'system.error' });
    },
  );

  it('still opens the connection when the welcome invocation cannot be triggered', async () => {
    h.fakes.welcome.fail(new Error('Lambda API unreachable'));
    const socket = webSocket();

    const result = await h.connect(
      socket.connect({ query: { token: tokenFor(newUserId()) } }),
      lambdaContext('connect'),
    );

    expect(result).toEqual({ statusCode: 200, body: '' });
    expect(await h.deps.store.allConnections()).toEqual([socket.connectionId]);
  });

  it('uses WS_MANAGEMENT_ENDPOINT for the welcome when it is configured (a custom domain)', async () => {
    h = createHarness({ WS_MANAGEMENT_ENDPOINT: 'https://ws.example.com' });
    const socket = webSocket();

    await h.connect(socket.connect(), lambdaContext('connect'));

    expect(h.fakes.welcome.requests).toEqual([
      { connectionId: socket.connectionId, endpoint: 'https://ws.example.com' },
    ]);
  });

  it('fails the invocation when Redis is down (API Gateway refuses the upgrade), logged with the request id', async () => {
    // Its own observability, not silenced, to read what the middy chain writes.
    const observability = createObservability();
    const connect = createConnectHandler({ deps: () => h.deps, observability });
    const written: string[] = [];
    const spies = [process.stdout, process.stderr].map((stream) =>
      jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      }),
    );
    h.fakes.store.faults.fail();
    const context = lambdaContext('connect');

    try {
      await expect(connect(webSocket().connect(), context)).rejects.toThrow('Connection is closed.');
    } finally {
      for (const spy of spies) spy.mockRestore();
    }

    const entries = written.flatMap((w) => w.split('\n')).filter((l) => l.trim() !== '');
    const failure = entries
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.message === 'invocation failed');
    expect(failure).toMatchObject({
      level: 'ERROR',
      function_name: 'ws-gateway-prod-connect',
      function_request_id: context.awsRequestId,
      err: { message: 'Connection is closed.' },
    });
    expect(h.fakes.welcome.requests).toEqual([]);
  });
});
