/**
 * Envelope → client message conversion, as a table.
 *
 * The gateway never forwards a backend payload as is: every client message is rebuilt from selected
 * payload fields, with the value rules of the Rust gateway (docs/events.md) — clients depend on the
 * exact shapes, down to `"0"` for an id that does not parse. Each row of the table names the event
 * types it serves, the client message type, and a *shape*: output field → reader. The readers are
 * the contract's helpers (`S`, `ID0`, `IDs`, `IDn`, `B`, `I`, `V`) plus a few composites, so a row
 * reads like the contract's table and adding an event type is adding a row.
 *
 * docs/decisions.md D5's additive fixes are written into the rows (marked "D5"); `chat.event` is dispatched on
 * `payload.type` through its own small table (docs/protocol.md).
 */

import type { Envelope, Json, JsonObject } from '../protocol/envelope';
import { TOPICS } from '../protocol/envelope';
import { field, integerToString, isJsonObject, numericStringToString, toUtcTimestamp } from './parse';

/** A message for a client: a JSON object whose `type` names it. */
export type ClientMessage = JsonObject & { type: string };

/**
 * Reads one output value from the object at hand (the payload, or an object nested in it).
 * `undefined` leaves the key out of the message. For the docs table, `optional` marks a key that may
 * be left out and `nested` lists the fields of a nested object or array of objects.
 */
export type FieldReader = ((obj: JsonObject, env: Envelope) => Json | undefined) & ReaderMeta;

interface ReaderMeta {
  readonly optional?: boolean;
  readonly nested?: string;
}

/** Output field name → reader. Key order is the order of the message (not part of the contract, docs/decisions.md D5). */
export type Shape = Readonly<Record<string, FieldReader>>;

/** One row of the conversion table, after expansion: what a given `event_type` becomes. */
export interface EventConversion {
  /** The client message `type`(s) this event can become (several only for `chat.event`). */
  readonly outputs: readonly string[];
  /** Fields of the client message besides `type`, as documented (`?` = may be absent). */
  readonly fields: readonly string[];
  /** Topics the conversion applies on; any topic when absent. */
  readonly topics?: readonly string[];
  /** Builds the client message, or `null` when this event is not delivered. Never throws. */
  readonly convert: (env: Envelope) => ClientMessage | null;
}

// ---------------------------------------------------------------------------------------------
// Value rules (docs/events.md), on plain JSON values
// ---------------------------------------------------------------------------------------------

/** An id the Rust gateway could parse: an i64 integer, or a string `str::parse::<i64>` accepts. */
export function parseId(value: Json | undefined): string | undefined {
  return integerToString(value) ?? numericStringToString(value);
}

/** `ID0`: parsed id, else `"0"` — a non-numeric string id becomes `"0"` too. */
export const id0 = (value: Json | undefined): string => parseId(value) ?? '0';
/** `IDs`: an integer as a decimal string, any string as is, else `""`. */
export const ids = (value: Json | undefined): string =>
  integerToString(value) ?? (typeof value === 'string' ? value : '');
/** `IDn`: parsed id, else `null`. */
export const idn = (value: Json | undefined): string | null => parseId(value) ?? null;

/** serde_json's `as_i64`: an integer in i64 range. */
function asI64(value: Json | undefined): number | undefined {
  return integerToString(value) === undefined ? undefined : (value as number);
}

/** serde_json's `as_u64`: a non-negative integer. */
function asU64(value: Json | undefined): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** Defaults are handed out as copies, so one message can never alias another's array or object. */
function fresh<T extends Json>(value: T): T {
  return typeof value === 'object' && value !== null ? structuredClone(value) : value;
}

function reader(
  read: (obj: JsonObject, env: Envelope) => Json | undefined,
  meta: ReaderMeta = {},
): FieldReader {
  return Object.assign(read, meta);
}

// ---------------------------------------------------------------------------------------------
// Readers: the contract's helpers
// ---------------------------------------------------------------------------------------------

/** `S(k)`: the string at `k`, else `d` (`""` unless the contract names another default). */
export const S = (k: string, d = ''): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return typeof v === 'string' ? v : d;
  });
