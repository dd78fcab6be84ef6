/**
 * An in-memory `SessionStore` (lib/store/session-store.ts) for unit tests, with the Redis
 * adapter's semantics (test/support/contracts/session-store.contract.ts runs the same cases on
 * both): the rate-limit bucket on the store's clock (fractional refill), the heartbeat refresh
 * window, the welcome claim, the
 * atomic identity swap, `CONNECTION_LIMIT` / `LOBBY_LIMIT` with nothing written, the tombstone of a
 * cleanup under way, the reverse index that outlives the connection record, idempotent removal
 * announced once, and TTLs on the clock.
 *
 * The state is modelled on the Redis keys of docs/architecture.md ("State in Redis"), one field
 * per key, so a test can look at it (`state`) and break it the way production breaks: a record
 * lost to expiry or eviction (`loseRecord`), a cleanup that died after claiming (`tombstone`).
 * Each call runs to completion before the next starts (JavaScript has no preemption and no method
 * awaits inside), so every operation is as atomic as the Redis scripts make the real ones.
 * `faults` makes calls fail or hang like an unreachable or frozen Redis.
 *
 * @example
 * const clock = createManualClock();
 * const store = createMemorySessionStore({ clock, connectionTtlSecs: 86400, maxConnectionsPerUser: 16 });
 * await store.registerConnection('abc=', { connectedAt: clock.date(), bound: null });
 * store.faults.fail(); // Redis down from here on
 */
import type { Identity } from '../../../lib/protocol/envelope';
import { createKeys, isSpectatorsRoom, spectatorsRoom } from '../../../lib/store/keys';
import {
  type AuthResult,
  CONNECTION_LIMIT,
  LOBBY_LIMIT,
  type MessageGate,
  type RemovedConnection,
  type SessionStore,
} from '../../../lib/store/session-store';
import { type Clock, ExpiringMap, systemClock } from './clock';
import { type FaultControls, type FaultOptions, injectFaults } from './faults';

const CHAT_MESSAGE_TTL_SECS = 7 * 86400;
const SOCKET_TTL_SECS = 86400;
const PRESENCE_TTL_SECS = 120;
const TOMBSTONE_TTL_SECS = 300;

/** `gw:conn:{id}`: everything about one connection. */
export interface ConnectionRecord {
  /** `at`: connected_at, ISO. */
  at: string;
  /** `uid`/`un`/`ro`. */
  identity: Identity | null;
  /** `buid`/`bun`/`bro`: bound at `$connect`. */
  bound: Identity | null;
  /** `tk`/`ts`: the rate-limit bucket (tokens, last refill in clock ms). */
  tokens?: number;
  lastFrameMs?: number;
  /** `hb`: when a heartbeat last refreshed the session keys (clock ms). */
  lastRefreshMs?: number;
  /** `w`: who sends the welcome (`default`: the first frame, `invoke`: the async welcome) or `done`. */
  welcome?: 'default' | 'invoke' | 'done';
  /** `r:{roomId}` fields (game rooms and `spectators:` pseudo-rooms). */
  rooms: Set<string>;
  /** `l:{lobbyId}` fields. */
  lobbies: Set<string>;
  /** `x`: claimed by a cleanup under way. */
  tombstone: boolean;
}

/** `gw:ix:{id}`: the reverse index, mirrored from the record with twice its TTL. */
export interface IndexRecord {
  identity: Identity | null;
  rooms: Set<string>;
  lobbies: Set<string>;
}

