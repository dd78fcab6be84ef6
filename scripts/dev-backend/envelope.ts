/**
 * Envelopes as the platform backend writes them (docs/events.md): `producer: "blazing_sun"`,
 * `correlation_id: null`, the system actor, a `+00:00` timestamp with nanoseconds, and a payload
 * tagged with its inner `type`. Development aid only: nothing under `scripts/` is deployed.
 */
import { randomUUID } from 'node:crypto';
import type { Audience, Envelope, JsonObject } from '../../lib/protocol/envelope';

/** The actor of every backend event. */
export const SYSTEM_ACTOR = { user_id: '0', username: 'system', socket_id: '', roles: [] } as const;

/** The backend's audience constructors. `spectators` carries the room id in `game_id`. */
export const audience = {
  user: (userId: string | number): Audience => ({
    type: 'user',
    user_ids: [String(userId)],
    room_id: null,
    game_id: null,
  }),
  users: (...userIds: Array<string | number>): Audience => ({
    type: 'users',
    user_ids: userIds.map(String),
    room_id: null,
    game_id: null,
  }),
  room: (roomId: string): Audience => ({ type: 'room', user_ids: [], room_id: roomId, game_id: null }),
  spectators: (roomId: string): Audience => ({
    type: 'spectators',
    user_ids: [],
    room_id: null,
    game_id: roomId,
  }),
  broadcast: (): Audience => ({ type: 'broadcast', user_ids: [], room_id: null, game_id: null }),
};

/** The backend's envelope timestamp: nanosecond fraction and a `+00:00` offset. */
export function backendTimestamp(at: Date = new Date()): string {
  return at.toISOString().replace(/\.(\d{3})Z$/, '.$1000000+00:00');
}

/** A timestamp inside a payload (`joined_at`, `created_at` of a room): UTC with `Z`. */
export function payloadTimestamp(at: Date = new Date()): string {
  return at.toISOString();
}

export function backendEnvelope(
  eventType: string,
  to: Audience,
  payload: JsonObject,
  actor: Envelope['actor'] = SYSTEM_ACTOR,
): Envelope {
  return {
    event_id: randomUUID(),
    event_type: eventType,
    timestamp: backendTimestamp(),
    correlation_id: null,
    producer: 'blazing_sun',
    actor: { ...actor, roles: [...actor.roles] },
    audience: to,
    payload,
  };
}

/**
 * One record the dev backend produces. The platform backend leaves its events unkeyed; the dev
 * backend keys them (by room, lobby or conversation) so the events of one room keep their order
 * across the mock cluster's partitions and the demo reads the same every time.
 */
export interface OutboundEvent {
  readonly topic: string;
  readonly key: string;
  readonly envelope: Envelope;
}
