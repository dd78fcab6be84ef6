/**
 * The session store under the faults and races of docs/decisions.md D9, against a real Redis:
 * cleanup that finds the connection hash gone (issue 8, finding 9), the welcome claim after a
 * removal (finding 8), the per-connection and per-user limits (finding 10), and presence /
 * authentication races run as real concurrent operations from two clients (finding 11).
 * Every test gets its own key prefix.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { deliverWelcome } from '../../lib/gateway/welcome';
import { silentLogger } from '../../lib/logger';
import type { Identity } from '../../lib/protocol/envelope';
import type { ClientPusher } from '../../lib/push/pusher';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { keysWithPrefix } from '../support/store';

const TTL = 86400;
const ALICE: Identity = { userId: '4', username: 'Alice', roles: ['user'] };
const BOB: Identity = { userId: '9', username: 'Bob', roles: ['user'] };
const newConnectionId = () => randomBytes(10).toString('base64');

let redis: RedisClient;
/** A second client: a second Lambda container sharing the same Redis. */
let redis2: RedisClient;
let prefix: string;
let store: SessionStore;
let store2: SessionStore;

const newRedis = () =>
  createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
const storeOn = (client: RedisClient, limits: { lobbies?: number; connections?: number } = {}) =>
  createSessionStore({
    redis: client,
    connectionTtlSecs: TTL,
    keyPrefix: prefix,
    maxLobbiesPerConnection: limits.lobbies,
    maxConnectionsPerUser: limits.connections,
  });

async function connectAs(s: SessionStore, identity: Identity | null): Promise<string> {
  const id = newConnectionId();
  const now = new Date();
  await s.registerConnection(id, { connectedAt: now, bound: null });
  if (identity) await s.authenticate(id, identity, null, now, now.toISOString());
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
  prefix = `it:hard:${randomUUID()}:`;
  store = storeOn(redis);
  store2 = storeOn(redis2);
});

afterEach(async () => {
  const keys = await keysWithPrefix(redis, prefix);
  if (keys.length > 0) await redis.del(...keys);
});

describe('cleanup without the connection hash (finding 9)', () => {
  it('removes a connection whose hash expired or was evicted from its user, rooms, lobbies and presence', async () => {
    const id = await connectAs(store, ALICE);
    const bystander = await connectAs(store, BOB);
    await store.joinRoom(ALICE.userId, 'room-a', { spectator: true });
    await store.joinRoom(BOB.userId, 'room-a', { spectator: false });
    await store.joinLobby(id, '7');
    // The hash is gone, the sets it was in are not (a lost $disconnect, then expiry or eviction).
    await redis.del(store.keys.conn(id));

    const removed = await store.removeConnection(id);

    expect(removed).toEqual({
      identity: ALICE,
      rooms: ['room-a'],
      spectating: ['spectators:room-a'],
      wentOffline: true,
    });
    expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
    expect(await store.roomConnections('room-a')).toEqual([bystander]);
    expect(await store.roomConnections('spectators:room-a')).toEqual([]);
    expect(await store.lobbyConnections('7')).toEqual([]);
    expect(await redis.smembers(store.keys.presenceOnline())).toEqual([BOB.userId]);
    expect(await store.allConnections()).toEqual([bystander]);
  });

  it('announces such a removal once when a 410 and a $disconnect race', async () => {
    const id = await connectAs(store, ALICE);
    await redis.del(store.keys.conn(id));

    const results = await Promise.all([store.removeConnection(id), store2.removeConnection(id)]);

    expect(results.filter((r) => r !== null)).toHaveLength(1);
    expect(await keysWithPrefix(redis, prefix)).toEqual([]);
  });

  it('finishes a cleanup that died half-way (claimed, sets not yet left) on the next call', async () => {
    const id = await connectAs(store, ALICE);
    await store.joinRoom(ALICE.userId, 'room-a', { spectator: false });
    // What a cleanup that died right after claiming leaves: the tombstone, every set untouched.
    await redis.hset(store.keys.conn(id), 'x', '1');
    await redis.expire(store.keys.conn(id), 300);

    await store.removeConnection(id);

    expect(await store.roomConnections('room-a')).toEqual([]);
    expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
    expect(await redis.smembers(store.keys.presenceOnline())).toEqual([]);
    expect(await keysWithPrefix(redis, prefix)).toEqual([]);
  });

  it('gives every key a connection can leave behind a TTL, the two global sets excepted', async () => {
    const id = await connectAs(store, ALICE);
    await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());
    await store.joinRoom(ALICE.userId, 'room-a', { spectator: true });
    await store.joinLobby(id, '7');
    await store.recordChatMessage('m1', ALICE.userId);
    await store.claimWelcome(id);

    const global = new Set([store.keys.presenceOnline(), store.keys.connections()]);
    const keys = (await keysWithPrefix(redis, prefix)).filter((k) => !global.has(k));
    const ttls = await Promise.all(keys.map((k) => redis.ttl(k)));

    expect(keys.length).toBeGreaterThanOrEqual(8);
    expect(keys.filter((_, i) => ttls[i]! <= 0)).toEqual([]);
  });
});