/** The keys of docs/architecture.md, one field each (read them; change them only to inject faults). */
export interface MemorySessionState {
  /** `gw:conn:{id}`. */
  readonly conn: ExpiringMap<string, ConnectionRecord>;
  /** `gw:ix:{id}`. */
  readonly index: ExpiringMap<string, IndexRecord>;
  /** `socket:{id}`: the JSON string, exactly as written. */
  readonly socket: ExpiringMap<string, string>;
  /** `user:sockets:{uid}`. */
  readonly userSockets: ExpiringMap<string, Set<string>>;
  /** `presence:online`. */
  readonly presenceOnline: Set<string>;
  /** `user:presence:{uid}`: the JSON string. */
  readonly userPresence: ExpiringMap<string, string>;
  /** `gw:connections`. */
  readonly connections: Set<string>;
  /** `room:sockets:{roomId}`. */
  readonly roomSockets: ExpiringMap<string, Set<string>>;
  /** `lobby:sockets:{lobbyId}`. */
  readonly lobbySockets: ExpiringMap<string, Set<string>>;
  /** `chat:msg:{messageId}`: the sender. */
  readonly chatMessages: ExpiringMap<string, string>;
}

export interface MemorySessionStore extends SessionStore {
  readonly state: MemorySessionState;
  readonly clock: Clock;
  readonly faults: FaultControls;
  /** The record is gone (expired, evicted, Redis restarted) while the sets and the reverse index stay. */
  loseRecord(connectionId: string): void;
  /** What a cleanup that died right after claiming leaves: the tombstone, every set untouched. */
  tombstone(connectionId: string): void;
  /** Parsed `socket:{id}`, or null. */
  session(connectionId: string): Record<string, unknown> | null;
  /** Parsed `user:presence:{uid}`, or null. */
  presenceOf(userId: string): Record<string, unknown> | null;
  /** `presence:online`, sorted. */
  online(): string[];
}

export interface MemorySessionStoreOptions {
  readonly connectionTtlSecs: number;
  readonly maxConnectionsPerUser?: number;
  readonly maxLobbiesPerConnection?: number;
  /** Redis server time: the bucket and the TTLs. Default the system clock. */
  readonly clock?: Clock;
  /** Only for `keys` (the Redis key names the port exposes); the state itself is not keyed by it. */
  readonly keyPrefix?: string;
  /** How `faults.hang` behaves (ioredis `commandTimeout`). */
  readonly faults?: FaultOptions;
}

const copyIdentity = (i: Identity): Identity => ({
  userId: i.userId,
  username: i.username,
  roles: [...i.roles],
});

