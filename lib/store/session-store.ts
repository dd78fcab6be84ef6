import type { Identity } from '../protocol/envelope';
import type { RedisClient } from '../redis';
import { createKeys, isSpectatorsRoom, type Keys, spectatorsRoom } from './keys';

/** What `$default` learns about its connection in one round trip. */
export interface MessageGate {
  /** False when the rate-limit bucket was empty: the frame is dropped. */
  readonly allowed: boolean;
  readonly identity: Identity | null;
  /** Identity bound at `$connect` from a verified token or cookie. */
  readonly bound: Identity | null;
  /** `mine`: this caller must send the welcome now; `pending`: another invocation is sending it; `done`. */
  readonly welcome: 'mine' | 'pending' | 'done';
  readonly connectedAt: string;
  /**
   * Asked for with `refreshWindowMs`: true when this heartbeat should refresh the session keys
   * (none did within the window; the gate has recorded this one), false when one did. Absent: not
   * asked.
   */
  readonly refresh?: boolean;
}

export interface RemovedConnection {
  readonly identity: Identity | null;
  /** Game rooms the connection was in (spectator pseudo-rooms excluded). */
  readonly rooms: readonly string[];
  /** Spectator pseudo-rooms (`spectators:<roomId>`) the connection was in (reconnection data, docs/decisions.md D10). */
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

/** `authenticate` refused: the user already holds `maxConnectionsPerUser` connections. Nothing was written. */
export const CONNECTION_LIMIT = 'connection-limit' as const;
/** `joinLobby` refused: the connection already holds `maxLobbiesPerConnection` lobbies. Nothing was written. */
export const LOBBY_LIMIT = 'lobby-limit' as const;

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
  /**
   * Rate limit (token bucket, atomic) + the connection's identity + the welcome claim, in one round
   * trip. Null when Redis has no record of the connection (its state was lost, or it is being
   * removed): nothing is written then (docs/decisions.md D9).
   */
  gateMessage(
    connectionId: string,
    rate: { burst: number; perSec: number },
    /** A heartbeat's refresh window (see `MessageGate.refresh`); omitted for other frames. */
    refreshWindowMs?: number,
  ): Promise<MessageGate | null>;
  markWelcomed(connectionId: string): Promise<void>;
  /** Forgets the identity bound at `$connect` (never re-creates a gone connection). */
  dropBinding(connectionId: string): Promise<void>;
  /** Claims the welcome for the async welcome invocation; false when already claimed or the connection is gone. */
  claimWelcome(connectionId: string): Promise<boolean>;
  /** `none`: Redis has no (live) record of the connection. */
  welcomeState(connectionId: string): Promise<'none' | 'pending' | 'done'>;
  /**
   * Stores the connection's identity; null (nothing written) when the connection is already gone,
   * `CONNECTION_LIMIT` (nothing written) when the user is at `maxConnectionsPerUser`.
   *
   * The identity the connection had before is read and replaced atomically, so two concurrent
   * authentications leave the connection in exactly one user's set; `previous` is only a hint
   * kept for callers and is not trusted.
   */
  authenticate(
    connectionId: string,
    identity: Identity,
    previous: Identity | null,
    now: Date,
    connectedAt: string,
  ): Promise<AuthResult | typeof CONNECTION_LIMIT | null>;
  heartbeat(connectionId: string, identity: Identity, now: Date, connectedAt: string): Promise<void>;
  /**
   * Removes every key of the connection. Idempotent: a second call returns null. Works without the
   * connection hash too (expired, evicted, or left behind by a cleanup that died half-way): the
   * reverse index still names the user, rooms and lobbies to leave.
   */
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
  /** Subscribes the connection to a lobby; `LOBBY_LIMIT` (nothing written) past `maxLobbiesPerConnection`. */
  joinLobby(connectionId: string, lobbyId: string): Promise<undefined | typeof LOBBY_LIMIT>;
  leaveLobby(connectionId: string, lobbyId: string): Promise<void>;
  recordChatMessage(messageId: string, senderId: string): Promise<void>;
  /** Senders of delivered chat messages, in order (null: unknown); one pipelined round trip. */
  chatMessageSenders(messageIds: readonly string[]): Promise<Array<string | null>>;
  /** Display name of a user from any live session (`user:sockets` → `socket:`), or null. */
  usernameOf(userId: string): Promise<string | null>;
  ping(): Promise<void>;
}

