import { type DeliveryPlan, JOIN_KINDS, LEAVE_KINDS, planDelivery } from '../../../lib/events/plan';
import type { Audience, Envelope, Json, JsonObject } from '../../../lib/protocol/envelope';

const GAMES = 'games.events';
const CHAT = 'chat.events';
const ROOM = '5d0c9a1e-2b7f-4c3d-8e6a-1f2b3c4d5e6f';

const user = (...ids: string[]): Audience => ({ type: 'user', user_ids: ids, room_id: null, game_id: null });
const users = (...ids: string[]): Audience => ({
  type: 'users',
  user_ids: ids,
  room_id: null,
  game_id: null,
});
const room = (id: string | null): Audience => ({ type: 'room', user_ids: [], room_id: id, game_id: null });
const players = (id: string | null): Audience => ({
  type: 'players',
  user_ids: [],
  room_id: id,
  game_id: null,
});
const spectators = (gameId: string | null, roomId: string | null = null): Audience => ({
  type: 'spectators',
  user_ids: [],
  room_id: roomId,
  game_id: gameId,
});
const broadcast: Audience = { type: 'broadcast', user_ids: [], room_id: null, game_id: null };

function env(eventType: string, audience: Audience, payload: JsonObject = {}): Envelope {
  return {
    event_id: 'e-1',
    event_type: eventType,
    timestamp: '2026-01-10T12:00:01.123456789+00:00',
    correlation_id: null,
    producer: 'blazing_sun',
    actor: { user_id: '0', username: 'system', roles: [] },
    audience,
    payload,
  };
}

const plan = (e: Envelope, topic = GAMES): DeliveryPlan => planDelivery(e, topic);
const join = (userId: string, roomId = ROOM, spectator = false) => ({
  op: 'join',
  userId,
  roomId,
  spectator,
});
const leave = (userId: string, roomId = ROOM) => ({ op: 'leave', userId, roomId, spectator: false });

describe('planDelivery: audiences', () => {
  const turn = { room_id: ROOM, current_turn: 4, turn_number: 1 };

  it('sends a user audience to each listed user', () => {
    expect(plan(env('games.event.turn_changed', user('4', '9'), turn)).target).toEqual({
      kind: 'users',
      userIds: ['4', '9'],
    });
  });

  it('routes a users audience like user, without duplicate recipients', () => {
    expect(plan(env('games.event.turn_changed', users('4', '9', '4'), turn)).target).toEqual({
      kind: 'users',
      userIds: ['4', '9'],
    });
  });

  it('sends nothing for a user audience without ids', () => {
    expect(plan(env('games.event.turn_changed', user(), turn)).target).toEqual({
      kind: 'none',
      reason: 'user audience without user_ids',
    });
  });

  it('sends a room audience to the room, and nothing without room_id', () => {
    expect(plan(env('games.event.turn_changed', room(ROOM), turn)).target).toEqual({
      kind: 'room',
      roomId: ROOM,
    });
    expect(plan(env('games.event.turn_changed', room(null), turn)).target.kind).toBe('none');
  });

  it('sends a players audience to the whole room', () => {
    expect(plan(env('games.event.turn_changed', players(ROOM), turn)).target).toEqual({
      kind: 'room',
      roomId: ROOM,
    });
    expect(plan(env('games.event.turn_changed', players(null), turn)).target.kind).toBe('none');
  });

  it('sends a spectators audience to spectators of game_id, falling back to room_id', () => {
    expect(plan(env('games.event.bigger_dice.spectator_chat', spectators(ROOM))).target).toEqual({
      kind: 'spectators',
      roomId: ROOM,
    });
    expect(plan(env('games.event.bigger_dice.spectator_chat', spectators(null, 'r2'))).target).toEqual({
      kind: 'spectators',
      roomId: 'r2',
    });
    expect(plan(env('games.event.bigger_dice.spectator_chat', spectators(null))).target.kind).toBe('none');
  });

  it('broadcasts a broadcast audience', () => {
    expect(plan(env('games.event.bigger_dice.room_removed', broadcast)).target).toEqual({
      kind: 'broadcast',
    });
  });

  it('plans an unmapped event with no message but the audience target', () => {
    const p = plan(env('games.event.room_joined', room(ROOM), { room_id: ROOM }));
    expect(p.message).toBeNull();
    expect(p.target).toEqual({ kind: 'room', roomId: ROOM });
    expect(p.before).toEqual([]);
    expect(p.after).toEqual([]);
  });
});

