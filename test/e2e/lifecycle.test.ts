/**
 * The connection lifecycle end to end: serverless-offline running the real handlers, real `ws`
 * clients, the run's Redis (read directly to check the state the gateway leaves behind).
 *
 * Two gateways, because some settings are per deployment:
 * - `open`   — local defaults (unverified credentials allowed), RS256 and HS256 keys, 1 KiB frame limit;
 * - `strict` — verified identities only, RS256 key only, a tiny rate limit (burst 5, 2 per second).
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../lib/logger';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { type KafkaReader, startKafkaReader } from '../support/kafka';
import { type OfflineGateway, startOffline } from '../support/offline';
import { tracesOf as storeTracesOf } from '../support/store';
import { claimsFor, createTokenKit, nowSecs } from '../support/tokens';
import { TestClient } from '../support/ws-client';

jest.setTimeout(60_000);

const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const MAX_MESSAGE_SIZE = 1024;
const RATE_BURST = 5;
const RATE_PER_SEC = 2;

const NOT_AUTHENTICATED = {
  type: 'system.error',
  code: 'MESSAGE_ERROR',
  message: 'Connection not authenticated',
};
const INVALID_FORMAT = { type: 'system.error', code: 'INVALID_FORMAT', message: 'Invalid message format' };
const TOO_LARGE = { type: 'system.error', code: 'MESSAGE_TOO_LARGE', message: 'Message too large' };
const RATE_LIMITED = { type: 'system.error', code: 'RATE_LIMIT', message: 'Rate limit exceeded' };
const IDENTITY_MISMATCH = {
  type: 'system.error',
  code: 'MESSAGE_ERROR',
  message: 'Authentication failed: identity mismatch',
};

// ---------------------------------------------------------------------------------------------------
// Tokens (test/support/tokens.ts; the full table of JWT attacks runs in test/e2e/auth.test.ts)
// ---------------------------------------------------------------------------------------------------

const kit = createTokenKit();
const { rs256, hs256, unsigned, publicKeyPem } = kit;
const HS_SECRET = kit.secret;
/** Every token handed to a gateway, to check none of them ever shows up in its output. */
const issuedTokens = kit.issued;

/** Tokens that must never verify, each with what is wrong with it. */
const BAD_TOKENS: ReadonlyArray<readonly [string, () => string]> = [
  ['an expired token (past the 60 s leeway)', () => rs256(claimsFor(101, { exp: nowSecs() - 3600 }))],
  ['a token without exp', () => hs256({ sub: 102, iat: nowSecs() })],
  ['an RS256 token signed by another key', () => rs256(claimsFor(103), kit.foreignKey)],
  ['an HS256 token signed with another secret', () => hs256(claimsFor(104), 'not-the-secret')],
  ['an unsigned token (alg none)', () => unsigned(claimsFor(105))],
  ['an HS256 token signed with the RSA public key as its secret', () => hs256(claimsFor(106), publicKeyPem)],
  ['garbage', () => 'not.a.jwt'],
];

// ---------------------------------------------------------------------------------------------------
// Gateways and Redis
// ---------------------------------------------------------------------------------------------------

let keyDir: string;
let open: OfflineGateway;
let strict: OfflineGateway;
let redis: RedisClient;
/** What the gateways publish to system.events (the departure marks the end of a cleanup). */
let events: KafkaReader;
let eventsStarting: Promise<KafkaReader> | undefined;

