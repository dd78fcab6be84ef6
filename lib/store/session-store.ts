import type { Identity } from '../protocol/envelope';
import type { RedisClient } from '../redis';
import { createKeys, isSpectatorsRoom, type Keys, spectatorsRoom } from './keys';

/** What `$default` learns about its connection in one round trip. */
export interface MessageGate {
  /** False when the rate-limit bucket was empty: the frame is dropped. */
  readonly allowed: boolean;
  /** True when Redis had no record of the connection (e.g. after a Redis restart); it was re-created anonymous. */
  readonly recreated: boolean;
  readonly identity: Identity | null;
  /** Identity bound at `$connect` from a verified token or cookie. */
  readonly bound: Identity | null;
  /** `mine`: this caller must send the welcome now; `pending`: another invocation is sending it; `done`. */
  readonly welcome: 'mine' | 'pending' | 'done';
  readonly connectedAt: string;
}

export interface RemovedConnection {
  readonly identity: Identity | null;
  /** Game rooms the connection was in (spectator pseudo-rooms excluded). */
  readonly rooms: readonly string[];
  /** Spectator pseudo-rooms (`spectators:<roomId>`) the connection was in (reconnection data, D10). */
  readonly spectating: readonly string[];
  /** True when this was the user's last connection (presence went offline). */
  readonly wentOffline: boolean;
}

export interface AuthResult {
  /** True when the user had no other connection (presence went online). */
  readonly cameOnline: boolean;
  /**
   * Set when the connection was authenticated as another user before (re-authentication). The
   * connection left that user's game rooms (`rooms`, spectator pseudo-rooms excluded), as on a disconnect.
   */
  readonly previous: { identity: Identity; wentOffline: boolean; rooms: readonly string[] } | null;
}

/**
 * The Redis-backed state of connections, users, presence, rooms and lobbies (the `SessionStore` port).
 *
 * @example
 * const store = createSessionStore({ redis, connectionTtlSecs: 86400 });
 * await store.registerConnection('abc=', { connectedAt: new Date(), bound: null });
 */
export interface SessionStore {
  readonly keys: Keys;
  registerConnection(
    connectionId: string,
    init: { connectedAt: Date; bound: Identity | null },
  ): Promise<void>;
  /** Rate limit (token bucket, atomic) + the connection's identity + the welcome claim, in one round trip. */
  gateMessage(connectionId: string, rate: { burst: number; perSec: number }): Promise<MessageGate>;
  markWelcomed(connectionId: string): Promise<void>;
  /** Forgets the identity bound at `$connect` (never re-creates a gone connection). */
  dropBinding(connectionId: string): Promise<void>;
  /** Claims the welcome for the async welcome invocation; false when already claimed. */
  claimWelcome(connectionId: string): Promise<boolean>;
  welcomeState(connectionId: string): Promise<'none' | 'pending' | 'done'>;
  /** Stores the connection's identity; null (nothing written) when the connection is already gone. */
  authenticate(
    connectionId: string,
    identity: Identity,
    previous: Identity | null,
    now: Date,
    connectedAt: string,
  ): Promise<AuthResult | null>;
  heartbeat(connectionId: string, identity: Identity, now: Date, connectedAt: string): Promise<void>;
  /** Removes every key of the connection. Idempotent: a second call returns null. */
  removeConnection(connectionId: string): Promise<RemovedConnection | null>;
  roomsOf(connectionId: string): Promise<string[]>;
  connectionsOfUsers(userIds: readonly string[]): Promise<string[]>;
  roomConnections(roomId: string): Promise<string[]>;
  lobbyConnections(lobbyId: string): Promise<string[]>;
  allConnections(): Promise<string[]>;
  /** Adds every connection of the user to the room (and optionally its spectators). */
  joinRoom(userId: string, roomId: string, opts: { spectator: boolean }): Promise<void>;
  /** Removes every connection of the user from the room and its spectators. */
  leaveRoom(userId: string, roomId: string): Promise<void>;
  /**
   * Puts one connection into rooms (game rooms or `spectators:` pseudo-rooms) — a reconnection
   * (docs/decisions.md D10). Returns the rooms it was put into: none when the connection is gone.
   */
  joinConnection(connectionId: string, roomIds: readonly string[]): Promise<string[]>;
  joinLobby(connectionId: string, lobbyId: string): Promise<void>;
  leaveLobby(connectionId: string, lobbyId: string): Promise<void>;
  recordChatMessage(messageId: string, senderId: string): Promise<void>;
  chatMessageSenders(messageIds: readonly string[]): Promise<Array<string | null>>;
  /** Display name of a user from any live session (`user:sockets` → `socket:`), or null. */
  usernameOf(userId: string): Promise<string | null>;
  ping(): Promise<void>;
}

