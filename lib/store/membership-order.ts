/**
 * Membership order (docs/decisions.md D10). The backend produces its events unkeyed, so a leave
 * and a later join of the same user and room can land on different partitions and be consumed in
 * either order. Membership changes for a (room, user) pair therefore apply in the order of the
 * events' `timestamp`: a change older than the last one applied for that pair is ignored, so a
 * late leave cannot undo a newer join (nor a late join a newer leave).
 *
 * One key per pair, `gw:order:{roomId}:{userId}` — the timestamp (ms) of the last change applied —
 * checked and set by a single-key script (Cluster-safe). Its TTL bounds how late an event may be
 * and still be put in order.
 */
import type { RedisClient } from '../redis';

export interface MembershipOrder {
  /**
   * Records a change for the pair at `atMs` and returns true, unless a newer change was applied
   * already (then false: ignore this one). Equal timestamps apply, in arrival order.
   */
  admit(roomId: string, userId: string, atMs: number): Promise<boolean>;
}

/** KEYS: the pair's key. ARGV: atMs, ttl. */
const ADMIT_SCRIPT = `
local last = tonumber(redis.call('GET', KEYS[1]))
local at = tonumber(ARGV[1])
if last and at < last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
`;

type ScriptClient = RedisClient & {
  wsgOrderAdmit(key: string, atMs: number, ttl: number): Promise<number>;
};

export interface MembershipOrderOptions {
  readonly redis: RedisClient;
  /** How long the last applied timestamp of a pair is remembered. */
  readonly ttlSecs: number;
  readonly keyPrefix?: string;
}

export function createMembershipOrder({
  redis,
  ttlSecs,
  keyPrefix = '',
}: MembershipOrderOptions): MembershipOrder {
  const r = redis as ScriptClient;
  if (!('wsgOrderAdmit' in r)) redis.defineCommand('wsgOrderAdmit', { numberOfKeys: 1, lua: ADMIT_SCRIPT });
  return {
    async admit(roomId, userId, atMs) {
      return (await r.wsgOrderAdmit(`${keyPrefix}gw:order:${roomId}:${userId}`, atMs, ttlSecs)) === 1;
    },
  };
}

/** An event timestamp in ms (RFC 3339, any fraction, `Z` or an offset); undefined when unreadable. */
export function eventTimeMs(timestamp: string): number | undefined {
  const ms = Date.parse(timestamp);
  return Number.isFinite(ms) ? ms : undefined;
}
