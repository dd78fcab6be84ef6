import { ClientError } from '../../../lib/errors';
import {
  CLIENT_MESSAGE_TABLE,
  CLIENT_MESSAGE_TYPES,
  type ClientMessage,
  type ClientMessageOf,
  isClientMessageType,
  isForwarded,
  PRE_AUTH_TYPES,
  parseClientMessage,
  requiresAuthentication,
} from '../../../lib/protocol/client';
import { type FieldKind, isOptionalKind, jsonTypeOf } from '../../../lib/protocol/fields';
import { clientMessageFixture, loadClientMessageFixtures } from '../../fixtures/load-client-messages';
import { KIND_CASES } from './kind-cases';

const fixtures = loadClientMessageFixtures();

/** Runs the parser and returns the error it threw (or fails the test). */
function parseError(raw: string): ClientError {
  try {
    parseClientMessage(raw);
  } catch (err) {
    if (err instanceof ClientError) return err;
    throw new Error(`threw something other than a ClientError: ${String(err)}`);
  }
  throw new Error(`accepted ${raw}`);
}

const expectInvalid = (raw: string) => {
  const err = parseError(raw);
  expect(err.code).toBe('INVALID_FORMAT');
  expect(err.message).toBe('Invalid message format');
};

const frameWith = (type: string, key: string, value: unknown) =>
  JSON.stringify({ ...clientMessageFixture(type as ClientMessage['type']).frame, [key]: value });

const frameWithout = (type: string, key: string) => {
  const { [key]: _dropped, ...rest } = clientMessageFixture(type as ClientMessage['type']).frame;
  return JSON.stringify(rest);
};

describe('the client message table', () => {
  it('has the 42 types of docs/protocol.md + D4 + the chat bridge, each once', () => {
    expect(CLIENT_MESSAGE_TYPES).toHaveLength(42);
    expect(new Set(CLIENT_MESSAGE_TYPES).size).toBe(42);
  });

  it('forwards 37 types (33 of docs/protocol.md + the 4 games commands of D4) and keeps 5 local', () => {
    const local = CLIENT_MESSAGE_TABLE.filter((r) => r.route.kind === 'local').map((r) => r.type);
    expect(local).toEqual([
      'system.authenticate',
      'system.heartbeat',
      'system.sync_state',
      'chat.command.join_lobby',
      'chat.command.leave_lobby',
    ]);
    const forwarded = CLIENT_MESSAGE_TABLE.filter((r) => r.route.kind === 'forward');
    expect(forwarded).toHaveLength(37);
    for (const row of forwarded) {
      const prefix = row.type.startsWith('chat.') ? 'chat.commands' : 'games.commands';
      expect(row.route).toMatchObject({ topic: prefix });
    }
  });

  it('knows its types', () => {
    expect(isClientMessageType('games.command.roll')).toBe(false);
    expect(isClientMessageType('games.command.bigger_dice.roll')).toBe(true);
  });
});

describe('parseClientMessage: valid frames', () => {
  it.each(CLIENT_MESSAGE_TYPES)('parses the example %s', (type) => {
    const msg = parseClientMessage(fixtures.get(type)!.raw);
    expect(msg.type).toBe(type);
    expect(isForwarded(msg)).toBe(
      CLIENT_MESSAGE_TABLE.find((r) => r.type === type)!.route.kind === 'forward',
    );
  });

  it.each(CLIENT_MESSAGE_TYPES)('parses %s with only its required fields', (type) => {
    const row = CLIENT_MESSAGE_TABLE.find((r) => r.type === type)!;
    const required = Object.entries(row.fields).filter(([, kind]) => !isOptionalKind(kind));
    const frame: Record<string, unknown> = { type };
    for (const [key] of required) frame[key] = fixtures.get(type)!.frame[key];
    const msg = parseClientMessage(JSON.stringify(frame));
    expect(Object.keys(msg).sort()).toEqual(['type', ...required.map(([k]) => k)].sort());
  });

  it('keeps no unknown field of the frame', () => {
    const msg = parseClientMessage(
      '{"type":"chat.command.send_message","recipient_id":"9","content":"hi","sender_id":1,"user_id":1,"actor":{"user_id":"1"}}',
    );
    expect(msg).toEqual({ type: 'chat.command.send_message', recipient_id: 9, content: 'hi' });
  });

  it('accepts extra fields on the unit types too', () => {
    expect(parseClientMessage('{"type":"system.heartbeat","ts":1}')).toEqual({ type: 'system.heartbeat' });
    expect(parseClientMessage('{"type":"system.sync_state","x":null}')).toEqual({
      type: 'system.sync_state',
    });
  });

  it('accepts surrounding whitespace like any JSON parser', () => {
    expect(parseClientMessage(' \n{"type":"system.heartbeat"}\n ')).toEqual({ type: 'system.heartbeat' });
  });

  it('gives the authenticate message its fields, user_id as a string', () => {
    expect(
      parseClientMessage('{"type":"system.authenticate","user_id":4,"username":"John","avatar_id":null}'),
    ).toEqual({
      type: 'system.authenticate',
      user_id: '4',
      username: 'John',
    });
    expect(parseClientMessage('{"type":"system.authenticate","token":"a.b.c"}')).toEqual({
      type: 'system.authenticate',
      token: 'a.b.c',
    });
  });
});

