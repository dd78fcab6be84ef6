import type { RedisClient } from '../../lib/redis';
import type { SessionStore } from '../../lib/store/session-store';

/** Every key under `prefix`, sorted (SCAN, never KEYS). */
export async function keysWithPrefix(redis: RedisClient, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.sort();
}

/**
 * What `$connect` and `system.authenticate` leave in the store: the connection `id`, authenticated
 * as `userId` (username `user<id>`) when a user is given.
 */
export async function connectAs(
  store: SessionStore,
  id: string,
  userId?: string,
  username = `user${userId}`,
): Promise<string> {
  const now = new Date();
  await store.registerConnection(id, { connectedAt: now, bound: null });
  if (userId)
    await store.authenticate(id, { userId, username, roles: ['user'] }, null, now, now.toISOString());
  return id;
}

/** Every key under `prefix` whose name contains one of `ids`, and every set that has one as a member. */
export async function tracesOf(
  redis: RedisClient,
  prefix: string,
  ids: readonly string[],
): Promise<string[]> {
  const traces: string[] = [];
  for (const key of await keysWithPrefix(redis, prefix)) {
    if (ids.some((id) => key.includes(id))) {
      traces.push(key);
    } else if ((await redis.type(key)) === 'set') {
      const members = await redis.smembers(key);
      for (const id of ids) if (members.includes(id)) traces.push(`${key} ∋ ${id}`);
    }
  }
  return traces.sort();
}
