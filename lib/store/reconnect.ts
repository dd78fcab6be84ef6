/**
 * Reconnection data (docs/decisions.md D10; the seed's `reconnect:{userId}:{gameId}`): when a
 * user's last connection in a room — or in its spectator set `spectators:{roomId}` — goes, the
 * room is remembered for a few minutes, so that the user's next authenticated connection is put
 * back into it at once, before the client's `rejoin_room` round trip.
 *
 * Keys (each with the reconnect TTL, 300 s by default):
 * - `reconnect:{userId}:{roomId}`  STRING JSON `{room_id, left_at}`: one record per room;
 * - `gw:reconnect:{userId}`        SET of the room ids with a record (so `take` needs no SCAN);
 * - `gw:room-removed:{roomId}`     STRING: the room was removed (`room_removed`); its records are void.
 *
 * Independent single-key commands only (Cluster-safe). A record is consumed with GETDEL, so two
 * connections authenticating at once put the user back once.
 */
import type { RedisClient } from '../redis';
import { spectatorsRoom } from './keys';

export interface ReconnectStore {
  /** Remembers that the user left these rooms (game rooms or `spectators:` pseudo-rooms). */
  remember(userId: string, roomIds: readonly string[]): Promise<void>;
  /** Consumes the user's records: the rooms to put the new connection back into (removed rooms left out). */
  take(userId: string): Promise<string[]>;
  /** The user left the room (leave event, kick, ban): nothing to put them back into, spectator set included. */
  forget(userId: string, roomId: string): Promise<void>;
  /** The room is gone (`room_removed`): nobody is put back into it. */
  roomRemoved(roomId: string): Promise<void>;
  /** The rooms with a record (not consumed): for tests and diagnostics. */
  peek(userId: string): Promise<string[]>;
}

export interface ReconnectStoreOptions {
  readonly redis: RedisClient;
  readonly ttlSecs: number;
  readonly keyPrefix?: string;
}

export function createReconnectStore({
  redis,
  ttlSecs,
  keyPrefix = '',
}: ReconnectStoreOptions): ReconnectStore {
  const record = (userId: string, roomId: string) => `${keyPrefix}reconnect:${userId}:${roomId}`;
  const index = (userId: string) => `${keyPrefix}gw:reconnect:${userId}`;
  const removed = (roomId: string) => `${keyPrefix}gw:room-removed:${roomId}`;
  /** `spectators:X` belongs to room X: a removed room voids both. */
  const gameRoomOf = (roomId: string) => roomId.replace(/^spectators:/, '');

  return {
    async remember(userId, roomIds) {
      if (roomIds.length === 0) return;
      const leftAt = new Date().toISOString();
      await Promise.all([
        ...roomIds.map((roomId) =>
          redis.set(
            record(userId, roomId),
            JSON.stringify({ room_id: roomId, left_at: leftAt }),
            'EX',
            ttlSecs,
          ),
        ),
        redis.sadd(index(userId), ...roomIds),
        redis.expire(index(userId), ttlSecs),
      ]);
    },

    async take(userId) {
      const roomIds = await redis.smembers(index(userId));
      if (roomIds.length === 0) return [];
      const [records, gone] = await Promise.all([
        Promise.all(roomIds.map((roomId) => redis.getdel(record(userId, roomId)))),
        Promise.all(roomIds.map((roomId) => redis.exists(removed(gameRoomOf(roomId))))),
        redis.srem(index(userId), ...roomIds),
      ]);
      return roomIds.filter((_, i) => records[i] !== null && gone[i] === 0);
    },

    async forget(userId, roomId) {
      const rooms = [roomId, spectatorsRoom(roomId)];
      await Promise.all([
        // One DEL per key: the two records may live in different Cluster slots.
        ...rooms.map((room) => redis.del(record(userId, room))),
        redis.srem(index(userId), ...rooms),
      ]);
    },

    async roomRemoved(roomId) {
      await redis.set(removed(gameRoomOf(roomId)), '1', 'EX', ttlSecs);
    },

    async peek(userId) {
      const roomIds = await redis.smembers(index(userId));
      const exists = await Promise.all(roomIds.map((roomId) => redis.exists(record(userId, roomId))));
      return roomIds.filter((_, i) => exists[i] === 1).sort();
    },
  };
}
