/**
 * In-memory `LifecycleStores` (lib/gateway/lifecycle.ts): departures, reconnection records and
 * membership order on one clock, with the same faults as the session store.
 *
 * @example
 * const clock = createManualClock();
 * const lifecycle = createMemoryLifecycleStores({ clock, reconnectTtlSecs: 300 });
 */
import type { LifecycleStores } from '../../../lib/gateway/lifecycle';
import type { DepartureStore } from '../../../lib/store/departures';
import type { MembershipOrder } from '../../../lib/store/membership-order';
import { type Clock, systemClock } from './clock';
import { createMemoryDepartureStore } from './departures';
import { type FaultControls, type FaultOptions, injectFaults } from './faults';
import { createMemoryMembershipOrder } from './membership-order';
import { createMemoryReconnectStore, type MemoryReconnectStore } from './reconnect';

export interface MemoryLifecycleStores extends LifecycleStores {
  readonly departures: DepartureStore;
  readonly reconnect: MemoryReconnectStore;
  readonly order: MembershipOrder;
  /** Faults of all three stores at once (they share one Redis in production). */
  readonly faults: FaultControls;
}

/** As lib/gateway/lifecycle.ts. */
const MEMBERSHIP_ORDER_TTL_SECS = 86_400;

export function createMemoryLifecycleStores({
  reconnectTtlSecs,
  clock = systemClock,
  faults: faultOptions,
}: {
  reconnectTtlSecs: number;
  clock?: Clock;
  faults?: FaultOptions;
}): MemoryLifecycleStores {
  const departures = createMemoryDepartureStore({ clock });
  const reconnect = createMemoryReconnectStore({ ttlSecs: reconnectTtlSecs, clock });
  const order = createMemoryMembershipOrder({ ttlSecs: MEMBERSHIP_ORDER_TTL_SECS, clock });
  // `record` is the test's own reading, not the port: it keeps working under faults.
  const controls = [departures, reconnect, order].map((s) =>
    injectFaults(s, { ...faultOptions, skip: ['record'] }),
  );
  const faults: FaultControls = {
    fail: (methods, error) => {
      for (const c of controls) c.fail(methods, error);
    },
    hang: (methods) => {
      for (const c of controls) c.hang(methods);
    },
    recover: () => {
      for (const c of controls) c.recover();
    },
  };
  return { departures, reconnect, order, faults };
}