describe('the welcome after a removal (finding 8)', () => {
  it('does not re-create a removed connection when the welcome claims it late', async () => {
    const id = await connectAs(store, null);
    await store.removeConnection(id);

    const claimed = await store.claimWelcome(id);

    expect(claimed).toBe(false);
    expect(await keysWithPrefix(redis, prefix)).toEqual([]);
  });

  it('stops re-posting the welcome once the connection is known gone', async () => {
    const id = await connectAs(store, null);
    let pushes = 0;
    const pusher: ClientPusher = {
      push: async () => {
        pushes++;
        // The client went away during $connect: $disconnect removes the connection meanwhile.
        if (pushes === 1) await store.removeConnection(id);
        return 'gone';
      },
      close: async () => {},
    };

    const result = await deliverWelcome(
      { store, pusherFor: () => pusher, logger: silentLogger, now: () => new Date() },
      { connectionId: id, endpoint: 'http://127.0.0.1:1' },
    );

    expect(result).toBe('gone');
    expect(pushes).toBeLessThanOrEqual(2);
    expect(await keysWithPrefix(redis, prefix)).toEqual([]);
  });
});

describe('limits (finding 10)', () => {
  it('subscribes a connection to at most maxLobbiesPerConnection lobbies and writes nothing beyond', async () => {
    const limited = storeOn(redis, { lobbies: 8 });
    const id = await connectAs(limited, ALICE);

    const results = [];
    for (let i = 1; i <= 10; i++) results.push(await limited.joinLobby(id, String(i)));
    // Joining one it already holds is not a new subscription.
    const again = await limited.joinLobby(id, '3');

    expect(results.filter((r) => r === 'lobby-limit')).toHaveLength(2);
    expect(again).toBeUndefined();
    expect(await limited.lobbyConnections('9')).toEqual([]);
    expect(await limited.lobbyConnections('10')).toEqual([]);
    expect(await limited.lobbyConnections('8')).toEqual([id]);
    await limited.leaveLobby(id, '1');
    expect(await limited.joinLobby(id, '9')).toBeUndefined();
    expect(await limited.lobbyConnections('9')).toEqual([id]);
  });

  it('authenticates at most maxConnectionsPerUser connections per user, even when they arrive at once', async () => {
    const limited = storeOn(redis, { connections: 16 });
    const limited2 = storeOn(redis2, { connections: 16 });
    const ids = await Promise.all(Array.from({ length: 20 }, () => connectAs(limited, null)));
    const now = new Date();

    const results = await Promise.all(
      ids.map((id, i) => (i % 2 ? limited : limited2).authenticate(id, ALICE, null, now, now.toISOString())),
    );

    const refused = ids.filter((_, i) => results[i] === 'connection-limit');
    expect(refused).toHaveLength(4);
    expect(await redis.scard(limited.keys.userSockets(ALICE.userId))).toBe(16);
    // A refused connection stays anonymous: nothing of the user was written for it.
    for (const id of refused) {
      expect(await redis.hget(limited.keys.conn(id), 'uid')).toBeNull();
      expect(await redis.exists(limited.keys.socket(id))).toBe(0);
    }
  });
});

describe('races (finding 11), as concurrent operations from two containers', () => {
  it('keeps a user who reloads in presence:online (old tab removed while the new one authenticates)', async () => {
    const ROUNDS = 150;
    let lost = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const user: Identity = { userId: String(1000 + round), username: `u${round}`, roles: [] };
      const oldTab = await connectAs(store, user);
      const newTab = newConnectionId();
      const now = new Date();
      await store2.registerConnection(newTab, { connectedAt: now, bound: null });

      await Promise.all([
        store.removeConnection(oldTab),
        store2.authenticate(newTab, user, null, now, now.toISOString()),
      ]);

      if ((await redis.sismember(store.keys.presenceOnline(), user.userId)) !== 1) lost++;
    }
    expect({ rounds: ROUNDS, lost }).toEqual({ rounds: ROUNDS, lost: 0 });
  });

  it('leaves a connection in exactly one user set after two concurrent authentications as different users', async () => {
    const ROUNDS = 50;
    let inBoth = 0;
    let mismatched = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const a: Identity = { userId: String(5000 + 2 * round), username: 'A', roles: [] };
      const b: Identity = { userId: String(5001 + 2 * round), username: 'B', roles: [] };
      const id = await connectAs(store, null);
      const now = new Date();

      // Both frames passed the gate while the connection was anonymous (previous = null).
      await Promise.all([
        store.authenticate(id, a, null, now, now.toISOString()),
        store2.authenticate(id, b, null, now, now.toISOString()),
      ]);

      const [inA, inB, uid] = await Promise.all([
        redis.sismember(store.keys.userSockets(a.userId), id),
        redis.sismember(store.keys.userSockets(b.userId), id),
        redis.hget(store.keys.conn(id), 'uid'),
      ]);
      if (inA + inB !== 1) inBoth++;
      else if ((inA ? a.userId : b.userId) !== uid) mismatched++;
    }
    expect({ rounds: ROUNDS, inBoth, mismatched }).toEqual({ rounds: ROUNDS, inBoth: 0, mismatched: 0 });
  });
});