/** `ID0(k)`: see {@link id0}. */
export const ID0 = (k: string): FieldReader => reader((o) => id0(field(o, k)));
/** `IDs(k)`: see {@link ids}. */
export const IDs = (k: string): FieldReader => reader((o) => ids(field(o, k)));
/** `IDn(k)`: see {@link idn}. */
export const IDn = (k: string): FieldReader => reader((o) => idn(field(o, k)));
/** `B(k, d)`: the boolean at `k`, else `d`. */
export const B = (k: string, d: boolean): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return typeof v === 'boolean' ? v : d;
  });
/** `I(k, d)`: the integer at `k` (serde `as_i64`), else `d`. */
export const I = (k: string, d: number): FieldReader => reader((o) => asI64(field(o, k)) ?? d);
/**
 * `I` for the fields the Rust gateway read with `as_u64` (a negative number falls back to `d`).
 * Its narrowing casts (`as u8`, `as u32`) are not reproduced: they only corrupted out-of-range
 * values, which the backend never sends.
 */
export const U = (k: string, d: number): FieldReader => reader((o) => asU64(field(o, k)) ?? d);
/** `V(k, d)`: the raw value at `k` (an explicit `null` included), else `d`. */
export const V = (k: string, d: Json): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return v === undefined ? fresh(d) : v;
  });

// ---------------------------------------------------------------------------------------------
// Readers: composites used by several rows
// ---------------------------------------------------------------------------------------------

/** A constant. */
export const K = (value: Json): FieldReader => reader(() => fresh(value));

/** The array at `k`, else `[]` (the Rust gateway's `as_array().cloned().unwrap_or_default()`). */
export const A = (k: string): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return Array.isArray(v) ? v : [];
  });

/** The string at `k`, else `null`. */
export const Sn = (k: string): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return typeof v === 'string' ? v : null;
  });

/** An integer as a string, a string as is, anything else leaves the key out (`avatar_id`). */
export const IDopt = (k: string): FieldReader =>
  reader(
    (o) => {
      const v = field(o, k);
      return typeof v === 'string' ? v : integerToString(v);
    },
    { optional: true },
  );

/** The first reader whose value is not `""` (docs/decisions.md D5 fills fields the backend names differently). */
export const orElse = (...readers: FieldReader[]): FieldReader =>
  reader((o, env) => {
    let last: Json | undefined;
    for (const r of readers) {
      last = r(o, env);
      if (last !== '') return last;
    }
    return last;
  });

/** A Rust `char` read from a string: its first code point (not UTF-16 unit), or `null`. */
function firstChar(value: Json | undefined): string | null {
  if (typeof value !== 'string' || value.length === 0) return null;
  return String.fromCodePoint(value.codePointAt(0) as number);
}
/** The first character of the string at `k`, else `d` (`mark`). */
export const Char = (k: string, d: string): FieldReader => reader((o) => firstChar(field(o, k)) ?? d);

/** A tic-tac-toe board: each cell's first character or `null`; no array ⇒ nine `null`s. */
export const Board = (k: string): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return Array.isArray(v) ? v.map(firstChar) : Array<null>(9).fill(null);
  });

/** An array of ids (ID rule); elements that do not parse are dropped. */
export const IdList = (k: string): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return Array.isArray(v) ? v.flatMap((x) => parseId(x) ?? []) : [];
  });

/** An array mapped element by element with `IDs`, unparsable ones becoming `""`. */
export const IdsList = (k: string): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return Array.isArray(v) ? v.map(ids) : [];
  });

/**
 * `[[id, n], …]` pairs. A pair whose id does not parse is dropped; `strictValue` also drops a pair
 * whose number is not an integer, otherwise it becomes 0 (both variants exist in docs/events.md).
 */
export const Pairs = (k: string, strictValue: boolean): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    if (!Array.isArray(v)) return [];
    return v.flatMap((pair): Json[] => {
      if (!Array.isArray(pair)) return [];
      const id = parseId(pair[0]);
      const n = asI64(pair[1]);
      if (id === undefined || (strictValue && n === undefined)) return [];
      return [[id, n ?? 0]];
    });
  });

