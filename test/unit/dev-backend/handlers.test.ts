/**
 * The dev backend's chat and room handlers: the events each command produces, their audiences,
 * and that the gateway's own conversion table turns every one of them into a client message.
 */
import { convertEnvelope } from '../../../lib/events/convert';
import type { Envelope, JsonObject } from '../../../lib/protocol/envelope';
import { createChat } from '../../../scripts/dev-backend/chat';
import type { OutboundEvent } from '../../../scripts/dev-backend/envelope';
import { createPresence } from '../../../scripts/dev-backend/presence';
import { createRooms } from '../../../scripts/dev-backend/rooms';

function command(eventType: string, user: number, payload: JsonObject, name = `user${user}`): Envelope {
  return {
    event_id: 'e',
    event_type: eventType,
    timestamp: '2026-01-01T00:00:00Z',
    correlation_id: null,
    producer: 'ws_gateway',
    actor: { user_id: String(user), username: name, roles: ['user'] },
    audience: { type: 'user', user_ids: [], room_id: null, game_id: null },
    payload,
  };
}

/** `event_type → audience` in order, and every event converts for the gateway. */
function summary(events: OutboundEvent[]): string[] {
  return events.map(({ topic, envelope: e }) => {
    expect(convertEnvelope(e, topic)).not.toBeNull();
    expect(e).toMatchObject({
      producer: 'blazing_sun',
      correlation_id: null,
      actor: { user_id: '0', username: 'system' },
    });
    expect(e.timestamp).toMatch(/\.\d{9}\+00:00$/);
    const a = e.audience;
    const to =
      a.type === 'user'
        ? `user:${a.user_ids.join(',')}`
        : a.type === 'room'
          ? `room`
          : a.type === 'spectators'
            ? `spectators:${a.game_id}`
            : a.type;
    return `${e.event_type.replace(/^games\.event\./, '')} → ${to}`;
  });
}

describe('chat', () => {
  const chat = createChat({ messageId: () => 'a'.repeat(24) });
  const send = (from: number, to: number) =>
    chat.handle(
      command('chat.command.send_message', from, {
        type: 'send_message',
        sender_id: from,
        recipient_id: to,
        content: 'hi',
        socket_id: `c${from}|${to}`,
      }),
    );

  it('delivers a direct message to the recipient, then the sender copy', () => {
    const events = send(4, 9);
    expect(summary(events)).toEqual(['chat.event → user:9', 'chat.event → user:4']);
    expect(events[0]!.envelope.payload).toMatchObject({
      type: 'message_received',
      sender_id: 4,
      sender_username: 'user4',
      recipient_id: 9,
      content: 'hi',
      message_id: 'a'.repeat(24),
    });
    expect(events[1]!.envelope.payload).toEqual(events[0]!.envelope.payload);
  });

  it('refuses a message to oneself with not_friends, echoing the correlation token', () => {
    const [e] = send(4, 4);
    expect(e!.envelope.payload).toMatchObject({ type: 'error', code: 'not_friends', socket_id: 'c4|4' });
    expect(convertEnvelope(e!.envelope, e!.topic)).toMatchObject({
      type: 'chat.event.message_rejected',
      recipient_id: '4',
    });
  });

  it('answers mark_read to the original sender only when something was unread', () => {
    send(4, 9);
    const read = () =>
      chat.handle(command('chat.command.mark_read', 9, { type: 'mark_read', user_id: 9, other_user_id: 4 }));
    const events = read();
    expect(summary(events)).toEqual(['chat.event → user:4']);
    expect(events[0]!.envelope.payload).toMatchObject({ type: 'message_read', reader_id: 9, sender_id: 4 });
    expect(read()).toEqual([]);
  });

  it('posts to a lobby audience and refuses an unknown lobby', () => {
    const post = (lobby: number) =>
      chat.handle(
        command('chat.command.send_lobby_message', 4, {
          type: 'send_lobby_message',
          sender_id: 4,
          lobby_id: lobby,
          content: 'yo',
        }),
      );
    const [ok] = post(1);
    expect(ok!.envelope.audience).toEqual({ type: 'room', user_ids: [], room_id: '1', game_id: null });
    expect(ok!.envelope.payload).toMatchObject({ type: 'lobby_message_received', lobby_id: 1, sender_id: 4 });
    expect(post(99)[0]!.envelope.payload).toMatchObject({ type: 'error', code: 'lobby_not_found' });
  });

  it('forwards typing to the recipient and drops commands without integer ids', () => {
    expect(
      summary(
        chat.handle(
          command('chat.command.typing', 4, {
            type: 'typing',
            sender_id: 4,
            recipient_id: 9,
            is_typing: true,
          }),
        ),
      ),
    ).toEqual(['chat.event → user:9']);
    expect(
      chat.handle(command('chat.command.typing', 4, { type: 'typing', sender_id: '4', recipient_id: 9 })),
    ).toEqual([]);
    expect(chat.handle(command('chat.command.x', 4, { type: 'nope' }))).toEqual([]);
  });
});

