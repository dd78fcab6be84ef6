import { roll, rollRefusal, startDice } from '../../../scripts/dev-backend/bigger-dice';
import { move, moveRefusal, startTtt, winningLine } from '../../../scripts/dev-backend/tic-tac-toe';

const ROOM = 'r1';
const types = (events: { type?: unknown }[]) => events.map((e) => e.type);

describe('Bigger Dice rules', () => {
  const players = [
    { user_id: 4, username: 'John', score: 0 },
    { user_id: 9, username: 'Ann', score: 0 },
  ];

  it('starts with the first player to roll', () => {
    const { state, events } = startDice(ROOM, players, []);
    expect(types(events)).toEqual(['game_started', 'turn_changed']);
    expect(events[1]).toMatchObject({ current_turn: 4, turn_number: 1 });
    expect(rollRefusal(state, 9)).toBe('not_your_turn');
    expect(rollRefusal(state, 4)).toBeUndefined();
  });

  it('gives the round to the higher roll and passes the turn', () => {
    let s = startDice(ROOM, players, []).state;
    const first = roll(ROOM, s, 4, 5);
    expect(types(first.events)).toEqual(['bigger_dice.rolled', 'turn_changed']);
    expect(first.events[1]).toMatchObject({ current_turn: 9, turn_number: 2 });
    s = first.state;
    const second = roll(ROOM, s, 9, 2);
    expect(types(second.events)).toEqual(['bigger_dice.rolled', 'bigger_dice.round_result', 'turn_changed']);
    expect(second.events[1]).toMatchObject({
      rolls: [
        [4, 5],
        [9, 2],
      ],
      winner_id: 4,
      is_tie: false,
      scores: [
        [4, 1],
        [9, 0],
      ],
    });
    expect(second.state.currentTurn).toBe(4);
  });

  it('breaks a tie among the tied players only', () => {
    const three = [...players, { user_id: 12, username: 'Bob', score: 0 }];
    let s = startDice(ROOM, three, []).state;
    s = roll(ROOM, s, 4, 6).state;
    s = roll(ROOM, s, 9, 2).state;
    const tie = roll(ROOM, s, 12, 6);
    expect(types(tie.events)).toEqual([
      'bigger_dice.rolled',
      'bigger_dice.round_result',
      'bigger_dice.tiebreaker_started',
      'turn_changed',
    ]);
    expect(tie.events[1]).toMatchObject({ winner_id: null, is_tie: true, tiebreaker_players: [4, 12] });
    expect(tie.events[2]).toMatchObject({ tied_players: [4, 12], tied_roll: 6 });
    expect(rollRefusal(tie.state, 9)).toBe('not_your_turn');
    const again = roll(ROOM, roll(ROOM, tie.state, 4, 1).state, 12, 3);
    expect(again.events[1]).toMatchObject({ winner_id: 12, is_tiebreaker: true });
  });

  it('ends the game at the target score with every player in final_scores', () => {
    let s = startDice(ROOM, players, []).state;
    let last: ReturnType<typeof roll> | undefined;
    for (let round = 0; round < 2; round++) {
      s = roll(ROOM, s, 4, 6, 2).state;
      last = roll(ROOM, s, 9, 1, 2);
      s = last.state;
    }
    expect(types(last!.events)).toEqual([
      'bigger_dice.rolled',
      'bigger_dice.round_result',
      'bigger_dice.game_over',
    ]);
    expect(last!.events[2]).toMatchObject({
      winner_id: 4,
      winner_username: 'John',
      final_scores: [
        [4, 'John', 2],
        [9, 'Ann', 0],
      ],
    });
    expect(rollRefusal(s, 4)).toBe('not_your_turn');
  });
});

describe('Tic-Tac-Toe rules', () => {
  const pair = [
    { user_id: 4, username: 'John' },
    { user_id: 9, username: 'Ann' },
  ] as const;

  it('starts with X to move and the whole state', () => {
    const { state, events } = startTtt(ROOM, pair, false, []);
    expect(types(events)).toEqual(['game_started', 'turn_changed', 'tic_tac_toe.state']);
    expect(state.playerX).toBe(9);
    expect(events[2]).toMatchObject({
      player_x_id: 9,
      player_o_id: 4,
      current_turn: 9,
      board: Array(9).fill(null),
    });
  });

  it('refuses moves out of turn and on taken cells', () => {
    const s = move(ROOM, startTtt(ROOM, pair, true, []).state, 4, 0).state;
    expect(moveRefusal(s, 4, 1)).toBe('not_your_turn');
    expect(moveRefusal(s, 9, 0)).toBe('invalid_move');
    expect(moveRefusal(s, 9, 9)).toBe('invalid_move');
    expect(moveRefusal(s, 9, 1)).toBeUndefined();
  });

  it('scores three in a row, swaps marks and starts the next game', () => {
    let s = startTtt(ROOM, pair, true, []).state;
    for (const [who, pos] of [
      [4, 0],
      [9, 3],
      [4, 1],
      [9, 4],
    ] as const)
      s = move(ROOM, s, who, pos).state;
    const win = move(ROOM, s, 4, 2);
    expect(types(win.events)).toEqual(['tic_tac_toe.moved', 'tic_tac_toe.game_result', 'turn_changed']);
    expect(win.events[1]).toMatchObject({
      winner_id: 4,
      winning_line: [0, 1, 2],
      is_draw: false,
      game_number: 1,
      next_first_player: 9,
    });
    expect(win.state).toMatchObject({ playerX: 9, playerO: 4, currentTurn: 9, gameNumber: 2 });
    expect(win.state.board.every((c) => c === null)).toBe(true);
  });

  it('calls a full board without a line a draw', () => {
    let s = startTtt(ROOM, pair, true, []).state;
    // X O X / X O O / O X X
    const moves = [0, 1, 2, 4, 3, 5, 7, 6, 8];
    let last: ReturnType<typeof move> | undefined;
    moves.forEach((pos, i) => {
      last = move(ROOM, s, i % 2 === 0 ? 4 : 9, pos);
      s = last.state;
    });
    expect(last!.events[1]).toMatchObject({
      type: 'tic_tac_toe.game_result',
      is_draw: true,
      winner_id: null,
    });
  });

  it('ends the match at the target', () => {
    let s = startTtt(ROOM, pair, true, []).state;
    for (const pos of [0, 3, 1, 4]) s = move(ROOM, s, s.currentTurn, pos).state;
    const end = move(ROOM, s, 4, 2, 1);
    expect(types(end.events)).toEqual(['tic_tac_toe.moved', 'tic_tac_toe.match_ended']);
    expect(end.events[1]).toMatchObject({
      winner_id: 4,
      final_scores: [
        [4, 'John', 1],
        [9, 'Ann', 0],
      ],
    });
    expect(moveRefusal(end.state, 9, 5)).toBe('not_your_turn');
  });

  it('knows every line', () => {
    expect(winningLine(['X', null, null, null, 'X', null, null, null, 'X'])).toEqual([0, 4, 8]);
    expect(winningLine(['X', 'O', null, null, null, null, null, null, null])).toBeUndefined();
  });
});
