/**
 * Authentication and abuse end to end (issue 8: findings 1, 12, 13): serverless-offline running the
 * real handlers, real `ws` clients, the run's Redis and Kafka mock.
 *
 * One gateway configured as a deployment would be: verified identities only, RS256 + HS256 keys,
 * JWT_ISSUER / JWT_AUDIENCE, WS_ALLOWED_ORIGINS listing the site. It logs at debug level, its own
 * logger and serverless-offline's (SLS_LOG_LEVEL=debug), so that a token leaking into any log line is
 * caught by the secrets check.
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { silentLogger } from '../../lib/logger';
import { parseClientMessage } from '../../lib/protocol/client';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { hostileFrame } from '../support/hostile-frames';
import { type KafkaReader, startKafkaReader } from '../support/kafka';
import { type OfflineGateway, startOffline } from '../support/offline';
import { documentedErrors, isDocumentedError } from '../support/protocol-docs';
import { keysWithPrefix, tracesOf } from '../support/store';
import { claimsFor, createTokenKit, type JwtAttack, jwtAttacks } from '../support/tokens';
import { TestClient } from '../support/ws-client';

jest.setTimeout(120_000);

const SITE = 'https://games.example.com';
const ISSUER = 'https://auth.example.com';
const AUDIENCE = 'games-web';
const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20260123);
const FUZZ_FRAMES = 200;

const kit = createTokenKit();
const attacks = jwtAttacks(kit, { hasSecret: true, issuer: ISSUER, audience: AUDIENCE });
const attackCases = attacks.map((a) => [a.name, a] as const);

const NOT_AUTHENTICATED = {
  type: 'system.error',
  code: 'MESSAGE_ERROR',
  message: 'Connection not authenticated',
};
const VERIFIED_REQUIRED = {
  type: 'system.error',
  code: 'MESSAGE_ERROR',
  message: 'Authentication failed: a verified token is required',
};
const IDENTITY_MISMATCH = {
  type: 'system.error',
  code: 'MESSAGE_ERROR',
  message: 'Authentication failed: identity mismatch',
};

let keyDir: string;
let gw: OfflineGateway;
let redis: RedisClient;
let kafka: KafkaReader;
let kafkaStarting: Promise<KafkaReader> | undefined;

beforeAll(async () => {
  keyDir = mkdtempSync(path.join(os.tmpdir(), 'ws-gateway-e2e-auth-'));
  const publicKeyPath = path.join(keyDir, 'jwt_public.pem');
  writeFileSync(publicKeyPath, kit.publicKeyPem);
  redis = createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
  kafkaStarting = startKafkaReader({ topics: ['games.commands', 'system.events'] });
  gw = await startOffline({
    JWT_PUBLIC_KEY_PATH: publicKeyPath,
    JWT_SECRET: kit.secret,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    WS_ALLOWED_ORIGINS: `${SITE},https://www.example.com`,
    AUTH_ALLOW_UNVERIFIED: 'false',
    // The property run sends its frames back to back; the rate limit has its own tests.
    WS_RATE_LIMIT_BURST: '100000',
    LOG_LEVEL: 'debug',
    SLS_LOG_LEVEL: 'debug',
    // An operator's switch that would log every Lambda event (query, headers, frames): must not apply.
    POWERTOOLS_LOGGER_LOG_EVENT: 'true',
  });
  kafka = await kafkaStarting;
}, 180_000);

afterAll(async () => {
  const reader = await kafkaStarting?.catch(() => undefined);
  await Promise.allSettled([gw?.stop(), reader?.stop()]);
  await redis?.quit();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});

interface Upgrade {
  readonly query?: string;
  readonly headers?: Record<string, string>;
}

async function open(how: Upgrade = {}): Promise<TestClient> {
  const client = await TestClient.open(
    `${gw.wsUrl}/${how.query ? `?token=${encodeURIComponent(how.query)}` : ''}`,
    {
      headers: how.headers ?? {},
    },
  );
  clients.push(client);
  return client;
}

/** The HTTP status of a refused upgrade, or 101 when it opened. */
async function upgradeStatus(how: Upgrade): Promise<number> {
  try {
    const client = await TestClient.connect(
      `${gw.wsUrl}/${how.query ? `?token=${encodeURIComponent(how.query)}` : ''}`,
      { headers: how.headers ?? {} },
    );
    clients.push(client);
    return 101;
  } catch (err) {
    const m = /HTTP (\d+)/.exec(String(err));
    if (!m) throw err;
    return Number(m[1]);
  }
}