const CHAT_MESSAGE_TTL_SECS = 7 * 86400;
const SOCKET_TTL_SECS = 86400;
const PRESENCE_TTL_SECS = 120;

/**
 * One script per hot path, each on the single `conn` hash (Cluster-safe). Server time (TIME)
 * keeps the bucket consistent across Lambda instances whose clocks differ.
 * Returns {allowed, recreated, uid, un, ro, buid, bun, bro, welcome, at}.
 */
const GATE_SCRIPT = `
local k = KEYS[1]
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local recreated = 0
if redis.call('EXISTS', k) == 0 then
  redis.call('HSET', k, 'at', ARGV[4], 'tk', burst, 'ts', now, 'w', 'done')
  redis.call('EXPIRE', k, ttl)
  recreated = 1
end
local v = redis.call('HMGET', k, 'tk', 'ts', 'uid', 'un', 'ro', 'buid', 'bun', 'bro', 'w', 'at')
local tk = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
if now > ts then tk = math.min(burst, tk + (now - ts) / 1000 * rate) end
local allowed = 0
if tk >= 1 then
  tk = tk - 1
  allowed = 1
end
redis.call('HSET', k, 'tk', tostring(tk), 'ts', now)
-- Any frame is activity: the connection's record lives on (heartbeats need no extra command for it).
redis.call('EXPIRE', k, ttl)
local w = v[9]
if not w then
  redis.call('HSET', k, 'w', 'default')
  w = 'mine'
end
return {allowed, recreated, v[3], v[4], v[5], v[6], v[7], v[8], w, v[10]}
`;

/** HGETALL + DEL in one step, so concurrent $disconnect and 410 cleanups clean (and publish) once. */
const CLAIM_SCRIPT = `
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then redis.call('DEL', KEYS[1]) end
return h
`;

/** HSET (field, value, …) only on a live connection: never resurrect a removed one as a hash without TTL. */
const HSET_IF_EXISTS_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
  return 1
