/**
 * Every Redis key the gateway touches. The first four are the old gateway's keys and a contract
 * (other services may read them); the rest are ws-gateway's routing state (docs/architecture.md).
 *
 * Multi-key work is pipelined, never a cross-key transaction, so all of this runs on Redis
 * Cluster: each key below may live in a different slot. Everything per connection that must
 * change atomically lives in ONE hash (`conn`), so single-key Lua scripts are enough.
 */
export interface Keys {
  /** STRING JSON `{user_id, username, connected_at, last_seen, roles}`, TTL 86400 s (contract). */
  socket(connectionId: string): string;
  /** SET of connection ids of a user (contract). */
  userSockets(userId: string): string;
  /** SET of online user ids (contract). */
  presenceOnline(): string;
  /** STRING JSON `{status, last_seen, current_room, current_game}`, TTL 120 s (contract). */
  userPresence(userId: string): string;
  /**
   * HASH with everything about one connection: connected_at, identity, bound identity, rate-limit
   * bucket, welcome state, and one field per room (`r:<roomId>`) and lobby (`l:<lobbyId>`) it is in
   * (the reverse index used for cleanup).
   */
  conn(connectionId: string): string;
  /**
   * HASH: the connection's reverse index (`uid`, `un`, `ro`, `r:<roomId>`, `l:<lobbyId>`), a copy
   * of those fields of `conn` with a longer TTL (twice the connection TTL, refreshed by heartbeats),
   * so a cleanup that finds `conn` gone (expired, evicted) still knows which sets to leave.
   */
  connIndex(connectionId: string): string;
  /** SET of every open connection, anonymous ones included (broadcast). */
  connections(): string;
  /** SET of connection ids in a game room; spectators use the room id `spectators:<roomId>`. */
  roomSockets(roomId: string): string;
  /** SET of connection ids subscribed to a chat lobby. */
  lobbySockets(lobbyId: string): string;
  /** STRING: sender id of a delivered private chat message (mark_read resolution), TTL 7 days. */
  chatMessage(messageId: string): string;
}

export function createKeys(prefix = ''): Keys {
  return {
    socket: (id) => `${prefix}socket:${id}`,
    userSockets: (uid) => `${prefix}user:sockets:${uid}`,
    presenceOnline: () => `${prefix}presence:online`,
    userPresence: (uid) => `${prefix}user:presence:${uid}`,
    conn: (id) => `${prefix}gw:conn:${id}`,
    connIndex: (id) => `${prefix}gw:ix:${id}`,
    connections: () => `${prefix}gw:connections`,
    roomSockets: (roomId) => `${prefix}room:sockets:${roomId}`,
    lobbySockets: (lobbyId) => `${prefix}lobby:sockets:${lobbyId}`,
    chatMessage: (messageId) => `${prefix}chat:msg:${messageId}`,
  };
}

/** Pseudo-room id under which a room's spectators are kept (as the old gateway did). */
export const spectatorsRoom = (roomId: string) => `spectators:${roomId}`;

/** True for a spectator pseudo-room; game-room lists (snapshots, disconnect notices) leave them out. */
export const isSpectatorsRoom = (roomId: string) => roomId.startsWith('spectators:');