beforeAll(async () => {
  keyDir = mkdtempSync(path.join(os.tmpdir(), 'ws-gateway-e2e-keys-'));
  const publicKeyPath = path.join(keyDir, 'jwt_public.pem');
  writeFileSync(publicKeyPath, publicKeyPem);
  redis = createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
  // Joining the group takes a few seconds: do it while the gateways start.
  eventsStarting = startKafkaReader({ topics: ['system.events'] });
  // One after the other: both build into the same .esbuild directory.
  open = await startOffline({
    JWT_PUBLIC_KEY_PATH: publicKeyPath,
    JWT_SECRET: HS_SECRET,
    WS_MAX_MESSAGE_SIZE: String(MAX_MESSAGE_SIZE),
    LOG_LEVEL: 'debug',
  });
  strict = await startOffline({
    JWT_PUBLIC_KEY_PATH: publicKeyPath,
    JWT_SECRET: '',
    AUTH_ALLOW_UNVERIFIED: 'false',
    WS_RATE_LIMIT_BURST: String(RATE_BURST),
    WS_RATE_LIMIT_PER_SEC: String(RATE_PER_SEC),
    LOG_LEVEL: 'debug',
  });
  events = await eventsStarting;
}, 120_000);

afterAll(async () => {
  const reader = await eventsStarting?.catch(() => undefined);
  await Promise.allSettled([open?.stop(), strict?.stop(), reader?.stop()]);
  await redis?.quit();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});

/** Opens a client and waits for its welcome; closed after the test. */
async function connect(gw: OfflineGateway): Promise<TestClient> {
  const client = await TestClient.open(gw.wsUrl);
  clients.push(client);
  return client;
}

const prefixOf = (gw: OfflineGateway) => gw.env.REDIS_KEY_PREFIX!;
const newUserId = () => String(randomInt(1_000_000, 2 ** 47));
const connectionIdOf = (client: TestClient) => String(client.frames[0]?.connection_id);

async function authenticate(client: TestClient, userId: string, username = 'Tester') {
  return client.request({ type: 'system.authenticate', user_id: userId, username }, 'system.authenticated');
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function getJson(key: string): Promise<Record<string, unknown> | null> {
  const raw = await redis.get(key);
  return raw === null ? null : (JSON.parse(raw) as Record<string, unknown>);
}

/** Every key of the gateway whose name contains one of `ids`, and every set that has one as a member. */
const tracesOf = (gw: OfflineGateway, ids: readonly string[]) => storeTracesOf(redis, prefixOf(gw), ids);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

// ---------------------------------------------------------------------------------------------------
// Welcome
// ---------------------------------------------------------------------------------------------------

describe('system.welcome', () => {
  it('is the first frame of a connection, with its connection id and an RFC 3339 timestamp', async () => {
    const client = await connect(open);

    expect(client.frames[0]).toEqual({
      type: 'system.welcome',
      connection_id: expect.any(String),
      timestamp: expect.stringMatching(RFC3339_UTC),
    });
    expect(connectionIdOf(client)).not.toBe('');
  });

  it('comes first even when the client authenticates the moment the socket opens', async () => {
    const raced = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const client = await TestClient.connect(open.wsUrl);
        clients.push(client);
        client.send({ type: 'system.authenticate', user_id: newUserId(), username: `Eager${i}` });
        await client.next('system.authenticated');
        return client;
      }),
    );
    await sleep(300);

    for (const client of raced) {
      expect(client.frames.map((f) => f.type)).toEqual(['system.welcome', 'system.authenticated']);
    }
  });

  it('reaches every one of 50 new connections (latency logged, not asserted)', async () => {
    const latencies: number[] = [];
    const ids = new Set<string>();
    for (let batch = 0; batch < 5; batch++) {
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          const client = await TestClient.connect(open.wsUrl);
          clients.push(client);
          const opened = performance.now();
          const welcome = await client.next('system.welcome');
          latencies.push(performance.now() - opened);
          ids.add(String(welcome.connection_id));
        }),
      );
    }

    latencies.sort((a, b) => a - b);
    console.log(
      `welcome latency after the upgrade over ${latencies.length} connections: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`,
    );
    expect(latencies).toHaveLength(50);
    expect(ids.size).toBe(50);
  });
});

// ---------------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------------

