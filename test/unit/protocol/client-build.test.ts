import { ClientError } from '../../../lib/errors';
import {
  buildCommandRecords,
  CLIENT_MESSAGE_TABLE,
  type CommandContext,
  type CommandDeps,
  type ForwardedClientMessage,
  type ForwardedMessageType,
  isForwarded,
  parseClientMessage,
} from '../../../lib/protocol/client';
import type { Identity, JsonObject } from '../../../lib/protocol/envelope';
import { clientMessageFixture } from '../../fixtures/load-client-messages';

const JOHN: Identity = { userId: '4', username: 'John', roles: ['user'] };
const NOW = new Date('2026-01-23T18:29:59.501Z');
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A context whose event ids count up, so every record's id is predictable. */
function context(identity: Identity = JOHN): CommandContext {
  let n = 0;
  return {
    identity,
    connectionId: 'C1',
    eventId: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    now: () => NOW,
  };
}

/** A resolver that knows some message senders and records what it was asked. */
function senders(known: Record<string, string>): CommandDeps & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    resolveMessageSenders: async (ids) => {
      calls.push(ids);
      return ids.map((id) => known[id] ?? null);
    },
  };
}

const NO_DEPS: CommandDeps = {
  resolveMessageSenders: () => Promise.reject(new Error('resolveMessageSenders must not be called')),
};

function forwarded(raw: string): ForwardedClientMessage {
  const msg = parseClientMessage(raw);
  if (!isForwarded(msg)) throw new Error(`${msg.type} is not forwarded`);
  return msg;
}

const build = (raw: string, deps: CommandDeps = NO_DEPS, ctx: CommandContext = context()) =>
  buildCommandRecords(forwarded(raw), ctx, deps);

const R = '5d0c2a8e-room';
interface ExpectedRecord {
  readonly topic: 'chat.commands' | 'games.commands';
  readonly key: string;
  /** The audience's room_id (games only). */
  readonly roomId: string | null;
  readonly payload: JsonObject;
}
const games = (payload: JsonObject, roomId: string | null = R): ExpectedRecord => ({
  topic: 'games.commands',
  key: roomId ?? '4',
  roomId,
  payload,
});
const chat = (payload: JsonObject): ExpectedRecord => ({
  topic: 'chat.commands',
  key: '4',
  roomId: null,
  payload,
});

/**
 * The exact record of every forwarded type, for its example frame, per docs/protocol.md (payload keys in
 * that order), docs/decisions.md D4 and docs/protocol.md. Written out by hand: this is the contract, not derived from the code.
 */
const EXPECTED = {
  'chat.command.send_message': chat({
    type: 'send_message',
    sender_id: 4,
    recipient_id: 9,
    content: 'Rematch at 9?',
    socket_id: 'C1|9',
  }),
  'chat.command.send_lobby_message': chat({
    type: 'send_lobby_message',
    sender_id: 4,
    lobby_id: 1,
    content: 'Anyone up for Bigger Dice?',
    socket_id: 'C1|lobby:1',
  }),
  'chat.command.typing': chat({ type: 'typing', sender_id: 4, recipient_id: 9, is_typing: true }),
  'chat.command.mark_read': chat({ type: 'mark_read', user_id: 4, other_user_id: 9 }),
  'games.command.create_room': games(
    {
      game_type: 'bigger_dice',
      room_name: 'My Room',
      password: 'secret',
      max_players: 4,
      allow_spectators: true,
    },
    null,
  ),
  'games.command.join_room': games({ room_name: 'My Room', password: 'secret' }, null),
  'games.command.leave_room': games({ room_id: R }),
  'games.command.spectate': games({ room_id: R }),
  'games.command.stop_spectating': games({ room_id: R }),
  'games.command.player_chat': games({ room_id: R, content: 'gg' }),
  'games.command.spectator_chat': games({ room_id: R, content: 'nice roll' }),
  'games.command.select_player': games({ room_id: R, target_user_id: '9' }),
  'games.command.kick_player': games({ room_id: R, target_user_id: '9' }),
  'games.command.kick_spectator': games({ room_id: R, target_user_id: '12' }),
  'games.command.vote_kick_disconnected': games({ room_id: R, target_user_id: '9' }),
  'games.command.ban_player': games({ room_id: R, target_user_id: '9' }),
  'games.command.unban_player': games({ room_id: R, target_user_id: '9' }),
  'games.command.bigger_dice.roll': games({ room_id: R }),
  'games.command.bigger_dice.auto_roll': games({ room_id: R, target_user_id: '9' }),
  'games.command.bigger_dice.enable_auto_play': games({ room_id: R }),
  'games.command.tic_tac_toe.move': games({ room_id: 'a1b2c3-room', position: 4 }, 'a1b2c3-room'),
  'games.command.list_rooms': games({ game_type: 'tic_tac_toe' }, null),
  'games.command.ready': games({ room_id: R }),
  'games.command.rejoin_room': games({ room_id: R }),
  'games.command.send_chat': games({ room_id: R, channel: 'lobby', content: 'hello' }),
  'games.command.get_chat_history': games({ room_id: R, channel: 'lobby', limit: 50 }),
  'games.command.set_ready': games({ room_id: R, is_ready: false, ready: false }),
  'games.command.start_game': games({ room_id: R }),
  'games.command.deselect_player': games({ room_id: R, target_user_id: '9' }),
  'games.command.designate_admin_spectator': games({ room_id: R, target_user_id: '12' }),
  'games.command.join_as_spectator': games({ room_name: 'My Room' }, null),
  'games.command.mute_user': games({ room_id: R, target_user_id: '12' }),
  'games.command.unmute_user': games({ room_id: R, target_user_id: '12' }),
  'games.command.select_spectator': games({ room_id: R, target_user_id: '12' }),
  'games.command.become_spectator': games({ room_id: R }),
  'games.command.become_player': games({ room_id: R }),
  'games.command.leave_spectate': games({ room_id: R }),
} satisfies Record<ForwardedMessageType, ExpectedRecord>;