describe('planDelivery: joins (user-targeted join events)', () => {
  const roomState = (spectatorsData: Json[] = []): JsonObject => ({
    type: 'room_state',
    room: { room_id: ROOM, spectators_data: spectatorsData },
  });

  it.each([...JOIN_KINDS])('%s with a user audience joins every addressed user before the send', (kind) => {
    const payload = kind === 'room_state' ? roomState() : { room_id: ROOM };
    for (const eventType of [
      `games.event.${kind}`,
      `games.event.bigger_dice.${kind}`,
      `games.event.tic_tac_toe.${kind}`,
    ]) {
      const p = plan(env(eventType, users('4', '9'), payload));
      expect(p.message).not.toBeNull();
      expect(p.before).toEqual([join('4'), join('9')]);
      expect(p.after).toEqual([]);
    }
  });

  it.each([...JOIN_KINDS])('%s with a room audience joins nobody', (kind) => {
    const payload = kind === 'room_state' ? roomState() : { room_id: ROOM };
    const p = plan(env(`games.event.bigger_dice.${kind}`, room(ROOM), payload));
    expect(p.before).toEqual([]);
    expect(p.after).toEqual([]);
  });

  it('takes the room of room_state from payload.room.room_id', () => {
    const p = plan(
      env('games.event.tic_tac_toe.room_state', user('9'), { room_id: 'other', room: { room_id: 'r7' } }),
    );
    expect(p.before).toEqual([join('9', 'r7')]);
  });

  it('joins nobody when the room id is missing or not a string', () => {
    expect(plan(env('games.event.room_state', user('9'), { room: { room_id: 7 } })).before).toEqual([]);
    expect(plan(env('games.event.room_state', user('9'), { room: 'x' })).before).toEqual([]);
    expect(plan(env('games.event.lobby_joined', user('9'), { room_id: 7 })).before).toEqual([]);
  });

  it('also joins the spectators of a room_state that lists the user in spectators_data', () => {
    const payload = roomState([{ user_id: 15, username: 'Eve' }, 'junk', { user_id: '9' }]);
    expect(plan(env('games.event.bigger_dice.room_state', user('15', '9', '4'), payload)).before).toEqual([
      join('15', ROOM, true),
      join('9', ROOM, true),
      join('4'),
    ]);
  });

  it('never matches a non-numeric user id against spectators_data', () => {
    const payload = roomState([{ user_id: 0 }]);
    expect(plan(env('games.event.room_state', user('guest'), payload)).before).toEqual([join('guest')]);
  });

  it('joins the spectators for spectator_data_joined when the spectator is the user', () => {
    const payload = { room_id: ROOM, spectator: { user_id: 15, username: 'Eve' } };
    expect(plan(env('games.event.tic_tac_toe.spectator_data_joined', user('15'), payload)).before).toEqual([
      join('15', ROOM, true),
    ]);
    expect(plan(env('games.event.tic_tac_toe.spectator_data_joined', user('4'), payload)).before).toEqual([
      join('4'),
    ]);
  });

  it('joins only when the event has a client message', () => {
    const p = plan(env('games.event.chess.room_state', user('9'), roomState()));
    expect(p.message).toBeNull();
    expect(p.before).toEqual([]);
  });
});

describe('planDelivery: leaves', () => {
  it.each([...LEAVE_KINDS])('%s with a room audience removes payload.user_id after the send', (kind) => {
    const p = plan(env(`games.event.bigger_dice.${kind}`, room(ROOM), { room_id: 'ignored', user_id: 9 }));
    expect(p.before).toEqual([]);
    expect(p.after).toEqual([leave('9')]);
  });

  it.each([...LEAVE_KINDS])('%s with a user audience removes payload.user_id before the send', (kind) => {
    const p = plan(env(`games.event.${kind}`, user('4'), { room_id: ROOM, user_id: '15' }));
    expect(p.before).toEqual([leave('15')]);
    expect(p.after).toEqual([]);
  });

  it('removes the addressed users when a user-targeted leave event has no payload.user_id (D3)', () => {
    const p = plan(
      env('games.event.bigger_dice.removed_from_game', users('12', '21'), {
        room_id: ROOM,
        reason: 'not_selected',
      }),
    );
    expect(p.before).toEqual([leave('12'), leave('21')]);
  });

  it('treats an unparsable payload.user_id like a missing one', () => {
    expect(
      plan(env('games.event.spectator_kicked', user('15'), { room_id: ROOM, user_id: 'eve' })).before,
    ).toEqual([leave('15')]);
  });

  it('normalises a numeric string user id', () => {
    expect(plan(env('games.event.player_left', room(ROOM), { user_id: '009' })).after).toEqual([leave('9')]);
  });

  it('removes nobody from a room audience without payload.user_id', () => {
    expect(plan(env('games.event.player_left', room(ROOM), { room_id: ROOM })).after).toEqual([]);
  });

  it('removes nobody from a user audience without payload.room_id', () => {
    expect(plan(env('games.event.removed_from_game', user('12'), {})).before).toEqual([]);
  });

  it('still removes the leaving user of an unmapped room-audience leave event', () => {
    const p = plan(env('games.event.chess.player_left', room(ROOM), { user_id: 9 }));
    expect(p.message).toBeNull();
    expect(p.after).toEqual([leave('9')]);
  });

  it('does not remove anyone for players, spectators or broadcast audiences', () => {
    for (const audience of [players(ROOM), spectators(ROOM), broadcast]) {
      const p = plan(env('games.event.player_left', audience, { room_id: ROOM, user_id: 9 }));
      expect([p.before, p.after]).toEqual([[], []]);
    }
  });

  it('leaves ordinary events without membership changes', () => {
    const p = plan(env('games.event.player_unbanned', room(ROOM), { room_id: ROOM, user_id: 9 }));
    expect([p.before, p.after]).toEqual([[], []]);
  });
});

