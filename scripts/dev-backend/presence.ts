/**
 * Who is online, for the demo page. The platform has no consumer of `gateway.presence`; the dev
 * backend stands in for one: each `presence.event.user_online` / `_offline` the gateway publishes
 * there is broadcast back on `system.events` (the gateway delivers both to every connection), and
 * each `system.event.user_connected` (a connection authenticated) is answered with one
 * `presence.event.user_online` per online user, to that user, so a page that opens late still
 * lists everyone.
 */
import type { Envelope } from '../../lib/protocol/envelope';
import { TOPICS } from '../../lib/protocol/envelope';
import { audience, backendEnvelope, type OutboundEvent } from './envelope';

export interface PresenceHandler {
  /**
   * The events one `gateway.presence` or `system.events` record produces. Presence events are
   * read from `gateway.presence` only: the ones on `system.events` are this handler's own.
   */
  handle(topic: string, event: Envelope): OutboundEvent[];
  online(): ReadonlyMap<string, string>;
}

export function createPresence(): PresenceHandler {
  const online = new Map<string, string>();
  const presence = (
    kind: 'user_online' | 'user_offline',
    userId: string,
    name: string,
    to = audience.broadcast(),
  ) =>
    ({
      topic: TOPICS.systemEvents,
      key: userId,
      envelope: backendEnvelope(
        `presence.event.${kind}`,
        to,
        {},
        { user_id: userId, username: name, roles: [] },
      ),
    }) satisfies OutboundEvent;

  return {
    online: () => online,
    handle(topic, event) {
      const { user_id: userId, username } = event.actor;
      const kind =
        topic === TOPICS.presence
          ? event.event_type
          : topic === TOPICS.systemEvents
            ? `system:${event.event_type}`
            : '';
      switch (kind) {
        case 'presence.event.user_online':
          online.set(userId, username);
          return [presence('user_online', userId, username)];
        case 'presence.event.user_offline':
          online.delete(userId);
          return [presence('user_offline', userId, username)];
        case 'system:system.event.user_connected': {
          online.set(userId, username);
          return [...online].map(([id, name]) => presence('user_online', id, name, audience.user(userId)));
        }
        default:
          return [];
      }
    },
  };
}
