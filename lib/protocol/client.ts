/**
 * Client → server messages: one table of all 42 types (docs/protocol.md, docs/decisions.md D4), the parser that
 * validates a frame once, and the builder that turns a forwarded message into Kafka command records.
 *
 * Pure code: no Redis, no Kafka. The one lookup `chat.command.mark_read` needs (message id → sender) is
 * a port passed in by the caller.
 */

import { ClientError, invalidFormat } from '../errors';
import type { Actor, Audience, Envelope, Identity, JsonObject } from './envelope';
import { TOPICS } from './envelope';
import {
  compileFields,
  type FieldSchema,
  type Fields,
  type FieldValue,
  type JsonRecord,
  numericId,
} from './fields';

// ---------------------------------------------------------------------------------------------------
// Row shapes
// ---------------------------------------------------------------------------------------------------

/** A validated client message of type `T` with the fields of `S`. */
export type Message<T extends string, S extends FieldSchema> = {
  readonly type: T;
  /**
   * The client's `request_id` (or else `correlation_id`) when it sent a string; it becomes the
   * envelope's `correlation_id` (docs/decisions.md D4). Any other JSON type is ignored like any unknown field.
   */
  readonly correlation_id?: string;
} & Fields<S>;

/** What a chat payload builder may use besides the message. */
export interface ChatPayloadContext {
  /** The authenticated user's id as the integer the chat backend trusts (`sender_id` / `user_id`). */
  readonly actorId: number;
  /** The connection that sent the command; half of the `socket_id` correlation token. */
  readonly connectionId: string;
  readonly resolveMessageSenders: CommandDeps['resolveMessageSenders'];
}

/** Handled by the gateway itself; never reaches Kafka. */
export interface LocalRoute {
  readonly kind: 'local';
}

/**
 * Forwarded to `games.commands`, keyed by `payload.room_id` when it is a string, else by the actor
 * (docs/protocol.md). Builders are declared with method syntax on purpose: it lets rows typed for one
 * message live in one lookup map (see `FORWARD_ROUTES`).
 */
export interface GamesRoute<M> {
  readonly kind: 'forward';
  readonly topic: typeof TOPICS.gamesCommands;
  readonly key: 'room_id_or_actor';
  /** The Kafka payload: exactly the contract's keys, in its order. */
  payload(msg: M): JsonObject;
}

/** Forwarded to `chat.commands`, keyed by the actor, with the backend payload of docs/protocol.md. */
export interface ChatRoute<M> {
  readonly kind: 'forward';
  readonly topic: typeof TOPICS.chatCommands;
  readonly key: 'actor';
  /** One payload per record (mark_read may address several senders). */
  payloads(msg: M, ctx: ChatPayloadContext): readonly JsonObject[] | Promise<readonly JsonObject[]>;
  /** The lobby the sending connection joins as a side effect (docs/protocol.md), if any. */
  joinsLobby?(msg: M): number;
}

/** One row of {@link CLIENT_MESSAGE_TABLE}. */
export interface ClientMessageRow<T extends string, S extends FieldSchema, R> {
  readonly type: T;
  /** The client fields (contract notation: `str?` = may be absent or null). */
  readonly fields: S;
  readonly route: R;
  /** Validator compiled once from `fields` at module load. */
  readonly parse: (obj: JsonRecord) => Message<T, S>;
}

function compileMessage<const T extends string, const S extends FieldSchema>(
  type: T,
  fields: S,
): (obj: JsonRecord) => Message<T, S> {
  const validate = compileFields(fields);
  return (obj) => {
    const values = validate(obj);
    const correlation = correlationOf(obj);
    return correlation === undefined ? { type, ...values } : { type, correlation_id: correlation, ...values };
  };
}

function correlationOf(obj: JsonRecord): string | undefined {
  const request = Object.hasOwn(obj, 'request_id') ? obj.request_id : undefined;
  if (typeof request === 'string') return request;
  const correlation = Object.hasOwn(obj, 'correlation_id') ? obj.correlation_id : undefined;
  return typeof correlation === 'string' ? correlation : undefined;
}

const local = <const T extends string, const S extends FieldSchema>(
  type: T,
  fields: S,
): ClientMessageRow<T, S, LocalRoute> => ({
  type,
  fields,
  route: { kind: 'local' },
  parse: compileMessage(type, fields),
});

