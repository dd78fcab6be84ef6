/**
 * An in-memory `LivenessStore` (lib/store/liveness.ts) over the state of an in-memory session
 * store, as the Redis adapter reads the session store's keys: the connections' `at` and last frame
 * (the bucket's time), users in `presence:online` without a live record, and the sweep lock on the
 * store's clock.
 *
 * Scans page through a snapshot taken when the cursor was `'0'`, so members removed meanwhile (a
 * sweep cleaning up) never make a page skip others — SSCAN's guarantee.
 */
import type { ConnectionActivity, LivenessStore } from '../../../lib/store/liveness';
import { ExpiringMap } from './clock';
import type { MemorySessionStore } from './session-store';

export function createMemoryLivenessStore(sessions: MemorySessionStore): LivenessStore {
  const { state, clock } = sessions;
  const lock = new ExpiringMap<'lock', number>(clock);
  const scans = new Map<string, string[]>();
  let nextScan = 0;

  /** One page of `members` from the snapshot `cursor` names. */
  const scan = (members: () => Iterable<string>, cursor: string, count: number) => {
    let snapshot: string[];
    let offset: number;
    if (cursor === '0') {
      snapshot = [...members()];
      offset = 0;
    } else {
      const [scanId, at] = cursor.split(':');
      snapshot = scans.get(scanId!) ?? [];
      offset = Number(at);
      scans.delete(scanId!);
    }
    const page = snapshot.slice(offset, offset + count);
    if (offset + count >= snapshot.length) return { next: '0', page };
    const scanId = String(++nextScan);
    scans.set(scanId, snapshot);
    return { next: `${scanId}:${offset + count}`, page };
  };

  return {
    async scanConnections(cursor, count) {
      const { next, page } = scan(() => state.connections, cursor, count);
      return {
        cursor: next,
        page: page.map((connectionId): ConnectionActivity => {
          const c = state.conn.get(connectionId);
          const opened = c ? Date.parse(c.at) : Number.NaN;
          const connectedAtMs = Number.isFinite(opened) ? opened : undefined;
          const frame = c?.lastFrameMs;
          return {
            connectionId,
            connectedAtMs,
            lastFrameMs: frame !== undefined ? Math.max(frame, connectedAtMs ?? 0) : connectedAtMs,
          };
        }),
      };
    },

    async scanOrphanedPresence(cursor, count) {
      const { next, page } = scan(() => state.presenceOnline, cursor, count);
      const orphans = page.filter((userId) => {
        const conns = [...(state.userSockets.get(userId) ?? [])];
        const dead = conns.filter((c) => !state.conn.has(c));
        const set = state.userSockets.get(userId);
        if (set) {
          for (const c of dead) set.delete(c);
          if (set.size === 0) state.userSockets.delete(userId);
        }
        return dead.length === conns.length;
      });
      return { cursor: next, orphans };
    },

    async dropPresence(userId) {
      if ((state.userSockets.get(userId)?.size ?? 0) > 0) return false;
      return state.presenceOnline.delete(userId);
    },

    async claimSweep(ms) {
      if (lock.has('lock')) return false;
      lock.set('lock', clock.now(), Math.max(1, Math.round(ms)) / 1000);
      return true;
    },
  };
}
