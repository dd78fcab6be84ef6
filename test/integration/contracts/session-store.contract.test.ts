/**
 * The SessionStore contract against the Redis adapter on a real Redis: what the in-memory fake
 * promises (test/unit/memory/session-store.test.ts) is what the Lua scripts do. Every key space is
 * its own prefix; "two containers" are two clients on it.
 */
import { randomUUID } from 'node:crypto';
import { silentLogger } from '../../../lib/logger';
import { createRedisClient, type RedisClient } from '../../../lib/redis';
import { createSessionStore } from '../../../lib/store/session-store';
import { type StorePair, sessionStoreContract } from '../../support/contracts/session-store.contract';
import { keysWithPrefix } from '../../support/store';

const TTL = 86400;

sessionStoreContract('Redis adapter', async () => {
  const newRedis = () =>
    createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
  const redis = newRedis();
  const redis2 = newRedis();
  const prefixes: string[] = [];
  const json = async (key: string) => {
    const raw = await redis.get(key);
    return raw === null ? null : (JSON.parse(raw) as Record<string, unknown>);
  };
  return {
    raceRounds: 150,
    create(limits = {}) {
      const keyPrefix = `it:contract:store:${randomUUID()}:`;
      prefixes.push(keyPrefix);
      const on = (client: RedisClient) =>
        createSessionStore({
          redis: client,
          connectionTtlSecs: TTL,
          keyPrefix,
          maxConnectionsPerUser: limits.connections,
          maxLobbiesPerConnection: limits.lobbies,
        });
      return { store: on(redis), second: on(redis2) };
    },
    advance: (ms) => new Promise((r) => setTimeout(r, ms)),
    async loseRecord({ store }: StorePair, id) {
      await redis.del(store.keys.conn(id));
    },
    async tombstone({ store }, id) {
      await redis.hset(store.keys.conn(id), 'x', '1');
      await redis.expire(store.keys.conn(id), 300);
    },
    session: ({ store }, id) => json(store.keys.socket(id)),
    presence: ({ store }, userId) => json(store.keys.userPresence(userId)),
    online: async ({ store }) => (await redis.smembers(store.keys.presenceOnline())).sort(),
    async close() {
      for (const prefix of prefixes) {
        const keys = await keysWithPrefix(redis, prefix);
        if (keys.length > 0) await redis.del(...keys);
      }
      await Promise.all([redis.quit(), redis2.quit()]);
    },
  };
});
