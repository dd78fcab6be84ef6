/**
 * The Redis session store against a real Redis: the contract keys of docs/architecture.md (names, JSON shapes, TTLs),
 * authentication and re-authentication, multi-tab presence, idempotent removal, room and lobby
 * cleanup, the rate-limit gate shared by "Lambda containers" (two clients, two store instances) and
 * the welcome claim. Every test gets its own key prefix.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { silentLogger } from '../../lib/logger';
import type { Identity } from '../../lib/protocol/envelope';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { type AuthResult, createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { keysWithPrefix } from '../support/store';

/** The gate of a connection Redis knows (fails the test when it reports the connection lost). */
async function gated(s: SessionStore, id: string, rate: { burst: number; perSec: number }) {
  const g = await s.gateMessage(id, rate);
  if (!g) throw new Error(`gate: connection ${id} unknown to Redis`);
  return g;
}

const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const CONNECTION_TTL_SECS = 86400;

const ALICE: Identity = { userId: '4', username: 'Alice', roles: ['user'] };
const BOB: Identity = { userId: '9', username: 'Bob', roles: ['user', 'vip'] };

/** An API Gateway-like connection id (base64, may contain `+`, `/`, `=`). */
const newConnectionId = () => randomBytes(10).toString('base64');

function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set (the jest global setup exports it)');
  return url;
}

const newRedis = (): RedisClient =>
  createRedisClient({ url: redisUrl(), cluster: false, logger: silentLogger });

let redis: RedisClient;
/** A second client: a second Lambda container sharing the same Redis. */
let redis2: RedisClient;
let prefix: string;
let store: SessionStore;
/** The same key space seen through the second client. */
let store2: SessionStore;

const keysUnderPrefix = () => keysWithPrefix(redis, prefix);

async function getJson(key: string): Promise<Record<string, unknown> | null> {
  const raw = await redis.get(key);
  return raw === null ? null : (JSON.parse(raw) as Record<string, unknown>);
}

/** Registers a connection and authenticates it, as `$connect` + `system.authenticate` do. */
async function connectAs(identity: Identity | null, connectedAt = new Date()): Promise<string> {
  const id = newConnectionId();
  await store.registerConnection(id, { connectedAt, bound: null });
  if (identity) await store.authenticate(id, identity, null, connectedAt, connectedAt.toISOString());
  return id;
}

beforeAll(() => {
  redis = newRedis();
  redis2 = newRedis();
});

afterAll(async () => {
  await Promise.all([redis.quit(), redis2.quit()]);
});

beforeEach(() => {
  prefix = `it:store:${randomUUID()}:`;
  store = createSessionStore({ redis, connectionTtlSecs: CONNECTION_TTL_SECS, keyPrefix: prefix });
  store2 = createSessionStore({ redis: redis2, connectionTtlSecs: CONNECTION_TTL_SECS, keyPrefix: prefix });
});

afterEach(async () => {
  const keys = await keysUnderPrefix();
  if (keys.length > 0) await redis.del(...keys);
});