const CHAT_MESSAGE_TTL_SECS = 7 * 86400;
const SOCKET_TTL_SECS = 86400;
const PRESENCE_TTL_SECS = 120;
/**
 * How long a claimed connection hash stays as a tombstone (`x` field) while its cleanup runs. A
 * cleanup that dies half-way is redone by the next `$disconnect`, 410 or sweep within this time.
 */
const TOMBSTONE_TTL_SECS = 300;

/**
 * One script per hot path, each on the single `conn` hash (Cluster-safe). Server time (TIME)
 * keeps the bucket consistent across Lambda instances whose clocks differ.
 *
 * A connection Redis has no record of (or one being removed: `x`) is answered with {-1} and NOT
 * re-created: its state was lost and the caller closes it (docs/decisions.md D9).
 * Otherwise returns {allowed, uid, un, ro, buid, bun, bro, welcome, at, refresh}.
 * ARGV[4], a heartbeat's refresh window in ms (-1: not a heartbeat): refresh is 1 when the
 * connection is authenticated and its last refresh (`hb`) is older than that (`hb` is set to now),
 * else 0 — so a client heartbeating faster than the window costs this script alone.
 */
const GATE_SCRIPT = `
local k = KEYS[1]
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local v = redis.call('HMGET', k, 'tk', 'ts', 'uid', 'un', 'ro', 'buid', 'bun', 'bro', 'w', 'at', 'x', 'hb')
if not v[10] or v[11] then return {-1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tk = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
if now > ts then tk = math.min(burst, tk + (now - ts) / 1000 * rate) end
local allowed = 0
if tk >= 1 then
  tk = tk - 1
  allowed = 1
end
local refresh = 0
local window = tonumber(ARGV[4] or '-1')
if allowed == 1 and window >= 0 and v[3] and (not v[12] or now - tonumber(v[12]) >= window) then
  refresh = 1
  redis.call('HSET', k, 'tk', tostring(tk), 'ts', now, 'hb', now)
else
  redis.call('HSET', k, 'tk', tostring(tk), 'ts', now)
end
-- Any frame is activity: the connection's record lives on (heartbeats need no extra command for it).
redis.call('EXPIRE', k, ttl)
local w = v[9]
if not w then
  redis.call('HSET', k, 'w', 'default')
  w = 'mine'
end
return {allowed, v[3], v[4], v[5], v[6], v[7], v[8], w, v[10], refresh}
`;

/**
 * Claims a connection for its cleanup: its fields and whether this caller is the first. The hash is
 * kept as a tombstone (`x`, short TTL) until the cleanup finished, so a cleanup that dies half-way
 * can be redone by the next caller, and frames, joins and authentications see it as gone.
 * Returns {} when there is no hash, else {first (1|0), field, value, …}.
 */
const CLAIM_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local h = redis.call('HGETALL', KEYS[1])
local first = redis.call('HSETNX', KEYS[1], 'x', '1')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
table.insert(h, 1, first)
return h
`;

/** HGETALL + DEL in one step (the reverse index, when the connection hash is already gone). */
const TAKE_SCRIPT = `
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then redis.call('DEL', KEYS[1]) end
return h
`;

/**
 * HSET (field, value, …) only on a live connection (present, not being removed): never resurrect a
 * removed one as a hash without TTL.
 */
const HSET_IF_LIVE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'x') == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
  return 1
end
return 0
`;

/**
 * The welcome claim (HSETNX `w`) on a live connection only: a plain HSETNX would re-create a
 * removed connection as a hash without TTL. Returns 1 when claimed.
 */
