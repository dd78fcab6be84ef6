/**
 * An in-memory `ReconnectStore` (lib/store/reconnect.ts): one record per (user, room) with the
 * reconnect TTL on the store's clock, consumed once by `take`, voided by `forget` (the room and its
 * spectator set) and by `roomRemoved` (for the TTL). test/support/contracts/lifecycle.contract.ts
 * runs the same cases on the Redis adapter.
 */
import { spectatorsRoom } from '../../../lib/store/keys';
import type { ReconnectStore } from '../../../lib/store/reconnect';
import { type Clock, ExpiringMap, systemClock } from './clock';

export interface MemoryReconnectStore extends ReconnectStore {
  /** The record `reconnect:{userId}:{roomId}` as the adapter writes it (`{room_id, left_at}`), or null. */
  record(userId: string, roomId: string): { room_id: string; left_at: string } | null;
}

/** `spectators:X` belongs to room X: a removed room voids both. */
const gameRoomOf = (roomId: string) => roomId.replace(/^spectators:/, '');

export function createMemoryReconnectStore({
  ttlSecs,
  clock = systemClock,
}: {
  ttlSecs: number;
  clock?: Clock;
}): MemoryReconnectStore {
  const records = new ExpiringMap<string, { room_id: string; left_at: string }>(clock);
  /** `gw:reconnect:{userId}`: the rooms with a record. */
  const index = new ExpiringMap<string, Set<string>>(clock);
  const removed = new ExpiringMap<string, true>(clock);
  const key = (userId: string, roomId: string) => JSON.stringify([userId, roomId]);
  const unindex = (userId: string, roomIds: readonly string[]) => {
    const set = index.get(userId);
    if (!set) return;
    for (const r of roomIds) set.delete(r);
    if (set.size === 0) index.delete(userId);
  };

  return {
    async remember(userId, roomIds) {
      if (roomIds.length === 0) return;
      const leftAt = new Date(clock.now()).toISOString();
      for (const roomId of roomIds)
        records.set(key(userId, roomId), { room_id: roomId, left_at: leftAt }, ttlSecs);
      const set = index.get(userId) ?? new Set<string>();
      for (const roomId of roomIds) set.add(roomId);
      index.set(userId, set, ttlSecs);
    },
    async take(userId) {
      const roomIds = [...(index.get(userId) ?? [])];
      const found = roomIds.filter((roomId) => records.delete(key(userId, roomId)));
      unindex(userId, roomIds);
      return found.filter((roomId) => !removed.has(gameRoomOf(roomId)));
    },
    async forget(userId, roomId) {
      const rooms = [roomId, spectatorsRoom(roomId)];
      for (const room of rooms) records.delete(key(userId, room));
      unindex(userId, rooms);
    },
    async roomRemoved(roomId) {
      removed.set(gameRoomOf(roomId), true, ttlSecs);
    },
    async peek(userId) {
      return [...(index.get(userId) ?? [])].filter((roomId) => records.has(key(userId, roomId))).sort();
    },
    record: (userId, roomId) => records.get(key(userId, roomId)) ?? null,
  };
}