describe('system.authenticate with a token', () => {
  it.each([
    [
      'RS256',
      'a string sub',
      () => rs256(claimsFor(7001, { username: 'Rita', roles: ['user', 'admin'] })),
      '7001',
    ],
    [
      'RS256',
      'an integer sub',
      () => rs256(claimsFor(4242, { username: 'Rita', roles: ['user', 'admin'] })),
      '4242',
    ],
    [
      'HS256',
      'a string sub',
      () => hs256(claimsFor(7002, { username: 'Rita', roles: ['user', 'admin'] })),
      '7002',
    ],
    [
      'HS256',
      'an integer sub',
      () => hs256(claimsFor(4343, { username: 'Rita', roles: ['user', 'admin'] })),
      '4343',
    ],
  ])('accepts %s with %s', async (_alg, _sub, token, userId) => {
    const client = await connect(open);

    const reply = await client.request(
      { type: 'system.authenticate', token: token() },
      'system.authenticated',
    );

    expect(reply).toEqual({
      type: 'system.authenticated',
      user_id: userId,
      username: 'Rita',
      roles: ['user', 'admin'],
      timestamp: expect.stringMatching(RFC3339_UTC),
    });
    expect(await getJson(`${prefixOf(open)}socket:${connectionIdOf(client)}`)).toMatchObject({
      user_id: userId,
    });
  });

  it('defaults username to "unknown" and roles to [] when the claims have none', async () => {
    const client = await connect(open);

    const reply = await client.request(
      { type: 'system.authenticate', token: rs256(claimsFor(7003)) },
      'system.authenticated',
    );

    expect(reply).toMatchObject({ user_id: '7003', username: 'unknown', roles: [] });
  });

  it('accepts a token that expired within the 60 s leeway', async () => {
    const client = await connect(open);
    const token = hs256(claimsFor(7004, { exp: nowSecs() - 20 }));

    const reply = await client.request({ type: 'system.authenticate', token }, 'system.authenticated');

    expect(reply).toMatchObject({ user_id: '7004' });
  });

  it.each(BAD_TOKENS)('rejects %s with "Authentication failed: Invalid token…"', async (_what, token) => {
    const client = await connect(open);

    const reply = await client.request({ type: 'system.authenticate', token: token() }, 'system.error');

    expect(reply).toMatchObject({ code: 'MESSAGE_ERROR' });
    expect(String(reply.message)).toMatch(/^Authentication failed: Invalid token/);
    expect(await client.request({ type: 'system.sync_state' }, 'system.error')).toEqual(NOT_AUTHENTICATED);
  });

  it('rejects an HS256 token signed with the public key on a gateway that only has the RSA key', async () => {
    const client = await connect(strict);

    const reply = await client.request(
      { type: 'system.authenticate', token: hs256(claimsFor(106), publicKeyPem) },
      'system.error',
    );

    expect(String(reply.message)).toMatch(/^Authentication failed: Invalid token/);
  });

  it('answers an empty token with "Connection not authenticated"', async () => {
    const client = await connect(open);

    expect(await client.request({ type: 'system.authenticate', token: '' }, 'system.error')).toEqual(
      NOT_AUTHENTICATED,
    );
  });
});