const CLAIM_WELCOME_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'x') == 1 then return 0 end
return redis.call('HSETNX', KEYS[1], 'w', 'invoke')
`;

/**
 * Replaces the identity of a live connection and returns the one it had, atomically: of two
 * concurrent authentications the second sees the first's user and takes the connection out of
 * that user's set. Returns 0 when the connection is gone, else {1, uid, un, ro} (previous).
 */
const SWAP_IDENTITY_SCRIPT = `
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 or redis.call('HEXISTS', k, 'x') == 1 then return 0 end
local prev = redis.call('HMGET', k, 'uid', 'un', 'ro')
redis.call('HSET', k, 'uid', ARGV[1], 'un', ARGV[2], 'ro', ARGV[3])
return {1, prev[1], prev[2], prev[3]}
`;

/**
 * Admits a connection to a user's set unless the user is at the limit (docs/decisions.md D9).
 * Returns 1 (added), 2 (already a member), 0 (full: nothing written).
 */
const ADMIT_SCRIPT = `
local k = KEYS[1]
if redis.call('SISMEMBER', k, ARGV[1]) == 1 then
  redis.call('EXPIRE', k, tonumber(ARGV[3]))
  return 2
end
if redis.call('SCARD', k) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', k, ARGV[1])
redis.call('EXPIRE', k, tonumber(ARGV[3]))
return 1
`;

/** SREM, then SCARD of what is left, in one step: "was that the user's last connection?" */
const DETACH_SCRIPT = `
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1])
`;

/**
 * Subscribes a live connection to a lobby, at most ARGV[2] lobbies (the `l:` fields). Returns
 * 1 (subscribed or already), 0 (connection gone), -1 (limit reached: nothing written).
 */
const JOIN_LOBBY_SCRIPT = `
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 or redis.call('HEXISTS', k, 'x') == 1 then return 0 end
local f = 'l:' .. ARGV[1]
if redis.call('HEXISTS', k, f) == 1 then return 1 end
local n = 0
for _, name in ipairs(redis.call('HKEYS', k)) do
  if string.sub(name, 1, 2) == 'l:' then n = n + 1 end