describe('parseClientMessage: every field of every type', () => {
  const fieldCases = CLIENT_MESSAGE_TABLE.flatMap((row) =>
    Object.entries(row.fields).map(([key, kind]): [string, string, FieldKind] => [row.type, key, kind]),
  );

  describe.each(fieldCases)('%s.%s (%s)', (type, key, kind) => {
    if (isOptionalKind(kind)) {
      it('may be absent or null', () => {
        const absent = parseClientMessage(frameWithout(type, key));
        const nulled = parseClientMessage(frameWith(type, key, null));
        expect(absent).not.toHaveProperty(key);
        expect(nulled).not.toHaveProperty(key);
      });
    } else {
      it('is required', () => {
        expectInvalid(frameWithout(type, key));
      });
    }

    it.each(KIND_CASES[kind].invalid.map((v) => [jsonTypeOf(v), v]))('rejects %s %j', (_t, value) => {
      expectInvalid(frameWith(type, key, value));
    });

    it.each(KIND_CASES[kind].valid.map(([input, output]) => [jsonTypeOf(input), input, output]))(
      'accepts %s %j',
      (_t, input, output) => {
        expect(parseClientMessage(frameWith(type, key, input))).toHaveProperty([key], output);
      },
    );
  });
});

describe('parseClientMessage: D4 user ids', () => {
  const uidFields = CLIENT_MESSAGE_TABLE.flatMap((row) =>
    Object.entries(row.fields)
      .filter(([, kind]) => kind === 'uid' || kind === 'uid?')
      .map(([key]) => [row.type, key] as const),
  );

  it('types every *user_id field as a user id (or, for chat, a numeric id)', () => {
    const userIdFields = CLIENT_MESSAGE_TABLE.flatMap((row) =>
      Object.entries(row.fields)
        .filter(([key]) => key.endsWith('user_id'))
        .map(([key, kind]) => [row.type, key, kind] as const),
    );
    expect(userIdFields.length).toBeGreaterThan(12);
    for (const [type, key, kind] of userIdFields) {
      const expected = type.startsWith('chat.') ? ['chat_id', 'chat_id?'] : ['uid', 'uid?'];
      expect({ type, key, ok: expected.includes(kind) }).toEqual({ type, key, ok: true });
    }
  });

  it.each(uidFields)('%s.%s accepts a string and an integer, always giving a string', (type, key) => {
    expect(parseClientMessage(frameWith(type, key, '12'))).toHaveProperty([key], '12');
    expect(parseClientMessage(frameWith(type, key, 12))).toHaveProperty([key], '12');
  });

  it('accepts the integer target_user_id BiggerDice sends for kick_spectator, mute and select_spectator', () => {
    for (const type of ['kick_spectator', 'mute_user', 'unmute_user', 'select_spectator']) {
      const msg = parseClientMessage(`{"type":"games.command.${type}","room_id":"r","target_user_id":7}`);
      expect(msg).toEqual({ type: `games.command.${type}`, room_id: 'r', target_user_id: '7' });
    }
  });
});

describe('parseClientMessage: chat checks of docs/protocol.md', () => {
  it.each([
    ['chat.command.send_message', 'recipient_id'],
    ['chat.command.typing', 'recipient_id'],
    ['chat.command.send_lobby_message', 'lobby_id'],
    ['chat.command.join_lobby', 'lobby_id'],
    ['chat.command.leave_lobby', 'lobby_id'],
    ['chat.command.mark_read', 'other_user_id'],
  ])('%s.%s must be a positive decimal id', (type, key) => {
    expect(parseClientMessage(frameWith(type, key, '42'))).toHaveProperty([key], 42);
    expect(parseClientMessage(frameWith(type, key, 42))).toHaveProperty([key], 42);
    for (const bad of ['', '0', 'abc', '4.2', '-4', '1234567890123456789', 0, -4, 4.2]) {
      expectInvalid(frameWith(type, key, bad));
    }
  });

  it.each(['chat.command.send_message', 'chat.command.send_lobby_message'])(
    '%s content must be 1–512 characters and not blank',
    (type) => {
      expect(parseClientMessage(frameWith(type, 'content', 'x'.repeat(512)))).toHaveProperty('content');
      for (const bad of ['', '   ', '\n', 'x'.repeat(513)]) expectInvalid(frameWith(type, 'content', bad));
    },
  );

  it('does not limit games chat content (parity)', () => {
    const msg = parseClientMessage(frameWith('games.command.send_chat', 'content', ''));
    expect(msg).toHaveProperty('content', '');
  });
});