end
return 0
`;

type ScriptClient = RedisClient & {
  wsgGate(
    key: string,
    burst: number,
    perSec: number,
    ttl: number,
    at: string,
  ): Promise<Array<string | number | null>>;
  wsgClaim(key: string): Promise<string[]>;
  wsgHsetx(key: string, ...fieldsAndValues: string[]): Promise<number>;
};

/** Room ids from the connection hash's field names (`r:<roomId>`: the reverse index). */
const roomsIn = (fields: readonly string[]) =>
  fields.filter((f) => f.startsWith('r:')).map((f) => f.slice(2));

function identityFrom(uid: unknown, un: unknown, ro: unknown): Identity | null {
  if (typeof uid !== 'string' || uid === '') return null;
  let roles: string[] = [];
  if (typeof ro === 'string') {
    try {
      const parsed: unknown = JSON.parse(ro);
      if (Array.isArray(parsed)) roles = parsed.filter((r): r is string => typeof r === 'string');
    } catch {
      roles = [];
    }
  }
  return { userId: uid, username: typeof un === 'string' ? un : '', roles };
}

export interface SessionStoreOptions {
  redis: RedisClient;
  /** TTL of the connection hash and routing sets; refreshed by heartbeats and joins. */
  connectionTtlSecs: number;
  keyPrefix?: string;
}

export function createSessionStore({
  redis,
  connectionTtlSecs,
  keyPrefix = '',
}: SessionStoreOptions): SessionStore {
  const keys = createKeys(keyPrefix);
  const r = redis as ScriptClient;
  if (!('wsgGate' in r)) {
    redis.defineCommand('wsgGate', { numberOfKeys: 1, lua: GATE_SCRIPT });
    redis.defineCommand('wsgClaim', { numberOfKeys: 1, lua: CLAIM_SCRIPT });
    redis.defineCommand('wsgHsetx', { numberOfKeys: 1, lua: HSET_IF_EXISTS_SCRIPT });
  }
  const ttl = connectionTtlSecs;

  const socketJson = (identity: Identity, connectedAt: string, lastSeen: string) =>
    JSON.stringify({
      user_id: identity.userId,
      username: identity.username,
      connected_at: connectedAt,
      last_seen: lastSeen,
      roles: identity.roles,
    });

  const presenceJson = (lastSeen: string) =>
    JSON.stringify({ status: 'online', last_seen: lastSeen, current_room: null, current_game: null });

  /** Removes a connection from a user's set; reports whether the user has no connection left. */
  async function detachFromUser(connectionId: string, userId: string): Promise<boolean> {
    const [, left] = await Promise.all([
      redis.srem(keys.userSockets(userId), connectionId),
      redis.scard(keys.userSockets(userId)),
    ]);
    if (left !== 0) return false;
    // Only the caller that actually removes the user from the set reports the transition.
    return (await redis.srem(keys.presenceOnline(), userId)) === 1;
  }

  /** Takes a connection out of every game room (and spectator room) it is in; returns the game rooms. */
  async function leaveAllRooms(connectionId: string): Promise<string[]> {
    const k = keys.conn(connectionId);
    const rooms = roomsIn(await redis.hkeys(k));
    if (rooms.length === 0) return [];
    await Promise.all([
      redis.hdel(k, ...rooms.map((room) => `r:${room}`)),
      ...rooms.map((room) => redis.srem(keys.roomSockets(room), connectionId)),
    ]);
    return rooms.filter((room) => !isSpectatorsRoom(room));
  }

  const smembersMany = async (setKeys: string[]): Promise<string[]> => {
    const lists = await Promise.all(setKeys.map((k) => redis.smembers(k)));
    return [...new Set(lists.flat())];
  };

  return {
    keys,

    async registerConnection(connectionId, { connectedAt, bound }) {
      const k = keys.conn(connectionId);
      const fields: Record<string, string> = { at: connectedAt.toISOString() };
      if (bound)
        Object.assign(fields, { buid: bound.userId, bun: bound.username, bro: JSON.stringify(bound.roles) });
      await Promise.all([
        redis.hset(k, fields),
        redis.expire(k, ttl),
        redis.sadd(keys.connections(), connectionId),
      ]);
    },

    async gateMessage(connectionId, { burst, perSec }) {
      const v = await r.wsgGate(keys.conn(connectionId), burst, perSec, ttl, new Date().toISOString());
      const recreated = v[1] === 1;
      if (recreated) await redis.sadd(keys.connections(), connectionId);
      const w = v[8];
      return {
        allowed: v[0] === 1,
        recreated,
        identity: identityFrom(v[2], v[3], v[4]),
        bound: identityFrom(v[5], v[6], v[7]),
        welcome: w === 'mine' ? 'mine' : w === 'done' ? 'done' : 'pending',
        connectedAt: typeof v[9] === 'string' ? v[9] : new Date().toISOString(),
      };
    },

    async dropBinding(connectionId) {
      await redis.hdel(keys.conn(connectionId), 'buid', 'bun', 'bro');
    },

    async markWelcomed(connectionId) {
      await r.wsgHsetx(keys.conn(connectionId), 'w', 'done');
    },

    async claimWelcome(connectionId) {
      return (await redis.hsetnx(keys.conn(connectionId), 'w', 'invoke')) === 1;
    },

    async welcomeState(connectionId) {
      const w = await redis.hget(keys.conn(connectionId), 'w');
      return w === null ? 'none' : w === 'done' ? 'done' : 'pending';
    },

    async authenticate(connectionId, identity, previous, now, connectedAt) {
      const k = keys.conn(connectionId);
      // A $disconnect may overtake the $default carrying this authenticate: the identity goes on the
      // connection record only while it exists, so a removed connection is never brought back.
      const live = await r.wsgHsetx(
        k,
        'uid',
        identity.userId,
        'un',
        identity.username,
        'ro',
        JSON.stringify(identity.roles),
      );
      if (live === 0) return null;
      let prev: AuthResult['previous'] = null;
      if (previous && previous.userId !== identity.userId) {
        // The connection stops being the old user's: it leaves their presence and their rooms.
        const [wentOffline, rooms] = await Promise.all([
          detachFromUser(connectionId, previous.userId),
          leaveAllRooms(connectionId),
        ]);
        prev = { identity: previous, wentOffline, rooms };
      }
      const nowIso = now.toISOString();
      const [, , , added] = await Promise.all([
        redis.set(
          keys.socket(connectionId),
          socketJson(identity, connectedAt, nowIso),
          'EX',
          SOCKET_TTL_SECS,
        ),
        redis.expire(k, ttl),
        redis.sadd(keys.userSockets(identity.userId), connectionId),
        redis.sadd(keys.presenceOnline(), identity.userId),
        redis.expire(keys.userSockets(identity.userId), ttl),
      ]);
      // Removed meanwhile: that removal may have run before the writes above, so undo them here.
      if ((await redis.exists(k)) === 0) {
        await Promise.all([
          detachFromUser(connectionId, identity.userId),
          redis.del(keys.socket(connectionId)),
        ]);
        return null;
      }
      return { cameOnline: added === 1, previous: prev };
    },

    async heartbeat(connectionId, identity, now, connectedAt) {
      const nowIso = now.toISOString();
      await Promise.all([
        // XX: like the old gateway, only refresh a session that still exists.
        redis.set(
          keys.socket(connectionId),
          socketJson(identity, connectedAt, nowIso),
          'EX',
          SOCKET_TTL_SECS,
          'XX',
        ),
        redis.set(keys.userPresence(identity.userId), presenceJson(nowIso), 'EX', PRESENCE_TTL_SECS),
        redis.expire(keys.userSockets(identity.userId), ttl),
      ]);
    },

    async removeConnection(connectionId) {
      const flat = await r.wsgClaim(keys.conn(connectionId));
      // Always drop the membership in the broadcast set, even when the hash was already gone.
      if (flat.length === 0) {
        await Promise.all([
          redis.srem(keys.connections(), connectionId),
          redis.del(keys.socket(connectionId)),
        ]);
        return null;
      }
      const h: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
      const roomIds: string[] = [];
      const lobbyIds: string[] = [];
      for (const f of Object.keys(h)) {
        if (f.startsWith('r:')) roomIds.push(f.slice(2));
        else if (f.startsWith('l:')) lobbyIds.push(f.slice(2));
      }
      const identity = identityFrom(h.uid, h.un, h.ro);
      const [wentOffline] = await Promise.all([
        identity ? detachFromUser(connectionId, identity.userId) : Promise.resolve(false),
        redis.del(keys.socket(connectionId)),
        redis.srem(keys.connections(), connectionId),
        ...roomIds.map((room) => redis.srem(keys.roomSockets(room), connectionId)),
        ...lobbyIds.map((lobby) => redis.srem(keys.lobbySockets(lobby), connectionId)),
      ]);
      return {
        identity,
        rooms: roomIds.filter((id) => !isSpectatorsRoom(id)),
        spectating: roomIds.filter(isSpectatorsRoom),
        wentOffline,
      };
    },

    async roomsOf(connectionId) {
      return roomsIn(await redis.hkeys(keys.conn(connectionId)));
    },

    connectionsOfUsers: (userIds) => smembersMany(userIds.map((u) => keys.userSockets(u))),
    roomConnections: (roomId) => redis.smembers(keys.roomSockets(roomId)),
    lobbyConnections: (lobbyId) => redis.smembers(keys.lobbySockets(lobbyId)),
    allConnections: () => redis.smembers(keys.connections()),

    async joinRoom(userId, roomId, { spectator }) {
      const conns = await redis.smembers(keys.userSockets(userId));
      if (conns.length === 0) return;
      const rooms = spectator ? [roomId, spectatorsRoom(roomId)] : [roomId];
      // The room set first, then the connection's reverse index, which is written only while the
      // connection exists. A removal that claims the connection after that sees the room and takes
      // it out; for one that claimed it before (a $disconnect racing this join), the index write
      // fails and the connection is taken out of the room here, so no dead member stays behind.
      const joined = await Promise.all(
        rooms.map(async (room) => {
          const [, , ...marked] = await Promise.all([
            redis.sadd(keys.roomSockets(room), ...conns),
            redis.expire(keys.roomSockets(room), ttl),
            ...conns.map((c) => r.wsgHsetx(keys.conn(c), `r:${room}`, '1')),
          ]);
          return { room, gone: conns.filter((_, i) => marked[i] === 0) };
        }),
      );
      await Promise.all(
        joined
          .filter(({ gone }) => gone.length > 0)
          .map(({ room, gone }) => redis.srem(keys.roomSockets(room), ...gone)),
      );
    },

    async leaveRoom(userId, roomId) {
      const conns = await redis.smembers(keys.userSockets(userId));
      if (conns.length === 0) return;
      const rooms = [roomId, spectatorsRoom(roomId)];
      const ops: Array<Promise<unknown>> = [];
      for (const room of rooms) {
        ops.push(redis.srem(keys.roomSockets(room), ...conns));
        for (const c of conns) ops.push(redis.hdel(keys.conn(c), `r:${room}`));
      }
      await Promise.all(ops);
    },

    async joinConnection(connectionId, roomIds) {
      if (roomIds.length === 0) return [];
      // As joinRoom: the room sets first, then the reverse index only while the connection exists.
      await Promise.all(
        roomIds.flatMap((room) => [
          redis.sadd(keys.roomSockets(room), connectionId),
          redis.expire(keys.roomSockets(room), ttl),
        ]),
      );
      const live = await r.wsgHsetx(
        keys.conn(connectionId),
        ...roomIds.flatMap((room) => [`r:${room}`, '1']),
      );
      if (live === 1) return [...roomIds];
      await Promise.all(roomIds.map((room) => redis.srem(keys.roomSockets(room), connectionId)));
      return [];
    },

    async joinLobby(connectionId, lobbyId) {
      const live = await r.wsgHsetx(keys.conn(connectionId), `l:${lobbyId}`, '1');
      if (live === 1) {
        await Promise.all([
          redis.sadd(keys.lobbySockets(lobbyId), connectionId),
          redis.expire(keys.lobbySockets(lobbyId), ttl),
        ]);
      }
    },

    async leaveLobby(connectionId, lobbyId) {
      await Promise.all([
        redis.srem(keys.lobbySockets(lobbyId), connectionId),
        redis.hdel(keys.conn(connectionId), `l:${lobbyId}`),
      ]);
    },

    async recordChatMessage(messageId, senderId) {
      await redis.set(keys.chatMessage(messageId), senderId, 'EX', CHAT_MESSAGE_TTL_SECS);
    },

    chatMessageSenders: (messageIds) => Promise.all(messageIds.map((id) => redis.get(keys.chatMessage(id)))),

    async usernameOf(userId) {
      const conns = await redis.smembers(keys.userSockets(userId));
      for (const c of conns) {
        const raw = await redis.get(keys.socket(c));
        if (!raw) continue;
        try {
          const s = JSON.parse(raw) as { username?: unknown };
          if (typeof s.username === 'string') return s.username;
        } catch {
          // a foreign writer; try the next session
        }
      }
      return null;
    },

    async ping() {
      await redis.ping();
    },
  };
}
