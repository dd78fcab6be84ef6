/**
 * The platform's game-room handler, as far as the demo needs it, in memory: rooms, their lobby,
 * player selection, ready, the two games, spectators and room chat — with the platform's events
 * and audiences (docs/events.md):
 *
 * - `create_room` → `room_created` (broadcast) and `room_state` to the host (who starts in the lobby);
 * - `join_room {room_name}` → `room_state` to the joiner (the gateway registers room membership on
 *   user-targeted `room_state`) and `lobby_joined` to the room;
 * - `select_player` (host) → `player_selected`; once `player_count` are selected the others get
 *   `removed_from_game`, the selected players and spectators `game_starting` and `room_state`;
 * - `ready` → `player_ready`; once every selected player is ready the game starts (`game_started`,
 *   `turn_changed`, Tic-Tac-Toe also `state`) and `room_removed {reason: game_started}` is
 *   broadcast so lobby lists drop the room;
 * - `bigger_dice.roll` → `rolled`, `round_result`, `tiebreaker_started`, `turn_changed`, `game_over`;
 * - `tic_tac_toe.move` → `moved`, `game_result`, `turn_changed`, `match_ended`;
 * - `join_as_spectator {room_name}` → `spectator_data_joined` to the room, `room_state` to the spectator;
 * - `rejoin_room` → `room_state` (plus the game's `state`) or `not_in_room`;
 * - `leave_room` → `player_left` / `spectator_left`; a room with nobody left in it (or whose host
 *   left before the start) is removed with `room_removed` (broadcast);
 * - `send_chat` → `bigger_dice.{lobby,player,spectator}_chat` / `tic_tac_toe.chat_message`;
 * - `list_rooms` → `room_list` to the user; refusals → `error {code}` to the user.
 *
 * Differences, because this is a development aid without a database or wallets: no entry fees or
 * balances, no bans, mutes, kicks or auto-play; `ready` starts the room's own game (the platform's
 * `start_game` does that per game type); a player who leaves a game in progress (or whose last
 * connection went, `player_disconnected`) is marked disconnected, and the room is removed once
 * every player has gone; in a room that has not started, `player_disconnected` counts as leaving,
 * so closed tabs do not leave rooms behind.
 */
import { randomUUID } from 'node:crypto';
import type { Audience, Envelope, Json, JsonObject } from '../../lib/protocol/envelope';
import { TOPICS } from '../../lib/protocol/envelope';
import { DICE_TARGET, type DiceState, roll, rollRefusal, startDice } from './bigger-dice';
import { audience, backendEnvelope, type OutboundEvent, payloadTimestamp } from './envelope';
import { move, moveRefusal, startTtt, stateEvent, TTT_TARGET, type TttState } from './tic-tac-toe';

export type GameType = 'bigger_dice' | 'tic_tac_toe';
type Status = 'waiting' | 'in_progress' | 'finished';

interface Player {
  user_id: number;
  username: string;
  avatar_id: number | null;
  score: number;
  is_ready: boolean;
  joined_at: string;
}

interface Spectator {
  user_id: number;
  username: string;
  avatar_id: number | null;
  joined_at: string;
}

interface Room {
  readonly room_id: string;
  readonly room_name: string;
  readonly game_type: GameType;
  status: Status;
  readonly host_id: number;
  players: Player[];
  lobby: Player[];
  spectators_data: Spectator[];
  selected_players: number[];
  current_turn: number | null;
  turn_number: number;
  readonly created_at: string;
  started_at: string | null;
  finished_at: string | null;
  winner_id: number | null;
  /** Never serialised (the platform keeps only a hash, never sent). */
  readonly password: string | null;
  readonly player_count: number;
  readonly allow_spectators: boolean;
  /** Players of a game in progress who left or lost their last connection. */
  departed: Set<number>;
  dice?: DiceState;
  ttt?: TttState;
}