describe('rooms', () => {
  const g = (rooms: ReturnType<typeof createRooms>, type: string, user: number, payload: JsonObject) =>
    rooms.handle(command(`games.command.${type}`, user, payload));

  /** Two players in a room of `gameType`, selected and ready: returns the room id and the start events. */
  function started(
    gameType: 'bigger_dice' | 'tic_tac_toe',
    rooms = createRooms({ rollDie: () => 3, xFirst: () => true }),
  ) {
    const created = g(rooms, 'create_room', 4, { game_type: gameType, room_name: `R-${gameType}` });
    const roomId = (created[0]!.envelope.payload as { room_id: string }).room_id;
    const joined = g(rooms, 'join_room', 9, { room_name: `R-${gameType}` });
    const spectating = g(rooms, 'join_as_spectator', 12, { room_name: `R-${gameType}` });
    g(rooms, 'select_player', 4, { room_id: roomId, target_user_id: '4' });
    const full = g(rooms, 'select_player', 4, { room_id: roomId, target_user_id: '9' });
    g(rooms, 'ready', 4, { room_id: roomId });
    const go = g(rooms, 'ready', 9, { room_id: roomId });
    return { rooms, roomId, created, joined, spectating, full, go };
  }

  it('creates, joins, spectates, selects and starts Bigger Dice with the platform audiences', () => {
    const { created, joined, spectating, full, go, roomId } = started('bigger_dice');
    expect(summary(created)).toEqual([
      'bigger_dice.room_created → broadcast',
      'bigger_dice.room_state → user:4',
    ]);
    expect(summary(joined)).toEqual(['bigger_dice.room_state → user:9', 'bigger_dice.lobby_joined → room']);
    expect(summary(spectating)).toEqual([
      'bigger_dice.spectator_data_joined → room',
      'bigger_dice.room_state → user:12',
    ]);
    expect((spectating[1]!.envelope.payload['room'] as JsonObject)['spectators_data']).toMatchObject([
      { user_id: 12 },
    ]);
    expect(summary(full)).toEqual([
      'bigger_dice.player_selected → room',
      'bigger_dice.game_starting → user:4',
      'bigger_dice.game_starting → user:9',
      'bigger_dice.game_starting → user:12',
      'bigger_dice.room_state → user:4',
      'bigger_dice.room_state → user:9',
      'bigger_dice.room_state → user:12',
    ]);
    expect(summary(go)).toEqual([
      'bigger_dice.player_ready → room',
      'bigger_dice.game_started → room',
      'bigger_dice.turn_changed → room',
      'bigger_dice.room_removed → broadcast',
    ]);
    expect(go[1]!.envelope.payload).toMatchObject({
      room_id: roomId,
      first_turn: 4,
      players: [{ user_id: 4 }, { user_id: 9 }],
    });
    expect(go.every((e) => e.key === roomId)).toBe(true);
  });

  it('plays Bigger Dice to game_over and refuses rolls out of turn', () => {
    const { rooms, roomId } = started(
      'bigger_dice',
      createRooms({
        rollDie: (() => {
          let n = 0;
          return () => (n++ % 2 === 0 ? 6 : 1);
        })(),
        diceTarget: 2,
      }),
    );
    expect(summary(g(rooms, 'bigger_dice.roll', 9, { room_id: roomId }))).toEqual(['error → user:9']);
    const all: string[] = [];
    for (let i = 0; i < 2; i++) {
      all.push(...summary(g(rooms, 'bigger_dice.roll', 4, { room_id: roomId })));
      all.push(...summary(g(rooms, 'bigger_dice.roll', 9, { room_id: roomId })));
    }
    expect(all.slice(-3)).toEqual([
      'bigger_dice.rolled → room',
      'bigger_dice.round_result → room',
      'bigger_dice.game_over → room',
    ]);
    expect(summary(g(rooms, 'bigger_dice.roll', 4, { room_id: roomId }))).toEqual(['error → user:4']);
  });

  it('plays Tic-Tac-Toe to a game result', () => {
    const { rooms, roomId, go } = started('tic_tac_toe');
    expect(summary(go)).toEqual([
      'tic_tac_toe.player_ready → room',
      'tic_tac_toe.game_started → room',
      'tic_tac_toe.turn_changed → room',
      'tic_tac_toe.state → room',
      'tic_tac_toe.room_removed → broadcast',
    ]);
    expect(summary(g(rooms, 'tic_tac_toe.move', 9, { room_id: roomId, position: 0 }))).toEqual([
      'error → user:9',
    ]);
    for (const [who, pos] of [
      [4, 0],
      [9, 3],
      [4, 1],
      [9, 4],
    ] as const)
      g(rooms, 'tic_tac_toe.move', who, { room_id: roomId, position: pos });
    const win = g(rooms, 'tic_tac_toe.move', 4, { room_id: roomId, position: 2 });
    expect(summary(win)).toEqual([
      'tic_tac_toe.moved → room',
      'tic_tac_toe.game_result → room',
      'tic_tac_toe.turn_changed → room',
    ]);
    expect(win[1]!.envelope.payload).toMatchObject({ winner_id: 4, winning_line: [0, 1, 2] });
  });

  it('rejoins a member with room_state and tells others not_in_room', () => {
    const rooms = createRooms();
    const [created] = g(rooms, 'create_room', 4, { game_type: 'bigger_dice', room_name: 'Mine' });
    const roomId = (created!.envelope.payload as { room_id: string }).room_id;
    expect(summary(g(rooms, 'rejoin_room', 4, { room_id: roomId }))).toEqual([
      'bigger_dice.room_state → user:4',
    ]);
    expect(summary(g(rooms, 'rejoin_room', 7, { room_id: roomId }))).toEqual([
      'bigger_dice.not_in_room → user:7',
    ]);
    expect(summary(g(rooms, 'rejoin_room', 7, { room_id: 'gone' }))).toEqual(['error → user:7']);
  });

  it('removes a room when its host leaves before the start, and lists only open rooms', () => {
    const rooms = createRooms();
    const [created] = g(rooms, 'create_room', 4, { game_type: 'bigger_dice', room_name: 'Brief' });
    const roomId = (created!.envelope.payload as { room_id: string }).room_id;
    g(rooms, 'join_room', 9, { room_name: 'Brief' });
    const listed = g(rooms, 'list_rooms', 9, { game_type: null });
    expect(summary(listed)).toEqual(['room_list → user:9']);
    expect(listed[0]!.envelope.payload['rooms']).toMatchObject([
      { room_id: roomId, lobby_count: 2, rejoin_role: 'lobby' },
    ]);
    expect(summary(g(rooms, 'leave_room', 4, { room_id: roomId }))).toEqual([
      'bigger_dice.room_removed → broadcast',
      'bigger_dice.player_left → room',
    ]);
    expect(rooms.size()).toBe(0);
  });

  it('removes a game in progress once every player is gone', () => {
    const { rooms, roomId } = started('bigger_dice');
    expect(summary(g(rooms, 'leave_room', 4, { room_id: roomId }))).toEqual([
      'bigger_dice.player_disconnected → room',
    ]);
    expect(summary(g(rooms, 'player_disconnected', 9, { room_id: roomId }))).toEqual([
      'bigger_dice.player_disconnected → room',
      'bigger_dice.room_removed → broadcast',
    ]);
    expect(rooms.size()).toBe(0);
  });

  it('sends room chat to the room, spectator chat to the spectators', () => {
    const { rooms, roomId } = started('bigger_dice');
    expect(summary(g(rooms, 'send_chat', 4, { room_id: roomId, channel: 'players', content: 'gl' }))).toEqual(
      ['bigger_dice.player_chat → room'],
    );
    expect(
      summary(g(rooms, 'send_chat', 12, { room_id: roomId, channel: 'spectators', content: 'go' })),
    ).toEqual([`bigger_dice.spectator_chat → spectators:${roomId}`]);
    expect(g(rooms, 'send_chat', 12, { room_id: roomId, channel: 'players', content: 'no' })).toEqual([]);
  });
});

describe('presence', () => {
  it('rebroadcasts gateway presence and sends the roster to a new connection', () => {
    const presence = createPresence();
    const online = presence.handle('gateway.presence', command('presence.event.user_online', 4, {}, 'John'));
    expect(online.map((e) => [e.topic, e.envelope.event_type, e.envelope.audience.type])).toEqual([
      ['system.events', 'presence.event.user_online', 'broadcast'],
    ]);
    expect(convertEnvelope(online[0]!.envelope, 'system.events')).toEqual({
      type: 'presence.event.user_online',
      user_id: '4',
      username: 'John',
    });
    const roster = presence.handle('system.events', command('system.event.user_connected', 9, {}, 'Ann'));
    expect(roster.map((e) => [e.envelope.actor.user_id, e.envelope.audience.user_ids])).toEqual([
      ['4', ['9']],
      ['9', ['9']],
    ]);
    // Its own events on system.events are not read back.
    expect(presence.handle('system.events', online[0]!.envelope)).toEqual([]);
  });
});