end
if n >= tonumber(ARGV[2]) then return -1 end
redis.call('HSET', k, f, '1')
return 1
`;

type ScriptClient = RedisClient & {
  wsgGate(
    key: string,
    burst: number,
    perSec: number,
    ttl: number,
    refreshWindowMs: number,
  ): Promise<Array<string | number | null>>;
  wsgClaim(key: string, tombstoneTtl: number): Promise<Array<string | number>>;
  wsgTake(key: string): Promise<string[]>;
  wsgHsetLive(key: string, ...fieldsAndValues: string[]): Promise<number>;
  wsgSwapIdentity(
    key: string,
    uid: string,
    un: string,
    ro: string,
  ): Promise<0 | Array<string | number | null>>;
  wsgAdmit(key: string, member: string, limit: number, ttl: number): Promise<number>;
  wsgDetach(key: string, member: string): Promise<number>;
  wsgJoinLobby(key: string, lobbyId: string, limit: number): Promise<number>;
  wsgClaimWelcome(key: string): Promise<number>;
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

function toHash(flat: ReadonlyArray<string | number>, from = 0): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = from; i + 1 < flat.length; i += 2) h[String(flat[i])] = String(flat[i + 1]);
  return h;
}

export interface SessionStoreOptions {
  redis: RedisClient;
  /** TTL of the connection hash and routing sets; refreshed by heartbeats and joins. */
  connectionTtlSecs: number;
  keyPrefix?: string;
  /** Authenticated connections per user (docs/decisions.md D9); unlimited when absent. */
  maxConnectionsPerUser?: number;
  /** Lobby subscriptions per connection (docs/decisions.md D9); unlimited when absent. */
  maxLobbiesPerConnection?: number;
}

export function createSessionStore({
  redis,
  connectionTtlSecs,
  keyPrefix = '',
  maxConnectionsPerUser = Number.MAX_SAFE_INTEGER,
  maxLobbiesPerConnection = Number.MAX_SAFE_INTEGER,
}: SessionStoreOptions): SessionStore {
  const keys = createKeys(keyPrefix);
  const r = redis as ScriptClient;
  if (!('wsgGate' in r)) {
    redis.defineCommand('wsgGate', { numberOfKeys: 1, lua: GATE_SCRIPT });
    redis.defineCommand('wsgClaim', { numberOfKeys: 1, lua: CLAIM_SCRIPT });
    redis.defineCommand('wsgTake', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    redis.defineCommand('wsgHsetLive', { numberOfKeys: 1, lua: HSET_IF_LIVE_SCRIPT });
    redis.defineCommand('wsgSwapIdentity', { numberOfKeys: 1, lua: SWAP_IDENTITY_SCRIPT });
    redis.defineCommand('wsgAdmit', { numberOfKeys: 1, lua: ADMIT_SCRIPT });
    redis.defineCommand('wsgDetach', { numberOfKeys: 1, lua: DETACH_SCRIPT });
    redis.defineCommand('wsgJoinLobby', { numberOfKeys: 1, lua: JOIN_LOBBY_SCRIPT });
    redis.defineCommand('wsgClaimWelcome', { numberOfKeys: 1, lua: CLAIM_WELCOME_SCRIPT });
  }
  const ttl = connectionTtlSecs;
  /** The reverse index outlives the connection hash it mirrors (docs/architecture.md, "Redis keys"). */
  const indexTtl = 2 * connectionTtlSecs;

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

  /** Writes fields of the reverse index and renews its TTL. */
  const indexSet = (connectionId: string, fields: Record<string, string>) =>
    Promise.all([
      redis.hset(keys.connIndex(connectionId), fields),
      redis.expire(keys.connIndex(connectionId), indexTtl),
    ]);

  /**
   * Removes a connection from a user's set; reports whether the user went offline.
   *
   * The sets live in different slots, so this cannot be one script on Redis Cluster. Instead:
   * SREM+SCARD atomically on the user's set; only when it is empty, SREM from `presence:online`;
   * then look again. A connection admitted meanwhile (authenticate adds to the user's set BEFORE
   * `presence:online`) is seen by that second look, which puts the user back: a quick reload never
   * leaves an online user out of `presence:online`. If the put-back finds the user already there,
   * the newcomer re-added them and announced `online`, so our `offline` stands.
   */
  async function detachFromUser(connectionId: string, userId: string): Promise<boolean> {
    const left = await r.wsgDetach(keys.userSockets(userId), connectionId);
    if (left !== 0) return false;
    if ((await redis.srem(keys.presenceOnline(), userId)) !== 1) return false;
    if ((await redis.scard(keys.userSockets(userId))) === 0) return true;
    return (await redis.sadd(keys.presenceOnline(), userId)) === 0;
  }

  /** Takes a connection out of every game room (and spectator room) it is in; returns the game rooms. */
  async function leaveAllRooms(connectionId: string): Promise<string[]> {
    const k = keys.conn(connectionId);
    const rooms = roomsIn(await redis.hkeys(k));
    if (rooms.length === 0) return [];
    const fields = rooms.map((room) => `r:${room}`);
    await Promise.all([
      redis.hdel(k, ...fields),
      redis.hdel(keys.connIndex(connectionId), ...fields),
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

    async gateMessage(connectionId, { burst, perSec }, refreshWindowMs) {
      const asked = refreshWindowMs !== undefined;
      const v = await r.wsgGate(keys.conn(connectionId), burst, perSec, ttl, asked ? refreshWindowMs : -1);
      if (v[0] === -1) return null;
      const w = v[7];
      return {
        allowed: v[0] === 1,
        identity: identityFrom(v[1], v[2], v[3]),
        bound: identityFrom(v[4], v[5], v[6]),
        welcome: w === 'mine' ? 'mine' : w === 'done' ? 'done' : 'pending',
        connectedAt: typeof v[8] === 'string' ? v[8] : new Date().toISOString(),
        ...(asked ? { refresh: v[9] === 1 } : {}),
      };
    },

    async dropBinding(connectionId) {
      await redis.hdel(keys.conn(connectionId), 'buid', 'bun', 'bro');
    },

    async markWelcomed(connectionId) {
      await r.wsgHsetLive(keys.conn(connectionId), 'w', 'done');
    },

    async claimWelcome(connectionId) {
      return (await r.wsgClaimWelcome(keys.conn(connectionId))) === 1;
    },

    async welcomeState(connectionId) {
      const [w, at, x] = await redis.hmget(keys.conn(connectionId), 'w', 'at', 'x');
      if (at === null || x !== null) return 'none';
      return w === null ? 'pending' : w === 'done' ? 'done' : 'pending';
    },

    async authenticate(connectionId, identity, _previous, now, connectedAt) {
      const k = keys.conn(connectionId);
      const userSet = keys.userSockets(identity.userId);
      // 1. A place in the user's set (atomic limit check). It comes first so that a concurrent
      //    re-authentication, which removes the connection from this user's set after seeing this
      //    user on the hash (step 2), always removes it after it was added.
      const admitted = await r.wsgAdmit(userSet, connectionId, maxConnectionsPerUser, ttl);
      if (admitted === 0) return CONNECTION_LIMIT;
      // 2. The identity on the connection record, swapped atomically with the one it had. A
      //    $disconnect may have overtaken this frame: then nothing is written (and the place given
      //    up), so a removed connection is never brought back.
      const swapped = await r.wsgSwapIdentity(
        k,
        identity.userId,
        identity.username,
        JSON.stringify(identity.roles),
      );
      if (swapped === 0) {
        if (admitted === 1) await r.wsgDetach(userSet, connectionId);
        return null;
      }
      const previous = identityFrom(swapped[1], swapped[2], swapped[3]);
      let prev: AuthResult['previous'] = null;
      if (previous && previous.userId !== identity.userId) {
        // The connection stops being the old user's: it leaves their presence and their rooms.
        const [wentOffline, rooms] = await Promise.all([
          detachFromUser(connectionId, previous.userId),
          leaveAllRooms(connectionId),
        ]);
        prev = { identity: previous, wentOffline, rooms };
      }
      // 3. Derived state: the contract keys and the reverse index.
      const nowIso = now.toISOString();
      const [, , , added] = await Promise.all([
        redis.set(
          keys.socket(connectionId),
          socketJson(identity, connectedAt, nowIso),
          'EX',
          SOCKET_TTL_SECS,
        ),
        redis.expire(k, ttl),
        indexSet(connectionId, {
          uid: identity.userId,
          un: identity.username,
          ro: JSON.stringify(identity.roles),
        }),
        redis.sadd(keys.presenceOnline(), identity.userId),
      ]);
      // Removed meanwhile: that removal may have run before the writes above, so undo them here.
      const [at, x] = await redis.hmget(k, 'at', 'x');
      if (at === null || x !== null) {
        await Promise.all([
          detachFromUser(connectionId, identity.userId),
          redis.del(keys.socket(connectionId)),
          redis.del(keys.connIndex(connectionId)),
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
        redis.expire(keys.connIndex(connectionId), indexTtl),
      ]);
    },

    async removeConnection(connectionId) {
      const k = keys.conn(connectionId);
      const ix = keys.connIndex(connectionId);
      const [claimed, index] = await Promise.all([r.wsgClaim(k, TOMBSTONE_TTL_SECS), redis.hgetall(ix)]);
      let h: Record<string, string>;
      let announce: boolean;
      if (claimed.length > 0) {
        // Whoever claims first announces; a later caller (a concurrent 410, or a retry after a
        // cleanup that died half-way) redoes the idempotent removals quietly.
        announce = claimed[0] === 1;
        h = { ...index, ...toHash(claimed, 1) };
      } else {
        // No hash (expired, evicted, or removed by an earlier cleanup): the reverse index, taken
        // atomically so that only one caller announces.
        const taken = await r.wsgTake(ix);
        h = toHash(taken);
        announce = taken.length > 0;
      }
      const roomIds: string[] = [];
      const lobbyIds: string[] = [];
      for (const f of Object.keys(h)) {
        if (f.startsWith('r:')) roomIds.push(f.slice(2));
        else if (f.startsWith('l:')) lobbyIds.push(f.slice(2));
      }
      const identity = identityFrom(h.uid, h.un, h.ro);
      // presence:online is the announcer's alone. A quiet caller that took the user out of it
      // (a 410 racing the $disconnect) would leave the announced removal reporting "still online",
      // and user_offline would never be published. If the announcer died, the sweeper finds the
      // user orphaned and announces the offline itself.
      let leaveUser: Promise<boolean> = Promise.resolve(false);
      if (identity && announce) leaveUser = detachFromUser(connectionId, identity.userId);
      else if (identity)
        leaveUser = r.wsgDetach(keys.userSockets(identity.userId), connectionId).then(() => false);
      const [wentOffline] = await Promise.all([
        leaveUser,
        redis.del(keys.socket(connectionId)),
        redis.srem(keys.connections(), connectionId),
        ...roomIds.map((room) => redis.srem(keys.roomSockets(room), connectionId)),
        ...lobbyIds.map((lobby) => redis.srem(keys.lobbySockets(lobby), connectionId)),
      ]);
      // Last: the tombstone and the index, once every set the connection was in has let it go.
      await Promise.all([redis.del(k), redis.del(ix)]);
      if (!announce) return null;
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
            ...conns.map((c) => r.wsgHsetLive(keys.conn(c), `r:${room}`, '1')),
          ]);
          return { room, gone: conns.filter((_, i) => marked[i] === 0) };
        }),
      );
      // The reverse index of each live connection names the rooms it joined.
      const live = new Map<string, Record<string, string>>();
      for (const { room, gone } of joined) {
        for (const c of conns) {
          if (gone.includes(c)) continue;
          const fields = live.get(c) ?? {};
          fields[`r:${room}`] = '1';
          live.set(c, fields);
        }
      }
      await Promise.all([
        ...joined
          .filter(({ gone }) => gone.length > 0)
          .map(({ room, gone }) => redis.srem(keys.roomSockets(room), ...gone)),
        ...[...live].map(([c, fields]) => indexSet(c, fields)),
      ]);
    },

    async leaveRoom(userId, roomId) {
      const conns = await redis.smembers(keys.userSockets(userId));
      if (conns.length === 0) return;
      const fields = [`r:${roomId}`, `r:${spectatorsRoom(roomId)}`];
      await Promise.all([
        redis.srem(keys.roomSockets(roomId), ...conns),
        redis.srem(keys.roomSockets(spectatorsRoom(roomId)), ...conns),
        ...conns.flatMap((c) => [
          redis.hdel(keys.conn(c), ...fields),
          redis.hdel(keys.connIndex(c), ...fields),
        ]),
      ]);
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
      const fields = Object.fromEntries(roomIds.map((room) => [`r:${room}`, '1']));
      const live = await r.wsgHsetLive(keys.conn(connectionId), ...Object.entries(fields).flat());
      if (live === 1) {
        await indexSet(connectionId, fields);
        return [...roomIds];
      }
      await Promise.all(roomIds.map((room) => redis.srem(keys.roomSockets(room), connectionId)));
      return [];
    },

    async joinLobby(connectionId, lobbyId) {
      const joined = await r.wsgJoinLobby(keys.conn(connectionId), lobbyId, maxLobbiesPerConnection);
      if (joined === -1) return LOBBY_LIMIT;
      if (joined === 1) {
        await Promise.all([
          redis.sadd(keys.lobbySockets(lobbyId), connectionId),
          redis.expire(keys.lobbySockets(lobbyId), ttl),
          indexSet(connectionId, { [`l:${lobbyId}`]: '1' }),
        ]);
      }
    },

    async leaveLobby(connectionId, lobbyId) {
      await Promise.all([
        redis.srem(keys.lobbySockets(lobbyId), connectionId),
        redis.hdel(keys.conn(connectionId), `l:${lobbyId}`),
        redis.hdel(keys.connIndex(connectionId), `l:${lobbyId}`),
      ]);
    },

    async recordChatMessage(messageId, senderId) {
      await redis.set(keys.chatMessage(messageId), senderId, 'EX', CHAT_MESSAGE_TTL_SECS);
    },

    // Issued in the same tick, the GETs go out as one auto-pipelined batch per node (an MGET would
    // fail across Cluster slots); the caller bounds the count (docs/protocol.md, limits).
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
