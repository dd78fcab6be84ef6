/**
 * The in-memory lifecycle and liveness stores: the shared contracts (as the Redis adapters pass
 * them on a real Redis), then what only the fakes offer.
 */
import {
  type LifecycleHarness,
  lifecycleContract,
  livenessContract,
} from '../../support/contracts/lifecycle.contract';
import { ALICE } from '../../support/contracts/session-store.contract';
import { createManualClock } from '../../support/memory/clock';
import { createMemoryLifecycleStores } from '../../support/memory/lifecycle';
import { createMemoryLivenessStore } from '../../support/memory/liveness';
import { createMemorySessionStore, type MemorySessionStore } from '../../support/memory/session-store';

async function memoryHarness(): Promise<LifecycleHarness> {
  const clock = createManualClock();
  return {
    create({ reconnectTtlSecs }) {
      const sessions = createMemorySessionStore({ clock, connectionTtlSecs: 86400 });
      const lifecycle = createMemoryLifecycleStores({ clock, reconnectTtlSecs });
      // Two instances share one Redis: here, one state.
      return { lifecycle, second: lifecycle, sessions, liveness: createMemoryLivenessStore(sessions) };
    },
    advance: async (ms) => clock.advance(ms),
    now: () => clock.date(),
    loseRecord: async (space, id) => (space.sessions as MemorySessionStore).loseRecord(id),
    online: async (space) => (space.sessions as MemorySessionStore).online(),
  };
}

lifecycleContract('in-memory stores', memoryHarness);
livenessContract('in-memory store', memoryHarness);

describe('in-memory lifecycle stores', () => {
  it('keep the reconnection record as the adapter writes it, left_at on the clock', async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 10, 12, 0, 0));
    const { reconnect } = createMemoryLifecycleStores({ clock, reconnectTtlSecs: 300 });

    await reconnect.remember(ALICE.userId, ['room-a']);

    expect(reconnect.record(ALICE.userId, 'room-a')).toEqual({
      room_id: 'room-a',
      left_at: '2026-01-10T12:00:00.000Z',
    });
  });

  it('fail together, like the one Redis behind them, and recover together', async () => {
    const stores = createMemoryLifecycleStores({ reconnectTtlSecs: 300 });
    stores.faults.fail();

    await expect(stores.departures.claimDue(1)).rejects.toThrow('Connection is closed.');
    await expect(stores.reconnect.take('4')).rejects.toThrow('Connection is closed.');
    await expect(stores.order.admit('r', '4', 1)).rejects.toThrow('Connection is closed.');
    expect(stores.reconnect.record('4', 'r')).toBeNull();

    stores.faults.recover();
    await expect(stores.departures.claimDue(1)).resolves.toEqual([]);
  });
});