/** A games row. Without a builder the payload is the schema's fields in order, optional ones only when set. */
const games = <const T extends string, const S extends FieldSchema>(
  type: T,
  fields: S,
  payload?: (msg: Message<T, S>) => JsonObject,
): ClientMessageRow<T, S, GamesRoute<Message<T, S>>> => {
  const keys = Object.keys(fields);
  return {
    type,
    fields,
    route: {
      kind: 'forward',
      topic: TOPICS.gamesCommands,
      key: 'room_id_or_actor',
      payload: payload ?? ((msg) => copyFields(msg, keys)),
    },
    parse: compileMessage(type, fields),
  };
};

const chat = <const T extends string, const S extends FieldSchema>(
  type: T,
  fields: S,
  payloads: ChatRoute<Message<T, S>>['payloads'],
  joinsLobby?: (msg: Message<T, S>) => number,
): ClientMessageRow<T, S, ChatRoute<Message<T, S>>> => ({
  type,
  fields,
  route: {
    kind: 'forward',
    topic: TOPICS.chatCommands,
    key: 'actor',
    payloads,
    ...(joinsLobby && { joinsLobby }),
  },
  parse: compileMessage(type, fields),
});

type FieldRecord = { readonly [field: string]: FieldValue | undefined };

function copyFields(msg: FieldRecord, keys: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const key of keys) {
    const value = msg[key];
    if (value !== undefined) out[key] = Array.isArray(value) ? [...value] : value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------------

const ROOM = { room_id: 'str' } as const;
const ROOM_TARGET = { room_id: 'str', target_user_id: 'uid' } as const;
const ROOM_CONTENT = { room_id: 'str', content: 'str' } as const;
const ROOM_NAME_PASSWORD = { room_name: 'str', password: 'str?' } as const;
const LOBBY = { lobby_id: 'chat_id' } as const;

/**
 * Every client message type: its fields and where it goes. Adding a type is adding a row; the docs
 * (`docs/protocol.md`) and the tests are checked against this table.
 */
export const CLIENT_MESSAGE_TABLE = [
  // Local (docs/protocol.md)
  local('system.authenticate', { token: 'str?', user_id: 'uid?', username: 'str?', avatar_id: 'str?' }),
  local('system.heartbeat', {}),
  local('system.sync_state', {}),
  local('chat.command.join_lobby', LOBBY),
  local('chat.command.leave_lobby', LOBBY),

  // Chat, bridged to the backend's chat handler (docs/protocol.md). Ids and content were checked by the parser.
  chat('chat.command.send_message', { recipient_id: 'chat_id', content: 'chat_text' }, (m, c) => [
    {
      type: 'send_message',
      sender_id: c.actorId,
      recipient_id: m.recipient_id,
      content: m.content,
      socket_id: `${c.connectionId}|${m.recipient_id}`,
    },
  ]),
  chat(
    'chat.command.send_lobby_message',
    { lobby_id: 'chat_id', content: 'chat_text' },
    (m, c) => [
      {
        type: 'send_lobby_message',
        sender_id: c.actorId,
        lobby_id: m.lobby_id,
        content: m.content,
        socket_id: `${c.connectionId}|lobby:${m.lobby_id}`,
      },
    ],
    (m) => m.lobby_id,
  ),
  chat('chat.command.typing', { recipient_id: 'chat_id' }, (m, c) => [
    { type: 'typing', sender_id: c.actorId, recipient_id: m.recipient_id, is_typing: true },
  ]),
  chat('chat.command.mark_read', { message_ids: 'str[]', other_user_id: 'chat_id?' }, async (m, c) => {
    const others = m.other_user_id !== undefined ? [m.other_user_id] : await resolveSenders(m.message_ids, c);
    return others.map((other) => ({ type: 'mark_read', user_id: c.actorId, other_user_id: other }));
  }),

  // Games (docs/protocol.md, docs/decisions.md D4): payload = the client fields in contract order unless a builder says otherwise.
  games('games.command.create_room', {
    game_type: 'str',
    room_name: 'str',
    password: 'str?',
    max_players: 'i32?',
    allow_spectators: 'bool?',
  }),
  games('games.command.join_room', ROOM_NAME_PASSWORD),
  games('games.command.leave_room', ROOM),
  games('games.command.spectate', ROOM),
  games('games.command.stop_spectating', ROOM),
  games('games.command.player_chat', ROOM_CONTENT),
  games('games.command.spectator_chat', ROOM_CONTENT),
  games('games.command.select_player', ROOM_TARGET),
  games('games.command.kick_player', ROOM_TARGET),
  games('games.command.kick_spectator', ROOM_TARGET),
  games('games.command.vote_kick_disconnected', ROOM_TARGET),
  games('games.command.ban_player', ROOM_TARGET),
  games('games.command.unban_player', ROOM_TARGET),
  games('games.command.bigger_dice.roll', ROOM),
  games('games.command.bigger_dice.auto_roll', ROOM_TARGET),
  games('games.command.bigger_dice.enable_auto_play', ROOM),
  games('games.command.tic_tac_toe.move', { room_id: 'str', position: 'u8' }),
  // `game_type` is always present, null when absent (the backend then lists bigger_dice rooms).
  games('games.command.list_rooms', { game_type: 'str?' }, (m) => ({ game_type: m.game_type ?? null })),
  games('games.command.ready', ROOM),
  games('games.command.rejoin_room', { room_id: 'str?', room_name: 'str?' }),
  // The client's avatar_id is not in the schema, so it is dropped like any unknown field.
  games('games.command.send_chat', { room_id: 'str', channel: 'str', content: 'str' }),
  games('games.command.get_chat_history', { room_id: 'str', channel: 'str', limit: 'int?' }, (m) => ({
    room_id: m.room_id,
    channel: m.channel,
    limit: m.limit ?? null,
  })),
  // The backend reads `ready` (default true), so it gets a copy of is_ready (docs/decisions.md D4).
  games('games.command.set_ready', { room_id: 'str', is_ready: 'bool' }, (m) => ({
    room_id: m.room_id,
    is_ready: m.is_ready,
    ready: m.is_ready,
  })),
  games('games.command.start_game', ROOM),
  games('games.command.deselect_player', ROOM_TARGET),
  games('games.command.designate_admin_spectator', ROOM_TARGET),
  games('games.command.join_as_spectator', ROOM_NAME_PASSWORD),
  games('games.command.mute_user', ROOM_TARGET),
  games('games.command.unmute_user', ROOM_TARGET),
  // Backend commands the Rust gateway could not forward (docs/decisions.md D4).
  games('games.command.select_spectator', ROOM_TARGET),
  games('games.command.become_spectator', ROOM),
  games('games.command.become_player', ROOM),
  games('games.command.leave_spectate', ROOM),
] as const;

type TableRow = (typeof CLIENT_MESSAGE_TABLE)[number];

/** Every client message `type` string. */
export type ClientMessageType = TableRow['type'];

/** A validated client message: a discriminated union on `type`, derived from the table. */
export type ClientMessage = ReturnType<TableRow['parse']>;

/** The message of one type. */
export type ClientMessageOf<T extends ClientMessageType> = Extract<ClientMessage, { readonly type: T }>;

/** Types the gateway handles itself. */
export type LocalMessageType = Extract<TableRow, { readonly route: LocalRoute }>['type'];
/** Types forwarded to Kafka. */
export type ForwardedMessageType = Exclude<ClientMessageType, LocalMessageType>;

export type LocalClientMessage = ClientMessageOf<LocalMessageType>;
export type ForwardedClientMessage = ClientMessageOf<ForwardedMessageType>;

/** The 42 client message types, in table order. */
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = CLIENT_MESSAGE_TABLE.map((row) => row.type);

// Lookups built once; the hot path is a Map.get.
const ROWS: ReadonlyMap<string, TableRow> = new Map(CLIENT_MESSAGE_TABLE.map((row) => [row.type, row]));

type AnyMessage = { readonly type: string; readonly correlation_id?: string } & FieldRecord;
type AnyForwardRoute = GamesRoute<AnyMessage> | ChatRoute<AnyMessage>;

/**
 * Forwarding routes by type. Each row's builder is typed for its own message; the map erases that to
 * `AnyMessage`, which is sound because a route is only ever called with a message of its own `type`.
 */
const FORWARD_ROUTES: ReadonlyMap<string, AnyForwardRoute> = new Map(
  CLIENT_MESSAGE_TABLE.flatMap(
    (row): Array<[string, AnyForwardRoute]> => (row.route.kind === 'forward' ? [[row.type, row.route]] : []),
  ),
);

/** Whether a string is one of the client message types. */
export function isClientMessageType(type: string): type is ClientMessageType {
  return ROWS.has(type);
}

/** Whether a message is forwarded to Kafka (else it is one of the local types). */
export function isForwarded(msg: ClientMessage): msg is ForwardedClientMessage {
  return FORWARD_ROUTES.has(msg.type);
}

// ---------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------

function isJsonRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses and validates one text frame in a single pass.
 *
 * @throws ClientError `INVALID_FORMAT` ("Invalid message format") for anything that is not a valid client
 * message — bad JSON, not an object, unknown or non-string `type`, a missing field, a field of the wrong
 * JSON type, a chat id or content outside the docs/protocol.md limits. The reason is in the error's `cause` (for
 * logs). Nothing else is ever thrown.
 */