describe('contract keys (docs/architecture.md)', () => {
  it('names the four contract keys exactly as the Rust gateway did', () => {
    const plain = createSessionStore({ redis, connectionTtlSecs: CONNECTION_TTL_SECS }).keys;

    expect(plain.socket('L0SM9cOFvHcCIhw=')).toBe('socket:L0SM9cOFvHcCIhw=');
    expect(plain.userSockets('4')).toBe('user:sockets:4');
    expect(plain.presenceOnline()).toBe('presence:online');
    expect(plain.userPresence('4')).toBe('user:presence:4');
  });

  it('writes exactly the contract keys, the connection record and its reverse index on authenticate and heartbeat', async () => {
    const id = await connectAs(ALICE);
    await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

    expect(await keysUnderPrefix()).toEqual(
      [
        `${prefix}socket:${id}`,
        `${prefix}user:sockets:4`,
        `${prefix}presence:online`,
        `${prefix}user:presence:4`,
        `${prefix}gw:conn:${id}`,
        `${prefix}gw:ix:${id}`,
        `${prefix}gw:connections`,
      ].sort(),
    );
    expect(await redis.type(`${prefix}socket:${id}`)).toBe('string');
    expect(await redis.type(`${prefix}user:sockets:4`)).toBe('set');
    expect(await redis.type(`${prefix}presence:online`)).toBe('set');
    expect(await redis.type(`${prefix}user:presence:4`)).toBe('string');
  });

  it('stores socket:{id} as {user_id, username, connected_at, last_seen, roles} with a 86400 s TTL', async () => {
    const connectedAt = new Date('2026-01-23T18:29:59.501Z');
    const now = new Date('2026-01-23T18:30:00.250Z');
    const id = newConnectionId();
    await store.registerConnection(id, { connectedAt, bound: null });

    await store.authenticate(id, ALICE, null, now, connectedAt.toISOString());

    const raw = await redis.get(`${prefix}socket:${id}`);
    expect(raw).not.toBeNull();
    const session = JSON.parse(raw!) as Record<string, unknown>;
    expect(session).toEqual({
      user_id: '4',
      username: 'Alice',
      connected_at: '2026-01-23T18:29:59.501Z',
      last_seen: '2026-01-23T18:30:00.250Z',
      roles: ['user'],
    });
    expect(Object.keys(session)).toEqual(['user_id', 'username', 'connected_at', 'last_seen', 'roles']);
    const ttl = await redis.ttl(`${prefix}socket:${id}`);
    expect(ttl).toBeGreaterThan(86390);
    expect(ttl).toBeLessThanOrEqual(86400);
  });

  it('adds the connection to user:sockets:{uid} and the user to presence:online', async () => {
    const id = await connectAs(ALICE);

    expect(await redis.smembers(`${prefix}user:sockets:4`)).toEqual([id]);
    expect(await redis.smembers(`${prefix}presence:online`)).toEqual(['4']);
  });

  it('refreshes last_seen (keeping connected_at) and writes user:presence:{uid} with a 120 s TTL on heartbeat', async () => {
    const connectedAt = new Date('2026-01-23T18:29:59.501Z');
    const id = await connectAs(ALICE, connectedAt);
    const beat = new Date('2026-01-23T18:30:29.000Z');

    await store.heartbeat(id, ALICE, beat, connectedAt.toISOString());

    const session = await getJson(`${prefix}socket:${id}`);
    expect(session).toMatchObject({ connected_at: connectedAt.toISOString(), last_seen: beat.toISOString() });
    const presence = await getJson(`${prefix}user:presence:4`);
    expect(presence).toEqual({
      status: 'online',
      last_seen: '2026-01-23T18:30:29.000Z',
      current_room: null,
      current_game: null,
    });
    expect(Object.keys(presence!)).toEqual(['status', 'last_seen', 'current_room', 'current_game']);
    const ttl = await redis.ttl(`${prefix}user:presence:4`);
    expect(ttl).toBeGreaterThan(110);
    expect(ttl).toBeLessThanOrEqual(120);
    expect(await redis.ttl(`${prefix}socket:${id}`)).toBeGreaterThan(86390);
  });

  it('writes RFC 3339 UTC timestamps', async () => {
    const id = await connectAs(ALICE);
    await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

    const session = await getJson(`${prefix}socket:${id}`);
    const presence = await getJson(`${prefix}user:presence:4`);
    expect(session?.connected_at).toMatch(RFC3339_UTC);
    expect(session?.last_seen).toMatch(RFC3339_UTC);
    expect(presence?.last_seen).toMatch(RFC3339_UTC);
  });

  it('does not recreate socket:{id} on a heartbeat after the session is gone', async () => {
    const id = await connectAs(ALICE);
    await store.removeConnection(id);

    await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

    expect(await redis.exists(`${prefix}socket:${id}`)).toBe(0);
  });
});

