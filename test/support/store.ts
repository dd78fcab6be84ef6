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
