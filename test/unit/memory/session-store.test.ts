/**
 * The in-memory SessionStore: the shared contract (as the Redis adapter passes it on a real
 * Redis), then what only the fake offers — its clock, TTLs and faults.
 */

import { ALICE, newConnectionId, sessionStoreContract } from '../../support/contracts/session-store.contract';
import { createManualClock } from '../../support/memory/clock';
import { createMemorySessionStore, type MemorySessionStore } from '../../support/memory/session-store';

const TTL = 86400;

sessionStoreContract('in-memory store', async () => {
  const clock = createManualClock();
  const fake = (pair: { store: unknown }) => pair.store as MemorySessionStore;
  return {
    raceRounds: 5,
    create(limits = {}) {
      const store = createMemorySessionStore({
        clock,
        connectionTtlSecs: TTL,
        maxConnectionsPerUser: limits.connections,
        maxLobbiesPerConnection: limits.lobbies,
      });
      // Two containers share one Redis: here, one state.
      return { store, second: store };
    },
    advance: async (ms) => clock.advance(ms),
    loseRecord: async (pair, id) => fake(pair).loseRecord(id),
    tombstone: async (pair, id) => fake(pair).tombstone(id),
    session: async (pair, id) => fake(pair).session(id),
    presence: async (pair, userId) => fake(pair).presenceOf(userId),
    online: async (pair) => fake(pair).online(),
  };
});

describe('in-memory store: clock, TTLs and faults', () => {
  const setup = () => {
    const clock = createManualClock();
    return { clock, store: createMemorySessionStore({ clock, connectionTtlSecs: 600 }) };
  };
  const connect = async (store: MemorySessionStore) => {
    const id = newConnectionId();
    const now = new Date();
    await store.registerConnection(id, { connectedAt: now, bound: null });
    await store.authenticate(id, ALICE, null, now, now.toISOString());
    return id;
  };

  it('expires a connection record after the connection TTL without frames, the reverse index after twice that', async () => {
    const { clock, store } = setup();
    const id = await connect(store);

    clock.advance(600_000);
    expect(await store.gateMessage(id, { burst: 1, perSec: 0 })).toBeNull();
    expect(store.state.index.has(id)).toBe(true);
    clock.advance(600_000);
    expect(store.state.index.has(id)).toBe(false);
  });

  it('keeps the record alive while frames arrive (each gate renews its TTL)', async () => {
    const { clock, store } = setup();
    const id = await connect(store);

    for (let i = 0; i < 5; i++) {
      clock.advance(500_000);
      expect(await store.gateMessage(id, { burst: 10, perSec: 1 })).not.toBeNull();
    }
  });

  it('lets user:presence:{uid} expire after 120 s', async () => {
    const { clock, store } = setup();
    const id = await connect(store);
    await store.heartbeat(id, ALICE, clock.date(), clock.date().toISOString());

    clock.advance(119_000);
    expect(store.presenceOf(ALICE.userId)).not.toBeNull();
    clock.advance(1_000);
    expect(store.presenceOf(ALICE.userId)).toBeNull();
  });

  it('fails every call like an unreachable Redis, or only the named ones, until it recovers', async () => {
    const { store } = setup();
    const id = await connect(store);

    store.faults.fail();
    await expect(store.gateMessage(id, { burst: 1, perSec: 0 })).rejects.toThrow('Connection is closed.');
    await expect(store.ping()).rejects.toThrow('Connection is closed.');
    expect(store.online()).toEqual([ALICE.userId]);

    store.faults.recover();
    store.faults.fail(['removeConnection'], Object.assign(new Error('WRONGTYPE'), { name: 'ReplyError' }));
    await expect(store.removeConnection(id)).rejects.toMatchObject({ name: 'ReplyError' });
    await expect(store.gateMessage(id, { burst: 1, perSec: 0 })).resolves.not.toBeNull();
  });

  it('hangs like a frozen Redis: a call rejects with "Command timed out" once the command timeout passes', async () => {
    jest.useFakeTimers();
    try {
      const store = createMemorySessionStore({ connectionTtlSecs: 600, faults: { timeoutMs: 1000 } });
      store.faults.hang(['gateMessage']);
      const outcome = store.gateMessage('x', { burst: 1, perSec: 0 }).catch((e: unknown) => e);

      await jest.advanceTimersByTimeAsync(1000);

      expect(await outcome).toEqual(new Error('Command timed out'));
    } finally {
      jest.useRealTimers();
    }
  });
});