describe('tokens at connect time', () => {
  /** How a token travels with the upgrade request: in the URL (query) or in headers. */
  interface Presented {
    readonly url?: string;
    readonly headers?: Record<string, string>;
  }
  const transports: ReadonlyArray<readonly [string, (token: string) => Presented]> = [
    ['the ?token= query parameter', (token) => ({ url: `?token=${encodeURIComponent(token)}` })],
    ['an Authorization: Bearer header', (token) => ({ headers: { Authorization: `Bearer ${token}` } })],
    ['the auth_token cookie', (token) => ({ headers: { Cookie: `theme=dark; auth_token=${token}` } })],
  ];
  const [byQuery, byHeader] = [transports[0]![1], transports[1]![1]];

  async function connectWith(gw: OfflineGateway, how: Presented): Promise<TestClient> {
    const client = await TestClient.open(`${gw.wsUrl}/${how.url ?? ''}`, { headers: how.headers ?? {} });
    clients.push(client);
    return client;
  }

  it.each(transports)(
    'binds the connection through %s: the same user may then use the credential form, with the token roles',
    async (_how, transport) => {
      const userId = newUserId();
      const client = await connectWith(
        strict,
        transport(rs256(claimsFor(userId, { roles: ['user', 'admin'] }))),
      );

      const reply = await client.request(
        { type: 'system.authenticate', user_id: userId, username: 'Bound' },
        'system.authenticated',
      );

      expect(reply).toMatchObject({ user_id: userId, username: 'Bound', roles: ['user', 'admin'] });
    },
  );

  it('matches an integer credential user_id against an integer sub', async () => {
    const userId = randomInt(1_000_000, 2 ** 47);
    const client = await connectWith(strict, byQuery(rs256(claimsFor(userId))));

    const reply = await client.request(
      { type: 'system.authenticate', user_id: userId, username: 'Num' },
      'system.authenticated',
    );

    expect(reply).toMatchObject({ user_id: String(userId) });
  });

  it.each([
    ['a gateway that requires verified identities', () => strict],
    ['a gateway that allows unverified credentials', () => open],
  ])('refuses the credential form for another user on a bound connection (%s)', async (_what, gw) => {
    const client = await connectWith(gw(), byHeader(rs256(claimsFor(newUserId()))));

    const reply = await client.request(
      { type: 'system.authenticate', user_id: newUserId(), username: 'Impostor' },
      'system.error',
    );

    expect(reply).toEqual(IDENTITY_MISMATCH);
  });

  it('does not authenticate a bound connection by itself', async () => {
    const client = await connectWith(strict, byQuery(rs256(claimsFor(newUserId()))));

    expect(await client.request({ type: 'system.sync_state' }, 'system.error')).toEqual(NOT_AUTHENTICATED);
  });

  it.each(BAD_TOKENS)('refuses the upgrade with HTTP 401 for %s in the query', async (_what, token) => {
    await expect(TestClient.connect(`${open.wsUrl}/?token=${encodeURIComponent(token())}`)).rejects.toThrow(
      'HTTP 401',
    );
  });

  it('refuses the upgrade with HTTP 401 for an expired token in an Authorization: Bearer header', async () => {
    const how = byHeader(rs256(claimsFor(101, { exp: nowSecs() - 3600 })));

    await expect(TestClient.connect(open.wsUrl, { headers: how.headers })).rejects.toThrow('HTTP 401');
  });

  // docs/decisions.md D2: browsers send the cookie on every upgrade, so a bad one must never lock a page out.
  it.each([
    ...BAD_TOKENS.map(([what, token]) => [what, () => encodeURIComponent(token())] as const),
    ['a value that is not even valid percent-encoding', () => '%E0%A4%A'] as const,
  ])(
    'opens the connection unbound for an auth_token cookie with %s, verified identities required or not',
    async (_what, value) => {
      for (const gw of [open, strict]) {
        const client = await connectWith(gw, { headers: { Cookie: `theme=dark; auth_token=${value()}` } });
        const fields = await redis.hgetall(`${prefixOf(gw)}gw:conn:${connectionIdOf(client)}`);

        expect(fields.at).toEqual(expect.any(String));
        expect(fields.buid).toBeUndefined();
        expect(await client.request({ type: 'system.heartbeat' }, 'system.heartbeat_ack')).toMatchObject({
          type: 'system.heartbeat_ack',
        });
      }
    },
  );

  it('opens anonymously when no token is presented at all', async () => {
    const client = await connectWith(open, { headers: { Authorization: 'Basic dXNlcjpwYXNz' } });

    expect(await client.request({ type: 'system.sync_state' }, 'system.error')).toEqual(NOT_AUTHENTICATED);
  });
});

