/**
 * The LifecycleStores and LivenessStore contracts against the Redis adapters on a real Redis: what
 * the in-memory fakes promise (test/unit/memory/lifecycle.test.ts) is what the scripts do. Every
 * key space is its own prefix; the "second instance" is a second client on it. Time is Redis
 * server time, so the cases wait for it.
 */
import { randomUUID } from 'node:crypto';
import { createLifecycleStores } from '../../../lib/gateway/lifecycle';
import { silentLogger } from '../../../lib/logger';
import { createRedisClient } from '../../../lib/redis';
import { createLivenessStore } from '../../../lib/store/liveness';
import { createSessionStore } from '../../../lib/store/session-store';
import {
  type LifecycleHarness,
  lifecycleContract,
  livenessContract,
} from '../../support/contracts/lifecycle.contract';
import { keysWithPrefix } from '../../support/store';

async function redisHarness(): Promise<LifecycleHarness> {
  const newRedis = () =>
    createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
  const redis = newRedis();
  const redis2 = newRedis();
  const prefixes: string[] = [];
  return {
    create({ reconnectTtlSecs }) {
      const keyPrefix = `it:contract:lifecycle:${randomUUID()}:`;
      prefixes.push(keyPrefix);
      const sessions = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix });
      return {
        lifecycle: createLifecycleStores({ redis, reconnectTtlSecs, keyPrefix }),
        second: createLifecycleStores({ redis: redis2, reconnectTtlSecs, keyPrefix }),
        sessions,
        liveness: createLivenessStore({ redis, keyPrefix }),
      };
    },
    advance: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => new Date(),
    async loseRecord(space, id) {
      await redis.del(space.sessions.keys.conn(id));
    },
    online: async (space) => (await redis.smembers(space.sessions.keys.presenceOnline())).sort(),
    async close() {
      for (const prefix of prefixes) {
        const keys = await keysWithPrefix(redis, prefix);
        if (keys.length > 0) await redis.del(...keys);
      }
      await Promise.all([redis.quit(), redis2.quit()]);
    },
  };
}

lifecycleContract('Redis adapters', redisHarness);
livenessContract('Redis adapter', redisHarness);
