/**
 * Tic-Tac-Toe as the platform plays it: a match of games between two players; X moves first;
 * three in a row wins the game and a point; a full board is a draw; after each game the marks swap
 * (the new X moves first); the first to the target score wins the match.
 *
 * Pure: the state is a value and the result lists the events (backend payloads, tagged with their
 * `type`) in the order the platform emits them.
 */
import type { JsonObject } from '../../lib/protocol/envelope';

/** The platform's match target. */
export const TTT_TARGET = 5;
/** The platform's entry fee (cents) and the winner's share of the pool, for `prize_amount`. */
const ENTRY_FEE_CENTS = 100_000;
const WINNING_PERCENTAGE = 60;
const TURN_SECONDS = 60;

export const WINNING_LINES: readonly (readonly [number, number, number])[] = [
  [0, 1, 2],
  [3, 4, 5],
  [6, 7, 8],
  [0, 3, 6],
  [1, 4, 7],
  [2, 5, 8],
  [0, 4, 8],
  [2, 4, 6],
];

export type Mark = 'X' | 'O';

export interface TttPlayer {
  readonly user_id: number;
  readonly username: string;
}

export interface TttState {
  readonly players: readonly [TttPlayer, TttPlayer];
  readonly board: readonly (Mark | null)[];
  readonly playerX: number;
  readonly playerO: number;
  readonly currentTurn: number;
  readonly scores: Readonly<Record<number, number>>;
  readonly gameNumber: number;
  readonly turnNumber: number;
  readonly winner: number | null;
}

export interface TttStep {
  readonly state: TttState;
  readonly events: JsonObject[];
}

const deadline = (now: Date) => new Date(now.getTime() + TURN_SECONDS * 1000).toISOString();

const scoresOf = (s: TttState) => s.players.map((p) => [p.user_id, s.scores[p.user_id] ?? 0]);

/**
 * Starts a match. `xFirst`: whether the first of `players` plays X (the platform tosses a coin).
 * `roster`: the room's players as the platform serialises them, for `game_started`.
 */
export function startTtt(
  roomId: string,
  players: readonly [TttPlayer, TttPlayer],
  xFirst: boolean,
  roster: JsonObject[],
  now: Date = new Date(),
): TttStep {
  const [a, b] = players;
  const [x, o] = xFirst ? [a, b] : [b, a];
  const state: TttState = {
    players,
    board: Array<Mark | null>(9).fill(null),
    playerX: x.user_id,
    playerO: o.user_id,
    currentTurn: x.user_id,
    scores: { [a.user_id]: 0, [b.user_id]: 0 },
    gameNumber: 1,
    turnNumber: 1,
    winner: null,
  };
  return {
    state,
    events: [
      { type: 'game_started', room_id: roomId, players: roster, first_turn: x.user_id },
      { type: 'turn_changed', room_id: roomId, current_turn: x.user_id, turn_number: 1 },
      stateEvent(roomId, state, now),
    ],
  };
}

/** `tic_tac_toe.state`: the whole match, for a page that joins late. */
export function stateEvent(roomId: string, s: TttState, now: Date = new Date()): JsonObject {
  return {
    type: 'tic_tac_toe.state',
    room_id: roomId,
    board: [...s.board],
    player_x_id: s.playerX,
    player_o_id: s.playerO,
    current_turn: s.currentTurn,
    scores: scoresOf(s),
    game_number: s.gameNumber,
    move_deadline: s.winner === null ? deadline(now) : null,
    is_paused: false,
    disconnected_player: null,
  };
}

export type MoveRefusal = 'not_your_turn' | 'invalid_move';

/** Why a move is refused (`undefined` when it is legal). The platform drops invalid moves silently. */
export function moveRefusal(s: TttState, playerId: number, position: number): MoveRefusal | undefined {
  if (s.winner !== null || s.currentTurn !== playerId) return 'not_your_turn';
  if (!Number.isInteger(position) || position < 0 || position > 8 || s.board[position] !== null)
    return 'invalid_move';
  return undefined;
}

export function winningLine(board: readonly (Mark | null)[]): readonly number[] | undefined {
  return WINNING_LINES.find(
    ([a, b, c]) => board[a] !== null && board[a] === board[b] && board[b] === board[c],
  );
}

/** `playerId` puts its mark on `position`. Call only when {@link moveRefusal} is `undefined`. */
export function move(
  roomId: string,
  s: TttState,
  playerId: number,
  position: number,
  target = TTT_TARGET,
): TttStep {
  const mark: Mark = playerId === s.playerX ? 'X' : 'O';
  const board = s.board.map((c, i) => (i === position ? mark : c));
  const opponent = playerId === s.playerX ? s.playerO : s.playerX;
  const nameOf = (id: number) => s.players.find((p) => p.user_id === id)?.username ?? '';
  const events: JsonObject[] = [
    {
      type: 'tic_tac_toe.moved',
      room_id: roomId,
      player_id: playerId,
      player_username: nameOf(playerId),
      position,
      mark,
      board: [...board],
    },
  ];
  const line = winningLine(board);
  const full = board.every((c) => c !== null);
  let next: TttState = { ...s, board, currentTurn: opponent };

  if (line || full) {
    const winner = line ? playerId : null;
    const scores = winner === null ? s.scores : { ...s.scores, [winner]: (s.scores[winner] ?? 0) + 1 };
    next = { ...next, scores };
    if (winner !== null && (scores[winner] ?? 0) >= target) {
      events.push({
        type: 'tic_tac_toe.match_ended',
        room_id: roomId,
        winner_id: winner,
        winner_username: nameOf(winner),
        final_scores: s.players.map((p) => [p.user_id, p.username, scores[p.user_id] ?? 0]),
        prize_amount: (ENTRY_FEE_CENTS * 2 * WINNING_PERCENTAGE) / 100,
      });
      return { state: { ...next, winner }, events };
    }
    // The marks swap: the new X (the old O) moves first in the next game.
    const newX = s.playerO;
    events.push({
      type: 'tic_tac_toe.game_result',
      room_id: roomId,
      winner_id: winner,
      winner_username: winner === null ? null : nameOf(winner),
      winning_line: line ? [...line] : null,
      is_draw: winner === null,
      scores: scoresOf(next),
      game_number: s.gameNumber,
      next_first_player: newX,
    });
    next = {
      ...next,
      board: Array<Mark | null>(9).fill(null),
      playerX: newX,
      playerO: s.playerX,
      currentTurn: newX,
      gameNumber: s.gameNumber + 1,
    };
  }
  next = { ...next, turnNumber: s.turnNumber + 1 };
  events.push({
    type: 'turn_changed',
    room_id: roomId,
    current_turn: next.currentTurn,
    turn_number: next.turnNumber,
  });
  return { state: next, events };
}
