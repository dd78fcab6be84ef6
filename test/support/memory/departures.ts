/**
 * An in-memory `DepartureStore` (lib/store/departures.ts): departures due on the store's clock,
 * one per deterministic id (scheduling again moves the due time), each claimed by exactly one
 * caller, due ones first by due time. test/support/contracts/lifecycle.contract.ts runs the same
 * cases on the Redis adapter.
 *
 * @example
 * const clock = createManualClock();
 * const departures = createMemoryDepartureStore({ clock });
 * await departures.schedule([{ kind: 'offline', identity }], 10);
 * clock.advance(10_000);
 * await departures.claimDue(100); // [{ kind: 'offline', identity }]
 */
import { type Departure, type DepartureStore, departureId } from '../../../lib/store/departures';
import { type Clock, systemClock } from './clock';

/** The departure as the adapter reads it back: a fresh object with only the departure's own fields. */
function copy(d: Departure): Departure {
  const identity = { userId: d.identity.userId, username: d.identity.username, roles: [...d.identity.roles] };
  return d.kind === 'offline' ? { kind: 'offline', identity } : { kind: 'room', identity, roomId: d.roomId };
}

export function createMemoryDepartureStore({ clock = systemClock }: { clock?: Clock } = {}): DepartureStore {
  /** id → due time (ms) and the departure. */
  const pending = new Map<string, { due: number; departure: Departure }>();
  const cancel = (id: string) => pending.delete(id);
  return {
    async schedule(departures, afterSecs) {
      const due = clock.now() + Math.round(afterSecs * 1000);
      for (const d of departures) pending.set(departureId(d), { due, departure: copy(d) });
    },
    async cancelOffline(userId) {
      return cancel(JSON.stringify(['o', userId]));
    },
    async cancelRooms(userId, roomIds) {
      return roomIds.filter((room) => cancel(JSON.stringify(['r', userId, room]))).length;
    },
    async claimDue(limit) {
      const now = clock.now();
      // ZRANGEBYSCORE order: by due time, then by id.
      const due = [...pending]
        .filter(([, p]) => p.due <= now)
        .sort(([a, x], [b, y]) => x.due - y.due || (a < b ? -1 : a > b ? 1 : 0))
        .slice(0, limit);
      for (const [id] of due) pending.delete(id);
      return due.map(([, p]) => copy(p.departure));
    },
    pending: async () => pending.size,
  };
}