/** `[[id, name, score], …]` (tic-tac-toe `final_scores`): id must parse; name `""`, score 0 by default. */
export const Triples = (k: string): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    if (!Array.isArray(v)) return [];
    return v.flatMap((t): Json[] => {
      if (!Array.isArray(t)) return [];
      const id = parseId(t[0]);
      if (id === undefined) return [];
      return [[id, typeof t[1] === 'string' ? t[1] : '', asI64(t[2]) ?? 0]];
    });
  });

/** The integers ≥ 0 of the array at `k`, or `null` when there is no array (`winning_line`). */
export const UintsOrNull = (k: string): FieldReader =>
  reader((o) => {
    const v = field(o, k);
    return Array.isArray(v) ? v.flatMap((x) => asU64(x) ?? []) : null;
  });

/** The documented field list of a shape: `name`, `name?` (may be absent), `name{…}` / `name[{…}]` (nested). */
export function describeShape(shape: Shape): string[] {
  return Object.entries(shape).map(([name, r]) => `${name}${r.optional ? '?' : ''}${r.nested ?? ''}`);
}

/** A nested object read with `shape` (a missing or non-object value reads as `{}`). */
export const Obj = (k: string, shape: Shape): FieldReader =>
  reader(
    (o, env) => {
      const v = field(o, k);
      return build(shape, isJsonObject(v) ? v : {}, env);
    },
    { nested: `{${describeShape(shape).join(', ')}}` },
  );

/** An array of objects, each read with `shape` (a non-array reads as `[]`). */
export const Each = (k: string, shape: Shape): FieldReader =>
  reader(
    (o, env) => {
      const v = field(o, k);
      return Array.isArray(v) ? v.map((x) => build(shape, isJsonObject(x) ? x : {}, env)) : [];
    },
    { nested: `[{${describeShape(shape).join(', ')}}]` },
  );

/**
 * An RFC 3339 timestamp at `k` re-serialised in UTC with `Z`, else the envelope's timestamp under
 * the same rule. `keep` keeps the fraction digits (chat bridge `Z(ts)`); `chrono` writes them as the
 * Rust gateway's chrono did (game events).
 */
export const Ts = (k: string, style: 'keep' | 'chrono'): FieldReader =>
  reader((o, env) => {
    const v = field(o, k);
    return (typeof v === 'string' ? toUtcTimestamp(v, style) : undefined) ?? envelopeTime(env, style);
  });

function envelopeTime(env: Envelope, style: 'keep' | 'chrono'): string {
  // The parser only admits RFC 3339 timestamps; the raw string is a last resort for a year
  // outside 0000–9999 after the shift to UTC.
  return toUtcTimestamp(env.timestamp, style) ?? env.timestamp;
}

/** The envelope timestamp, as chrono serialised the Rust gateway's `DateTime<Utc>`. */
export const EnvTime: FieldReader = reader((_o, env) => envelopeTime(env, 'chrono'));
/** `actor.user_id`. */
export const ActorId: FieldReader = reader((_o, env) => env.actor.user_id);
/** `actor.username` (the parser defaults it to `""`). */
export const ActorName: FieldReader = reader((_o, env) => env.actor.username);

