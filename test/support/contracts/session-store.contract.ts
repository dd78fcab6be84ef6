/**
 * The `SessionStore` contract (lib/store/session-store.ts), one suite for every adapter: the
 * in-memory fake (test/unit/memory/session-store.test.ts) and the Redis adapter on a real Redis
 * (test/integration/contracts/session-store.contract.test.ts), so the fake cannot promise what the
 * Lua scripts do not do. What only Redis can show — key names, TTLs, that nothing at all is left
 * behind — stays in test/integration/session-store.test.ts and store-hardening.test.ts.
 *
 * Besides the port, the harness reads the two contract keys other services read (`socket:{id}`,
 * `user:presence:{uid}`, `presence:online`) and breaks state the way production does (a record
 * lost to expiry, a cleanup that died half-way).
 */
import { randomBytes } from 'node:crypto';
import type { Identity } from '../../../lib/protocol/envelope';
import {
  type AuthResult,
  CONNECTION_LIMIT,
  LOBBY_LIMIT,
  type SessionStore,
} from '../../../lib/store/session-store';

export interface StoreLimits {
  readonly connections?: number;
  readonly lobbies?: number;
}

/** One key space, seen by two "Lambda containers" (two clients of one Redis; one fake). */
export interface StorePair {
  readonly store: SessionStore;
  readonly second: SessionStore;
}

export interface SessionStoreHarness {
  /** A fresh, empty key space with these limits (unlimited when absent). */
  create(limits?: StoreLimits): Promise<StorePair> | StorePair;
  /** Lets `ms` of Redis server time pass (the fake's clock moves; Redis is waited for). */
  advance(ms: number): Promise<void>;
  /** The connection record is gone (expired, evicted) while its sets and reverse index stay. */
  loseRecord(pair: StorePair, connectionId: string): Promise<void>;
  /** What a cleanup that died right after its claim leaves: the tombstone. */
  tombstone(pair: StorePair, connectionId: string): Promise<void>;
  /** `socket:{id}` parsed, or null. */
  session(pair: StorePair, connectionId: string): Promise<Record<string, unknown> | null>;
  /** `user:presence:{uid}` parsed, or null. */
  presence(pair: StorePair, userId: string): Promise<Record<string, unknown> | null>;
  /** `presence:online`, sorted. */
  online(pair: StorePair): Promise<string[]>;
  /** Rounds of the race cases (real concurrency on Redis; the fake needs few). */
  readonly raceRounds: number;
  close?(): Promise<void>;
}

export const ALICE: Identity = { userId: '4', username: 'Alice', roles: ['user'] };
export const BOB: Identity = { userId: '9', username: 'Bob', roles: ['user', 'vip'] };

/** An API Gateway-like connection id (base64: `+`, `/`, `=` occur). */
export const newConnectionId = () => randomBytes(10).toString('base64');

const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const sorted = (xs: readonly string[]) => [...xs].sort();