export function createMemorySessionStore({
  connectionTtlSecs: ttl,
  maxConnectionsPerUser = Number.MAX_SAFE_INTEGER,
  maxLobbiesPerConnection = Number.MAX_SAFE_INTEGER,
  clock = systemClock,
  keyPrefix = '',
  faults: faultOptions,
}: MemorySessionStoreOptions): MemorySessionStore {
  const indexTtl = 2 * ttl;
  const state: MemorySessionState = {
    conn: new ExpiringMap(clock),
    index: new ExpiringMap(clock),
    socket: new ExpiringMap(clock),
    userSockets: new ExpiringMap(clock),
    presenceOnline: new Set(),
    userPresence: new ExpiringMap(clock),
    connections: new Set(),
    roomSockets: new ExpiringMap(clock),
    lobbySockets: new ExpiringMap(clock),
    chatMessages: new ExpiringMap(clock),
  };

  /** A record that exists and is not being removed. */
  const live = (id: string): ConnectionRecord | undefined => {
    const c = state.conn.get(id);
    return c && !c.tombstone ? c : undefined;
  };

  /** SADD + EXPIRE on a set key. */
  const addTo = (sets: ExpiringMap<string, Set<string>>, key: string, members: readonly string[]) => {
    const set = sets.get(key) ?? new Set<string>();
    for (const m of members) set.add(m);
    sets.set(key, set, ttl);
  };
  /** SREM; an emptied set is gone, as in Redis. Returns how many are left. */
  const removeFrom = (sets: ExpiringMap<string, Set<string>>, key: string, members: readonly string[]) => {
    const set = sets.get(key);
    if (!set) return 0;
    for (const m of members) set.delete(m);
    if (set.size === 0) sets.delete(key);
    return set.size;
  };
  const members = (sets: ExpiringMap<string, Set<string>>, key: string) => [...(sets.get(key) ?? [])];

  /** HSET on the reverse index (created when absent) and its TTL renewed. */
  const indexSet = (id: string, change: (ix: IndexRecord) => void) => {
    const ix = state.index.get(id) ?? {
      identity: null,
      rooms: new Set<string>(),
      lobbies: new Set<string>(),
    };
    change(ix);
    state.index.set(id, ix, indexTtl);
  };

  /** The connection leaves its user; true when that was the user's last connection (offline). */
  const detachFromUser = (id: string, userId: string): boolean => {
    if (removeFrom(state.userSockets, userId, [id]) !== 0) return false;
    return state.presenceOnline.delete(userId);
  };

  /** The connection leaves every room of its record; returns the game rooms. */
  const leaveAllRooms = (id: string): string[] => {
    const c = state.conn.get(id);
    const rooms = c ? [...c.rooms] : [];
    const ix = state.index.get(id);
    for (const room of rooms) {
      c?.rooms.delete(room);
      ix?.rooms.delete(room);
      removeFrom(state.roomSockets, room, [id]);
    }
    return rooms.filter((r) => !isSpectatorsRoom(r));
  };

  const socketJson = (identity: Identity, connectedAt: string, lastSeen: string) =>
    JSON.stringify({
      user_id: identity.userId,
      username: identity.username,
      connected_at: connectedAt,
      last_seen: lastSeen,
      roles: identity.roles,
    });

  const parsed = (raw: string | undefined): Record<string, unknown> | null => {
    if (raw === undefined) return null;
    try {
      return JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return null; // a foreign writer, as the adapter tolerates
    }
  };

  const store: SessionStore = {
    keys: createKeys(keyPrefix),

    async registerConnection(id, { connectedAt, bound }) {
      const c = state.conn.get(id) ?? {
        at: '',
        identity: null,
        bound: null,
        rooms: new Set<string>(),
        lobbies: new Set<string>(),
        tombstone: false,
      };
      c.at = connectedAt.toISOString();
      if (bound) c.bound = copyIdentity(bound);
      state.conn.set(id, c, ttl);
      state.connections.add(id);
    },

    async gateMessage(id, { burst, perSec }, refreshWindowMs): Promise<MessageGate | null> {
      const c = live(id);
      if (!c) return null;
      const now = clock.now();
      let tokens = c.tokens ?? burst;
      const last = c.lastFrameMs ?? now;
      if (now > last) tokens = Math.min(burst, tokens + ((now - last) / 1000) * perSec);
      const allowed = tokens >= 1;
      if (allowed) tokens -= 1;
      c.tokens = tokens;
      c.lastFrameMs = now;
      // A heartbeat's refresh: at most one per window, only for an authenticated connection.
      const asked = refreshWindowMs !== undefined;
      const refresh =
        asked &&
        allowed &&
        refreshWindowMs >= 0 &&
        c.identity !== null &&
        (c.lastRefreshMs === undefined || now - c.lastRefreshMs >= refreshWindowMs);
      if (refresh) c.lastRefreshMs = now;
      state.conn.expire(id, ttl);
      let welcome: MessageGate['welcome'];
      if (c.welcome === undefined) {
        c.welcome = 'default';
        welcome = 'mine';
      } else welcome = c.welcome === 'done' ? 'done' : 'pending';
      return {
        allowed,
        identity: c.identity && copyIdentity(c.identity),
        bound: c.bound && copyIdentity(c.bound),
        welcome,
        connectedAt: c.at,
        ...(asked ? { refresh } : {}),
      };
    },

    async markWelcomed(id) {
      const c = live(id);
      if (c) c.welcome = 'done';
    },

    async dropBinding(id) {
      const c = state.conn.get(id);
      if (c) c.bound = null;
    },

    async claimWelcome(id) {
      const c = live(id);
      if (!c || c.welcome !== undefined) return false;
      c.welcome = 'invoke';
      return true;
    },

    async welcomeState(id) {
      const c = live(id);
      if (!c) return 'none';
      return c.welcome === 'done' ? 'done' : 'pending';
    },

    async authenticate(
      id,
      identity,
      _previous,
      now,
      connectedAt,
    ): Promise<AuthResult | typeof CONNECTION_LIMIT | null> {
      // 1. A place in the user's set, under the limit.
      const userSet = state.userSockets.get(identity.userId);
      const already = userSet?.has(id) ?? false;
      if (!already && (userSet?.size ?? 0) >= maxConnectionsPerUser) return CONNECTION_LIMIT;
      // 2. The identity swapped on a live record; a removed connection gets nothing.
      const c = live(id);
      if (!c) return null;
      addTo(state.userSockets, identity.userId, [id]);
      const previous = c.identity;
      c.identity = copyIdentity(identity);
      let prev: AuthResult['previous'] = null;
      if (previous && previous.userId !== identity.userId) {
        prev = {
          identity: previous,
          wentOffline: detachFromUser(id, previous.userId),
          rooms: leaveAllRooms(id),
        };
      }
      // 3. The contract keys and the reverse index.
      state.socket.set(id, socketJson(identity, connectedAt, now.toISOString()), SOCKET_TTL_SECS);
      state.conn.expire(id, ttl);
      indexSet(id, (ix) => {
        ix.identity = copyIdentity(identity);
      });
      const cameOnline = !state.presenceOnline.has(identity.userId);
      state.presenceOnline.add(identity.userId);
      return { cameOnline, previous: prev };
    },

    async heartbeat(id, identity, now, connectedAt) {
      const nowIso = now.toISOString();
      if (state.socket.has(id))
        state.socket.set(id, socketJson(identity, connectedAt, nowIso), SOCKET_TTL_SECS);
      state.userPresence.set(
        identity.userId,
        JSON.stringify({ status: 'online', last_seen: nowIso, current_room: null, current_game: null }),
        PRESENCE_TTL_SECS,
      );
      state.userSockets.expire(identity.userId, ttl);
      state.index.expire(id, indexTtl);
    },

    async removeConnection(id): Promise<RemovedConnection | null> {
      const c = state.conn.get(id);
      const ix = state.index.get(id);
      let announce: boolean;
      if (c) {
        // Whoever claims first announces; a later caller redoes the removals quietly.
        announce = !c.tombstone;
        c.tombstone = true;
        state.conn.expire(id, TOMBSTONE_TTL_SECS);
      } else {
        // No record: the reverse index alone, taken by exactly one caller.
        announce = ix !== undefined;
      }
      const identity = c?.identity ?? ix?.identity ?? null;
      const rooms = new Set([...(ix?.rooms ?? []), ...(c?.rooms ?? [])]);
      const lobbies = new Set([...(ix?.lobbies ?? []), ...(c?.lobbies ?? [])]);
      // presence:online is the announcer's alone (see the adapter): a quiet caller leaves it.
      let wentOffline = false;
      if (identity && announce) wentOffline = detachFromUser(id, identity.userId);
      else if (identity) removeFrom(state.userSockets, identity.userId, [id]);
      state.socket.delete(id);
      state.connections.delete(id);
      for (const room of rooms) removeFrom(state.roomSockets, room, [id]);
      for (const lobby of lobbies) removeFrom(state.lobbySockets, lobby, [id]);
      state.conn.delete(id);
      state.index.delete(id);
      if (!announce) return null;
      return {
        identity: identity && copyIdentity(identity),
        rooms: [...rooms].filter((r) => !isSpectatorsRoom(r)),
        spectating: [...rooms].filter(isSpectatorsRoom),
        wentOffline,
      };
    },

    async roomsOf(id) {
      return [...(state.conn.get(id)?.rooms ?? [])];
    },

    async connectionsOfUsers(userIds) {
      return [...new Set(userIds.flatMap((u) => members(state.userSockets, u)))];
    },
    roomConnections: async (roomId) => members(state.roomSockets, roomId),
    lobbyConnections: async (lobbyId) => members(state.lobbySockets, lobbyId),
    allConnections: async () => [...state.connections],

    async joinRoom(userId, roomId, { spectator }) {
      const conns = members(state.userSockets, userId);
      if (conns.length === 0) return;
      const rooms = spectator ? [roomId, spectatorsRoom(roomId)] : [roomId];
      for (const room of rooms) addTo(state.roomSockets, room, conns);
      // Only live connections stay in the rooms and have them in their record and index.
      for (const id of conns) {
        const c = live(id);
        if (!c) {
          for (const room of rooms) removeFrom(state.roomSockets, room, [id]);
          continue;
        }
        for (const room of rooms) c.rooms.add(room);
        indexSet(id, (ix) => {
          for (const room of rooms) ix.rooms.add(room);
        });
      }
    },

    async leaveRoom(userId, roomId) {
      const conns = members(state.userSockets, userId);
      const rooms = [roomId, spectatorsRoom(roomId)];
      for (const room of rooms) removeFrom(state.roomSockets, room, conns);
      for (const id of conns) {
        for (const room of rooms) {
          state.conn.get(id)?.rooms.delete(room);
          state.index.get(id)?.rooms.delete(room);
        }
      }
    },

    async joinConnection(id, roomIds) {
      if (roomIds.length === 0) return [];
      const c = live(id);
      if (!c) {
        // As the adapter: the rooms let the connection go (a stale membership too).
        for (const room of roomIds) removeFrom(state.roomSockets, room, [id]);
        return [];
      }
      for (const room of roomIds) {
        addTo(state.roomSockets, room, [id]);
        c.rooms.add(room);
      }
      indexSet(id, (ix) => {
        for (const room of roomIds) ix.rooms.add(room);
      });
      return [...roomIds];
    },

    async joinLobby(id, lobbyId) {
      const c = live(id);
      if (!c) return undefined;
      if (!c.lobbies.has(lobbyId)) {
        if (c.lobbies.size >= maxLobbiesPerConnection) return LOBBY_LIMIT;
        c.lobbies.add(lobbyId);
      }
      addTo(state.lobbySockets, lobbyId, [id]);
      indexSet(id, (ix) => {
        ix.lobbies.add(lobbyId);
      });
      return undefined;
    },

    async leaveLobby(id, lobbyId) {
      removeFrom(state.lobbySockets, lobbyId, [id]);
      state.conn.get(id)?.lobbies.delete(lobbyId);
      state.index.get(id)?.lobbies.delete(lobbyId);
    },

    async recordChatMessage(messageId, senderId) {
      state.chatMessages.set(messageId, senderId, CHAT_MESSAGE_TTL_SECS);
    },

    chatMessageSenders: async (messageIds) => messageIds.map((m) => state.chatMessages.get(m) ?? null),

    async usernameOf(userId) {
      for (const id of members(state.userSockets, userId)) {
        const username = parsed(state.socket.get(id))?.['username'];
        if (typeof username === 'string') return username;
      }
      return null;
    },

    async ping() {},
  };
  // Only the port's methods fail; the test's own helpers below keep working.
  const faults = injectFaults(store, faultOptions);
  return Object.assign(store, {
    state,
    clock,
    faults,
    loseRecord(id: string) {
      state.conn.delete(id);
    },
    tombstone(id: string) {
      const c = state.conn.get(id);
      if (!c) throw new Error(`tombstone: no record of ${id}`);
      c.tombstone = true;
      state.conn.expire(id, TOMBSTONE_TTL_SECS);
    },
    session: (id: string) => parsed(state.socket.get(id)),
    presenceOf: (userId: string) => parsed(state.userPresence.get(userId)),
    online: () => [...state.presenceOnline].sort(),
  });
}
