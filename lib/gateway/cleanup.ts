import type { OutboundRecord } from '../kafka/publisher';
import { gatewayCounters } from './counters';
import type { CleanupDeps } from './deps';
import { departureRecords } from './lifecycle';

/** `stale`: the sweeper found the connection silent and gone (docs/decisions.md D10). */
export type CleanupReason = 'disconnect' | 'gone' | 'stale';

/**
 * Removes every trace of a connection and publishes what its departure means (docs/decisions.md D7, D10):
 * `system.event.user_disconnected` at once; `presence.event.user_offline` when it was the user's
 * last connection and `games.command.player_disconnected` for each game room in which the user
 * has no other connection, both after the grace unless the user is back (./lifecycle.ts).
 *
 * The same function serves `$disconnect` and a push that found the connection gone (410), and it
 * is idempotent: whichever comes first publishes, the other finds nothing.
 */
export async function cleanupConnection(
  deps: CleanupDeps,
  connectionId: string,
  reason: CleanupReason,
): Promise<void> {
  const log = deps.logger.child({ connectionId });
  const removed = await deps.store.removeConnection(connectionId);
  if (!removed) {
    log.debug('connection already cleaned up', { reason });
    return;
  }
  const { identity, rooms, wentOffline } = removed;
  log.info('connection removed', { reason, userId: identity?.userId, rooms: rooms.length, wentOffline });
  if (!identity) return;
  // user_disconnected now; user_offline / player_disconnected after the grace (docs/decisions.md D10).
  const records: OutboundRecord[] = await departureRecords(deps, connectionId, { ...removed, identity });
  try {
    await deps.publisher.publish(records);
  } catch (err) {
    // State is already clean; losing a notification must not fail the disconnect.
    gatewayCounters(deps.metrics).systemEventsLost.inc({ during: reason }, records.length);
    log.error('failed to publish disconnect events', { err, count: records.length });
  }
}
