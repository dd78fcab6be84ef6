/**
 * The platform's Kafka event envelope (docs/events.md: the gateway variant and the backend variant).
 * Produced by the gateway for client commands and system events; consumed leniently (docs/decisions.md D5).
 */

export type AudienceType = 'user' | 'users' | 'room' | 'broadcast' | 'spectators' | 'players';

export interface Actor {
  /** Numeric user id as a decimal string (backend parses it to i64). */
  readonly user_id: string;
  /** Always a string (the backend rejects null). */
  readonly username: string;
  readonly roles: readonly string[];
  readonly socket_id?: string;
}

export interface Audience {
  readonly type: AudienceType;
  readonly user_ids: readonly string[];
  readonly room_id: string | null;
  readonly game_id: string | null;
}

/** A JSON value as it comes off the wire. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Envelope {
  readonly event_id: string;
  readonly event_type: string;
  /** RFC 3339; produced with `Z`, consumed with `Z` or an offset. */
  readonly timestamp: string;
  readonly correlation_id: string | null;
  readonly producer: string;
  readonly actor: Actor;
  readonly audience: Audience;
  readonly payload: JsonObject;
}

/** The authenticated identity of a connection (from a verified token or the credential form). */
export interface Identity {
  readonly userId: string;
  readonly username: string;
  readonly roles: readonly string[];
}

export const TOPICS = {
  chatCommands: 'chat.commands',
  gamesCommands: 'games.commands',
  systemEvents: 'system.events',
  presence: 'gateway.presence',
  chatEvents: 'chat.events',
  gamesEvents: 'games.events',
} as const;

export type Topic = (typeof TOPICS)[keyof typeof TOPICS];

/** Topics the event consumer reads (docs/architecture.md). */
export const CONSUMED_TOPICS = [TOPICS.systemEvents, TOPICS.chatEvents, TOPICS.gamesEvents] as const;