describe('authentication and re-authentication', () => {
  it('reports the user coming online only for the first connection', async () => {
    const first = newConnectionId();
    const second = newConnectionId();
    const now = new Date();
    await store.registerConnection(first, { connectedAt: now, bound: null });
    await store.registerConnection(second, { connectedAt: now, bound: null });

    const a = await store.authenticate(first, ALICE, null, now, now.toISOString());
    const b = await store.authenticate(second, ALICE, null, now, now.toISOString());

    expect(a).toEqual({ cameOnline: true, previous: null });
    expect(b).toEqual({ cameOnline: false, previous: null });
    expect((await redis.smembers(`${prefix}user:sockets:4`)).sort()).toEqual([first, second].sort());
  });

  it('moves the connection to the new user when it re-authenticates as someone else', async () => {
    const id = await connectAs(ALICE);
    const now = new Date();

    const result = await store.authenticate(id, BOB, ALICE, now, now.toISOString());

    expect(result).toEqual({ cameOnline: true, previous: { identity: ALICE, wentOffline: true, rooms: [] } });
    expect(await redis.sismember(`${prefix}user:sockets:4`, id)).toBe(0);
    expect(await redis.smembers(`${prefix}user:sockets:9`)).toEqual([id]);
    expect(await redis.smembers(`${prefix}presence:online`)).toEqual(['9']);
    expect(await getJson(`${prefix}socket:${id}`)).toMatchObject({
      user_id: '9',
      username: 'Bob',
      roles: ['user', 'vip'],
    });
    const gate = await gated(store, id, { burst: 10, perSec: 0 });
    expect(gate.identity).toEqual(BOB);
  });

  it('keeps the old user online after a re-authentication when they have another tab', async () => {
    const otherTab = await connectAs(ALICE);
    const id = await connectAs(ALICE);
    const now = new Date();

    const result = await store.authenticate(id, BOB, ALICE, now, now.toISOString());

    expect((result as AuthResult | null)?.previous).toEqual({
      identity: ALICE,
      wentOffline: false,
      rooms: [],
    });
    expect(await redis.smembers(`${prefix}user:sockets:4`)).toEqual([otherTab]);
    expect((await redis.smembers(`${prefix}presence:online`)).sort()).toEqual(['4', '9']);
  });

  it("takes the connection out of the old user's rooms (not its lobbies) when it re-authenticates as someone else", async () => {
    const id = await connectAs(ALICE);
    const otherTab = await connectAs(ALICE);
    await store.joinRoom('4', 'room-a', { spectator: false });
    await store.joinRoom('4', 'room-b', { spectator: true });
    await store.joinLobby(id, '1');
    const now = new Date();

    const result = await store.authenticate(id, BOB, ALICE, now, now.toISOString());

    expect((result as AuthResult | null)?.previous?.rooms.slice().sort()).toEqual(['room-a', 'room-b']);
    expect(await store.roomsOf(id)).toEqual([]);
    expect(await store.roomConnections('room-a')).toEqual([otherTab]);
    expect(await store.roomConnections('room-b')).toEqual([otherTab]);
    expect(await store.roomConnections('spectators:room-b')).toEqual([otherTab]);
    expect(await store.lobbyConnections('1')).toEqual([id]);
  });

  it('writes nothing when the connection was removed before its authentication landed', async () => {
    // A $disconnect that overtook the $default carrying system.authenticate.
    const id = await connectAs(null);
    await store.removeConnection(id);
    const now = new Date();

    const result = await store.authenticate(id, ALICE, null, now, now.toISOString());

    expect(result).toBeNull();
    expect(await keysUnderPrefix()).toEqual([]);
  });

  it('treats authenticating again as the same user as no transition', async () => {
    const id = await connectAs(ALICE);
    const now = new Date();

    const result = await store.authenticate(id, ALICE, ALICE, now, now.toISOString());

    expect(result).toEqual({ cameOnline: false, previous: null });
    expect(await redis.smembers(`${prefix}user:sockets:4`)).toEqual([id]);
  });
});

