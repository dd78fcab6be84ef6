import type { OutboundRecord } from '../kafka/publisher';
import { gatewayCounters } from './counters';
import type { CleanupDeps } from './deps';
import { playerDisconnectedCommand, presenceEvent, userConnectionEvent } from './system-events';

export type CleanupReason = 'disconnect' | 'gone';

/**
 * Removes every trace of a connection and publishes what its departure means (D7):
 * `system.event.user_disconnected`, `presence.event.user_offline` when it was the user's last
 * connection, and `games.command.player_disconnected` for each game room it was in.
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
  const records: OutboundRecord[] = [userConnectionEvent(deps, 'disconnected', identity, connectionId)];
  if (wentOffline) records.push(presenceEvent(deps, 'offline', identity));
  if (deps.config.disconnectNotifyRooms) {
    for (const roomId of rooms) records.push(playerDisconnectedCommand(deps, identity, roomId));
  }
  try {
    await deps.publisher.publish(records);
  } catch (err) {
    // State is already clean; losing a notification must not fail the disconnect.
    gatewayCounters(deps.metrics).systemEventsLost.inc({ during: reason }, records.length);
    log.error('failed to publish disconnect events', { err, count: records.length });
  }
}