describe('planDelivery: chat.events', () => {
  it('sends a room audience to the lobby, never to a game room', () => {
    const p = plan(
      env('chat.event', room('1'), { type: 'lobby_message_received', lobby_id: 1, message_id: 7 }),
      CHAT,
    );
    expect(p.target).toEqual({ kind: 'lobby', lobbyId: '1' });
    expect(plan(env('chat.event', players('1'), { type: 'lobby_message_received' }), CHAT).target).toEqual({
      kind: 'lobby',
      lobbyId: '1',
    });
  });

  it('applies no game membership logic', () => {
    const joinLike = plan(env('games.event.room_state', user('9'), { room: { room_id: ROOM } }), CHAT);
    expect(joinLike.before).toEqual([]);
    const leaveLike = plan(env('games.event.player_left', room(ROOM), { user_id: 9 }), CHAT);
    expect(leaveLike.after).toEqual([]);
    expect(leaveLike.target).toEqual({ kind: 'lobby', lobbyId: ROOM });
  });

  it('sends a spectators audience nowhere', () => {
    expect(plan(env('chat.event', spectators('1'), { type: 'typing_indicator' }), CHAT).target.kind).toBe(
      'none',
    );
  });

  it('routes user, users and broadcast audiences as on game topics', () => {
    const typing = { type: 'typing_indicator', sender_id: 9, recipient_id: 4, is_typing: true };
    expect(plan(env('chat.event', users('4', '4'), typing), CHAT).target).toEqual({
      kind: 'users',
      userIds: ['4'],
    });
    expect(plan(env('chat.event', user(), typing), CHAT).target.kind).toBe('none');
    expect(plan(env('chat.event', broadcast, typing), CHAT).target).toEqual({ kind: 'broadcast' });
  });

  it('records a delivered private message for mark_read', () => {
    const p = plan(
      env('chat.event', user('9'), { type: 'message_received', message_id: 'm1', sender_id: 4 }),
      CHAT,
    );
    expect(p.chat).toEqual({ recordMessage: { messageId: 'm1', senderId: '4' } });
  });

  it('records nothing when the message id or sender is missing', () => {
    expect(
      plan(env('chat.event', user('9'), { type: 'message_received', sender_id: 4 }), CHAT).chat,
    ).toBeUndefined();
    expect(
      plan(env('chat.event', user('9'), { type: 'message_received', message_id: 'm1' }), CHAT).chat,
    ).toBeUndefined();
  });

  it('asks for the typing sender name to be resolved', () => {
    const p = plan(
      env('chat.event', user('4'), { type: 'typing_indicator', sender_id: 9, is_typing: true }),
      CHAT,
    );
    expect(p.chat).toEqual({ resolveSenderNameOf: '9' });
    expect(p.message).toEqual({ type: 'chat.event.typing', sender_id: '9', sender_name: '' });
  });

  it('gives no hints for a dropped typing stop', () => {
    const p = plan(
      env('chat.event', user('4'), { type: 'typing_indicator', sender_id: 9, is_typing: false }),
      CHAT,
    );
    expect(p.message).toBeNull();
    expect(p.chat).toBeUndefined();
  });

  it('prefers the originating connection of a failed command (head of the token, split at the last |)', () => {
    const p = plan(
      env('chat.event', user('4'), { type: 'error', code: 'not_friends', socket_id: 'a|b|9' }),
      CHAT,
    );
    expect(p.chat).toEqual({ preferConnectionId: 'a|b' });
    expect(p.message).toEqual({
      type: 'chat.event.message_rejected',
      reason: 'not_friends',
      recipient_id: '9',
    });
    expect(
      plan(env('chat.event', user('4'), { type: 'error', code: 'x', socket_id: '' }), CHAT).chat,
    ).toBeUndefined();
  });

  it('gives no chat hints to the legacy chat.event.* types', () => {
    const p = plan(
      env('chat.event.message_received', user('9'), { type: 'message_received', message_id: 'm1' }),
      CHAT,
    );
    expect(p.message).not.toBeNull();
    expect(p.chat).toBeUndefined();
  });

  it('does not bridge chat.event arriving on another topic', () => {
    const p = plan(
      env('chat.event', user('9'), { type: 'message_received', message_id: 'm1', sender_id: 4 }),
      GAMES,
    );
    expect(p.message).toBeNull();
    expect(p.chat).toBeUndefined();
  });
});