describe('presence with several tabs', () => {
  it('keeps the user in presence:online until the last connection goes', async () => {
    const tab1 = await connectAs(ALICE);
    const tab2 = await connectAs(ALICE);

    const first = await store.removeConnection(tab1);
    expect(first?.wentOffline).toBe(false);
    expect(await redis.sismember(`${prefix}presence:online`, '4')).toBe(1);

    const second = await store.removeConnection(tab2);
    expect(second?.wentOffline).toBe(true);
    expect(await redis.sismember(`${prefix}presence:online`, '4')).toBe(0);
  });

  it('reports the user going offline exactly once when the last two tabs close at the same time', async () => {
    const tab1 = await connectAs(ALICE);
    const tab2 = await connectAs(ALICE);

    const [a, b] = await Promise.all([store.removeConnection(tab1), store2.removeConnection(tab2)]);

    expect([a?.wentOffline, b?.wentOffline].filter(Boolean)).toHaveLength(1);
    expect(await redis.sismember(`${prefix}presence:online`, '4')).toBe(0);
  });

  it('does not touch other users', async () => {
    const alice = await connectAs(ALICE);
    await connectAs(BOB);

    await store.removeConnection(alice);

    expect(await redis.smembers(`${prefix}presence:online`)).toEqual(['9']);
  });
});

describe('removeConnection', () => {
  it('returns what the connection was and null on a second call', async () => {
    const id = await connectAs(ALICE);

    const first = await store.removeConnection(id);
    const second = await store.removeConnection(id);

    expect(first).toEqual({ identity: ALICE, rooms: [], spectating: [], wentOffline: true });
    expect(second).toBeNull();
  });

  it('claims a connection once when two containers remove it concurrently', async () => {
    const id = await connectAs(ALICE);

    const results = await Promise.all([store.removeConnection(id), store2.removeConnection(id)]);

    expect(results.filter((r) => r !== null)).toEqual([
      { identity: ALICE, rooms: [], spectating: [], wentOffline: true },
    ]);
  });

  it('removes an anonymous connection from the broadcast set', async () => {
    const id = await connectAs(null);
    expect(await store.allConnections()).toEqual([id]);

    const removed = await store.removeConnection(id);

    expect(removed).toEqual({ identity: null, rooms: [], spectating: [], wentOffline: false });
    expect(await store.allConnections()).toEqual([]);
  });

  it('removes the connection from every room and lobby and reports the game rooms, not spectator rooms', async () => {
    const id = await connectAs(ALICE);
    const bystander = await connectAs(BOB);
    await store.joinRoom('4', 'room-a', { spectator: false });
    await store.joinRoom('4', 'room-b', { spectator: true });
    await store.joinRoom('9', 'room-a', { spectator: false });
    await store.joinLobby(id, '1');
    expect((await store.roomsOf(id)).sort()).toEqual(['room-a', 'room-b', 'spectators:room-b']);

    const removed = await store.removeConnection(id);

    expect(removed?.rooms.slice().sort()).toEqual(['room-a', 'room-b']);
    expect(await store.roomConnections('room-a')).toEqual([bystander]);
    expect(await store.roomConnections('room-b')).toEqual([]);
    expect(await store.roomConnections('spectators:room-b')).toEqual([]);
    expect(await store.lobbyConnections('1')).toEqual([]);
  });

  it('leaves no key of the connection or its user behind', async () => {
    const id = await connectAs(ALICE);
    await store.joinRoom('4', 'room-a', { spectator: true });
    await store.joinLobby(id, '1');

    await store.removeConnection(id);

    expect(await keysUnderPrefix()).toEqual([]);
  });

  it('leaves only the expiring user:presence:{uid} behind after a heartbeat (never deleted, as docs/architecture.md)', async () => {
    const id = await connectAs(ALICE);
    await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

    await store.removeConnection(id);

    expect(await keysUnderPrefix()).toEqual([`${prefix}user:presence:4`]);
    expect(await redis.ttl(`${prefix}user:presence:4`)).toBeGreaterThan(0);
  });
});