const prefix = () => gw.env.REDIS_KEY_PREFIX!;
const connectionIdOf = (client: TestClient) => String(client.frames[0]?.connection_id);
const boundUserOf = async (client: TestClient) =>
  (await redis.hget(`${prefix()}gw:conn:${connectionIdOf(client)}`, 'buid')) ?? null;
const newUserId = () => randomInt(1_000_000, 2 ** 47);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isHeartbeat = (frame: string) => {
  try {
    return Buffer.byteLength(frame) <= 65536 && parseClientMessage(frame).type === 'system.heartbeat';
  } catch {
    return false;
  }
};
const goodClaims = (sub: number, extra = {}) => claimsFor(sub, { iss: ISSUER, aud: AUDIENCE, ...extra });
const cookieFrom = (origin: string | undefined, token: string): Upgrade => ({
  headers: {
    Cookie: `theme=dark; auth_token=${encodeURIComponent(token)}`,
    ...(origin ? { Origin: origin } : {}),
  },
});

// ---------------------------------------------------------------------------------------------------
// JWT attacks: at $connect (query, Bearer, cookie) and in system.authenticate
// ---------------------------------------------------------------------------------------------------

describe(`JWT attacks (${attacks.length} tokens) at $connect`, () => {
  it.each(attackCases)('?token= with %s → 401', async (_name, attack: JwtAttack) => {
    expect(await upgradeStatus({ query: attack.token() })).toBe(401);
  });

  it.each(attackCases)('Authorization: Bearer with %s → 401', async (_name, attack: JwtAttack) => {
    expect(await upgradeStatus({ headers: { Authorization: `Bearer ${attack.token()}` } })).toBe(401);
  });

  it.each(attackCases)(
    'auth_token cookie with %s from the site → opens unbound, the credential form is still refused',
    async (_name, attack: JwtAttack) => {
      const client = await open(cookieFrom(SITE, attack.token()));

      expect(await boundUserOf(client)).toBeNull();
      expect(
        await client.request(
          { type: 'system.authenticate', user_id: '424242', username: 'Victim' },
          'system.error',
        ),
      ).toEqual(VERIFIED_REQUIRED);
    },
  );

  it('control: the same transports bind with a valid token', async () => {
    for (const how of [
      (t: string): Upgrade => ({ query: t }),
      (t: string): Upgrade => ({ headers: { Authorization: `Bearer ${t}` } }),
      (t: string) => cookieFrom(SITE, t),
    ]) {
      const userId = newUserId();
      const client = await open(how(kit.rs256(goodClaims(userId))));
      expect(await boundUserOf(client)).toBe(String(userId));
    }
  });
});

