/**
 * The session store under the faults of docs/decisions.md D9, against a real Redis, where only
 * Redis can tell: the cleanups that find the connection hash gone or half-removed leave no key
 * behind, every key a connection can leave has a TTL, and the welcome stops once the connection
 * is known gone. The port-level behaviour of the same faults and races (the reverse index, the
 * tombstone, the limits, concurrent authentications and reloads) is the shared suite of
 * test/support/contracts/session-store.contract.ts, run on this adapter in
 * test/integration/contracts/session-store.contract.test.ts and on the in-memory fake.
 * Every test gets its own key prefix.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../lib/config';
import { createLifecycleStores } from '../../lib/gateway/lifecycle';
import { sweep } from '../../lib/gateway/sweeper';
import { deliverWelcome } from '../../lib/gateway/welcome';
import { silentLogger } from '../../lib/logger';
import { createMetrics } from '../../lib/metrics';
import type { Identity } from '../../lib/protocol/envelope';
import type { ClientPusher } from '../../lib/push/pusher';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createLivenessStore } from '../../lib/store/liveness';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { ALICE, newConnectionId } from '../support/contracts/session-store.contract';
import { createMemoryPublisher } from '../support/memory/publisher';
import { keysWithPrefix } from '../support/store';

const TTL = 86400;

let redis: RedisClient;
/** A second client: a second Lambda container sharing the same Redis. */
let redis2: RedisClient;
let prefix: string;
let store: SessionStore;
let store2: SessionStore;

const newRedis = () =>
  createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
const storeOn = (client: RedisClient) =>
  createSessionStore({ redis: client, connectionTtlSecs: TTL, keyPrefix: prefix });

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
  it('leaves no key behind when a 410 and a $disconnect race for a connection whose hash expired', async () => {
    const id = await connectAs(store, ALICE);
    await store.joinRoom(ALICE.userId, 'room-a', { spectator: true });
    await store.joinLobby(id, '7');
    await redis.del(store.keys.conn(id));

    await Promise.all([store.removeConnection(id), store2.removeConnection(id)]);

    expect(await keysWithPrefix(redis, prefix)).toEqual([]);
  });

  it('finishes a cleanup that died half-way (claimed, sets not yet left); the sweep announces the offline and nothing is left', async () => {
    const id = await connectAs(store, ALICE);
    await store.joinRoom(ALICE.userId, 'room-a', { spectator: false });
    await redis.hset(store.keys.conn(id), 'x', '1');
    await redis.expire(store.keys.conn(id), 300);

    await store.removeConnection(id);
    // presence:online was the dead announcer's to fix: the user is an orphan for the sweeper.
    expect(await keysWithPrefix(redis, prefix)).toEqual([store.keys.presenceOnline()]);
    const publisher = createMemoryPublisher();
    const config = loadConfig({ REDIS_KEY_PREFIX: prefix });
    const outcome = await sweep({
      config,
      store,
      lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: prefix }),
      publisher,
      logger: silentLogger,
      metrics: createMetrics(),
      newId: randomUUID,
      now: () => new Date(),
      liveness: createLivenessStore({ redis, keyPrefix: prefix }),
      probe: null,
    });

    expect(outcome).toMatchObject({ presenceDropped: 1 });
    expect(publisher.envelopes('gateway.presence')).toMatchObject([
      { event_type: 'presence.event.user_offline', actor: { user_id: ALICE.userId } },
    ]);
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
