/**
 * The contracts of the stores behind connections that come and go (docs/decisions.md D10): the
 * `LifecycleStores` of lib/gateway/lifecycle.ts (pending departures, reconnection records,
 * membership order) and the sweeper's `LivenessStore` (lib/store/liveness.ts). One suite for every
 * adapter: the in-memory fakes (test/unit/memory/lifecycle.test.ts) and the Redis adapters
 * (test/integration/contracts/lifecycle.contract.test.ts).
 */
import type { LifecycleStores } from '../../../lib/gateway/lifecycle';
import type { Identity } from '../../../lib/protocol/envelope';
import type { Departure } from '../../../lib/store/departures';
import type { LivenessStore } from '../../../lib/store/liveness';
import type { SessionStore } from '../../../lib/store/session-store';
import { ALICE, BOB, newConnectionId } from './session-store.contract';

/** One key space seen by two instances (two clients of one Redis; one fake). */
export interface LifecycleSpace {
  readonly lifecycle: LifecycleStores;
  readonly second: LifecycleStores;
  /** The session store and liveness store of the same key space. */
  readonly sessions: SessionStore;
  readonly liveness: LivenessStore;
}

export interface LifecycleHarness {
  /** A fresh key space; reconnection records live `reconnectTtlSecs`. */
  create(opts: { reconnectTtlSecs: number }): Promise<LifecycleSpace> | LifecycleSpace;
  /** Lets `ms` of Redis server time pass. */
  advance(ms: number): Promise<void>;
  /** Redis server time now (for connection times the sweeper compares with its frames). */
  now(): Date;
  /** The connection record is gone (expired, evicted) while its sets stay. */
  loseRecord(space: LifecycleSpace, connectionId: string): Promise<void>;
  /** `presence:online`, sorted. */
  online(space: LifecycleSpace): Promise<string[]>;
  close?(): Promise<void>;
}

const offline = (identity: Identity): Departure => ({ kind: 'offline', identity });
const room = (identity: Identity, roomId: string): Departure => ({ kind: 'room', identity, roomId });
const sorted = <T>(xs: readonly T[]) => [...xs].sort();

function withSpace(setup: () => Promise<LifecycleHarness>, reconnectTtlSecs = 300) {
  const t = {} as { h: LifecycleHarness; s: LifecycleSpace };
  beforeAll(async () => {
    t.h = await setup();
  });
  afterAll(async () => {
    await t.h?.close?.();
  });
  beforeEach(async () => {
    t.s = await t.h.create({ reconnectTtlSecs });
  });
  return t;
}