/** Declares the SessionStore contract's cases for one adapter. */
export function sessionStoreContract(name: string, setup: () => Promise<SessionStoreHarness>): void {
  describe(`SessionStore contract: ${name}`, () => {
    let h: SessionStoreHarness;
    let pair: StorePair;
    let store: SessionStore;
    let second: SessionStore;

    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.close?.();
    });
    beforeEach(async () => {
      pair = await h.create();
      ({ store, second } = pair);
    });

    /** `$connect` then, with an identity, `system.authenticate`. */
    async function connectAs(
      identity: Identity | null,
      on: SessionStore = store,
      connectedAt = new Date(),
    ): Promise<string> {
      const id = newConnectionId();
      await on.registerConnection(id, { connectedAt, bound: null });
      if (identity) await on.authenticate(id, identity, null, connectedAt, connectedAt.toISOString());
      return id;
    }

    async function gated(
      s: SessionStore,
      id: string,
      rate = { burst: 10, perSec: 0 },
      refreshWindowMs?: number,
    ) {
      const g = await s.gateMessage(id, rate, refreshWindowMs);
      if (!g) throw new Error(`gate: connection ${id} unknown to the store`);
      return g;
    }

    describe('the contract keys other services read', () => {
      it('writes socket:{id} as {user_id, username, connected_at, last_seen, roles}, in that order', async () => {
        const connectedAt = new Date('2026-01-23T18:29:59.501Z');
        const now = new Date('2026-01-23T18:30:00.250Z');
        const id = newConnectionId();
        await store.registerConnection(id, { connectedAt, bound: null });

        await store.authenticate(id, ALICE, null, now, connectedAt.toISOString());

        const session = await h.session(pair, id);
        expect(session).toEqual({
          user_id: '4',
          username: 'Alice',
          connected_at: '2026-01-23T18:29:59.501Z',
          last_seen: '2026-01-23T18:30:00.250Z',
          roles: ['user'],
        });
        expect(Object.keys(session!)).toEqual(['user_id', 'username', 'connected_at', 'last_seen', 'roles']);
      });

      it("puts the connection in its user's set and the user in presence:online", async () => {
        const id = await connectAs(ALICE);

        expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([id]);
        expect(await h.online(pair)).toEqual([ALICE.userId]);
      });

      it('refreshes last_seen (keeping connected_at) and writes user:presence:{uid} on heartbeat', async () => {
        const connectedAt = new Date('2026-01-23T18:29:59.501Z');
        const id = await connectAs(ALICE, store, connectedAt);
        const beat = new Date('2026-01-23T18:30:29.000Z');

        await store.heartbeat(id, ALICE, beat, connectedAt.toISOString());

        expect(await h.session(pair, id)).toMatchObject({
          connected_at: connectedAt.toISOString(),
          last_seen: beat.toISOString(),
        });
        const presence = await h.presence(pair, ALICE.userId);
        expect(presence).toEqual({
          status: 'online',
          last_seen: '2026-01-23T18:30:29.000Z',
          current_room: null,
          current_game: null,
        });
        expect(Object.keys(presence!)).toEqual(['status', 'last_seen', 'current_room', 'current_game']);
      });

      it('writes RFC 3339 UTC timestamps', async () => {
        const id = await connectAs(ALICE);
        await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

        const session = await h.session(pair, id);
        expect(session?.['connected_at']).toMatch(RFC3339_UTC);
        expect(session?.['last_seen']).toMatch(RFC3339_UTC);
        expect((await h.presence(pair, ALICE.userId))?.['last_seen']).toMatch(RFC3339_UTC);
      });

      it('does not recreate socket:{id} on a heartbeat after the session is gone', async () => {
        const id = await connectAs(ALICE);
        await store.removeConnection(id);

        await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

        expect(await h.session(pair, id)).toBeNull();
      });
    });

    describe('authentication and re-authentication', () => {
      it('reports the user coming online only for the first connection', async () => {
        const [first, next] = [await connectAs(null), await connectAs(null)];
        const now = new Date();

        const a = await store.authenticate(first, ALICE, null, now, now.toISOString());
        const b = await store.authenticate(next, ALICE, null, now, now.toISOString());

        expect(a).toEqual({ cameOnline: true, previous: null });
        expect(b).toEqual({ cameOnline: false, previous: null });
        expect(sorted(await store.connectionsOfUsers([ALICE.userId]))).toEqual(sorted([first, next]));
      });

      it('moves the connection to the new user when it re-authenticates as someone else', async () => {
        const id = await connectAs(ALICE);
        const now = new Date();

        const result = await store.authenticate(id, BOB, ALICE, now, now.toISOString());

        expect(result).toEqual({
          cameOnline: true,
          previous: { identity: ALICE, wentOffline: true, rooms: [] },
        });
        expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
        expect(await store.connectionsOfUsers([BOB.userId])).toEqual([id]);
        expect(await h.online(pair)).toEqual([BOB.userId]);
        expect(await h.session(pair, id)).toMatchObject({
          user_id: '9',
          username: 'Bob',
          roles: ['user', 'vip'],
        });
        expect((await gated(store, id)).identity).toEqual(BOB);
      });

      it('keeps the old user online after a re-authentication when they have another tab', async () => {
        const otherTab = await connectAs(ALICE);
        const id = await connectAs(ALICE);
        const now = new Date();

        const result = await store.authenticate(id, BOB, ALICE, now, now.toISOString());

        expect((result as AuthResult).previous).toEqual({ identity: ALICE, wentOffline: false, rooms: [] });
        expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([otherTab]);
        expect(await h.online(pair)).toEqual(sorted([ALICE.userId, BOB.userId]));
      });

      it("takes the connection out of the old user's rooms (not its lobbies) on re-authentication as someone else", async () => {
        const id = await connectAs(ALICE);
        const otherTab = await connectAs(ALICE);
        await store.joinRoom(ALICE.userId, 'room-a', { spectator: false });
        await store.joinRoom(ALICE.userId, 'room-b', { spectator: true });
        await store.joinLobby(id, '1');
        const now = new Date();

        const result = await store.authenticate(id, BOB, ALICE, now, now.toISOString());

        expect(sorted((result as AuthResult).previous?.rooms ?? [])).toEqual(['room-a', 'room-b']);
        expect(await store.roomsOf(id)).toEqual([]);
        expect(await store.roomConnections('room-a')).toEqual([otherTab]);
        expect(await store.roomConnections('room-b')).toEqual([otherTab]);
        expect(await store.roomConnections('spectators:room-b')).toEqual([otherTab]);
        expect(await store.lobbyConnections('1')).toEqual([id]);
      });

      it('writes nothing when the connection was removed before its authentication landed', async () => {
        // A $disconnect that overtook the $default carrying system.authenticate.
        const id = await connectAs(null);
        await store.removeConnection(id);
        const now = new Date();

        const result = await store.authenticate(id, ALICE, null, now, now.toISOString());

        expect(result).toBeNull();
        expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
        expect(await h.online(pair)).toEqual([]);
        expect(await h.session(pair, id)).toBeNull();
        expect(await store.gateMessage(id, { burst: 1, perSec: 0 })).toBeNull();
      });

      it('treats authenticating again as the same user as no transition', async () => {
        const id = await connectAs(ALICE);
        const now = new Date();

        const result = await store.authenticate(id, ALICE, ALICE, now, now.toISOString());

        expect(result).toEqual({ cameOnline: false, previous: null });
        expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([id]);
      });

      it('authenticates at most maxConnectionsPerUser connections per user, even when they arrive at once', async () => {
        const limited = await h.create({ connections: 16 });
        const ids = await Promise.all(Array.from({ length: 20 }, () => connectAs(null, limited.store)));
        const now = new Date();

        const results = await Promise.all(
          ids.map((id, i) =>
            (i % 2 ? limited.store : limited.second).authenticate(id, ALICE, null, now, now.toISOString()),
          ),
        );

        const refused = ids.filter((_, i) => results[i] === CONNECTION_LIMIT);
        expect(refused).toHaveLength(4);
        expect(await limited.store.connectionsOfUsers([ALICE.userId])).toHaveLength(16);
        // A refused connection stays anonymous: nothing of the user was written for it.
        for (const id of refused) {
          expect((await gated(limited.store, id)).identity).toBeNull();
          expect(await h.session(limited, id)).toBeNull();
        }
      });

      it('lets a connection already counted re-authenticate at the limit, and admits another once one leaves', async () => {
        const limited = await h.create({ connections: 2 });
        const [a, b, c] = [
          await connectAs(ALICE, limited.store),
          await connectAs(ALICE, limited.store),
          await connectAs(null, limited.store),
        ];
        const now = new Date();

        expect(await limited.store.authenticate(a, ALICE, ALICE, now, now.toISOString())).toEqual({
          cameOnline: false,
          previous: null,
        });
        expect(await limited.store.authenticate(c, ALICE, null, now, now.toISOString())).toBe(
          CONNECTION_LIMIT,
        );
        await limited.store.removeConnection(b);
        expect(await limited.store.authenticate(c, ALICE, null, now, now.toISOString())).toEqual({
          cameOnline: false,
          previous: null,
        });
      });
    });

    describe('presence with several tabs', () => {
      it('keeps the user in presence:online until the last connection goes', async () => {
        const [tab1, tab2] = [await connectAs(ALICE), await connectAs(ALICE)];

        const first = await store.removeConnection(tab1);
        expect(first?.wentOffline).toBe(false);
        expect(await h.online(pair)).toEqual([ALICE.userId]);

        const last = await store.removeConnection(tab2);
        expect(last?.wentOffline).toBe(true);
        expect(await h.online(pair)).toEqual([]);
      });

      it('reports the user going offline exactly once when the last two tabs close at the same time', async () => {
        const [tab1, tab2] = [await connectAs(ALICE), await connectAs(ALICE)];

        const [a, b] = await Promise.all([store.removeConnection(tab1), second.removeConnection(tab2)]);

        expect([a?.wentOffline, b?.wentOffline].filter(Boolean)).toHaveLength(1);
        expect(await h.online(pair)).toEqual([]);
      });

      it('does not touch other users', async () => {
        const alice = await connectAs(ALICE);
        await connectAs(BOB);

        await store.removeConnection(alice);

        expect(await h.online(pair)).toEqual([BOB.userId]);
      });
    });

    describe('removeConnection', () => {
      it('returns what the connection was, and null on a second call', async () => {
        const id = await connectAs(ALICE);

        const first = await store.removeConnection(id);
        const again = await store.removeConnection(id);

        expect(first).toEqual({ identity: ALICE, rooms: [], spectating: [], wentOffline: true });
        expect(again).toBeNull();
      });

      it('is claimed once when two containers remove the connection concurrently', async () => {
        const id = await connectAs(ALICE);

        const results = await Promise.all([store.removeConnection(id), second.removeConnection(id)]);

        expect(results.filter((r) => r !== null)).toEqual([
          { identity: ALICE, rooms: [], spectating: [], wentOffline: true },
        ]);
      });

      it('removes an anonymous connection from the broadcast set', async () => {
        const id = await connectAs(null);
        expect(await store.allConnections()).toEqual([id]);

        const removed = await store.removeConnection(id);

        expect(removed).toEqual({ identity: null, rooms: [], spectating: [], wentOffline: false });
        expect(await store.allConnections()).toEqual([]);
      });

      it('leaves every room and lobby and reports the game rooms and the spectator rooms apart', async () => {
        const id = await connectAs(ALICE);
        const bystander = await connectAs(BOB);
        await store.joinRoom(ALICE.userId, 'room-a', { spectator: false });
        await store.joinRoom(ALICE.userId, 'room-b', { spectator: true });
        await store.joinRoom(BOB.userId, 'room-a', { spectator: false });
        await store.joinLobby(id, '1');
        expect(sorted(await store.roomsOf(id))).toEqual(['room-a', 'room-b', 'spectators:room-b']);

        const removed = await store.removeConnection(id);

        expect(sorted(removed?.rooms ?? [])).toEqual(['room-a', 'room-b']);
        expect(removed?.spectating).toEqual(['spectators:room-b']);
        expect(await store.roomConnections('room-a')).toEqual([bystander]);
        expect(await store.roomConnections('room-b')).toEqual([]);
        expect(await store.roomConnections('spectators:room-b')).toEqual([]);
        expect(await store.lobbyConnections('1')).toEqual([]);
        expect(await h.session(pair, id)).toBeNull();
      });
    });

    describe('cleanup without the connection record (its reverse index)', () => {
      it('removes a connection whose record expired or was evicted from its user, rooms, lobbies and presence', async () => {
        const id = await connectAs(ALICE);
        const bystander = await connectAs(BOB);
        await store.joinRoom(ALICE.userId, 'room-a', { spectator: true });
        await store.joinRoom(BOB.userId, 'room-a', { spectator: false });
        await store.joinLobby(id, '7');
        await h.loseRecord(pair, id);

        const removed = await store.removeConnection(id);

        expect(removed).toEqual({
          identity: ALICE,
          rooms: ['room-a'],
          spectating: ['spectators:room-a'],
          wentOffline: true,
        });
        expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
        expect(await store.roomConnections('room-a')).toEqual([bystander]);
        expect(await store.roomConnections('spectators:room-a')).toEqual([]);
        expect(await store.lobbyConnections('7')).toEqual([]);
        expect(await h.online(pair)).toEqual([BOB.userId]);
        expect(await store.allConnections()).toEqual([bystander]);
      });

      it('announces such a removal once when a 410 and a $disconnect race', async () => {
        const id = await connectAs(ALICE);
        await h.loseRecord(pair, id);

        const results = await Promise.all([store.removeConnection(id), second.removeConnection(id)]);

        expect(results.filter((r) => r !== null)).toHaveLength(1);
        expect(await store.removeConnection(id)).toBeNull();
      });

      it('finishes a cleanup that died half-way (claimed, sets not yet left) quietly on the next call', async () => {
        const id = await connectAs(ALICE);
        await store.joinRoom(ALICE.userId, 'room-a', { spectator: false });
        await h.tombstone(pair, id);

        const removed = await store.removeConnection(id);

        expect(removed).toBeNull();
        expect(await store.roomConnections('room-a')).toEqual([]);
        expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
        expect(await store.allConnections()).toEqual([]);
        expect(await store.removeConnection(id)).toBeNull();
      });

      it('leaves presence:online to the announcer: a quiet caller does not take the user out', async () => {
        // The announcer died after its claim; the sweeper finds the user orphaned and announces
        // the offline (lib/gateway/sweeper.ts), which a quiet removal here would have lost.
        const id = await connectAs(ALICE);
        await h.tombstone(pair, id);

        await store.removeConnection(id);

        expect(await h.online(pair)).toEqual([ALICE.userId]);
        expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
      });

      it('treats a connection under cleanup as gone for frames, joins, authentication and the welcome', async () => {
        const id = await connectAs(null);
        await h.tombstone(pair, id);
        const now = new Date();

        expect(await store.gateMessage(id, { burst: 10, perSec: 0 })).toBeNull();
        expect(await store.authenticate(id, ALICE, null, now, now.toISOString())).toBeNull();
        expect(await store.claimWelcome(id)).toBe(false);
        expect(await store.welcomeState(id)).toBe('none');
        expect(await store.joinConnection(id, ['room-a'])).toEqual([]);
        await store.joinLobby(id, '1');
        expect(await store.lobbyConnections('1')).toEqual([]);
        expect(await store.roomConnections('room-a')).toEqual([]);
      });
    });

    describe('rooms and lobbies', () => {
      it('adds every connection of the user to a room, and to its spectators when spectating', async () => {
        const [tab1, tab2] = [await connectAs(ALICE), await connectAs(ALICE)];

        await store.joinRoom(ALICE.userId, 'room-a', { spectator: true });

        expect(sorted(await store.roomConnections('room-a'))).toEqual(sorted([tab1, tab2]));
        expect(sorted(await store.roomConnections('spectators:room-a'))).toEqual(sorted([tab1, tab2]));
        expect(sorted(await store.roomsOf(tab1))).toEqual(['room-a', 'spectators:room-a']);
      });

      it('joins nobody for a user without connections, and leaves out connections already gone', async () => {
        const live = await connectAs(ALICE);
        const dying = await connectAs(ALICE);
        await h.tombstone(pair, dying);

        await store.joinRoom(BOB.userId, 'room-a', { spectator: false });
        await store.joinRoom(ALICE.userId, 'room-b', { spectator: false });

        expect(await store.roomConnections('room-a')).toEqual([]);
        expect(await store.roomConnections('room-b')).toEqual([live]);
      });

      it('removes the user from the room and its spectators on leave', async () => {
        const id = await connectAs(ALICE);
        await store.joinRoom(ALICE.userId, 'room-a', { spectator: true });

        await store.leaveRoom(ALICE.userId, 'room-a');

        expect(await store.roomConnections('room-a')).toEqual([]);
        expect(await store.roomConnections('spectators:room-a')).toEqual([]);
        expect(await store.roomsOf(id)).toEqual([]);
      });

      it('puts one connection back into rooms (a reconnection) and reports them; none for a gone one', async () => {
        const id = await connectAs(ALICE);
        const gone = await connectAs(ALICE);
        await store.removeConnection(gone);

        expect(await store.joinConnection(id, ['room-a', 'spectators:room-b'])).toEqual([
          'room-a',
          'spectators:room-b',
        ]);
        expect(await store.joinConnection(gone, ['room-a'])).toEqual([]);
        expect(await store.joinConnection(id, [])).toEqual([]);

        expect(await store.roomConnections('room-a')).toEqual([id]);
        expect(await store.roomConnections('spectators:room-b')).toEqual([id]);
        expect(sorted(await store.roomsOf(id))).toEqual(['room-a', 'spectators:room-b']);
        const removed = await store.removeConnection(id);
        expect(removed).toMatchObject({ rooms: ['room-a'], spectating: ['spectators:room-b'] });
      });

      it('subscribes a connection to a lobby and unsubscribes it, and never a gone one', async () => {
        const id = await connectAs(ALICE);
        const gone = await connectAs(ALICE);
        await store.removeConnection(gone);

        expect(await store.joinLobby(id, '1')).toBeUndefined();
        await store.joinLobby(gone, '1');
        expect(await store.lobbyConnections('1')).toEqual([id]);

        await store.leaveLobby(id, '1');
        expect(await store.lobbyConnections('1')).toEqual([]);
      });

      it('subscribes a connection to at most maxLobbiesPerConnection lobbies and writes nothing beyond', async () => {
        const limited = await h.create({ lobbies: 8 });
        const id = await connectAs(ALICE, limited.store);

        const results: Array<undefined | typeof LOBBY_LIMIT> = [];
        for (let i = 1; i <= 10; i++) results.push(await limited.store.joinLobby(id, String(i)));
        // Joining one it already holds is not a new subscription.
        const again = await limited.store.joinLobby(id, '3');

        expect(results.filter((r) => r === LOBBY_LIMIT)).toHaveLength(2);
        expect(again).toBeUndefined();
        expect(await limited.store.lobbyConnections('9')).toEqual([]);
        expect(await limited.store.lobbyConnections('10')).toEqual([]);
        expect(await limited.store.lobbyConnections('8')).toEqual([id]);
        await limited.store.leaveLobby(id, '1');
        expect(await limited.store.joinLobby(id, '9')).toBeUndefined();
        expect(await limited.store.lobbyConnections('9')).toEqual([id]);
      });

      it('lists the connections of several users once each', async () => {
        const [a1, a2, b] = [await connectAs(ALICE), await connectAs(ALICE), await connectAs(BOB)];

        const conns = await store.connectionsOfUsers([ALICE.userId, BOB.userId, ALICE.userId, '404']);

        expect(sorted(conns)).toEqual(sorted([a1, a2, b]));
        expect(await store.connectionsOfUsers([])).toEqual([]);
      });
    });

    describe('rate-limit gate', () => {
      it('allows exactly the burst, then refuses', async () => {
        const id = await connectAs(ALICE);

        const allowed: boolean[] = [];
        for (let i = 0; i < 7; i++) allowed.push((await gated(store, id, { burst: 5, perSec: 0 })).allowed);

        expect(allowed).toEqual([true, true, true, true, true, false, false]);
      });

      it('refills fractionally: 0.7 s at 2 per second buys one message', async () => {
        const id = await connectAs(ALICE);
        const rate = { burst: 1, perSec: 2 };
        expect((await gated(store, id, rate)).allowed).toBe(true);
        expect((await gated(store, id, rate)).allowed).toBe(false);

        // The old gateway refilled whole seconds only: after 0.7 s it would still refuse.
        await h.advance(700);

        expect((await gated(store, id, rate)).allowed).toBe(true);
      });

      it('shares one bucket between two containers', async () => {
        const id = await connectAs(ALICE);
        const rate = { burst: 4, perSec: 0 };

        const allowed: boolean[] = [];
        for (let i = 0; i < 6; i++) allowed.push((await gated(i % 2 ? second : store, id, rate)).allowed);

        expect(allowed).toEqual([true, true, true, true, false, false]);
      });

      it('never lets more than the burst through under concurrent frames from two containers', async () => {
        const id = await connectAs(ALICE);
        const rate = { burst: 10, perSec: 0 };

        const gates = await Promise.all(
          Array.from({ length: 30 }, (_, i) => gated(i % 2 ? second : store, id, rate)),
        );

        expect(gates.filter((g) => g.allowed)).toHaveLength(10);
      });

      it('keeps separate buckets per connection', async () => {
        const [a, b] = [await connectAs(ALICE), await connectAs(ALICE)];
        const rate = { burst: 1, perSec: 0 };
        await gated(store, a, rate);

        expect((await gated(store, a, rate)).allowed).toBe(false);
        expect((await gated(store, b, rate)).allowed).toBe(true);
      });

      it('returns the identity, the identity bound at $connect and connected_at', async () => {
        const id = newConnectionId();
        const now = new Date('2026-01-23T18:29:59.501Z');
        await store.registerConnection(id, { connectedAt: now, bound: BOB });

        const before = await gated(store, id);
        await store.authenticate(id, BOB, null, now, before.connectedAt);
        const after = await gated(store, id);

        expect(before).toMatchObject({ identity: null, bound: BOB, connectedAt: now.toISOString() });
        expect(after).toMatchObject({ identity: BOB, bound: BOB });
      });

      it('forgets the bound identity on dropBinding and never re-creates a gone connection', async () => {
        const id = newConnectionId();
        await store.registerConnection(id, { connectedAt: new Date(), bound: BOB });
        const gone = await connectAs(null);
        await store.removeConnection(gone);

        await store.dropBinding(id);
        await store.dropBinding(gone);

        expect((await gated(store, id)).bound).toBeNull();
        expect(await store.gateMessage(gone, { burst: 1, perSec: 0 })).toBeNull();
      });

      it('asks the first heartbeat of a refresh window to refresh, not the next ones within it, in any container', async () => {
        const id = await connectAs(ALICE);
        const rate = { burst: 100, perSec: 100 };

        const refreshes = [];
        for (const on of [store, store, second]) refreshes.push((await gated(on, id, rate, 10_000)).refresh);

        expect(refreshes).toEqual([true, false, false]);
      });

      it('asks again once the window has passed', async () => {
        const id = await connectAs(ALICE);
        const rate = { burst: 100, perSec: 100 };
        expect((await gated(store, id, rate, 50)).refresh).toBe(true);
        expect((await gated(store, id, rate, 50)).refresh).toBe(false);

        await h.advance(80);

        expect((await gated(store, id, rate, 50)).refresh).toBe(true);
      });

      it('asks every heartbeat with a window of 0, never an anonymous one, and leaves other frames out', async () => {
        const rate = { burst: 100, perSec: 100 };
        const id = await connectAs(ALICE);
        expect((await gated(store, id, rate, 0)).refresh).toBe(true);
        expect((await gated(store, id, rate, 0)).refresh).toBe(true);
        const anonymous = await connectAs(null);
        expect((await gated(store, anonymous, rate, 10_000)).refresh).toBe(false);
        // A frame that is not a heartbeat is not asked and does not use the window up.
        const other = await connectAs(ALICE);
        expect((await gated(store, other, rate)).refresh).toBeUndefined();
        expect((await gated(store, other, rate, 10_000)).refresh).toBe(true);
      });

      it('does not ask a heartbeat the rate limit refused', async () => {
        const id = await connectAs(ALICE);
        const rate = { burst: 1, perSec: 0 };
        await gated(store, id, rate);

        expect(await gated(store, id, rate, 0)).toMatchObject({ allowed: false, refresh: false });
      });

      it('reports a connection the store has no record of as lost', async () => {
        // E.g. Redis restarted empty: the connection passed $connect, its state is gone.
        const id = newConnectionId();

        expect(await store.gateMessage(id, { burst: 10, perSec: 0 })).toBeNull();
        expect(await store.gateMessage(id, { burst: 10, perSec: 0 })).toBeNull();
        expect(await store.allConnections()).toEqual([]);
      });
    });

    describe('welcome claim', () => {
      it('lets the async welcome claim it once, and makes $default wait until it is sent', async () => {
        const id = await connectAs(null);

        expect(await store.claimWelcome(id)).toBe(true);
        expect(await second.claimWelcome(id)).toBe(false);
        expect(await store.welcomeState(id)).toBe('pending');
        expect((await gated(store, id)).welcome).toBe('pending');

        await store.markWelcomed(id);

        expect(await store.welcomeState(id)).toBe('done');
        expect((await gated(store, id)).welcome).toBe('done');
      });

      it('gives the welcome to the first frame when the client speaks first, and only to it', async () => {
        const id = await connectAs(null);

        const first = await gated(store, id);
        const next = await gated(second, id);

        expect(first.welcome).toBe('mine');
        expect(next.welcome).toBe('pending');
        expect(await store.claimWelcome(id)).toBe(false);

        await store.markWelcomed(id);

        expect((await gated(store, id)).welcome).toBe('done');
      });

      it('reports none for an unknown or removed connection and never resurrects it', async () => {
        const id = await connectAs(null);
        await store.removeConnection(id);

        await store.markWelcomed(id);

        expect(await store.welcomeState(id)).toBe('none');
        expect(await store.welcomeState(newConnectionId())).toBe('none');
        expect(await store.claimWelcome(id)).toBe(false);
        expect(await store.gateMessage(id, { burst: 1, perSec: 0 })).toBeNull();
      });
    });

    describe('chat messages and usernames', () => {
      it('remembers the sender of each delivered message; unknown ones are null, in order', async () => {
        await store.recordChatMessage('m1', '4');
        await store.recordChatMessage('m2', '9');

        expect(await store.chatMessageSenders(['m2', 'nope', 'm1'])).toEqual(['9', null, '4']);
        expect(await store.chatMessageSenders([])).toEqual([]);
      });

      it('names a user from any live session, and nobody once they are gone', async () => {
        const id = await connectAs(ALICE);
        expect(await store.usernameOf(ALICE.userId)).toBe('Alice');
        expect(await store.usernameOf(BOB.userId)).toBeNull();

        await store.removeConnection(id);

        expect(await store.usernameOf(ALICE.userId)).toBeNull();
      });

      it('answers ping', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });
    });

    describe('races, as concurrent operations from two containers', () => {
      it('keeps a user who reloads in presence:online (old tab removed while the new one authenticates)', async () => {
        let lost = 0;
        for (let round = 0; round < h.raceRounds; round++) {
          const user: Identity = { userId: String(1000 + round), username: `u${round}`, roles: [] };
          const oldTab = await connectAs(user);
          const newTab = newConnectionId();
          const now = new Date();
          await second.registerConnection(newTab, { connectedAt: now, bound: null });

          await Promise.all([
            store.removeConnection(oldTab),
            second.authenticate(newTab, user, null, now, now.toISOString()),
          ]);

          if (!(await h.online(pair)).includes(user.userId)) lost++;
        }
        expect({ rounds: h.raceRounds, lost }).toEqual({ rounds: h.raceRounds, lost: 0 });
      });

      it("reports the user's last connection going offline in the one removal announced when a 410 and $disconnect race", async () => {
        // Only the announced removal publishes (lib/gateway/cleanup.ts): if it said "still online",
        // nobody would ever publish presence.event.user_offline.
        const wrong: unknown[] = [];
        for (let round = 0; round < h.raceRounds; round++) {
          const user: Identity = { userId: String(9000 + round), username: `u${round}`, roles: [] };
          const id = await connectAs(user);

          const results = await Promise.all([store.removeConnection(id), second.removeConnection(id)]);

          const announced = results.filter((r) => r !== null);
          if (announced.length !== 1 || announced[0]?.wentOffline !== true) wrong.push(announced);
        }
        expect({ rounds: h.raceRounds, wrong }).toEqual({ rounds: h.raceRounds, wrong: [] });
        expect(await h.online(pair)).toEqual([]);
      });

      it('leaves a connection in exactly one user set after two concurrent authentications as different users', async () => {
        let inBoth = 0;
        let mismatched = 0;
        for (let round = 0; round < h.raceRounds; round++) {
          const a: Identity = { userId: String(5000 + 2 * round), username: 'A', roles: [] };
          const b: Identity = { userId: String(5001 + 2 * round), username: 'B', roles: [] };
          const id = await connectAs(null);
          const now = new Date();

          // Both frames passed the gate while the connection was anonymous (previous = null).
          await Promise.all([
            store.authenticate(id, a, null, now, now.toISOString()),
            second.authenticate(id, b, null, now, now.toISOString()),
          ]);

          const [inA, inB] = [
            (await store.connectionsOfUsers([a.userId])).includes(id),
            (await store.connectionsOfUsers([b.userId])).includes(id),
          ];
          const uid = (await gated(store, id)).identity?.userId;
          if (Number(inA) + Number(inB) !== 1) inBoth++;
          else if ((inA ? a.userId : b.userId) !== uid) mismatched++;
        }
        expect({ inBoth, mismatched }).toEqual({ inBoth: 0, mismatched: 0 });
      });
    });
  });
}
