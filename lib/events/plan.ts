/**
 * Who receives an event, and which room memberships change around the send (docs/events.md with
 * docs/decisions.md D3/D5). Pure: the plan is data that the delivery executor carries out against Redis and API
 * Gateway, so every routing rule is testable without either.
 */

import type { Envelope, Json, JsonObject } from '../protocol/envelope';
import { TOPICS } from '../protocol/envelope';
import { convertEnvelope, splitCorrelationToken } from './convert';
import { field, integerToString, isJsonObject, numericStringToString } from './parse';

/** The recipients of an event's message. */
export type Target =
  /** Every connection of each user (audiences `user` and `users`). */
  | { readonly kind: 'users'; readonly userIds: readonly string[] }
  /** Connections registered in a game room (audiences `room` and `players` on game topics). */
  | { readonly kind: 'room'; readonly roomId: string }
  /** Connections registered in the pseudo-room `spectators:<roomId>`. */
  | { readonly kind: 'spectators'; readonly roomId: string }
  /** Connections subscribed to a chat lobby (a `room` audience on `chat.events`). */
  | { readonly kind: 'lobby'; readonly lobbyId: string }
  /** Every open connection, anonymous ones included. */
  | { readonly kind: 'broadcast' }
  /** Nobody; `reason` says why (for logs). */
  | { readonly kind: 'none'; readonly reason: string };

/**
 * A membership change for every connection of `userId`.
 * - `join`: add to room `roomId`; with `spectator: true` also to the pseudo-room `spectators:<roomId>`.
 * - `leave`: remove from `roomId` **and** `spectators:<roomId>`; `spectator` is always `false`.
 */
export interface MembershipOp {
  readonly op: 'join' | 'leave';
  readonly userId: string;
  readonly roomId: string;
  readonly spectator: boolean;
}

/** Chat bridge work that goes with a `chat.event` delivery (docs/protocol.md). */
export interface ChatHints {
  /** Remember `chat:msg:{messageId}` → sender, so a later `mark_read` can name the conversation. */
  readonly recordMessage?: { readonly messageId: string; readonly senderId: string };
  /** Fill the message's `sender_name` with this user's display name from the session store. */
  readonly resolveSenderNameOf?: string;
  /** Deliver only to this connection when it is among the recipients (the originator of a failed command). */
  readonly preferConnectionId?: string;
}

/**
 * What to do with one event, in order: apply `before`, send `message` to `target` (nothing when
 * `message` is `null`), apply `after`. `target` always reflects the audience, even when there is
 * no message.
 */
export interface DeliveryPlan {
  readonly eventId: string;
  readonly eventType: string;
  /** The envelope's `timestamp`: membership changes of a (room, user) pair apply in its order (docs/decisions.md D10). */
  readonly timestamp: string;
  /** The room a `*.room_removed` event removes: nobody is put back into it (docs/decisions.md D10). */
  readonly roomRemoved?: string;
  readonly message: Record<string, Json> | null;
  readonly target: Target;
  readonly before: readonly MembershipOp[];
  readonly after: readonly MembershipOp[];
  readonly chat?: ChatHints;
}

/** `games.event.X` or `*.X`: the Rust gateway matched event kinds by suffix, whatever the game prefix. */
function kindOf(eventType: string, kinds: ReadonlySet<string>): string | undefined {
  const dot = eventType.lastIndexOf('.');
  const last = dot < 0 ? undefined : eventType.slice(dot + 1);
  return last !== undefined && kinds.has(last) ? last : undefined;
}

/** Event kinds that register the targeted user's connections in a room. */
export const JOIN_KINDS: ReadonlySet<string> = new Set([
  'room_state',
  'room_created',
  'player_rejoined',
  'lobby_joined',
  'spectator_data_joined',
]);

/** Event kinds that remove a user's connections from a room (and its spectators). */
export const LEAVE_KINDS: ReadonlySet<string> = new Set([
  'player_left',
  'player_kicked',
  'player_banned',
  'removed_from_game',
  'spectator_left',
  'spectator_kicked',
]);