describe('system.authenticate with credentials (user_id + username)', () => {
  it('is accepted with roles ["user"] where unverified credentials are allowed', async () => {
    const client = await connect(open);
    const userId = newUserId();

    const reply = await authenticate(client, userId, 'John');

    expect(reply).toEqual({
      type: 'system.authenticated',
      user_id: userId,
      username: 'John',
      roles: ['user'],
      timestamp: expect.stringMatching(RFC3339_UTC),
    });
  });

  it('is refused on an unbound connection where verified identities are required', async () => {
    const client = await connect(strict);

    const reply = await client.request(
      { type: 'system.authenticate', user_id: newUserId(), username: 'John' },
      'system.error',
    );

    expect(reply).toEqual({
      type: 'system.error',
      code: 'MESSAGE_ERROR',
      message: 'Authentication failed: a verified token is required',
    });
    expect(await client.request({ type: 'system.sync_state' }, 'system.error')).toEqual(NOT_AUTHENTICATED);
  });

  it('still accepts a token where verified identities are required', async () => {
    const client = await connect(strict);
    const userId = newUserId();

    const reply = await client.request(
      { type: 'system.authenticate', token: rs256(claimsFor(userId)) },
      'system.authenticated',
    );

    expect(reply).toMatchObject({ user_id: userId });
  });

  it('moves the connection to the new user when it re-authenticates as someone else', async () => {
    const client = await connect(open);
    const id = connectionIdOf(client);
    const [first, second] = [newUserId(), newUserId()];
    const p = prefixOf(open);
    await authenticate(client, first, 'First');

    await authenticate(client, second, 'Second');

    expect(await redis.sismember(`${p}user:sockets:${first}`, id)).toBe(0);
    expect(await redis.smembers(`${p}user:sockets:${second}`)).toEqual([id]);
    expect(await redis.sismember(`${p}presence:online`, first)).toBe(0);
    expect(await redis.sismember(`${p}presence:online`, second)).toBe(1);
    expect(await getJson(`${p}socket:${id}`)).toMatchObject({ user_id: second, username: 'Second' });
  });
});

// ---------------------------------------------------------------------------------------------------
// Heartbeat, sync_state, frames
// ---------------------------------------------------------------------------------------------------

describe('system.heartbeat', () => {
  it('is acknowledged on an anonymous connection', async () => {
    const client = await connect(open);

    const ack = await client.request({ type: 'system.heartbeat' }, 'system.heartbeat_ack');

    expect(ack).toEqual({ type: 'system.heartbeat_ack', timestamp: expect.stringMatching(RFC3339_UTC) });
  });

  it('refreshes socket:{id}.last_seen and the TTLs of socket:{id} and user:presence:{uid}', async () => {
    const client = await connect(open);
    const id = connectionIdOf(client);
    const userId = newUserId();
    const p = prefixOf(open);
    await authenticate(client, userId);
    // The first heartbeat after authenticating refreshes; later ones at most once per
    // WS_HEARTBEAT_REFRESH_SECS (test/integration/session-store.test.ts).
    const before = await getJson(`${p}socket:${id}`);
    await redis.expire(`${p}socket:${id}`, 30);
    await redis.expire(`${p}user:presence:${userId}`, 5);
    await sleep(20);

    await client.request({ type: 'system.heartbeat' }, 'system.heartbeat_ack');

    const after = await getJson(`${p}socket:${id}`);
    expect(after?.connected_at).toBe(before?.connected_at);
    expect(String(after?.last_seen) > String(before?.last_seen)).toBe(true);
    expect(await getJson(`${p}user:presence:${userId}`)).toEqual({
      status: 'online',
      last_seen: after?.last_seen,
      current_room: null,
      current_game: null,
    });
    expect(await redis.ttl(`${p}socket:${id}`)).toBeGreaterThan(86000);
    expect(await redis.ttl(`${p}user:presence:${userId}`)).toBeGreaterThan(100);
  });
});