describe('rooms and lobbies', () => {
  it('adds every connection of the user to a room, and to its spectators when spectating', async () => {
    const tab1 = await connectAs(ALICE);
    const tab2 = await connectAs(ALICE);

    await store.joinRoom('4', 'room-a', { spectator: true });

    expect((await store.roomConnections('room-a')).sort()).toEqual([tab1, tab2].sort());
    expect((await store.roomConnections('spectators:room-a')).sort()).toEqual([tab1, tab2].sort());
  });

  it('removes the user from the room and its spectators on leave', async () => {
    const id = await connectAs(ALICE);
    await store.joinRoom('4', 'room-a', { spectator: true });

    await store.leaveRoom('4', 'room-a');

    expect(await store.roomConnections('room-a')).toEqual([]);
    expect(await store.roomConnections('spectators:room-a')).toEqual([]);
    expect(await store.roomsOf(id)).toEqual([]);
  });

  it('does not subscribe a connection that is already gone to a lobby', async () => {
    const id = await connectAs(ALICE);
    await store.removeConnection(id);

    await store.joinLobby(id, '1');

    expect(await store.lobbyConnections('1')).toEqual([]);
    expect(await redis.exists(`${prefix}gw:conn:${id}`)).toBe(0);
  });
});

describe('rate-limit gate', () => {
  it('allows exactly the burst, then refuses', async () => {
    const id = await connectAs(ALICE);

    const allowed: boolean[] = [];
    for (let i = 0; i < 7; i++) allowed.push((await gated(store, id, { burst: 5, perSec: 0 })).allowed);

    expect(allowed).toEqual([true, true, true, true, true, false, false]);
  });

  it('refills fractionally: half a second at 2 per second buys one message', async () => {
    const id = await connectAs(ALICE);
    const rate = { burst: 1, perSec: 2 };
    expect((await gated(store, id, rate)).allowed).toBe(true);
    expect((await gated(store, id, rate)).allowed).toBe(false);

    // The Rust gateway refilled whole seconds only: after 0.7 s it would still refuse.
    await new Promise((r) => setTimeout(r, 700));

    expect((await gated(store, id, rate)).allowed).toBe(true);
  });

  it('shares one bucket between two containers', async () => {
    const id = await connectAs(ALICE);
    const rate = { burst: 4, perSec: 0 };

    const allowed = [
      (await gated(store, id, rate)).allowed,
      (await gated(store2, id, rate)).allowed,
      (await gated(store, id, rate)).allowed,
      (await gated(store2, id, rate)).allowed,
      (await gated(store, id, rate)).allowed,
      (await gated(store2, id, rate)).allowed,
    ];

    expect(allowed).toEqual([true, true, true, true, false, false]);
  });

  it('never lets more than the burst through under concurrent messages from two containers', async () => {
    const id = await connectAs(ALICE);
    const rate = { burst: 10, perSec: 0 };

    const gates = await Promise.all(
      Array.from({ length: 30 }, (_, i) => gated(i % 2 === 0 ? store : store2, id, rate)),
    );

    expect(gates.filter((g) => g.allowed)).toHaveLength(10);
  });

  it('keeps separate buckets per connection', async () => {
    const a = await connectAs(ALICE);
    const b = await connectAs(ALICE);
    const rate = { burst: 1, perSec: 0 };
    await gated(store, a, rate);

    expect((await gated(store, a, rate)).allowed).toBe(false);
    expect((await gated(store, b, rate)).allowed).toBe(true);
  });

  it('returns the identity and the identity bound at $connect', async () => {
    const id = newConnectionId();
    const now = new Date();
    await store.registerConnection(id, { connectedAt: now, bound: BOB });

    const before = await gated(store, id, { burst: 10, perSec: 0 });
    await store.authenticate(id, BOB, null, now, before.connectedAt);
    const after = await gated(store, id, { burst: 10, perSec: 0 });

    expect(before).toMatchObject({
      identity: null,
      bound: BOB,
      connectedAt: now.toISOString(),
    });
    expect(after).toMatchObject({ identity: BOB, bound: BOB });
  });

  it('reports a connection Redis has no record of as lost and writes nothing (D9)', async () => {
    // E.g. Redis restarted empty: the connection passed $connect, its state is gone.
    const id = newConnectionId();

    const gate = await store.gateMessage(id, { burst: 10, perSec: 0 });

    expect(gate).toBeNull();
    expect(await keysUnderPrefix()).toEqual([]);
  });

  it('reports a connection being removed as lost', async () => {
    const id = await connectAs(ALICE);
    // A cleanup that claimed the hash and died half-way leaves its tombstone.
    await redis.hset(`${prefix}gw:conn:${id}`, 'x', '1');

    expect(await store.gateMessage(id, { burst: 10, perSec: 0 })).toBeNull();
  });
});