/** Event kinds that end a room: reconnection records for it are void (docs/decisions.md D10). */
const REMOVED_KINDS: ReadonlySet<string> = new Set(['room_removed']);

/** A user id from the payload: an integer or a numeric string, canonical decimal. */
function userIdOf(value: Json | undefined): string | undefined {
  return integerToString(value) ?? numericStringToString(value);
}

function objectAt(obj: JsonObject, key: string): JsonObject {
  const v = field(obj, key);
  return isJsonObject(v) ? v : {};
}

function stringAt(obj: JsonObject, key: string): string | undefined {
  const v = field(obj, key);
  return typeof v === 'string' ? v : undefined;
}

/** Whether `userId` is a spectator according to the join event's payload. */
function joinsAsSpectator(kind: string, payload: JsonObject, userId: string): boolean {
  const uid = numericStringToString(userId);
  // A non-numeric user id never matches (the Rust gateway compared it as 0, which matched nobody real).
  if (uid === undefined) return false;
  if (kind === 'room_state') {
    const data = field(objectAt(payload, 'room'), 'spectators_data');
    return Array.isArray(data) && data.some((s) => isJsonObject(s) && userIdOf(field(s, 'user_id')) === uid);
  }
  if (kind === 'spectator_data_joined')
    return userIdOf(field(objectAt(payload, 'spectator'), 'user_id')) === uid;
  return false;
}

/** Joins for a user-targeted join event: the room, plus its spectators when the user is one. */
function joinOps(kind: string, payload: JsonObject, userIds: readonly string[]): MembershipOp[] {
  const roomId =
    kind === 'room_state' ? stringAt(objectAt(payload, 'room'), 'room_id') : stringAt(payload, 'room_id');
  if (roomId === undefined) return [];
  return userIds.map((userId) => ({
    op: 'join',
    userId,
    roomId,
    spectator: joinsAsSpectator(kind, payload, userId),
  }));
}

