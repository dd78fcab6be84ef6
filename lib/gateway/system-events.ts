import type { OutboundRecord } from '../kafka/publisher';
import { type Envelope, type Identity, type JsonObject, TOPICS } from '../protocol/envelope';

/** Ids and time for envelopes; injected so tests are deterministic. */
export interface EnvelopeContext {
  readonly newId: () => string;
  readonly now: () => Date;
}

const BROADCAST = { type: 'broadcast', user_ids: [], room_id: null, game_id: null } as const;

function envelope(
  ctx: EnvelopeContext,
  eventType: string,
  actor: Identity,
  audience: Envelope['audience'],
  payload: JsonObject,
): Envelope {
  return {
    event_id: ctx.newId(),
    event_type: eventType,
    timestamp: ctx.now().toISOString(),
    correlation_id: null,
    producer: 'ws_gateway',
    actor: { user_id: actor.userId, username: actor.username, roles: actor.roles },
    audience,
    payload,
  };
}

/** `system.event.user_connected` / `_disconnected` (docs/events.md): broadcast audience, keyed by user. */
export function userConnectionEvent(
  ctx: EnvelopeContext,
  kind: 'connected' | 'disconnected',
  identity: Identity,
  connectionId: string,
): OutboundRecord {
  return {
    topic: TOPICS.systemEvents,
    key: identity.userId,
    envelope: envelope(ctx, `system.event.user_${kind}`, identity, BROADCAST, {
      connection_id: connectionId,
    }),
  };
}

/** `presence.event.user_online` / `_offline` on `gateway.presence` (docs/decisions.md D7): one per transition. */
export function presenceEvent(
  ctx: EnvelopeContext,
  kind: 'online' | 'offline',
  identity: Identity,
): OutboundRecord {
  return {
    topic: TOPICS.presence,
    key: identity.userId,
    envelope: envelope(ctx, `presence.event.user_${kind}`, identity, BROADCAST, {
      user_id: identity.userId,
      username: identity.username,
    }),
  };
}

/** `games.command.player_disconnected {room_id}` keyed by room (docs/decisions.md D7, D10). */
export function playerDisconnectedCommand(
  ctx: EnvelopeContext,
  identity: Identity,
  roomId: string,
): OutboundRecord {
  return {
    topic: TOPICS.gamesCommands,
    key: roomId,
    envelope: envelope(
      ctx,
      'games.command.player_disconnected',
      identity,
      { type: 'room', user_ids: [], room_id: roomId, game_id: null },
      { room_id: roomId },
    ),
  };
}