export function parseClientMessage(raw: string): ClientMessage {
  try {
    const data: unknown = JSON.parse(raw);
    if (!isJsonRecord(data)) throw new TypeError('frame is not a JSON object');
    const type = Object.hasOwn(data, 'type') ? data.type : undefined;
    if (typeof type !== 'string') throw new TypeError('frame has no string "type"');
    const row = ROWS.get(type);
    if (row === undefined) throw new TypeError('unknown message type');
    return row.parse(data);
  } catch (err) {
    // Including what JSON.parse throws (SyntaxError, RangeError on absurd nesting) and FieldError.
    throw invalidFormat(err);
  }
}

// ---------------------------------------------------------------------------------------------------
// Authentication gate
// ---------------------------------------------------------------------------------------------------

/**
 * The types a connection may send before `system.authenticate` succeeded (docs/protocol.md). Every other
 * valid message gets `MESSAGE_ERROR "Connection not authenticated"`; `system.sync_state` passes the gate
 * but is itself answered with that error until the connection is authenticated.
 */
export const PRE_AUTH_TYPES = [
  'system.authenticate',
  'system.heartbeat',
  'system.sync_state',
] as const satisfies readonly ClientMessageType[];

const PRE_AUTH: ReadonlySet<string> = new Set(PRE_AUTH_TYPES);