const FORWARDED_TYPES = Object.keys(EXPECTED) as ForwardedMessageType[];

describe('buildCommandRecords: one exact record per forwarded type', () => {
  it('covers every forwarded type of the table', () => {
    const fromTable = CLIENT_MESSAGE_TABLE.filter((row) => row.route.kind === 'forward').map(
      (row) => row.type,
    );
    expect(new Set(FORWARDED_TYPES)).toEqual(new Set(fromTable));
    expect(FORWARDED_TYPES).toHaveLength(37);
  });

  it.each(FORWARDED_TYPES)('%s', async (type) => {
    const expected = EXPECTED[type];
    const { records, joinLobby } = await build(clientMessageFixture(type).raw);

    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record).toEqual({
      topic: expected.topic,
      key: expected.key,
      envelope: {
        event_id: '00000000-0000-4000-8000-000000000001',
        event_type: type,
        timestamp: '2026-01-23T18:29:59.501Z',
        correlation_id: null,
        producer: 'ws_gateway',
        actor: { user_id: '4', username: 'John', roles: ['user'] },
        audience:
          expected.topic === 'chat.commands'
            ? { type: 'user', user_ids: [], room_id: null, game_id: null }
            : { type: 'room', user_ids: [], room_id: expected.roomId, game_id: null },
        payload: expected.payload,
      },
    });
    // Key order is what the backend's logs and the Rust gateway showed; toEqual ignores it.
    expect(Object.keys(record!.envelope.payload)).toEqual(Object.keys(expected.payload));
    expect(Object.keys(record!.envelope)).toEqual([
      'event_id',
      'event_type',
      'timestamp',
      'correlation_id',
      'producer',
      'actor',
      'audience',
      'payload',
    ]);
    expect(joinLobby).toBe(type === 'chat.command.send_lobby_message' ? '1' : undefined);
  });
});

