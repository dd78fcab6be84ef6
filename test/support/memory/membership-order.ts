/**
 * An in-memory `MembershipOrder` (lib/store/membership-order.ts): per (room, user) the timestamp
 * of the last change applied, remembered for `ttlSecs` on the store's clock; an older change is
 * refused, an equal or newer one applied. test/support/contracts/lifecycle.contract.ts runs the
 * same cases on the Redis adapter.
 */
import type { MembershipOrder } from '../../../lib/store/membership-order';
import { type Clock, ExpiringMap, systemClock } from './clock';

export function createMemoryMembershipOrder({
  ttlSecs,
  clock = systemClock,
}: {
  ttlSecs: number;
  clock?: Clock;
}): MembershipOrder {
  const last = new ExpiringMap<string, number>(clock);
  return {
    async admit(roomId, userId, atMs) {
      const k = JSON.stringify([roomId, userId]);
      const applied = last.get(k);
      if (applied !== undefined && atMs < applied) return false;
      last.set(k, atMs, ttlSecs);
      return true;
    },
  };
}