/** Whether a message of this type needs an authenticated connection. Callers enforce it. */
export function requiresAuthentication(type: ClientMessageType): boolean {
  return !PRE_AUTH.has(type);
}

// ---------------------------------------------------------------------------------------------------
// Command records
// ---------------------------------------------------------------------------------------------------

/** One Kafka message to produce. */
export interface CommandRecord {
  readonly topic: string;
  readonly key: string;
  readonly envelope: Envelope;
}

/** Per-message inputs of {@link buildCommandRecords}; functions so tests are deterministic. */
export interface CommandContext {
  readonly identity: Identity;
  readonly connectionId: string;
  /** A fresh UUID v4 (lowercase, hyphenated) per call. */
  readonly eventId: () => string;
  readonly now: () => Date;
}

/** Ports {@link buildCommandRecords} may call. */
export interface CommandDeps {
  /**
   * The sender's user id of each chat message id, aligned with the input (`null` when unknown); backed
   * by the delivered-message cache (`chat:msg:{id}`). Used only by `chat.command.mark_read` without
   * `other_user_id`.
   */
  resolveMessageSenders(messageIds: string[]): Promise<Array<string | null>>;
}

/** The result of {@link buildCommandRecords}. */
export interface CommandBuild {
  /** Records to produce, in order. Usually one; `mark_read` yields one per resolved sender. */
  readonly records: readonly CommandRecord[];
  /**
   * Set for `chat.command.send_lobby_message`: the lobby id (decimal string) the sending connection must
   * be subscribed to, so it receives the lobby's messages including its own (docs/protocol.md). The
   * caller subscribes it whether or not producing succeeds: the client asked to be in that lobby.
   */
  readonly joinLobby?: string;
}