describe('system.sync_state', () => {
  it('is refused before authentication and answered with a state snapshot after', async () => {
    const client = await connect(open);

    const before = await client.request({ type: 'system.sync_state' }, 'system.error');
    await authenticate(client, newUserId());
    const after = await client.request({ type: 'system.sync_state' }, 'system.state_snapshot');

    expect(before).toEqual(NOT_AUTHENTICATED);
    expect(after).toEqual({
      type: 'system.state_snapshot',
      active_rooms: [],
      game_states: {},
      unread_messages: 0,
    });
  });
});

describe('frame checks', () => {
  const frameOfBytes = (bytes: number) => {
    const base = JSON.stringify({ type: 'system.heartbeat', pad: '' });
    return JSON.stringify({ type: 'system.heartbeat', pad: 'x'.repeat(bytes - Buffer.byteLength(base)) });
  };

  it('accepts a frame of exactly WS_MAX_MESSAGE_SIZE bytes', async () => {
    const client = await connect(open);
    const frame = frameOfBytes(MAX_MESSAGE_SIZE);
    expect(Buffer.byteLength(frame)).toBe(MAX_MESSAGE_SIZE);

    expect(await client.request(frame, 'system.heartbeat_ack')).toMatchObject({
      type: 'system.heartbeat_ack',
    });
  });

  it.each([
    ['one byte over the limit', () => frameOfBytes(MAX_MESSAGE_SIZE + 1)],
    [
      'over the limit in UTF-8 bytes though not in characters',
      () => JSON.stringify({ type: 'system.heartbeat', pad: 'é'.repeat(600) }),
    ],
    ['over the limit and not even JSON', () => '{'.repeat(5000)],
  ])('answers a frame %s with MESSAGE_TOO_LARGE and keeps the connection usable', async (_what, frame) => {
    const client = await connect(open);

    const reply = await client.request(frame(), 'system.error');

    expect(reply).toEqual(TOO_LARGE);
    expect(client.closed).toBe(false);
    expect(await client.request({ type: 'system.heartbeat' }, 'system.heartbeat_ack')).toMatchObject({
      type: 'system.heartbeat_ack',
    });
  });

  it.each([
    ['malformed JSON', '{"type":"system.heartbeat"'],
    ['a JSON array', '[{"type":"system.heartbeat"}]'],
    ['a JSON string', '"system.heartbeat"'],
    ['an object without type', '{"room_id":"r"}'],
    ['an unknown type', '{"type":"system.reboot"}'],
    ['a numeric type', '{"type":7}'],
    ['a number where a string is expected', '{"type":"system.authenticate","user_id":"1","username":7}'],
    ['a missing required field', '{"type":"games.command.leave_room"}'],
    [
      'a string where a boolean is expected',
      '{"type":"games.command.set_ready","room_id":"r","is_ready":"true"}',
    ],
  ])('answers %s with INVALID_FORMAT and keeps the connection usable', async (_what, frame) => {
    const client = await connect(open);
    await authenticate(client, newUserId());

    const reply = await client.request(frame, 'system.error');

    expect(reply).toEqual(INVALID_FORMAT);
    expect(client.closed).toBe(false);
    expect(await client.request({ type: 'system.heartbeat' }, 'system.heartbeat_ack')).toMatchObject({
      type: 'system.heartbeat_ack',
    });
  });

  it('answers a valid command before authentication with "Connection not authenticated"', async () => {
    const client = await connect(open);

    const reply = await client.request({ type: 'games.command.ready', room_id: 'r' }, 'system.error');

    expect(reply).toEqual(NOT_AUTHENTICATED);
  });
});