describe('parseClientMessage: frames that are not messages', () => {
  it.each([
    ['bad JSON', '{"type":'],
    ['empty input', ''],
    ['a JSON string', '"system.heartbeat"'],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['JSON true', 'true'],
    ['an array', '[{"type":"system.heartbeat"}]'],
    ['no type', '{"room_id":"r"}'],
    ['a null type', '{"type":null}'],
    ['a numeric type', '{"type":1}'],
    ['an unknown type', '{"type":"games.command.get_room_state","room_name":"x"}'],
    ['a type of another case', '{"type":"System.Heartbeat"}'],
    ['a server message type', '{"type":"system.welcome"}'],
    ['a prototype name as type', '{"type":"constructor"}'],
    ['an unprefixed type', '{"type":"heartbeat"}'],
    ['a type only in __proto__', '{"__proto__":{"type":"system.heartbeat"}}'],
    ['absurd nesting', `${'['.repeat(200_000)}${']'.repeat(200_000)}`],
    ['a trailing comma', '{"type":"system.heartbeat",}'],
    ['two objects', '{"type":"system.heartbeat"}{"type":"system.heartbeat"}'],
  ])('rejects %s', (_name, raw) => {
    expectInvalid(raw);
  });

  it('says why in the cause, for logs', () => {
    expect(parseError('{"type":"games.command.leave_room"}').cause).toMatchObject({
      name: 'FieldError',
      field: 'room_id',
    });
    expect(parseError('{"type":"nope"}').cause).toBeInstanceOf(TypeError);
    expect(parseError('{').cause).toBeInstanceOf(SyntaxError);
  });
});

describe('parseClientMessage: correlation ids (D4)', () => {
  it('takes request_id when it is a string', () => {
    const msg = parseClientMessage(
      '{"type":"games.command.ready","room_id":"r","request_id":"q1","correlation_id":"c1"}',
    );
    expect(msg.correlation_id).toBe('q1');
  });

  it('falls back to correlation_id', () => {
    const msg = parseClientMessage(
      '{"type":"games.command.ready","room_id":"r","request_id":7,"correlation_id":"c1"}',
    );
    expect(msg.correlation_id).toBe('c1');
  });

  it('ignores non-string ids like any unknown field', () => {
    const msg = parseClientMessage(
      '{"type":"games.command.ready","room_id":"r","request_id":7,"correlation_id":{}}',
    );
    expect(msg).toEqual({ type: 'games.command.ready', room_id: 'r' });
  });
});

describe('the authentication gate', () => {
  it('lets exactly authenticate, heartbeat and sync_state through before authentication', () => {
    expect([...PRE_AUTH_TYPES]).toEqual(['system.authenticate', 'system.heartbeat', 'system.sync_state']);
    const open = CLIENT_MESSAGE_TYPES.filter((t) => !requiresAuthentication(t));
    expect(open).toEqual([...PRE_AUTH_TYPES]);
  });

  it('guards the local lobby commands too', () => {
    expect(requiresAuthentication('chat.command.join_lobby')).toBe(true);
    expect(requiresAuthentication('chat.command.leave_lobby')).toBe(true);
  });
});

describe('ClientMessage types', () => {
  it('narrows on type (checked by the type checker)', () => {
    const msg: ClientMessage = parseClientMessage(fixtures.get('games.command.create_room')!.raw);
    if (msg.type !== 'games.command.create_room') throw new Error('unexpected type');
    const created: ClientMessageOf<'games.command.create_room'> = msg;
    const roomName: string = created.room_name;
    const maxPlayers: number | undefined = created.max_players;
    expect([roomName, maxPlayers]).toEqual(['My Room', 4]);

    const move: ClientMessageOf<'games.command.tic_tac_toe.move'> = {
      type: 'games.command.tic_tac_toe.move',
      room_id: 'r',
      position: 4,
    };
    const wrong: ClientMessageOf<'games.command.kick_player'> = {
      type: 'games.command.kick_player',
      room_id: 'r',
      // @ts-expect-error target_user_id is validated to a string
      target_user_id: 1,
    };
    expect([move.position, wrong.room_id]).toEqual([4, 'r']);
  });
});