export interface RoomsOptions {
  /** A die roll, 1–6 (injectable so tests can script a game). */
  readonly rollDie?: () => number;
  /** Whether the first player plays X in Tic-Tac-Toe (the platform tosses a coin). */
  readonly xFirst?: () => boolean;
  /** Points that win Bigger Dice (the platform's 10). */
  readonly diceTarget?: number;
  /** Games that win a Tic-Tac-Toe match (the platform's 5). */
  readonly tttTarget?: number;
  readonly now?: () => Date;
  readonly roomId?: () => string;
}

export interface RoomsHandler {
  /** The events one `games.commands` record produces. */
  handle(command: Envelope): OutboundEvent[];
  /** Rooms currently open (for logs and tests). */
  size(): number;
}

const SPECTATOR_LIMIT = 10;

function str(p: JsonObject, key: string): string | undefined {
  const v = p[key];
  return typeof v === 'string' ? v : undefined;
}

/** The platform accepts ids as integers or numeric strings. */
function id(v: Json | undefined): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}

export function createRooms({
  rollDie = () => 1 + Math.floor(Math.random() * 6),
  xFirst = () => Math.random() < 0.5,
  diceTarget = DICE_TARGET,
  tttTarget = TTT_TARGET,
  now = () => new Date(),
  roomId = randomUUID,
}: RoomsOptions = {}): RoomsHandler {
  const rooms = new Map<string, Room>();
  const byName = (name: string) => [...rooms.values()].find((r) => r.room_name === name);

  function serialise(room: Room): JsonObject {
    const players = room.players.map((p): JsonObject => ({ ...p }));
    return {
      room_id: room.room_id,
      room_name: room.room_name,
      game_type: room.game_type,
      status: room.status,
      host_id: room.host_id,
      players,
      lobby: room.lobby.map((p): JsonObject => ({ ...p })),
      banned_users: [],
      spectators: room.spectators_data.map((s) => s.user_id),
      current_turn: room.current_turn,
      turn_number: room.turn_number,
      created_at: room.created_at,
      started_at: room.started_at,
      finished_at: room.finished_at,
      winner_id: room.winner_id,
      is_password_protected: room.password !== null,
      player_count: room.player_count,
      allow_spectators: room.allow_spectators,
      max_spectators: SPECTATOR_LIMIT,
      admin_spectator_id: null,
      lobby_chat_enabled: room.status === 'waiting',
      spectators_data: room.spectators_data.map((s): JsonObject => ({ ...s })),
      recorded_players: room.players.map((p) => p.user_id),
      recorded_spectators: room.spectators_data.map((s) => s.user_id),
      selected_players: [...room.selected_players],
      auto_players: [],
    };
  }

  return {
    size: () => rooms.size,
    handle(command) {
      const out: OutboundEvent[] = [];
      const userId = id(command.actor.user_id);
      if (userId === undefined) return out;
      const username = command.actor.username;
      const p = command.payload;
      const name = command.event_type.startsWith('games.command.')
        ? command.event_type.slice('games.command.'.length)
        : (str(p, 'type') ?? '');

      /** A typed event of `room` (`games.event.{gt}.{base}`), or an untyped one without a room. */
      const emit = (room: Room | null, to: Audience, payload: JsonObject) => {
        const base = String(payload['type']);
        const eventType = base.includes('.')
          ? `games.event.${base}`
          : room
            ? `games.event.${room.game_type}.${base}`
            : `games.event.${base}`;
        out.push({
          topic: TOPICS.gamesEvents,
          key: room ? room.room_id : `user:${userId}`,
          envelope: backendEnvelope(eventType, to, payload),
        });
      };
      const refuse = (code: string, message: string) =>
        emit(null, audience.user(userId), { type: 'error', code, message, socket_id: '' });
      const roomState = (room: Room, to: number) =>
        emit(room, audience.user(to), { type: 'room_state', room: serialise(room) });
      const remove = (room: Room, reason: string) => {
        rooms.delete(room.room_id);
        emit(room, audience.broadcast(), {
          type: 'room_removed',
          room_id: room.room_id,
          room_name: room.room_name,
          reason,
        });
      };
      const findRoom = (): Room | undefined => {
        const rid = str(p, 'room_id');
        return rid === undefined ? undefined : rooms.get(rid);
      };
      const inRoom = (room: Room, uid: number) =>
        room.players.some((x) => x.user_id === uid) || room.lobby.some((x) => x.user_id === uid);
      const isSpectator = (room: Room, uid: number) => room.spectators_data.some((s) => s.user_id === uid);
      const newPlayer = (): Player => ({
        user_id: userId,
        username,
        avatar_id: null,
        score: 0,
        is_ready: false,
        joined_at: payloadTimestamp(now()),
      });

      const leave = (room: Room) => {
        if (isSpectator(room, userId)) {
          const spectator = room.spectators_data.find((s) => s.user_id === userId) as Spectator;
          room.spectators_data = room.spectators_data.filter((s) => s.user_id !== userId);
          emit(room, audience.room(room.room_id), {
            type: 'spectator_left',
            room_id: room.room_id,
            user_id: userId,
            username: spectator.username,
          });
          return;
        }
        if (room.status === 'in_progress' && room.players.some((x) => x.user_id === userId)) {
          if (room.departed.has(userId)) return;
          room.departed.add(userId);
          emit(room, audience.room(room.room_id), {
            type: 'player_disconnected',
            room_id: room.room_id,
            user_id: userId,
            username,
            timeout_at: payloadTimestamp(new Date(now().getTime() + 30_000)),
          });
          if (room.players.every((x) => room.departed.has(x.user_id))) remove(room, 'abandoned');
          return;
        }
        if (!inRoom(room, userId)) return;
        const who = [...room.players, ...room.lobby].find((x) => x.user_id === userId) as Player;
        room.players = room.players.filter((x) => x.user_id !== userId);
        room.lobby = room.lobby.filter((x) => x.user_id !== userId);
        room.selected_players = room.selected_players.filter((x) => x !== userId);
        const empty = room.players.length === 0 && room.lobby.length === 0;
        if (empty || (room.status === 'waiting' && room.host_id === userId)) {
          remove(room, room.host_id === userId ? 'host_left' : 'abandoned');
        }
        emit(room, audience.room(room.room_id), {
          type: 'player_left',
          room_id: room.room_id,
          user_id: userId,
          username: who.username,
        });
      };

      const start = (room: Room) => {
        const selected = room.lobby.filter((x) => room.selected_players.includes(x.user_id));
        room.lobby = room.lobby.filter((x) => !room.selected_players.includes(x.user_id));
        room.players = selected.map((x) => ({ ...x, score: 0 }));
        room.status = 'in_progress';
        room.started_at = payloadTimestamp(now());
        const roster = room.players.map((x): JsonObject => ({ ...x }));
        const to = audience.room(room.room_id);
        if (room.game_type === 'bigger_dice') {
          const step = startDice(room.room_id, room.players, roster);
          room.dice = step.state;
          room.current_turn = step.state.currentTurn;
          room.turn_number = step.state.turnNumber;
          for (const e of step.events) emit(room, to, e);
        } else {
          const [a, b] = room.players as [Player, Player];
          const step = startTtt(room.room_id, [a, b], xFirst(), roster, now());
          room.ttt = step.state;
          room.current_turn = step.state.currentTurn;
          room.turn_number = step.state.turnNumber;
          for (const e of step.events) emit(room, to, e);
        }
        emit(room, audience.broadcast(), {
          type: 'room_removed',
          room_id: room.room_id,
          room_name: room.room_name,
          reason: 'game_started',
        });
      };

      switch (name) {
        case 'create_room': {
          const gameType = str(p, 'game_type') ?? 'bigger_dice';
          const roomName = str(p, 'room_name');
          if ((gameType !== 'bigger_dice' && gameType !== 'tic_tac_toe') || !roomName) break;
          if (byName(roomName)) {
            refuse('room_name_taken', 'A room with that name already exists');
            break;
          }
          const requested = typeof p['max_players'] === 'number' ? (p['max_players'] as number) : 2;
          const room: Room = {
            room_id: roomId(),
            room_name: roomName,
            game_type: gameType,
            status: 'waiting',
            host_id: userId,
            players: [],
            lobby: [newPlayer()],
            spectators_data: [],
            selected_players: [],
            current_turn: null,
            turn_number: 0,
            created_at: payloadTimestamp(now()),
            started_at: null,
            finished_at: null,
            winner_id: null,
            password: str(p, 'password') || null,
            // Tic-Tac-Toe is always two players; Bigger Dice 2–10.
            player_count: gameType === 'tic_tac_toe' ? 2 : Math.min(10, Math.max(2, Math.trunc(requested))),
            allow_spectators: p['allow_spectators'] !== false,
            departed: new Set(),
          };
          rooms.set(room.room_id, room);
          emit(room, audience.broadcast(), {
            type: 'room_created',
            room_id: room.room_id,
            room_name: room.room_name,
            game_type: room.game_type,
            host_id: userId,
            host_username: username,
            is_password_protected: room.password !== null,
            player_count: room.player_count,
            allow_spectators: room.allow_spectators,
          });
          roomState(room, userId);
          break;
        }
        case 'join_room': {
          const room = byName(str(p, 'room_name') ?? '');
          if (room?.status !== 'waiting') {
            refuse('room_not_found', 'Room not found or game already started');
            break;
          }
          if (room.password !== null && str(p, 'password') !== room.password) {
            refuse('wrong_password', 'Incorrect room password');
            break;
          }
          if (inRoom(room, userId)) {
            refuse('already_in_room', 'You are already in this room');
            break;
          }
          const player = newPlayer();
          room.lobby.push(player);
          roomState(room, userId);
          emit(room, audience.room(room.room_id), {
            type: 'lobby_joined',
            room_id: room.room_id,
            room_name: room.room_name,
            player: { ...player },
          });
          break;
        }
        case 'join_as_spectator': {
          const room = byName(str(p, 'room_name') ?? '');
          if (!room) {
            refuse('room_not_found', 'Room not found');
            break;
          }
          if (!room.allow_spectators) {
            refuse('spectators_not_allowed', 'This room does not allow spectators');
            break;
          }
          if (room.password !== null && str(p, 'password') !== room.password) {
            refuse('wrong_password', 'Incorrect room password');
            break;
          }
          if (!isSpectator(room, userId)) {
            if (room.spectators_data.length >= SPECTATOR_LIMIT) {
              refuse('spectator_capacity_full', 'Spectator capacity is full');
              break;
            }
            const spectator: Spectator = {
              user_id: userId,
              username,
              avatar_id: null,
              joined_at: payloadTimestamp(now()),
            };
            room.spectators_data.push(spectator);
            emit(room, audience.room(room.room_id), {
              type: 'spectator_data_joined',
              room_id: room.room_id,
              spectator: { ...spectator },
            });
          }
          roomState(room, userId);
          break;
        }
        case 'rejoin_room': {
          const rid = str(p, 'room_id');
          const room = (rid ? rooms.get(rid) : undefined) ?? byName(str(p, 'room_name') ?? '');
          if (!room) {
            refuse('room_not_found', 'Room no longer exists');
            break;
          }
          const member = inRoom(room, userId) || isSpectator(room, userId);
          if (!member && room.host_id !== userId) {
            emit(room, audience.user(userId), {
              type: 'not_in_room',
              room_id: room.room_id,
              room_name: room.room_name,
              is_password_protected: room.password !== null,
              status: room.status,
              allow_spectators: room.allow_spectators,
              socket_id: '',
            });
            break;
          }
          if (!member && room.status === 'waiting') room.lobby.push(newPlayer());
          const wasDeparted = room.departed.delete(userId);
          roomState(room, userId);
          if (wasDeparted) {
            emit(room, audience.room(room.room_id), {
              type: 'player_rejoined',
              room_id: room.room_id,
              user_id: userId,
              username,
            });
          }
          if (room.status === 'in_progress' && room.dice) {
            const d = room.dice;
            emit(room, audience.user(userId), {
              type: 'bigger_dice.state',
              room_id: room.room_id,
              round_number: d.roundNumber,
              current_rolls: d.rolls.map(([who, r]) => [who, r]),
              pending_rollers: d.rollers.filter((who) => !d.rolls.some(([w]) => w === who)),
              is_tiebreaker: d.isTiebreaker,
              round_history: [],
            });
          }
          if (room.status === 'in_progress' && room.ttt) {
            emit(room, audience.user(userId), stateEvent(room.room_id, room.ttt, now()));
          }
          break;
        }
        case 'leave_room':
        case 'leave_spectate':
        case 'player_disconnected': {
          const room = findRoom();
          if (!room || (name === 'leave_spectate' && !isSpectator(room, userId))) break;
          // The gateway's `player_disconnected`: the user's last connection in the room went.
          leave(room);
          break;
        }
        case 'select_player': {
          const room = findRoom();
          const target = id(p['target_user_id']);
          if (!room) {
            refuse('room_not_found', 'Room not found');
            break;
          }
          if (room.host_id !== userId) {
            refuse('not_admin', 'Only room admin can select players');
            break;
          }
          if (room.status !== 'waiting') {
            refuse('game_in_progress', 'Game is already in progress');
            break;
          }
          const player = room.lobby.find((x) => x.user_id === target);
          if (target === undefined || !player || room.selected_players.includes(target)) {
            refuse('player_not_in_lobby', 'Player is not in the lobby or already selected');
            break;
          }
          if (room.selected_players.length >= room.player_count) {
            refuse('player_not_in_lobby', 'Player is not in the lobby or already selected');
            break;
          }
          room.selected_players.push(target);
          emit(room, audience.room(room.room_id), {
            type: 'player_selected',
            room_id: room.room_id,
            player: { ...player },
          });
          if (room.selected_players.length === room.player_count) {
            const others = room.lobby.filter((x) => !room.selected_players.includes(x.user_id));
            room.lobby = room.lobby.filter((x) => room.selected_players.includes(x.user_id));
            for (const other of others) {
              emit(room, audience.user(other.user_id), {
                type: 'removed_from_game',
                room_id: room.room_id,
                reason: 'not_selected',
                message: 'The game has started without you. You were not selected to play.',
              });
            }
            const watchers = [...room.selected_players, ...room.spectators_data.map((s) => s.user_id)];
            for (const who of watchers) {
              emit(room, audience.user(who), {
                type: 'game_starting',
                room_id: room.room_id,
                players: room.lobby.map((x): JsonObject => ({ ...x })),
              });
            }
            for (const who of watchers) roomState(room, who);
          }
          break;
        }
        case 'ready': {
          const room = findRoom();
          if (room?.status !== 'waiting') break;
          const player = room.lobby.find((x) => x.user_id === userId);
          if (!player || !room.selected_players.includes(userId)) break;
          player.is_ready = true;
          emit(room, audience.room(room.room_id), {
            type: 'player_ready',
            room_id: room.room_id,
            user_id: userId,
            username: player.username,
          });
          const selected = room.lobby.filter((x) => room.selected_players.includes(x.user_id));
          if (selected.length === room.player_count && selected.every((x) => x.is_ready)) start(room);
          break;
        }
        case 'bigger_dice.roll': {
          const room = findRoom();
          if (!room) {
            refuse('room_not_found', 'Room not found');
            break;
          }
          if (room.status !== 'in_progress' || !room.dice) {
            refuse('game_not_in_progress', 'Game is not in progress');
            break;
          }
          if (rollRefusal(room.dice, userId)) {
            refuse('not_your_turn', "It's not your turn");
            break;
          }
          const step = roll(room.room_id, room.dice, userId, rollDie(), diceTarget);
          room.dice = step.state;
          room.current_turn = step.state.currentTurn;
          room.turn_number = step.state.turnNumber;
          room.players = room.players.map((x) => ({
            ...x,
            score: step.state.players.find((d) => d.user_id === x.user_id)?.score ?? x.score,
          }));
          if (step.state.winner !== null) {
            room.status = 'finished';
            room.winner_id = step.state.winner;
            room.finished_at = payloadTimestamp(now());
          }
          for (const e of step.events) emit(room, audience.room(room.room_id), e);
          break;
        }
        case 'tic_tac_toe.move': {
          const room = findRoom();
          const position = p['position'];
          if (!room) {
            refuse('room_not_found', 'Room not found');
            break;
          }
          if (room.status !== 'in_progress') {
            refuse('game_not_in_progress', 'Game is not in progress');
            break;
          }
          if (room.game_type !== 'tic_tac_toe' || !room.ttt) {
            refuse('wrong_game_type', 'This is not a Tic Tac Toe game');
            break;
          }
          if (room.current_turn !== userId) {
            refuse('not_your_turn', "It's not your turn");
            break;
          }
          // The platform drops an occupied or out-of-range cell without a reply.
          if (typeof position !== 'number' || moveRefusal(room.ttt, userId, position)) break;
          const step = move(room.room_id, room.ttt, userId, position, tttTarget);
          room.ttt = step.state;
          room.current_turn = step.state.currentTurn;
          room.turn_number = step.state.turnNumber;
          if (step.state.winner !== null) {
            room.status = 'finished';
            room.winner_id = step.state.winner;
            room.finished_at = payloadTimestamp(now());
          }
          for (const e of step.events) emit(room, audience.room(room.room_id), e);
          break;
        }
        case 'send_chat': {
          const room = findRoom();
          const channel = str(p, 'channel') ?? 'lobby';
          const content = str(p, 'content');
          if (!room || !content) break;
          const isPlayer = inRoom(room, userId);
          const allowed =
            channel === 'spectators'
              ? isSpectator(room, userId)
              : channel === 'lobby' || channel === 'players';
          // The platform refuses (silently) a channel the user may not write to.
          if (!allowed || (channel !== 'spectators' && !isPlayer)) break;
          const message: JsonObject = {
            room_id: room.room_id,
            user_id: userId,
            username,
            avatar_id: null,
            content,
            is_system: false,
            timestamp: payloadTimestamp(now()),
          };
          const to =
            channel === 'spectators' ? audience.spectators(room.room_id) : audience.room(room.room_id);
          if (room.game_type === 'bigger_dice') {
            const kind = channel === 'spectators' ? 'spectator' : channel === 'players' ? 'player' : 'lobby';
            emit(room, to, { type: `bigger_dice.${kind}_chat`, ...message });
          } else {
            const { room_id, ...rest } = message;
            emit(room, to, {
              type: 'tic_tac_toe.chat_message',
              room_id: room_id as string,
              channel,
              ...rest,
            });
          }
          break;
        }
        case 'list_rooms': {
          const gameType = str(p, 'game_type') ?? 'bigger_dice';
          const listed = [...rooms.values()].filter(
            (r) =>
              r.game_type === gameType &&
              (r.status === 'waiting' ||
                (r.status === 'in_progress' && (inRoom(r, userId) || isSpectator(r, userId)))),
          );
          emit(null, audience.user(userId), {
            type: 'room_list',
            rooms: listed.map((r): JsonObject => {
              const host = [...r.players, ...r.lobby].find((x) => x.user_id === r.host_id);
              const role = r.players.some((x) => x.user_id === userId)
                ? 'player'
                : isSpectator(r, userId)
                  ? 'spectator'
                  : r.lobby.some((x) => x.user_id === userId)
                    ? 'lobby'
                    : null;
              return {
                room_id: r.room_id,
                room_name: r.room_name,
                game_type: r.game_type,
                host_id: r.host_id,
                host_name: host?.username ?? 'Unknown',
                players: r.players.map((x): JsonObject => ({ ...x })),
                lobby: r.lobby.map((x): JsonObject => ({ ...x })),
                player_count: r.players.length,
                lobby_count: r.lobby.length,
                spectator_count: r.spectators_data.length,
                max_players: r.player_count,
                status: r.status,
                is_password_protected: r.password !== null,
                allow_spectators: r.allow_spectators,
                created_at: r.created_at,
                can_rejoin: role !== null,
                rejoin_role: role,
              };
            }),
            socket_id: '',
          });
          break;
        }
        default:
          break;
      }
      return out;
    },
  };
}
