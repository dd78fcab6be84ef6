/**
 * What the sweeper reads and repairs (docs/decisions.md D10): how long each open connection has
 * been silent, and users left in `presence:online` with no live connection. Nothing here is on the
 * hot path: `$default` already stamps each frame in the connection hash (`ts`, the rate-limit
 * bucket's time, written by the gate script of ./session-store.ts), and `$connect` writes `at`.
 *
 * SSCAN in pages, independent single-key commands (Cluster-safe, auto-pipelined).
 */
import type { RedisClient } from '../redis';
import { createKeys } from './keys';

export interface ConnectionActivity {
  readonly connectionId: string;
  /** When the connection opened (ms); undefined when its record is gone (expired or half-cleaned). */
  readonly connectedAtMs: number | undefined;
  /** The last client frame (ms), else the time it opened; undefined when its record is gone. */
  readonly lastFrameMs: number | undefined;
}

export interface LivenessStore {
  /** One page of the set of open connections (`gw:connections`). Start and end with cursor `'0'`. */
  scanConnections(cursor: string, count: number): Promise<{ cursor: string; page: ConnectionActivity[] }>;
  /**
   * One page of `presence:online`: the users in it none of whose connections exists any more.
   * Dead connection ids are pruned from those users' `user:sockets:` sets on the way.
   */
  scanOrphanedPresence(cursor: string, count: number): Promise<{ cursor: string; orphans: string[] }>;
  /**
   * Takes a user out of `presence:online` if they still have no connection; true when removed. A
   * connection that authenticates meanwhile puts the user back (rechecked after the removal).
   */
  dropPresence(userId: string): Promise<boolean>;
  /** True for one caller per `ms` across all instances: one sweep per interval, wherever it runs. */
  claimSweep(ms: number): Promise<boolean>;
}

export function createLivenessStore({
  redis,
  keyPrefix = '',
}: {
  redis: RedisClient;
  keyPrefix?: string;
}): LivenessStore {
  const keys = createKeys(keyPrefix);
  const lock = `${keyPrefix}gw:sweep:lock`;

  return {
    async scanConnections(cursor, count) {
      const [next, ids] = await redis.sscan(keys.connections(), cursor, 'COUNT', count);
      const fields = await Promise.all(ids.map((id) => redis.hmget(keys.conn(id), 'at', 'ts')));
      const page = ids.map((connectionId, i): ConnectionActivity => {
        const [at, ts] = fields[i] ?? [];
        const connectedAtMs = at ? Date.parse(at) : Number.NaN;
        const frameMs = ts ? Number(ts) : Number.NaN;
        const opened = Number.isFinite(connectedAtMs) ? connectedAtMs : undefined;
        return {
          connectionId,
          connectedAtMs: opened,
          lastFrameMs: Number.isFinite(frameMs) ? Math.max(frameMs, opened ?? 0) : opened,
        };
      });
      return { cursor: next, page };
    },

    async scanOrphanedPresence(cursor, count) {
      const [next, userIds] = await redis.sscan(keys.presenceOnline(), cursor, 'COUNT', count);
      const orphans = await Promise.all(
        userIds.map(async (userId) => {
          const conns = await redis.smembers(keys.userSockets(userId));
          const alive = await Promise.all(conns.map((c) => redis.exists(keys.conn(c))));
          const dead = conns.filter((_, i) => alive[i] === 0);
          if (dead.length > 0) await redis.srem(keys.userSockets(userId), ...dead);
          return dead.length === conns.length ? userId : undefined;
        }),
      );
      return { cursor: next, orphans: orphans.filter((u): u is string => u !== undefined) };
    },

    async dropPresence(userId) {
      if ((await redis.scard(keys.userSockets(userId))) > 0) return false;
      const removed = await redis.srem(keys.presenceOnline(), userId);
      if ((await redis.scard(keys.userSockets(userId))) > 0) {
        // An authentication raced the removal: it wrote user:sockets before presence:online.
        await redis.sadd(keys.presenceOnline(), userId);
        return false;
      }
      return removed === 1;
    },

    async claimSweep(ms) {
      return (await redis.set(lock, String(Date.now()), 'PX', Math.max(1, Math.round(ms)), 'NX')) === 'OK';
    },
  };
}