/** Applies a shape to one object. Keys whose reader gives `undefined` are left out. */
export function build(shape: Shape, obj: JsonObject, env: Envelope): JsonObject {
  const out: JsonObject = {};
  for (const [name, read] of Object.entries(shape)) {
    const v = read(obj, env);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

function payloadOf(env: Envelope): JsonObject {
  // The parser guarantees an object; the check keeps hand-built envelopes from throwing.
  return isJsonObject(env.payload) ? env.payload : {};
}

function shaped(output: string, shape: Shape): EventConversion {
  return {
    outputs: [output],
    fields: describeShape(shape),
    convert: (env) => ({ type: output, ...build(shape, payloadOf(env), env) }),
  };
}

/** A conversion that yields no message unless `deliver(payload)` holds. */
function onlyIf(deliver: (payload: JsonObject) => boolean, conversion: EventConversion): EventConversion {
  return { ...conversion, convert: (env) => (deliver(payloadOf(env)) ? conversion.convert(env) : null) };
}

// ---------------------------------------------------------------------------------------------
// Shapes shared by several rows
// ---------------------------------------------------------------------------------------------

const ROOM_ID = S('room_id');

const roomCreated = (gameType: FieldReader): Shape => ({
  room_id: ROOM_ID,
  room_name: S('room_name'),
  game_type: gameType,
  host_id: ID0('host_id'),
  host_name: S('host_username'),
  is_password_protected: B('is_password_protected', false),
  player_count: I('player_count', 2),
  allow_spectators: B('allow_spectators', false),
});

/** `{room_id, user_id: ID0, username}` — rejoined, ready, auto-play on/off. */
const USER_ID0: Shape = { room_id: ROOM_ID, user_id: ID0('user_id'), username: S('username') };
/** `{room_id, user_id: IDs, username}` — deselected, spectator left/kicked, admin spectator. */
const USER_IDS: Shape = { room_id: ROOM_ID, user_id: IDs('user_id'), username: S('username') };
/** `{room_id, player_id, player_name}` — left, kicked, banned, unbanned (backend `user_id`/`username`). */
const PLAYER_MOVED: Shape = { room_id: ROOM_ID, player_id: ID0('user_id'), player_name: S('username') };

const gameStarted = (gameType: FieldReader): Shape => ({
  room_id: ROOM_ID,
  players: Each('players', { id: ID0('user_id'), name: S('username') }),
  first_turn: ID0('first_turn'),
  game_type: gameType,
});

/** docs/decisions.md D5: an integer `avatar_id` is carried as a string (the Rust gateway dropped it in lobby_joined). */
const lobbyPlayer = (score: FieldReader, isReady: FieldReader): FieldReader =>
  Obj('player', {
    user_id: IDs('user_id'),
    username: S('username'),
    avatar_id: IDopt('avatar_id'),
    score,
    is_ready: isReady,
  });

const CHAT_MESSAGE: Shape = {
  room_id: ROOM_ID,
  user_id: IDs('user_id'),
  username: S('username'),
  avatar_id: IDopt('avatar_id'),
  content: S('content'),
  is_system: B('is_system', false),
  timestamp: S('timestamp'),
};

/** docs/decisions.md D5: the backend's full `[[id, name, score], …]` replaces the 2-player object that lost players 3..N. */
const GAME_OVER: Shape = {
  room_id: ROOM_ID,
  winner: ID0('winner_id'),
  winner_name: S('winner_username'),
  final_scores: A('final_scores'),
};

const TTT_SCORES = Pairs('scores', false);

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/** The three prefixes of a `{G}` row: generic, tic-tac-toe, bigger dice. */
export const GAME_PREFIXES = [
  'games.event.',
  'games.event.tic_tac_toe.',
  'games.event.bigger_dice.',
] as const;
const G = (base: string): string[] => GAME_PREFIXES.map((p) => p + base);
const BD = 'games.event.bigger_dice.';
const TTT = 'games.event.tic_tac_toe.';

/** `null` output: the client message type equals the event type. */
type Row = readonly [eventTypes: readonly string[], output: string | null, shape: Shape];

const ROWS: readonly Row[] = [
  // Chat arms of the Rust gateway. No producer emits them (the backend uses `chat.event`); kept for parity.
  [
    ['chat.event.message_sent', 'chat.event.message_received'],
    'chat.event.message_received',
    {
      message_id: S('message_id'),
      sender_id: ActorId,
      sender_name: ActorName,
      content: S('content'),
      sent_at: EnvTime,
    },
  ],
  [
    ['chat.event.lobby_message'],
    null,
    {
      lobby_id: S('lobby_id'),
      message_id: S('message_id'),
      sender_id: ActorId,
      sender_name: ActorName,
      content: S('content'),
      sent_at: EnvTime,
    },
  ],
  [
    ['presence.event.user_online', 'presence.event.user_offline'],
    null,
    { user_id: ActorId, username: ActorName },
  ],

  [[`${TTT}room_created`], null, roomCreated(K('tic_tac_toe'))],
  [[`${BD}room_created`], null, roomCreated(K('bigger_dice'))],
  [['games.event.room_created'], null, roomCreated(S('game_type'))],
  [
    ['games.event.error'],
    'system.error',
    { code: S('code', 'game_error'), message: S('message', 'Unknown error') },
  ],
  [
    ['games.event.user_banned'],
    'system.error',
    { code: K('user_banned'), message: K('You are banned from this room') },
  ],
  [G('room_state'), null, { room: V('room', {}) }],
  [
    G('player_disconnected'),
    null,
    {
      room_id: ROOM_ID,
      user_id: ID0('user_id'),
      username: S('username'),
      timeout_at: Ts('timeout_at', 'chrono'),
    },
  ],
  [G('player_rejoined'), null, USER_ID0],
  // docs/decisions.md D5: the tic-tac-toe twins were dropped by the Rust gateway.
  [G('player_auto_enabled'), null, USER_ID0],
  [G('player_auto_disabled'), null, USER_ID0],
  [G('player_ready'), null, USER_ID0],
  [
    G('not_in_room'),
    null,
    {
      room_id: ROOM_ID,
      room_name: S('room_name'),
      is_password_protected: B('is_password_protected', false),
      status: S('status', 'waiting'),
      allow_spectators: B('allow_spectators', false),
    },
  ],
  [G('lobby_joined'), null, { room_id: ROOM_ID, player: lobbyPlayer(K(0), K(false)) }],
  [
    G('player_selected'),
    null,
    { room_id: ROOM_ID, player: lobbyPlayer(U('score', 0), B('is_ready', false)) },
  ],
  [G('player_left'), null, PLAYER_MOVED],
  [G('player_kicked'), null, PLAYER_MOVED],
  [G('player_banned'), null, PLAYER_MOVED],
  [G('player_unbanned'), null, PLAYER_MOVED],
  [G('removed_from_game'), null, { room_id: ROOM_ID, reason: S('reason'), message: S('message') }],
  [G('game_starting'), null, { room_id: ROOM_ID, players: V('players', []) }],
  [
    G('turn_changed'),
    null,
    { room_id: ROOM_ID, current_turn: ID0('current_turn'), turn_number: I('turn_number', 0) },
  ],
  [
    [`${BD}round_result`],
    null,
    {
      room_id: ROOM_ID,
      rolls: Pairs('rolls', true),
      winner_id: IDn('winner_id'),
      is_tie: B('is_tie', false),
      is_tiebreaker: B('is_tiebreaker', false),
      tiebreaker_players: IdList('tiebreaker_players'),
      scores: Pairs('scores', true),
    },
  ],
  [
    [`${BD}tiebreaker_started`],
    null,
    {
      room_id: ROOM_ID,
      tied_players: IdList('tied_players'),
      tied_roll: I('tied_roll', 0),
      // docs/decisions.md D5: the client reads `tiebreaker_players`; the backend names the same list `tied_players`.
      tiebreaker_players: IdList('tied_players'),
    },
  ],
  [
    [`${BD}state`],
    null,
    {
      room_id: ROOM_ID,
      round_number: I('round_number', 1),
      current_rolls: Pairs('current_rolls', true),
      pending_rollers: IdList('pending_rollers'),
      is_tiebreaker: B('is_tiebreaker', false),
      round_history: A('round_history'), // docs/decisions.md D5: the client rebuilds its history from it on rejoin
    },
  ],
  [[`${TTT}game_started`], null, gameStarted(K('tic_tac_toe'))],
  [[`${BD}game_started`], null, gameStarted(K('bigger_dice'))],
  [['games.event.game_started'], null, gameStarted(S('game_type', 'unknown'))],
  [
    ['games.event.room_list'],
    null,
    {
      rooms: Each('rooms', {
        room_id: S('room_id'),
        room_name: S('room_name'),
        game_type: S('game_type', 'bigger_dice'),
        host_id: ID0('host_id'), // docs/decisions.md D5: BiggerDice compares it with the user id to auto-navigate
        host_name: S('host_name'),
        status: S('status', 'waiting'),
        player_count: U('player_count', 0),
        spectator_count: U('spectator_count', 0),
        is_password_protected: B('is_password_protected', false),
        players: A('players'),
        lobby: A('lobby'),
        max_players: U('max_players', 0),
        allow_spectators: B('allow_spectators', false),
        can_rejoin: B('can_rejoin', false),
        rejoin_role: Sn('rejoin_role'),
      }),
    },
  ],
  [
    G('room_removed'),
    null,
    { room_id: ROOM_ID, room_name: S('room_name'), reason: S('reason', 'host_left') },
  ],
  [
    [`${BD}rolled`],
    null,
    {
      room_id: ROOM_ID,
      player_id: ID0('player_id'),
      player_name: S('player_username'),
      roll: U('roll', 0),
      is_first_roll: K(true), // a constant in the Rust gateway; clients ignore it
      new_score: I('new_score', 0), // docs/decisions.md D5
    },
  ],
  [['games.event.game_ended', `${BD}game_over`], `${BD}game_over`, GAME_OVER],
  [
    [`${TTT}moved`],
    null,
    {
      room_id: ROOM_ID,
      player_id: ID0('player_id'),
      player_username: S('player_username'),
      position: U('position', 0),
      mark: Char('mark', '?'),
      board: Board('board'),
    },
  ],
  [
    [`${TTT}game_result`],
    null,
    {
      room_id: ROOM_ID,
      winner_id: IDn('winner_id'),
      winner_username: Sn('winner_username'),
      winning_line: UintsOrNull('winning_line'),
      is_draw: B('is_draw', false),
      scores: TTT_SCORES,
      game_number: I('game_number', 1),
      next_first_player: ID0('next_first_player'),
    },
  ],
  [
    [`${TTT}match_ended`],
    null,
    {
      room_id: ROOM_ID,
      winner_id: ID0('winner_id'),
      winner_username: S('winner_username'),
      final_scores: Triples('final_scores'),
      prize_amount: I('prize_amount', 0),
    },
  ],
  [
    [`${TTT}state`],
    null,
    {
      room_id: ROOM_ID,
      board: Board('board'),
      player_x_id: ID0('player_x_id'),
      player_o_id: ID0('player_o_id'),
      current_turn: ID0('current_turn'),
      scores: TTT_SCORES,
      game_number: I('game_number', 1),
      move_deadline: Sn('move_deadline'),
      is_paused: B('is_paused', false),
      disconnected_player: IDn('disconnected_player'),
    },
  ],
  [
    [`${TTT}turn_timeout`],
    null,
    {
      room_id: ROOM_ID,
      player_id: ID0('player_id'),
      player_username: S('player_username'),
      winner_id: ID0('winner_id'),
      winner_username: S('winner_username'),
      scores: TTT_SCORES,
      game_number: I('game_number', 1),
    },
  ],
  [
    [`${TTT}match_cancelled`],
    null,
    { room_id: ROOM_ID, reason: S('reason'), refund_amount: I('refund_amount', 0) },
  ],
  [
    [`${TTT}game_paused`],
    null,
    {
      room_id: ROOM_ID,
      disconnected_player_id: ID0('disconnected_player_id'),
      disconnected_player_username: S('disconnected_player_username'),
      timeout_at: S('timeout_at'),
    },
  ],
  [
    [`${TTT}game_resumed`],
    null,
    {
      room_id: ROOM_ID,
      reconnected_player_id: ID0('reconnected_player_id'),
      reconnected_player_username: S('reconnected_player_username'),
    },
  ],
  [G('chat_message'), null, { room_id: ROOM_ID, channel: S('channel', 'lobby'), ...omitRoom(CHAT_MESSAGE) }],
  [[`${BD}lobby_chat`, `${BD}player_chat`, `${BD}spectator_chat`], null, CHAT_MESSAGE],
  [G('chat_history'), null, { room_id: ROOM_ID, channel: S('channel', 'lobby'), messages: A('messages') }],
  [
    [`${BD}lobby_chat_history`, `${BD}player_chat_history`, `${BD}spectator_chat_history`],
    null,
    { room_id: ROOM_ID, messages: A('messages') },
  ],
  [
    G('player_ready_changed'),
    null,
    { room_id: ROOM_ID, user_id: IDs('user_id'), username: S('username'), is_ready: B('is_ready', false) },
  ],
  [G('player_deselected'), null, USER_IDS],
  [G('selected_players_updated'), null, { room_id: ROOM_ID, selected_players: IdsList('selected_players') }],
  // docs/decisions.md D5: the typed twins were dropped by the Rust gateway (only the generic type was mapped).
  [G('admin_spectator_designated'), null, USER_IDS],
  [
    ['games.event.user_muted', 'games.event.user_unmuted'],
    null,
    { room_id: ROOM_ID, target_user_id: IDs('target_user_id'), target_username: S('target_username') },
  ],
  [['games.event.spectators_updated'], null, { room_id: ROOM_ID, spectators: A('spectators') }],
  [G('lobby_updated'), null, { room_id: ROOM_ID, lobby: A('lobby') }],
  [
    G('spectator_joined'),
    null,
    {
      // docs/decisions.md D5: the backend sends `user_id`/`username`; the Rust gateway read `spectator_*` and sent "".
      // Both spellings are filled: BiggerDice reads `spectator_*`, TicTacToe reads `user_id`/`username`.
      room_id: ROOM_ID,
      spectator_id: orElse(IDs('spectator_id'), IDs('user_id')),
      spectator_name: orElse(S('spectator_name'), S('username')),
      spectator_count: U('spectator_count', 0),
      user_id: orElse(IDs('user_id'), IDs('spectator_id')),
      username: orElse(S('username'), S('spectator_name')),
    },
  ],
  [G('spectator_left'), null, USER_IDS],
  [G('spectator_kicked'), null, USER_IDS],
  [G('spectator_data_joined'), null, { room_id: ROOM_ID, spectator: V('spectator', null) }],
];

function omitRoom(shape: Shape): Shape {
  const { room_id: _room, ...rest } = shape;
  return rest;
}

// ---------------------------------------------------------------------------------------------
// chat.event (docs/protocol.md): dispatched on payload.type
// ---------------------------------------------------------------------------------------------

/**
 * Splits the chat correlation token `"<connectionId>|<recipient>"` (sent as `payload.socket_id`)
 * at its **last** `|`. A token without `|` (or empty) has neither part.
 */
export function splitCorrelationToken(token: Json | undefined): { connectionId: string; recipient: string } {
  if (typeof token !== 'string') return { connectionId: '', recipient: '' };
  const at = token.lastIndexOf('|');
  return at < 0
    ? { connectionId: '', recipient: '' }
    : { connectionId: token.slice(0, at), recipient: token.slice(at + 1) };
}

/**
 * The `sender_name` of `chat.event.typing` before the executor resolves it from the session store
 * (`DeliveryPlan.chat.resolveSenderNameOf`). It is also the contract's value when the sender has no
 * live connection, so a message that is never resolved is still correct.
 */
export const UNRESOLVED_SENDER_NAME = '';

const NOT_FRIENDS = 'not_friends';

const CHAT_ERROR_REJECTED = shaped('chat.event.message_rejected', {
  reason: K(NOT_FRIENDS),
  recipient_id: reader((o) => splitCorrelationToken(field(o, 'socket_id')).recipient),
});
const CHAT_ERROR_OTHER = shaped('system.error', {
  code: S('code', 'chat_error'),
  message: S('message', 'Unknown error'),
});

/**
 * `chat.event` conversions by backend `payload.type`. Sender fields always come from the payload:
 * the envelope actor of a chat event is the backend's system actor.
 */
export const CHAT_EVENT_CONVERSIONS: Readonly<Record<string, EventConversion>> = Object.freeze({
  message_received: shaped('chat.event.message_received', {
    message_id: IDs('message_id'),
    sender_id: IDs('sender_id'),
    sender_name: S('sender_username'),
    content: S('content'),
    sent_at: Ts('created_at', 'keep'),
    recipient_id: IDs('recipient_id'), // ⁺ lets the sender's own copy be filed under its conversation
  }),
  lobby_message_received: shaped('chat.event.lobby_message', {
    lobby_id: IDs('lobby_id'),
    message_id: IDs('message_id'),
    sender_id: IDs('sender_id'),
    sender_name: S('sender_username'),
    content: S('content'),
    sent_at: Ts('created_at', 'keep'),
  }),
  message_read: shaped('chat.event.message_read', {
    // The backend marks a whole conversation read, not messages: [] means "all you sent to reader_id".
    message_ids: K([]),
    reader_id: IDs('reader_id'),
    read_at: Ts('read_at', 'keep'), // ⁺
  }),
  // "Stopped typing" has no client message (and no producer today); a missing flag means typing.
  typing_indicator: onlyIf(
    (p) => field(p, 'is_typing') !== false,
    shaped('chat.event.typing', { sender_id: IDs('sender_id'), sender_name: K(UNRESOLVED_SENDER_NAME) }),
  ),
  error: {
    outputs: ['chat.event.message_rejected', 'system.error'],
    fields: [...new Set([...CHAT_ERROR_REJECTED.fields, ...CHAT_ERROR_OTHER.fields])],
    convert: (env) =>
      (field(payloadOf(env), 'code') === NOT_FRIENDS ? CHAT_ERROR_REJECTED : CHAT_ERROR_OTHER).convert(env),
  },
});

const CHAT_EVENT: EventConversion = {
  outputs: [...new Set(Object.values(CHAT_EVENT_CONVERSIONS).flatMap((c) => c.outputs))],
  fields: ['(by payload.type)'],
  // The bridge's delivery rules (lobby sets, correlation tokens) are defined for chat.events only.
  topics: [TOPICS.chatEvents],
  convert: (env) => {
    const kind = field(payloadOf(env), 'type');
    if (typeof kind !== 'string' || !Object.hasOwn(CHAT_EVENT_CONVERSIONS, kind)) return null;
    return (CHAT_EVENT_CONVERSIONS[kind] as EventConversion).convert(env);
  },
};

function expand(rows: readonly Row[]): Record<string, EventConversion> {
  const table: Record<string, EventConversion> = {};
  for (const [eventTypes, output, shape] of rows) {
    for (const eventType of eventTypes) {
      // A duplicate would silently shadow a row; the table is static, so this fails every test run.
      if (Object.hasOwn(table, eventType)) throw new Error(`duplicate conversion for ${eventType}`);
      table[eventType] = shaped(output ?? eventType, shape);
    }
  }
  table['chat.event'] = CHAT_EVENT;
  return table;
}

/**
 * The conversion table: backend `event_type` → how it becomes a client message. Every event type of
 * docs/events.md plus docs/decisions.md D5's additions (the typed `admin_spectator_designated`, tic-tac-toe
 * `player_auto_*`, and `chat.event`). Event types not in the table are not delivered.
 */
export const EVENT_CONVERSIONS: Readonly<Record<string, EventConversion>> = Object.freeze(expand(ROWS));

/** The event types that produce a client message; anything else counts as unmapped (docs/decisions.md D5). */
export const CONVERTED_EVENT_TYPES: ReadonlySet<string> = new Set(Object.keys(EVENT_CONVERSIONS).sort());

/**
 * Converts an envelope into the message clients receive, or `null` when the event type is unmapped
 * (or, for `chat.event`, its payload kind has no client message). Pure; never throws.
 *
 * @param topic the Kafka topic the envelope came from: `chat.event` is only bridged on `chat.events`.
 * @example convertEnvelope(env, 'games.events') // { type: 'games.event.bigger_dice.turn_changed', … }
 */
export function convertEnvelope(env: Envelope, topic: string): ClientMessage | null {
  if (!Object.hasOwn(EVENT_CONVERSIONS, env.event_type)) return null;
  const conversion = EVENT_CONVERSIONS[env.event_type] as EventConversion;
  if (conversion.topics && !conversion.topics.includes(topic)) return null;
  return conversion.convert(env);
}