describe('buildCommandRecords: envelope', () => {
  it('uses a fresh event id per record and an RFC 3339 UTC timestamp', async () => {
    const { records } = await build('{"type":"games.command.ready","room_id":"r"}', NO_DEPS, {
      ...context(),
      eventId: () => crypto.randomUUID(),
      now: () => new Date(),
    });
    expect(records[0]!.envelope.event_id).toMatch(UUID_V4);
    expect(records[0]!.envelope.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  it('carries the client request_id as correlation_id', async () => {
    const { records } = await build('{"type":"games.command.ready","room_id":"r","request_id":"req-1"}');
    expect(records[0]!.envelope.correlation_id).toBe('req-1');
    expect(records[0]!.envelope.payload).toEqual({ room_id: 'r' });
  });

  it('carries a client correlation_id on chat commands too', async () => {
    const { records } = await build('{"type":"chat.command.typing","recipient_id":9,"correlation_id":"c-9"}');
    expect(records[0]!.envelope.correlation_id).toBe('c-9');
  });

  it('takes the actor from the identity, never from the frame', async () => {
    const { records } = await build(
      '{"type":"games.command.ready","room_id":"r","actor":{"user_id":"1","username":"Admin","roles":["admin"]},"user_id":"1"}',
      NO_DEPS,
      context({ userId: '4', username: 'John', roles: ['user', 'vip'] }),
    );
    expect(records[0]!.envelope.actor).toEqual({ user_id: '4', username: 'John', roles: ['user', 'vip'] });
    expect(records[0]!.envelope.payload).toEqual({ room_id: 'r' });
  });

  it('does not share the identity roles array with the envelope', async () => {
    const roles = ['user'];
    const { records } = await build(
      '{"type":"games.command.ready","room_id":"r"}',
      NO_DEPS,
      context({ ...JOHN, roles }),
    );
    expect(records[0]!.envelope.actor.roles).not.toBe(roles);
  });
});

describe('buildCommandRecords: games payloads', () => {
  it('omits optional create_room keys that are absent or null', async () => {
    const { records } = await build(
      '{"type":"games.command.create_room","game_type":"tic_tac_toe","room_name":"R","password":null,"max_players":2}',
    );
    expect(records[0]!.envelope.payload).toEqual({
      game_type: 'tic_tac_toe',
      room_name: 'R',
      max_players: 2,
    });
    expect(Object.keys(records[0]!.envelope.payload)).toEqual(['game_type', 'room_name', 'max_players']);
  });

  it('always sends list_rooms.game_type, null when absent', async () => {
    const { records } = await build('{"type":"games.command.list_rooms"}');
    expect(records[0]!.envelope.payload).toEqual({ game_type: null });
    expect(records[0]).toMatchObject({ key: '4', envelope: { audience: { room_id: null } } });
  });

  it('always sends get_chat_history.limit, null when absent', async () => {
    const { records } = await build(
      '{"type":"games.command.get_chat_history","room_id":"r","channel":"players"}',
    );
    expect(records[0]!.envelope.payload).toEqual({ room_id: 'r', channel: 'players', limit: null });
  });

  it('sends rejoin_room with only the keys present, keyed by the user without a room_id', async () => {
    const byName = await build('{"type":"games.command.rejoin_room","room_name":"My Room"}');
    expect(byName.records[0]).toMatchObject({ key: '4', envelope: { payload: { room_name: 'My Room' } } });
    const empty = await build('{"type":"games.command.rejoin_room"}');
    expect(empty.records[0]!.envelope.payload).toEqual({});
  });

  it.each([true, false])('mirrors set_ready.is_ready=%s into ready', async (isReady) => {
    const { records } = await build(`{"type":"games.command.set_ready","room_id":"r","is_ready":${isReady}}`);
    expect(records[0]!.envelope.payload).toEqual({ room_id: 'r', is_ready: isReady, ready: isReady });
  });

  it('drops the send_chat avatar_id and any unknown field', async () => {
    const { records } = await build(
      '{"type":"games.command.send_chat","room_id":"r","channel":"lobby","content":"hi","avatar_id":"/a.png","user_id":"1"}',
    );
    expect(records[0]!.envelope.payload).toEqual({ room_id: 'r', channel: 'lobby', content: 'hi' });
  });

  it('forwards an integer target_user_id as a string', async () => {
    const { records } = await build('{"type":"games.command.mute_user","room_id":"r","target_user_id":12}');
    expect(records[0]!.envelope.payload).toEqual({ room_id: 'r', target_user_id: '12' });
  });

  it('does not require a numeric user id for games commands', async () => {
    const { records } = await build(
      '{"type":"games.command.ready","room_id":"r"}',
      NO_DEPS,
      context({ userId: 'oauth|abc', username: 'unknown', roles: [] }),
    );
    expect(records[0]!.key).toBe('r');
  });
});

describe('buildCommandRecords: chat bridge (docs/protocol.md)', () => {
  it.each([
    [
      '{"type":"chat.command.send_message","recipient_id":"9","content":"hi","sender_id":1,"socket_id":"X"}',
      'sender_id',
    ],
    ['{"type":"chat.command.send_lobby_message","lobby_id":1,"content":"hi","sender_id":"1"}', 'sender_id'],
    ['{"type":"chat.command.typing","recipient_id":9,"sender_id":1,"is_typing":false}', 'sender_id'],
    ['{"type":"chat.command.mark_read","message_ids":[],"other_user_id":9,"user_id":1}', 'user_id'],
  ])('ignores an impersonating %s', async (raw, field) => {
    const { records } = await build(raw);
    expect(records[0]!.envelope.payload[field]).toBe(4);
    expect(records[0]!.envelope.actor.user_id).toBe('4');
    expect(records[0]!.envelope.payload.socket_id ?? 'C1|').toMatch(/^C1\|/);
    expect(records[0]!.envelope.payload.is_typing ?? true).toBe(true);
  });

  it('sends ids as JSON integers whatever form the client used', async () => {
    const fromInt = await build('{"type":"chat.command.send_message","recipient_id":9,"content":"hi"}');
    const fromPadded = await build(
      '{"type":"chat.command.send_message","recipient_id":"009","content":"hi"}',
    );
    for (const { records } of [fromInt, fromPadded]) {
      expect(records[0]!.envelope.payload).toMatchObject({ recipient_id: 9, socket_id: 'C1|9' });
    }
  });

  it.each([
    ['chat.command.send_message', '{"recipient_id":"9","content":"hi"}'],
    ['chat.command.send_lobby_message', '{"lobby_id":"1","content":"hi"}'],
    ['chat.command.typing', '{"recipient_id":"9"}'],
    ['chat.command.mark_read', '{"message_ids":["m"],"other_user_id":"9"}'],
  ])('refuses %s when the user id is not numeric', async (type, fields) => {
    const raw = JSON.stringify({ type, ...JSON.parse(fields) });
    for (const userId of ['john', '0', '-4', '4.0', '', '12345678901234567890']) {
      const err = await build(raw, NO_DEPS, context({ ...JOHN, userId })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClientError);
      expect(err).toMatchObject({ code: 'MESSAGE_ERROR', message: 'Chat requires a numeric user id' });
    }
  });

  it('asks the connection to join the lobby it posts to', async () => {
    const { joinLobby } = await build(
      '{"type":"chat.command.send_lobby_message","lobby_id":3,"content":"help"}',
    );
    expect(joinLobby).toBe('3');
  });

  describe('mark_read', () => {
    it('uses other_user_id when sent, without resolving anything', async () => {
      const { records } = await build(
        '{"type":"chat.command.mark_read","message_ids":["a"],"other_user_id":9}',
      );
      expect(records.map((r) => r.envelope.payload)).toEqual([
        { type: 'mark_read', user_id: 4, other_user_id: 9 },
      ]);
    });

    it('resolves the senders of message_ids, one record per distinct sender, in first-seen order', async () => {
      const deps = senders({ a: '9', b: '12', c: '9' });
      const { records } = await build(
        '{"type":"chat.command.mark_read","message_ids":["a","b","a","c","zz"]}',
        deps,
      );
      expect(deps.calls).toEqual([['a', 'b', 'c', 'zz']]);
      expect(records.map((r) => r.envelope.payload)).toEqual([
        { type: 'mark_read', user_id: 4, other_user_id: 9 },
        { type: 'mark_read', user_id: 4, other_user_id: 12 },
      ]);
      expect(records.map((r) => r.envelope.event_id)).toEqual([
        '00000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000002',
      ]);
      expect(records.every((r) => r.topic === 'chat.commands' && r.key === '4')).toBe(true);
    });

    it('answers INVALID_FORMAT when no sender is known', async () => {
      const deps = senders({ a: 'not-a-number' });
      const err = await build('{"type":"chat.command.mark_read","message_ids":["a","b"]}', deps).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'INVALID_FORMAT', message: 'Invalid message format' });
    });

    it('answers INVALID_FORMAT for no message_ids and no other_user_id, without a lookup', async () => {
      const err = await build('{"type":"chat.command.mark_read","message_ids":[]}').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'INVALID_FORMAT' });
    });

    it('lets a failing lookup propagate as it is (a dependency error, not the client’s)', async () => {
      const boom = new Error('redis down');
      const deps: CommandDeps = { resolveMessageSenders: () => Promise.reject(boom) };
      await expect(build('{"type":"chat.command.mark_read","message_ids":["a"]}', deps)).rejects.toBe(boom);
    });
  });
});

describe('buildCommandRecords: misuse', () => {
  it('refuses a local message type', async () => {
    const local = parseClientMessage('{"type":"system.heartbeat"}');
    // @ts-expect-error local messages are not forwarded; the type forbids it
    await expect(buildCommandRecords(local, context(), NO_DEPS)).rejects.toThrow(TypeError);
  });
});