/** Numeric user id check of docs/protocol.md: the chat backend parses ids as i64 and trusts them. */
export const chatRequiresNumericUserId = () =>
  new ClientError('MESSAGE_ERROR', 'Chat requires a numeric user id');

type KeyRule = GamesRoute<unknown>['key'] | ChatRoute<unknown>['key'];

const KEY_RULES: Readonly<Record<KeyRule, (payload: JsonObject, identity: Identity) => string>> = {
  actor: (_payload, identity) => identity.userId,
  room_id_or_actor: (payload, identity) =>
    typeof payload.room_id === 'string' ? payload.room_id : identity.userId,
};

const AUDIENCES: Readonly<Record<AnyForwardRoute['topic'], (payload: JsonObject) => Audience>> = {
  [TOPICS.chatCommands]: () => ({ type: 'user', user_ids: [], room_id: null, game_id: null }),
  [TOPICS.gamesCommands]: (payload) => ({
    type: 'room',
    user_ids: [],
    room_id: typeof payload.room_id === 'string' ? payload.room_id : null,
    game_id: null,
  }),
};

/**
 * Builds the Kafka records for a forwarded client message (docs/protocol.md, docs/events.md, docs/decisions.md D4).
 *
 * The actor always comes from `ctx.identity`, never from the client; chat payloads are built field by
 * field, so a client-sent `sender_id` / `user_id` has no effect.
 *
 * @throws ClientError `MESSAGE_ERROR "Chat requires a numeric user id"` for a chat command when the
 * identity's user id is not a positive decimal integer.
 * @throws ClientError `INVALID_FORMAT` for `chat.command.mark_read` without `other_user_id` when none of
 * its `message_ids` resolves to a sender.
 * Errors of `deps.resolveMessageSenders` propagate unchanged.
 *
 * @example
 * const { records, joinLobby } = await buildCommandRecords(msg, { identity, connectionId, eventId: randomUUID, now: () => new Date() }, deps);
 */
export async function buildCommandRecords(
  msg: ForwardedClientMessage,
  ctx: CommandContext,
  deps: CommandDeps,
): Promise<CommandBuild> {
  const route = FORWARD_ROUTES.get(msg.type);
  if (route === undefined) throw new TypeError(`${msg.type} is not a forwarded message type`);

  let payloads: readonly JsonObject[];
  let joinLobby: number | undefined;
  if (route.topic === TOPICS.gamesCommands) {
    payloads = [route.payload(msg)];
  } else {
    const actorId = numericId(ctx.identity.userId);
    if (actorId === undefined) throw chatRequiresNumericUserId();
    payloads = await route.payloads(msg, {
      actorId,
      connectionId: ctx.connectionId,
      resolveMessageSenders: (ids) => deps.resolveMessageSenders(ids),
    });
    joinLobby = route.joinsLobby?.(msg);
  }

  const timestamp = ctx.now().toISOString();
  const actor: Actor = {
    user_id: ctx.identity.userId,
    username: ctx.identity.username,
    roles: [...ctx.identity.roles],
  };
  const records = payloads.map(
    (payload): CommandRecord => ({
      topic: route.topic,
      key: KEY_RULES[route.key](payload, ctx.identity),
      envelope: {
        event_id: ctx.eventId(),
        event_type: msg.type,
        timestamp,
        correlation_id: msg.correlation_id ?? null,
        producer: 'ws_gateway',
        actor,
        audience: AUDIENCES[route.topic](payload),
        payload,
      },
    }),
  );
  return joinLobby === undefined ? { records } : { records, joinLobby: String(joinLobby) };
}

/** mark_read without other_user_id: one backend command per distinct known sender (docs/protocol.md). */
async function resolveSenders(messageIds: readonly string[], ctx: ChatPayloadContext): Promise<number[]> {
  const unique = [...new Set(messageIds)];
  if (unique.length === 0) throw invalidFormat(new TypeError('mark_read needs message_ids or other_user_id'));
  const senders = await ctx.resolveMessageSenders(unique);
  const distinct = new Set<number>();
  for (const sender of senders) {
    // The cache is written by the gateway, but a garbled entry must not reach the backend either.
    const id = numericId(sender);
    if (id !== undefined) distinct.add(id);
  }
  if (distinct.size === 0) throw invalidFormat(new TypeError('no sender known for the message_ids'));
  return [...distinct];
}