/** Declares the LifecycleStores contract's cases for one adapter. */
export function lifecycleContract(name: string, setup: () => Promise<LifecycleHarness>): void {
  describe(`LifecycleStores contract: ${name}`, () => {
    const t = withSpace(setup, 1);

    describe('departures', () => {
      it('hands out a departure once it is due, once, as it was scheduled', async () => {
        const { departures } = t.s.lifecycle;
        // A second of grace: far more than the next call takes, even on a loaded machine.
        await departures.schedule([offline(ALICE), room(ALICE, 'room-a')], 1);

        expect(await departures.claimDue(100)).toEqual([]);
        expect(await departures.pending()).toBe(2);
        await t.h.advance(1100);

        const claimed = await departures.claimDue(100);

        expect(sorted(claimed.map((d) => JSON.stringify(d)))).toEqual(
          sorted([offline(ALICE), room(ALICE, 'room-a')].map((d) => JSON.stringify(d))),
        );
        expect(await departures.claimDue(100)).toEqual([]);
        expect(await departures.pending()).toBe(0);
      });

      it('moves a pending departure when it is scheduled again (one per user, or per user and room)', async () => {
        const { departures } = t.s.lifecycle;
        await departures.schedule([offline(ALICE), room(ALICE, 'room-a')], 0.2);

        await departures.schedule([offline({ ...ALICE, username: 'Alice again' }), room(ALICE, 'room-a')], 2);
        await t.h.advance(300);

        expect(await departures.pending()).toBe(2);
        expect(await departures.claimDue(100)).toEqual([]);
      });

      it("cancels a user's pending offline departure, reporting whether one was pending", async () => {
        const { departures } = t.s.lifecycle;
        await departures.schedule([offline(ALICE), room(ALICE, 'room-a'), offline(BOB)], 0.1);

        expect(await departures.cancelOffline(ALICE.userId)).toBe(true);
        expect(await departures.cancelOffline(ALICE.userId)).toBe(false);
        await t.h.advance(200);

        expect(sorted((await departures.claimDue(100)).map((d) => JSON.stringify(d)))).toEqual(
          sorted([room(ALICE, 'room-a'), offline(BOB)].map((d) => JSON.stringify(d))),
        );
      });

      it('cancels the room departures of a user for the rooms named, counting those pending', async () => {
        const { departures } = t.s.lifecycle;
        await departures.schedule(
          [room(ALICE, 'room-a'), room(ALICE, 'room-b'), room(BOB, 'room-a'), offline(ALICE)],
          0.1,
        );

        expect(await departures.cancelRooms(ALICE.userId, ['room-a', 'room-c'])).toBe(1);
        expect(await departures.cancelRooms(ALICE.userId, [])).toBe(0);
        await t.h.advance(200);

        expect(sorted((await departures.claimDue(100)).map((d) => JSON.stringify(d)))).toEqual(
          sorted([room(ALICE, 'room-b'), room(BOB, 'room-a'), offline(ALICE)].map((d) => JSON.stringify(d))),
        );
      });

      it('claims at most `limit` at a time, those due first first', async () => {
        const { departures } = t.s.lifecycle;
        await departures.schedule([room(ALICE, 'early')], 0.05);
        await t.h.advance(20);
        await departures.schedule([room(ALICE, 'r1'), room(ALICE, 'r2'), room(ALICE, 'r3')], 0.1);
        await t.h.advance(200);

        const first = await departures.claimDue(2);
        const rest = await departures.claimDue(2);

        expect(first).toHaveLength(2);
        expect(first[0]).toEqual(room(ALICE, 'early'));
        expect(rest).toHaveLength(2);
        expect(sorted([...first, ...rest].map((d) => (d.kind === 'room' ? d.roomId : '')))).toEqual([
          'early',
          'r1',
          'r2',
          'r3',
        ]);
      });

      it('gives each due departure to exactly one of two instances claiming at once', async () => {
        const ids = Array.from({ length: 40 }, (_, i) => `room-${i}`);
        await t.s.lifecycle.departures.schedule(
          ids.map((r) => room(ALICE, r)),
          0.05,
        );
        await t.h.advance(100);

        const claims = await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? t.s.second : t.s.lifecycle).departures.claimDue(7)),
        );
        const more = await t.s.lifecycle.departures.claimDue(100);

        const all = [...claims.flat(), ...more].map((d) => (d.kind === 'room' ? d.roomId : ''));
        expect(sorted(all)).toEqual(sorted(ids));
      });

      it('does nothing for an empty schedule', async () => {
        await t.s.lifecycle.departures.schedule([], 0);
        expect(await t.s.lifecycle.departures.pending()).toBe(0);
      });
    });

    describe('reconnection records', () => {
      it('hands the rooms a user left to their next connection, once', async () => {
        const { reconnect } = t.s.lifecycle;
        await reconnect.remember(ALICE.userId, ['room-a', 'spectators:room-b']);
        await reconnect.remember(ALICE.userId, []);

        expect(await reconnect.peek(ALICE.userId)).toEqual(['room-a', 'spectators:room-b']);
        expect(sorted(await reconnect.take(ALICE.userId))).toEqual(['room-a', 'spectators:room-b']);
        expect(await reconnect.take(ALICE.userId)).toEqual([]);
        expect(await reconnect.peek(ALICE.userId)).toEqual([]);
        expect(await reconnect.take(BOB.userId)).toEqual([]);
      });

      it('hands them out once when two connections authenticate at the same time', async () => {
        await t.s.lifecycle.reconnect.remember(ALICE.userId, ['room-a', 'room-b', 'room-c']);

        const [a, b] = await Promise.all([
          t.s.lifecycle.reconnect.take(ALICE.userId),
          t.s.second.reconnect.take(ALICE.userId),
        ]);

        expect(sorted([...a, ...b])).toEqual(['room-a', 'room-b', 'room-c']);
      });

      it('forgets a room the user left for good, its spectator set included, and nothing else', async () => {
        const { reconnect } = t.s.lifecycle;
        await reconnect.remember(ALICE.userId, ['room-a', 'spectators:room-a', 'room-b']);

        await reconnect.forget(ALICE.userId, 'room-a');

        expect(await reconnect.take(ALICE.userId)).toEqual(['room-b']);
      });

      it('puts nobody back into a removed room or its spectator set', async () => {
        const { reconnect } = t.s.lifecycle;
        await reconnect.remember(ALICE.userId, ['room-a', 'spectators:room-a', 'room-b']);
        await reconnect.remember(BOB.userId, ['room-a']);

        await reconnect.roomRemoved('room-a');

        expect(await reconnect.take(ALICE.userId)).toEqual(['room-b']);
        expect(await reconnect.take(BOB.userId)).toEqual([]);
      });

      it('lets the records expire after the reconnect TTL', async () => {
        await t.s.lifecycle.reconnect.remember(ALICE.userId, ['room-a']);

        await t.h.advance(1100);

        expect(await t.s.lifecycle.reconnect.peek(ALICE.userId)).toEqual([]);
        expect(await t.s.lifecycle.reconnect.take(ALICE.userId)).toEqual([]);
      });
    });

    describe('membership order', () => {
      it('applies changes of a (room, user) pair unless a newer one was applied; equal ones apply', async () => {
        const { order } = t.s.lifecycle;

        expect(await order.admit('room-a', ALICE.userId, 2000)).toBe(true);
        expect(await order.admit('room-a', ALICE.userId, 1999)).toBe(false);
        expect(await order.admit('room-a', ALICE.userId, 2000)).toBe(true);
        expect(await order.admit('room-a', ALICE.userId, 3000)).toBe(true);
        expect(await order.admit('room-a', ALICE.userId, 2500)).toBe(false);
        // A refused change records nothing: the newest applied stays the bar.
        expect(await t.s.second.order.admit('room-a', ALICE.userId, 3000)).toBe(true);
      });

      it('orders each pair on its own', async () => {
        const { order } = t.s.lifecycle;
        await order.admit('room-a', ALICE.userId, 5000);

        expect(await order.admit('room-b', ALICE.userId, 1000)).toBe(true);
        expect(await order.admit('room-a', BOB.userId, 1000)).toBe(true);
      });
    });
  });
}