describe(`JWT attacks (${attacks.length} tokens) in system.authenticate`, () => {
  it('answers every one with "Authentication failed: Invalid token: <reason>" and stays anonymous', async () => {
    const client = await open();
    const answers: Array<[string, unknown]> = [];

    for (const attack of attacks) {
      const reply = await client.request(
        { type: 'system.authenticate', token: attack.token() },
        'system.error',
      );
      answers.push([attack.name, reply.message]);
    }

    expect(answers).toEqual(
      attacks.map((a) => [a.name, `Authentication failed: Invalid token: ${a.reason}`]),
    );
    expect(await client.request({ type: 'system.sync_state' }, 'system.error')).toEqual(NOT_AUTHENTICATED);
    expect(await redis.hget(`${prefix()}gw:conn:${connectionIdOf(client)}`, 'uid')).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------------
// Origins and cookie binding
// ---------------------------------------------------------------------------------------------------

describe('browser origins (WS_ALLOWED_ORIGINS)', () => {
  it.each([
    ['a foreign site', 'https://evil.example'],
    ['a sibling subdomain (same site)', 'https://evil.example.com'],
    ['the site over http', 'http://games.example.com'],
    ['a sandboxed frame', 'null'],
  ])('refuses %s with 403, with or without a valid session cookie', async (_what, origin) => {
    expect(await upgradeStatus({ headers: { Origin: origin } })).toBe(403);
    expect(await upgradeStatus(cookieFrom(origin, kit.rs256(goodClaims(newUserId()))))).toBe(403);
  });

  it('opens for a listed origin and for clients that send no Origin', async () => {
    expect(await upgradeStatus({ headers: { Origin: SITE } })).toBe(101);
    expect(await upgradeStatus({ headers: { Origin: 'https://www.example.com' } })).toBe(101);
    expect(await upgradeStatus({})).toBe(101);
  });

  it('binds the session cookie only from a listed origin: without an Origin it opens unbound', async () => {
    const userId = newUserId();
    const token = kit.rs256(goodClaims(userId));

    const fromSite = await open(cookieFrom(SITE, token));
    const noOrigin = await open(cookieFrom(undefined, token));

    expect(await boundUserOf(fromSite)).toBe(String(userId));
    expect(await boundUserOf(noOrigin)).toBeNull();
    expect(
      await noOrigin.request({ type: 'system.authenticate', user_id: userId, username: 'X' }, 'system.error'),
    ).toEqual(VERIFIED_REQUIRED);
  });
});

// ---------------------------------------------------------------------------------------------------
// Impersonation
// ---------------------------------------------------------------------------------------------------

describe('impersonation', () => {
  it('takes username and roles from the token on a bound connection, not from the client', async () => {
    const userId = newUserId();
    const client = await open(
      cookieFrom(SITE, kit.rs256(goodClaims(userId, { username: 'Rita', roles: ['user'] }))),
    );

    const reply = await client.request(
      { type: 'system.authenticate', user_id: String(userId), username: 'Administrator', roles: ['admin'] },
      'system.authenticated',
    );

    expect(reply).toMatchObject({ user_id: String(userId), username: 'Rita', roles: ['user'] });
    const socket = JSON.parse((await redis.get(`${prefix()}socket:${connectionIdOf(client)}`)) ?? '{}');
    expect(socket).toMatchObject({ user_id: String(userId), username: 'Rita', roles: ['user'] });
  });

  it("uses the client's username, clipped to 64 characters, when the token has none", async () => {
    const userId = newUserId();
    const client = await open(cookieFrom(SITE, kit.hs256(goodClaims(userId))));

    const reply = await client.request(
      { type: 'system.authenticate', user_id: userId, username: '😀'.repeat(100) },
      'system.authenticated',
    );

    expect(reply.username).toBe('😀'.repeat(64));
  });

  it('refuses the credential form for another user, and the binding is gone after that one guess', async () => {
    const victim = newUserId();
    const client = await open(cookieFrom(SITE, kit.rs256(goodClaims(victim))));

    const guess = await client.request(
      { type: 'system.authenticate', user_id: String(victim + 1), username: 'Guess' },
      'system.error',
    );
    const right = await client.request(
      { type: 'system.authenticate', user_id: String(victim), username: 'Guess' },
      'system.error',
    );

    expect(guess).toEqual(IDENTITY_MISMATCH);
    expect(right).toEqual(VERIFIED_REQUIRED);
    expect(await boundUserOf(client)).toBeNull();
    expect(await client.request({ type: 'system.sync_state' }, 'system.error')).toEqual(NOT_AUTHENTICATED);
  });

  it('never lets client-chosen actor fields reach the Kafka envelope', async () => {
    const userId = newUserId();
    const client = await open();
    await client.request(
      {
        type: 'system.authenticate',
        token: kit.rs256(goodClaims(userId, { username: 'Rita', roles: ['user'] })),
      },
      'system.authenticated',
    );
    const requestId = `spoof-${userId}`;

    client.send({
      type: 'games.command.ready',
      room_id: 'room-1',
      request_id: requestId,
      actor: { user_id: '1', username: 'Admin', roles: ['admin'] },
      user_id: '1',
      sender_id: 1,
      username: 'Admin',
      roles: ['admin'],
    });

    const record = await kafka.waitFor((r) => r.value?.correlation_id === requestId, 20_000);
    expect(record.value.actor).toEqual({ user_id: String(userId), username: 'Rita', roles: ['user'] });
    expect(JSON.stringify(record.value)).not.toContain('Admin');
  });
});

// ---------------------------------------------------------------------------------------------------
// Binary frames
// ---------------------------------------------------------------------------------------------------

describe('binary frames', () => {
  it('are ignored, never parsed as text: no reply, no authentication, the connection keeps working', async () => {
    const client = await open();
    const token = kit.rs256(goodClaims(newUserId()));

    client.socket.send(Buffer.from(JSON.stringify({ type: 'system.heartbeat' })), { binary: true });
    client.socket.send(Buffer.from(JSON.stringify({ type: 'system.authenticate', token })), { binary: true });
    client.socket.send(Buffer.alloc(0), { binary: true });
    client.socket.send(Buffer.from([0xff, 0xfe, 0x00, 0x7b]), { binary: true });
    const arrived = await client.quiet(1500);

    expect(arrived).toEqual([]);
    expect(await client.request({ type: 'system.sync_state' }, 'system.error')).toEqual(NOT_AUTHENTICATED);
    expect(await client.request({ type: 'system.heartbeat' }, 'system.heartbeat_ack')).toMatchObject({
      type: 'system.heartbeat_ack',
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Secrets (before the property run, whose large frames would crowd the captured output)
// ---------------------------------------------------------------------------------------------------

describe('secrets', () => {
  it('never appear in the output of serverless-offline or the handlers, even at debug level', () => {
    const output = gw.output();
    // Proof that the whole output since start-up was captured, and at debug level.
    expect(output).toContain('$connect');
    expect(output).toMatch(/"level":"debug"/i);
    // Distinct tokens: identical claims signed within the same second are one token, so the count
    // depends on the machine's timing (45 to 100+ seen). The floor of 30 makes sure the tests
    // above did send their tokens through the gateway before this one looks for them.
    expect(kit.issued.size).toBeGreaterThanOrEqual(30);

    const leaks: string[] = [];
    const context = (at: number) => output.slice(Math.max(0, at - 60), at).replace(/\s+/g, ' ');
    if (output.includes(kit.secret)) leaks.push('the HS256 secret');
    for (const token of kit.issued) {
      const signature = token.split('.')[2] ?? '';
      const parts = [token, encodeURIComponent(token), ...(signature.length > 10 ? [signature] : [])];
      const at = parts.map((part) => output.indexOf(part)).find((i) => i >= 0);
      if (at !== undefined) leaks.push(`…${context(at)} ⟨token⟩`);
    }
    expect(leaks).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Hostile frames, property-based, through serverless-offline
// ---------------------------------------------------------------------------------------------------

describe('hostile frames (fast-check) through serverless-offline', () => {
  it(`answers each of ${FUZZ_FRAMES} frames with nothing or a documented error, keeps answering, and leaves Redis consistent (seed ${FUZZ_SEED})`, async () => {
    const errors = documentedErrors();
    const frames = fc.sample(hostileFrame({ maxHugeString: 70_000, maxDepth: 3_000 }), {
      seed: FUZZ_SEED,
      numRuns: FUZZ_FRAMES,
    });
    const userId = newUserId();
    const client = await open();
    const id = connectionIdOf(client);
    await client.request(
      { type: 'system.authenticate', token: kit.rs256(goodClaims(userId, { username: 'Fuzz' })) },
      'system.authenticated',
    );
    const tally = new Map<string, number>();
    const undocumented: unknown[] = [];

    for (const frame of frames) {
      const from = client.frames.length;
      client.send(frame);
      // The gateway still answers after every frame: a heartbeat marks the end of its replies.
      await client.request(
        { type: 'system.heartbeat', request_id: 'marker' },
        'system.heartbeat_ack',
        20_000,
      );
      for (const reply of client.frames.slice(from)) {
        const key = reply.type === 'system.error' ? `${reply.code}: ${reply.message}` : reply.type;
        tally.set(key, (tally.get(key) ?? 0) + 1);
        const allowed =
          reply.type === 'system.heartbeat_ack' ||
          reply.type === 'system.authenticated' ||
          reply.type === 'system.state_snapshot' ||
          isDocumentedError(errors, reply);
        if (!allowed) undocumented.push({ frame: frame.slice(0, 200), reply });
      }
    }
    // Frames still in flight would run after the close below (and re-create what it removed): wait
    // until every heartbeat among them has been answered, then for silence.
    const heartbeats = FUZZ_FRAMES + frames.filter(isHeartbeat).length;
    const acks = () => client.frames.filter((f) => f.type === 'system.heartbeat_ack').length;
    for (let waited = 0; acks() < heartbeats && waited < 30_000; waited += 100) await sleep(100);
    await client.quiet(1000);
    console.log(
      `hostile frames: ${frames.length} sent; replies ${JSON.stringify(Object.fromEntries(tally))}`,
    );

    expect(undocumented).toEqual([]);
    expect(client.closed).toBe(false);
    expect(tally.get('MESSAGE_ERROR: Internal error')).toBeUndefined();
    expect(tally.get('INVALID_FORMAT: Invalid message format')).toBeGreaterThan(FUZZ_FRAMES / 10);

    // Redis: still this user's connection, and every room / lobby index agrees with its sets.
    const p = prefix();
    const conn = await redis.hgetall(`${p}gw:conn:${id}`);
    expect(conn.uid).toBe(String(userId));
    expect(await redis.smembers(`${p}user:sockets:${userId}`)).toEqual([id]);
    expect(await redis.sismember(`${p}presence:online`, String(userId))).toBe(1);
    for (const field of Object.keys(conn).filter((f) => /^[rl]:/.test(f))) {
      const set = field.startsWith('r:')
        ? `${p}room:sockets:${field.slice(2)}`
        : `${p}lobby:sockets:${field.slice(2)}`;
      expect([field, await redis.sismember(set, id)]).toEqual([field, 1]);
    }
    for (const key of await keysWithPrefix(redis, `${p}lobby:sockets:`)) {
      if (await redis.sismember(key, id))
        expect(conn[`l:${key.slice(`${p}lobby:sockets:`.length)}`]).toBe('1');
    }

    // And nothing of the connection or its user is left once it closes.
    await client.close();
    await kafka.waitFor(
      (r) => r.value?.event_type === 'system.event.user_disconnected' && r.value.payload.connection_id === id,
      30_000,
    );
    // user:presence:{uid} is the heartbeats' 120 s status record (docs/architecture.md): it expires.
    const presenceKey = `${p}user:presence:${userId}`;
    const ttl = await redis.ttl(presenceKey);
    expect(ttl === -2 || (ttl > 0 && ttl <= 120)).toBe(true);
    expect((await tracesOf(redis, p, [id, String(userId)])).filter((k) => k !== presenceKey)).toEqual([]);
  });
});