describe('rate limit', () => {
  it(`trips at the burst (${RATE_BURST}) with RATE_LIMIT and recovers after a refill`, async () => {
    const client = await connect(strict);
    const sent = 12;
    const start = performance.now();

    for (let i = 0; i < sent; i++) client.send({ type: 'system.heartbeat' });
    const replies: Array<Record<string, unknown>> = [];
    for (let i = 0; i < sent; i++) {
      replies.push(await client.next((f) => f.type === 'system.heartbeat_ack' || f.type === 'system.error'));
    }
    const elapsedSecs = (performance.now() - start) / 1000;

    const acks = replies.filter((r) => r.type === 'system.heartbeat_ack');
    const errors = replies.filter((r) => r.type === 'system.error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => JSON.stringify(e) === JSON.stringify(RATE_LIMITED))).toBe(true);
    expect(acks.length).toBeGreaterThanOrEqual(RATE_BURST);
    // Whatever the machine's speed: no more than the burst plus what refilled meanwhile.
    expect(acks.length).toBeLessThanOrEqual(RATE_BURST + Math.ceil(elapsedSecs * RATE_PER_SEC));

    await sleep(1100);

    expect(await client.request({ type: 'system.heartbeat' }, 'system.heartbeat_ack')).toMatchObject({
      type: 'system.heartbeat_ack',
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Disconnect and presence
// ---------------------------------------------------------------------------------------------------

describe('disconnect', () => {
  /** `$disconnect` publishes the departure after the store is clean: the signal that cleanup is done. */
  const departed = (connectionId: string) =>
    events.waitFor(
      (r) =>
        r.value?.event_type === 'system.event.user_disconnected' &&
        r.value.payload.connection_id === connectionId,
    );

  it('leaves no key of the connection or its user behind', async () => {
    const client = await connect(open);
    const id = connectionIdOf(client);
    const userId = newUserId();
    const lobbyId = String(randomInt(1_000, 1_000_000));
    await authenticate(client, userId);
    client.send({ type: 'chat.command.join_lobby', lobby_id: lobbyId });
    await waitUntil('the lobby subscription is stored', async () =>
      (await redis.smembers(`${prefixOf(open)}lobby:sockets:${lobbyId}`)).includes(id),
    );
    expect((await tracesOf(open, [id, userId])).length).toBeGreaterThan(0);

    await client.close();

    const departure = await departed(id);
    expect(departure.key).toBe(userId);
    expect(await tracesOf(open, [id, userId])).toEqual([]);
  });

  it('keeps a user in presence:online until both of their tabs are closed', async () => {
    const userId = newUserId();
    const p = prefixOf(open);
    const tab1 = await connect(open);
    const tab2 = await connect(open);
    await authenticate(tab1, userId);
    await authenticate(tab2, userId);
    expect(await redis.sismember(`${p}presence:online`, userId)).toBe(1);

    await tab1.close();
    await departed(connectionIdOf(tab1));

    expect(await redis.sismember(`${p}presence:online`, userId)).toBe(1);
    expect(await redis.smembers(`${p}user:sockets:${userId}`)).toEqual([connectionIdOf(tab2)]);

    await tab2.close();
    await departed(connectionIdOf(tab2));

    expect(await redis.sismember(`${p}presence:online`, userId)).toBe(0);
    expect(await redis.exists(`${p}user:sockets:${userId}`)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------
// Secrets (runs last: it checks everything the gateways printed during this file)
// ---------------------------------------------------------------------------------------------------

describe('secrets', () => {
  it('never appear in the gateway output: no token, no token signature, no HS256 secret', () => {
    const outputs = [open.output(), strict.output()];
    // The gateways did log at debug level, so a leak would have been captured.
    expect(outputs.join('')).toContain('authenticated');
    expect(issuedTokens.size).toBeGreaterThan(10);

    const leaks: string[] = [];
    for (const output of outputs) {
      if (output.includes(HS_SECRET)) leaks.push('the HS256 secret');
      for (const token of issuedTokens) {
        const signature = token.split('.')[2] ?? '';
        if (output.includes(token) || (signature.length > 10 && output.includes(signature))) {
          leaks.push(token.slice(0, 24));
        }
      }
    }
    expect(leaks).toEqual([]);
  });
});