/** Declares the LivenessStore contract's cases for one adapter. */
export function livenessContract(name: string, setup: () => Promise<LifecycleHarness>): void {
  describe(`LivenessStore contract: ${name}`, () => {
    const t = withSpace(setup);

    async function connect(identity: Identity | null, connectedAt = t.h.now()): Promise<string> {
      const id = newConnectionId();
      await t.s.sessions.registerConnection(id, { connectedAt, bound: null });
      if (identity)
        await t.s.sessions.authenticate(id, identity, null, connectedAt, connectedAt.toISOString());
      return id;
    }

    async function scanAll(count: number, onPage?: () => Promise<void>) {
      const seen = [];
      let cursor = '0';
      do {
        const { cursor: next, page } = await t.s.liveness.scanConnections(cursor, count);
        seen.push(...page);
        cursor = next;
        await onPage?.();
      } while (cursor !== '0');
      return seen;
    }

    it('pages through every open connection with when it opened and its last frame', async () => {
      const hourAgo = new Date(t.h.now().getTime() - 3_600_000);
      const quiet = await connect(null, hourAgo);
      const talking = await connect(ALICE, hourAgo);
      const others = await Promise.all([connect(BOB), connect(null), connect(null)]);
      await t.s.sessions.gateMessage(talking, { burst: 10, perSec: 1 });

      const seen = await scanAll(2);

      expect(sorted(seen.map((a) => a.connectionId))).toEqual(sorted([quiet, talking, ...others]));
      const of = (id: string) => seen.find((a) => a.connectionId === id)!;
      expect(of(quiet)).toEqual({
        connectionId: quiet,
        connectedAtMs: hourAgo.getTime(),
        lastFrameMs: hourAgo.getTime(),
      });
      expect(of(talking).connectedAtMs).toBe(hourAgo.getTime());
      expect(of(talking).lastFrameMs).toBeGreaterThan(hourAgo.getTime() + 3_500_000);
    });

    it('reports a connection whose record is gone with neither time', async () => {
      const id = await connect(ALICE);
      await t.h.loseRecord(t.s, id);

      expect(await scanAll(10)).toEqual([
        { connectionId: id, connectedAtMs: undefined, lastFrameMs: undefined },
      ]);
    });

    it('still returns every connection present throughout a scan that removes connections as it goes', async () => {
      const ids = await Promise.all(Array.from({ length: 12 }, () => connect(null)));
      const removed = new Set<string>();

      const seen = await scanAll(3, async () => {
        // A sweep cleaning up what it just read, and more.
        const victim = ids.find((id) => !removed.has(id));
        if (victim) {
          removed.add(victim);
          await t.s.sessions.removeConnection(victim);
        }
      });

      const kept = ids.filter((id) => !removed.has(id));
      const seenIds = new Set(seen.map((a) => a.connectionId));
      expect(kept.filter((id) => !seenIds.has(id))).toEqual([]);
    });

    it('finds users in presence:online none of whose connections has a record, pruning the dead ids', async () => {
      const gone = await connect(ALICE);
      const alive = await connect(BOB);
      const dead = await connect(BOB);
      await t.h.loseRecord(t.s, gone);
      await t.h.loseRecord(t.s, dead);

      const scan = async () => {
        const orphans: string[] = [];
        let cursor = '0';
        do {
          const page = await t.s.liveness.scanOrphanedPresence(cursor, 1);
          orphans.push(...page.orphans);
          cursor = page.cursor;
        } while (cursor !== '0');
        return orphans;
      };

      expect(await scan()).toEqual([ALICE.userId]);
      expect(await t.s.sessions.connectionsOfUsers([BOB.userId])).toEqual([alive]);
      expect(await t.s.sessions.connectionsOfUsers([ALICE.userId])).toEqual([]);
      // Pruned to no connection at all, the user is still an orphan until dropped.
      expect(await scan()).toEqual([ALICE.userId]);
    });

    it('drops a user from presence:online only while they have no connection', async () => {
      const id = await connect(ALICE);

      expect(await t.s.liveness.dropPresence(ALICE.userId)).toBe(false);
      expect(await t.h.online(t.s)).toEqual([ALICE.userId]);
      await t.h.loseRecord(t.s, id);
      await t.s.liveness.scanOrphanedPresence('0', 100);

      expect(await t.s.liveness.dropPresence(ALICE.userId)).toBe(true);
      expect(await t.s.liveness.dropPresence(ALICE.userId)).toBe(false);
      expect(await t.h.online(t.s)).toEqual([]);
    });

    it('lets one caller sweep per interval', async () => {
      expect(await t.s.liveness.claimSweep(1000)).toBe(true);
      expect(await t.s.liveness.claimSweep(1000)).toBe(false);

      await t.h.advance(1100);

      expect(await t.s.liveness.claimSweep(1000)).toBe(true);
    });
  });
}
