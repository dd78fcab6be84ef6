/**
 * Pending departures (docs/decisions.md D10): `presence.event.user_offline` and
 * `games.command.player_disconnected` wait out a grace period in Redis, so that whichever instance
 * looks first — the consumer's loop or the scheduled sweeper function — completes a due one, and
 * exactly one does.
 *
 * Two keys with the same hash tag (`{dep}`), so every script below runs on one Cluster slot:
 * - `gw:{dep}:due`  ZSET departure id → due time (Redis server time, ms);
 * - `gw:{dep}:who`  HASH departure id → the departure as JSON (who left, which room).
 * Both are emptied by completion and cancellation, so nothing outlives its departure.
 *
 * A departure id is deterministic (`["o", userId]`, `["r", userId, roomId]`): scheduling the same
 * departure again moves its due time (the grace restarts from the latest leave), and cancelling
 * it needs no lookup.
 */
import type { Identity } from '../protocol/envelope';
import type { RedisClient } from '../redis';

/** A departure waiting for its grace to end. */
export type Departure =
  /** The user's last connection went: `presence.event.user_offline`. */
  | { readonly kind: 'offline'; readonly identity: Identity }
  /** The user's last connection in a game room went: `games.command.player_disconnected`. */
  | { readonly kind: 'room'; readonly identity: Identity; readonly roomId: string };

export interface DepartureStore {
  /** Schedules departures due `afterSecs` from now (Redis time); a pending one is moved. */
  schedule(departures: readonly Departure[], afterSecs: number): Promise<void>;
  /**
   * Cancels the user's pending `offline` departure. True when one was pending: the user is back
   * within the grace, and nobody saw them go.
   */
  cancelOffline(userId: string): Promise<boolean>;
  /** Cancels the pending `room` departures of a user for these rooms; returns how many were pending. */
  cancelRooms(userId: string, roomIds: readonly string[]): Promise<number>;
  /**
   * Takes up to `limit` due departures out of Redis, atomically: a departure is returned to exactly
   * one caller, whichever instance asks first.
   */
  claimDue(limit: number): Promise<Departure[]>;
  /** Departures pending (due or not): for metrics and tests. */
  pending(): Promise<number>;
}

/** The id of a departure: what makes two schedules of the same departure one. */
export function departureId(d: Departure): string {
  return d.kind === 'offline'
    ? JSON.stringify(['o', d.identity.userId])
    : JSON.stringify(['r', d.identity.userId, d.roomId]);
}

/** KEYS: due, who. ARGV: afterMs, then id, json pairs. */
const SCHEDULE_SCRIPT = `
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], due, ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return due
`;

/** KEYS: due, who. ARGV: ids. Returns how many were pending. */
const CANCEL_SCRIPT = `
local n = 0
for i = 1, #ARGV do
  n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
end
return n
`;

/** KEYS: due, who. ARGV: limit. Removes and returns the due departures (JSON). */
const CLAIM_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local d = redis.call('HGET', KEYS[2], id)
  redis.call('HDEL', KEYS[2], id)
  if d then out[#out + 1] = d end
end
return out
`;

type ScriptClient = RedisClient & {
  wsgDepSchedule(due: string, who: string, afterMs: number, ...idsAndJson: string[]): Promise<number>;
  wsgDepCancel(due: string, who: string, ...ids: string[]): Promise<number>;
  wsgDepClaim(due: string, who: string, limit: number): Promise<string[]>;
};

function parseDeparture(json: string): Departure | null {
  try {
    const d = JSON.parse(json) as Partial<{ kind: string; identity: Identity; roomId: string }>;
    const id = d.identity;
    if (!id || typeof id.userId !== 'string' || typeof id.username !== 'string' || !Array.isArray(id.roles))
      return null;
    const identity: Identity = { userId: id.userId, username: id.username, roles: id.roles };
    if (d.kind === 'offline') return { kind: 'offline', identity };
    if (d.kind === 'room' && typeof d.roomId === 'string')
      return { kind: 'room', identity, roomId: d.roomId };
    return null;
  } catch {
    return null;
  }
}

export interface DepartureStoreOptions {
  readonly redis: RedisClient;
  readonly keyPrefix?: string;
}

/**
 * @example
 * const departures = createDepartureStore({ redis });
 * await departures.schedule([{ kind: 'offline', identity }], 10);
 * const due = await departures.claimDue(100); // later, on any instance
 */
export function createDepartureStore({ redis, keyPrefix = '' }: DepartureStoreOptions): DepartureStore {
  const due = `${keyPrefix}gw:{dep}:due`;
  const who = `${keyPrefix}gw:{dep}:who`;
  const r = redis as ScriptClient;
  if (!('wsgDepSchedule' in r)) {
    redis.defineCommand('wsgDepSchedule', { numberOfKeys: 2, lua: SCHEDULE_SCRIPT });
    redis.defineCommand('wsgDepCancel', { numberOfKeys: 2, lua: CANCEL_SCRIPT });
    redis.defineCommand('wsgDepClaim', { numberOfKeys: 2, lua: CLAIM_SCRIPT });
  }
  return {
    async schedule(departures, afterSecs) {
      if (departures.length === 0) return;
      const args = departures.flatMap((d) => [departureId(d), JSON.stringify(d)]);
      await r.wsgDepSchedule(due, who, Math.round(afterSecs * 1000), ...args);
    },
    async cancelOffline(userId) {
      return (await r.wsgDepCancel(due, who, JSON.stringify(['o', userId]))) > 0;
    },
    async cancelRooms(userId, roomIds) {
      if (roomIds.length === 0) return 0;
      return r.wsgDepCancel(due, who, ...roomIds.map((room) => JSON.stringify(['r', userId, room])));
    },
    async claimDue(limit) {
      const raw = await r.wsgDepClaim(due, who, limit);
      return raw.map(parseDeparture).filter((d): d is Departure => d !== null);
    },
    pending: () => redis.zcard(due),
  };
}