describe('heartbeat refresh window', () => {
  const rate = { burst: 100, perSec: 100 };
  const refreshOf = async (id: string, windowMs?: number) => (await s(id, windowMs)).refresh;
  const s = async (id: string, windowMs?: number) => {
    const g = await store.gateMessage(id, rate, windowMs);
    if (!g) throw new Error(`gate: connection ${id} unknown to Redis`);
    return g;
  };

  it('asks the first heartbeat of a window to refresh and the next ones within it not to', async () => {
    const id = await connectAs(ALICE);
    expect(await refreshOf(id, 10_000)).toBe(true);
    expect(await refreshOf(id, 10_000)).toBe(false);
    expect(await refreshOf(id, 10_000)).toBe(false);
    // The second client (another Lambda container) sees the same window.
    expect((await store2.gateMessage(id, rate, 10_000))?.refresh).toBe(false);
  });

  it('asks again once the window has passed', async () => {
    const id = await connectAs(ALICE);
    expect(await refreshOf(id, 50)).toBe(true);
    expect(await refreshOf(id, 50)).toBe(false);
    await new Promise((r) => setTimeout(r, 80));
    expect(await refreshOf(id, 50)).toBe(true);
  });

  it('asks every heartbeat with a window of 0, never an anonymous one, and leaves other frames out', async () => {
    const id = await connectAs(ALICE);
    expect(await refreshOf(id, 0)).toBe(true);
    expect(await refreshOf(id, 0)).toBe(true);
    const anonymous = await connectAs(null);
    expect(await refreshOf(anonymous, 10_000)).toBe(false);
    // A frame that is not a heartbeat is not asked and does not use the window up.
    const other = await connectAs(BOB);
    expect(await refreshOf(other)).toBeUndefined();
    expect(await refreshOf(other, 10_000)).toBe(true);
  });
});

describe('welcome claim', () => {
  it('lets the async welcome claim it once, and makes $default wait until it is sent', async () => {
    const id = await connectAs(null);

    expect(await store.claimWelcome(id)).toBe(true);
    expect(await store2.claimWelcome(id)).toBe(false);
    expect(await store.welcomeState(id)).toBe('pending');
    expect((await gated(store, id, { burst: 10, perSec: 0 })).welcome).toBe('pending');

    await store.markWelcomed(id);

    expect(await store.welcomeState(id)).toBe('done');
    expect((await gated(store, id, { burst: 10, perSec: 0 })).welcome).toBe('done');
  });

  it('gives the welcome to the first message when the client speaks first, and only to it', async () => {
    const id = await connectAs(null);

    const first = await gated(store, id, { burst: 10, perSec: 0 });
    const second = await gated(store2, id, { burst: 10, perSec: 0 });

    expect(first.welcome).toBe('mine');
    expect(second.welcome).toBe('pending');
    expect(await store.claimWelcome(id)).toBe(false);

    await store.markWelcomed(id);

    expect((await gated(store, id, { burst: 10, perSec: 0 })).welcome).toBe('done');
  });

  it('reports none for an unknown connection and never resurrects a removed one', async () => {
    const id = await connectAs(null);
    await store.removeConnection(id);

    await store.markWelcomed(id);

    expect(await store.welcomeState(id)).toBe('none');
    expect(await redis.exists(`${prefix}gw:conn:${id}`)).toBe(0);
  });
});