function leaveOps(userIds: readonly string[], roomId: string): MembershipOp[] {
  return userIds.map((userId) => ({ op: 'leave', userId, roomId, spectator: false }));
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/** The payload as an object; the parser guarantees one, the check keeps hand-built envelopes safe. */
function payloadOf(env: Envelope): JsonObject {
  return isJsonObject(env.payload) ? env.payload : {};
}

function chatHints(env: Envelope, message: Record<string, Json>): ChatHints | undefined {
  const payload = payloadOf(env);
  switch (field(payload, 'type')) {
    case 'message_received': {
      const messageId = message['message_id'];
      const senderId = message['sender_id'];
      return typeof messageId === 'string' &&
        messageId !== '' &&
        typeof senderId === 'string' &&
        senderId !== ''
        ? { recordMessage: { messageId, senderId } }
        : undefined;
    }
    case 'typing_indicator': {
      const senderId = message['sender_id'];
      return typeof senderId === 'string' && senderId !== '' ? { resolveSenderNameOf: senderId } : undefined;
    }
    case 'error': {
      const { connectionId } = splitCorrelationToken(field(payload, 'socket_id'));
      return connectionId === '' ? undefined : { preferConnectionId: connectionId };
    }
    default:
      return undefined;
  }
}

/** Routing of a `chat.events` envelope: a room audience is a lobby, and no game memberships change. */
function planChat(
  env: Envelope,
  message: Record<string, Json> | null,
): Omit<DeliveryPlan, 'eventId' | 'eventType' | 'timestamp' | 'roomRemoved'> {
  const { audience } = env;
  let target: Target;
  switch (audience.type) {
    case 'user':
    case 'users': {
      const userIds = unique(audience.user_ids);
      target =
        userIds.length > 0
          ? { kind: 'users', userIds }
          : { kind: 'none', reason: 'user audience without user_ids' };
      break;
    }
    case 'room':
    case 'players':
      target =
        audience.room_id === null
          ? { kind: 'none', reason: 'room audience without room_id' }
          : { kind: 'lobby', lobbyId: audience.room_id };
      break;
    case 'spectators':
      // Spectator sets belong to game rooms, which chat events must never reach (docs/protocol.md).
      target = { kind: 'none', reason: 'spectators audience on chat.events' };
      break;
    case 'broadcast':
      target = { kind: 'broadcast' };
      break;
  }
  const chat = message && env.event_type === 'chat.event' ? chatHints(env, message) : undefined;
  return { message, target, before: [], after: [], ...(chat ? { chat } : {}) };
}

/** Routing of a game/system envelope (docs/events.md, docs/decisions.md D3, D5). */
function planGames(
  env: Envelope,
  message: Record<string, Json> | null,
): Omit<DeliveryPlan, 'eventId' | 'eventType' | 'timestamp' | 'roomRemoved'> {
  const { audience } = env;
  const payload = payloadOf(env);
  const none = (reason: string) => ({
    message,
    target: { kind: 'none', reason } as const,
    before: [],
    after: [],
  });
  switch (audience.type) {
    case 'user':
    case 'users': {
      const userIds = unique(audience.user_ids);
      if (userIds.length === 0) return none('user audience without user_ids');
      const before: MembershipOp[] = [];
      // As in the Rust gateway, a user-targeted event changes memberships only when it is delivered.
      if (message !== null) {
        const joinKind = kindOf(env.event_type, JOIN_KINDS);
        if (joinKind !== undefined) before.push(...joinOps(joinKind, payload, userIds));
        const roomId = stringAt(payload, 'room_id');
        if (kindOf(env.event_type, LEAVE_KINDS) !== undefined && roomId !== undefined) {
          // docs/decisions.md D3: without a usable payload.user_id (removed_from_game) the addressed users are the ones leaving.
          const leaving = userIdOf(field(payload, 'user_id'));
          before.push(...leaveOps(leaving === undefined ? userIds : [leaving], roomId));
        }
      }
      return { message, target: { kind: 'users', userIds }, before, after: [] };
    }
    case 'room': {
      if (audience.room_id === null) return none('room audience without room_id');
      const roomId = audience.room_id;
      const leaving = userIdOf(field(payload, 'user_id'));
      // Removed after the send so the leaving user still sees the event; also for unmapped events.
      const after =
        kindOf(env.event_type, LEAVE_KINDS) !== undefined && leaving !== undefined
          ? leaveOps([leaving], roomId)
          : [];
      return { message, target: { kind: 'room', roomId }, before: [], after };
    }
    case 'players':
      // No player/spectator distinction exists in the room sets; `players` reaches the whole room.
      return audience.room_id === null
        ? none('players audience without room_id')
        : { message, target: { kind: 'room', roomId: audience.room_id }, before: [], after: [] };
    case 'spectators': {
      // The backend puts the room id in game_id; room_id is accepted when game_id is missing.
      const roomId = audience.game_id ?? audience.room_id;
      return roomId === null
        ? none('spectators audience without game_id')
        : { message, target: { kind: 'spectators', roomId }, before: [], after: [] };
    }
    case 'broadcast':
      return { message, target: { kind: 'broadcast' }, before: [], after: [] };
  }
}

/**
 * Plans the delivery of one envelope read from `topic`. Pure and total: it never throws and never
 * performs I/O. An unmapped event type gives `message: null` (the caller counts it); a room-audience
 * leave event still removes the leaving user then.
 *
 * @example
 * const plan = planDelivery(envelope, 'games.events');
 * // { message: {...}, target: { kind: 'users', userIds: ['9'] }, before: [{ op: 'join', … }], after: [] }
 */
export function planDelivery(env: Envelope, topic: string): DeliveryPlan {
  const message = convertEnvelope(env, topic);
  const routed = topic === TOPICS.chatEvents ? planChat(env, message) : planGames(env, message);
  const removed = kindOf(env.event_type, REMOVED_KINDS) && stringAt(payloadOf(env), 'room_id');
  return {
    eventId: env.event_id,
    eventType: env.event_type,
    timestamp: env.timestamp,
    ...(removed ? { roomRemoved: removed } : {}),
    ...routed,
  };
}
