/**
 * `$connect` and `$default` against real Redis: what an ignored cookie, a refused origin, an
 * identity mismatch and a binary frame leave in Redis, in the log and in the metrics.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createTokenVerifier } from '../../lib/auth/verifier';
import { loadConfig } from '../../lib/config';
import { handleConnect } from '../../lib/gateway/connect';
import { handleMessage } from '../../lib/gateway/message';
import { createLogger } from '../../lib/logger';
import { createTestGateway, type TestGateway } from '../support/gateway-deps';
import { keysWithPrefix } from '../support/store';
import { claimsFor, createTokenKit, nowSecs } from '../support/tokens';

const SITE = 'https://games.example.com';
const prefix = `it:auth:${randomUUID()}:`;
const kit = createTokenKit();
const lines: Array<Record<string, unknown>> = [];
const logger = createLogger({ level: 'debug', write: (line) => lines.push(JSON.parse(line)) });
const config = loadConfig({
  REDIS_URL: process.env.REDIS_URL,
  KAFKA_BROKERS: process.env.KAFKA_BROKERS,
  REDIS_KEY_PREFIX: prefix,
  STAGE: 'prod',
  WS_ALLOWED_ORIGINS: SITE,
  AUTH_ALLOW_UNVERIFIED: 'false',
});
let gw: TestGateway;

beforeAll(() => {
  gw = createTestGateway(
    config,
    logger,
    createTokenVerifier({ publicKey: kit.publicKeyPem, secret: kit.secret }),
  );
});

afterAll(async () => {
  const keys = await keysWithPrefix(gw.redis, prefix);
  if (keys.length > 0) await gw.redis.del(...keys);
  await gw.publisher.disconnect();
  await gw.redis.quit();
});

beforeEach(() => {
  lines.length = 0;
});

const newId = () => randomBytes(10).toString('base64');
const connect = (connectionId: string, headers: Record<string, string>) =>
  handleConnect(gw.deps, { connectionId, request: { headers }, endpoint: 'http://127.0.0.1:1' });
const count = (name: string, labels?: Record<string, string>) =>
  gw.deps.metrics.counter(name, 'read by the test').get(labels);
const connHash = (id: string) => gw.redis.hgetall(`${prefix}gw:conn:${id}`);

describe('an ignored session cookie', () => {
  it.each([
    ['expired', () => kit.rs256(claimsFor(5, { exp: nowSecs() - 3600 })), 'ExpiredSignature'],
    [
      'signed by a key the gateway does not hold',
      () => kit.rs256(claimsFor(5), kit.foreignKey),
      'InvalidSignature',
    ],
  ])('(%s) opens the connection unbound, logged and counted', async (_what, token, reason) => {
    const id = newId();
    const before = count('ws_gateway_connect_cookie_ignored_total', { reason: 'invalid' });

    const result = await connect(id, { Origin: SITE, Cookie: `auth_token=${token()}` });

    expect(result).toEqual({ statusCode: 200, identity: null });
    expect((await connHash(id)).at).toEqual(expect.any(String));
    expect((await connHash(id)).buid).toBeUndefined();
    expect(count('ws_gateway_connect_cookie_ignored_total', { reason: 'invalid' })).toBe(before + 1);
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: 'session cookie ignored',
        reason: 'invalid',
        detail: reason,
        connectionId: id,
      }),
    );
  });

  it('from a client without Origin is counted as reason "origin"', async () => {
    const before = count('ws_gateway_connect_cookie_ignored_total', { reason: 'origin' });

    const result = await connect(newId(), { Cookie: `auth_token=${kit.rs256(claimsFor(5))}` });

    expect(result).toEqual({ statusCode: 200, identity: null });
    expect(count('ws_gateway_connect_cookie_ignored_total', { reason: 'origin' })).toBe(before + 1);
  });
});

describe('refused upgrades', () => {
  it('a foreign origin: 403, counted, nothing written to Redis', async () => {
    const id = newId();
    const before = count('ws_gateway_connect_refused_total', { reason: 'origin' });

    const result = await connect(id, {
      Origin: 'https://evil.example',
      Cookie: `auth_token=${kit.rs256(claimsFor(5))}`,
    });

    expect(result.statusCode).toBe(403);
    expect(count('ws_gateway_connect_refused_total', { reason: 'origin' })).toBe(before + 1);
    expect(await keysWithPrefix(gw.redis, `${prefix}gw:conn:${id}`)).toEqual([]);
  });

  it('an invalid Bearer token: 401, counted', async () => {
    const before = count('ws_gateway_connect_refused_total', { reason: 'invalid_bearer_token' });

    const result = await connect(newId(), { Authorization: 'Bearer not.a.jwt' });

    expect(result.statusCode).toBe(401);
    expect(count('ws_gateway_connect_refused_total', { reason: 'invalid_bearer_token' })).toBe(before + 1);
  });
});

describe('$default', () => {
  it('counts an identity mismatch and drops the binding', async () => {
    const id = newId();
    await connect(id, { Origin: SITE, Cookie: `auth_token=${kit.rs256(claimsFor(77))}` });
    expect((await connHash(id)).buid).toBe('77');
    const before = count('ws_gateway_auth_identity_mismatch_total');

    const reply = await handleMessage(gw.deps, {
      connectionId: id,
      body: JSON.stringify({ type: 'system.authenticate', user_id: '78', username: 'Guess' }),
      endpoint: 'http://127.0.0.1:1',
    });

    expect(JSON.parse(reply ?? 'null')).toEqual({
      type: 'system.error',
      code: 'MESSAGE_ERROR',
      message: 'Authentication failed: identity mismatch',
    });
    expect(count('ws_gateway_auth_identity_mismatch_total')).toBe(before + 1);
    expect((await connHash(id)).buid).toBeUndefined();
  });

  it('ignores a binary frame without touching Redis, counted', async () => {
    const id = newId();
    const before = count('ws_gateway_frames_ignored_total', { reason: 'binary' });

    const reply = await handleMessage(gw.deps, {
      connectionId: id,
      body: Buffer.from(JSON.stringify({ type: 'system.heartbeat' })),
      endpoint: 'http://127.0.0.1:1',
    });

    expect(reply).toBeUndefined();
    expect(count('ws_gateway_frames_ignored_total', { reason: 'binary' })).toBe(before + 1);
    expect(await keysWithPrefix(gw.redis, `${prefix}gw:conn:${id}`)).toEqual([]);
  });
});
