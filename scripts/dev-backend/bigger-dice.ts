/**
 * Bigger Dice, as the platform plays it: every active player rolls one die in turn; the highest
 * roll of a round wins a point; a tie starts a tiebreaker among the tied players only (after
 * {@link MAX_TIEBREAKERS} the first tied player takes the point); the first to the target score wins.
 *
 * Pure: the state is a value, the die is passed in, and the result lists the events (backend
 * payloads, tagged with their `type`) in the order the platform emits them.
 */
import type { JsonObject } from '../../lib/protocol/envelope';

/** The platform's target score. */
export const DICE_TARGET = 10;
export const MAX_TIEBREAKERS = 100;

export interface DicePlayer {
  readonly user_id: number;
  readonly username: string;
  readonly score: number;
}

export interface DiceState {
  readonly players: readonly DicePlayer[];
  readonly roundNumber: number;
  /** Who rolls this round (everyone, or the tied players of a tiebreaker), in order. */
  readonly rollers: readonly number[];
  /** Rolls so far this round, in roll order. */
  readonly rolls: readonly (readonly [number, number])[];
  readonly isTiebreaker: boolean;
  readonly tiebreakers: number;
  readonly currentTurn: number;
  readonly turnNumber: number;
  readonly winner: number | null;
}

export interface DiceStep {
  readonly state: DiceState;
  readonly events: JsonObject[];
}

/** `roster`: the room's players as the platform serialises them (`GamePlayer`), for `game_started`. */
export function startDice(roomId: string, players: readonly DicePlayer[], roster: JsonObject[]): DiceStep {
  const reset = players.map((p) => ({ ...p, score: 0 }));
  const first = reset[0]?.user_id ?? 0;
  const state: DiceState = {
    players: reset,
    roundNumber: 1,
    rollers: reset.map((p) => p.user_id),
    rolls: [],
    isTiebreaker: false,
    tiebreakers: 0,
    currentTurn: first,
    turnNumber: 1,
    winner: null,
  };
  return {
    state,
    events: [
      { type: 'game_started', room_id: roomId, players: roster, first_turn: first },
      { type: 'turn_changed', room_id: roomId, current_turn: first, turn_number: 1 },
    ],
  };
}

/** Why a roll is refused; `undefined` when `playerId` may roll now. */
export function rollRefusal(state: DiceState, playerId: number): 'not_your_turn' | undefined {
  if (state.winner !== null || state.currentTurn !== playerId || !state.rollers.includes(playerId))
    return 'not_your_turn';
  return undefined;
}

/** `playerId` rolls `die` (1–6). Call only when {@link rollRefusal} is `undefined`. */
export function roll(
  roomId: string,
  state: DiceState,
  playerId: number,
  die: number,
  target = DICE_TARGET,
): DiceStep {
  const player = state.players.find((p) => p.user_id === playerId);
  const rolls = [...state.rolls, [playerId, die] as const];
  const events: JsonObject[] = [
    {
      type: 'bigger_dice.rolled',
      room_id: roomId,
      player_id: playerId,
      player_username: player?.username ?? '',
      roll: die,
      new_score: player?.score ?? 0,
    },
  ];
  const turn = (next: DiceState, who: number): DiceState => {
    const s = { ...next, currentTurn: who, turnNumber: next.turnNumber + 1 };
    events.push({ type: 'turn_changed', room_id: roomId, current_turn: who, turn_number: s.turnNumber });
    return s;
  };

  if (rolls.length < state.rollers.length) {
    const next = state.rollers[rolls.length] as number;
    return { state: turn({ ...state, rolls }, next), events };
  }

  const best = Math.max(...rolls.map(([, r]) => r));
  const top = state.rollers.filter((id) => rolls.some(([who, r]) => who === id && r === best));
  const isTie = top.length > 1;
  const pointTo = isTie ? undefined : top[0];
  let players = state.players.map((p) => (p.user_id === pointTo ? { ...p, score: p.score + 1 } : p));
  events.push({
    type: 'bigger_dice.round_result',
    room_id: roomId,
    rolls: rolls.map(([who, r]) => [who, r]),
    winner_id: pointTo ?? null,
    is_tie: isTie,
    is_tiebreaker: state.isTiebreaker,
    tiebreaker_players: isTie ? top : [],
    scores: players.map((p) => [p.user_id, p.score]),
  });

  const everyone = players.map((p) => p.user_id);
  const newRound = (ps: readonly DicePlayer[]): DiceState => ({
    ...state,
    players: ps,
    roundNumber: state.roundNumber + 1,
    rollers: everyone,
    rolls: [],
    isTiebreaker: false,
    tiebreakers: 0,
  });

  if (pointTo !== undefined) {
    const winner = players.find((p) => p.user_id === pointTo) as DicePlayer;
    if (winner.score >= target) {
      events.push({
        type: 'bigger_dice.game_over',
        room_id: roomId,
        winner_id: winner.user_id,
        winner_username: winner.username,
        final_scores: players.map((p) => [p.user_id, p.username, p.score]),
      });
      return { state: { ...state, players, rolls, winner: winner.user_id }, events };
    }
    return { state: turn(newRound(players), everyone[0] as number), events };
  }

  if (state.tiebreakers + 1 >= MAX_TIEBREAKERS) {
    // The platform gives the point to the first tied player without announcing a game over, even at the target.
    const first = top[0] as number;
    players = players.map((p) => (p.user_id === first ? { ...p, score: p.score + 1 } : p));
    return { state: turn(newRound(players), everyone[0] as number), events };
  }
  events.push({
    type: 'bigger_dice.tiebreaker_started',
    room_id: roomId,
    tied_players: top,
    tied_roll: best,
  });
  const tiebreak: DiceState = {
    ...state,
    players,
    rollers: top,
    rolls: [],
    isTiebreaker: true,
    tiebreakers: state.tiebreakers + 1,
  };
  return { state: turn(tiebreak, top[0] as number), events };
}
