import {
  A,
  B,
  Board,
  Char,
  CONVERTED_EVENT_TYPES,
  convertEnvelope,
  Each,
  EVENT_CONVERSIONS,
  I,
  ID0,
  IDn,
  IDopt,
  IDs,
  IdList,
  IdsList,
  Obj,
  orElse,
  Pairs,
  S,
  splitCorrelationToken,
  Triples,
  Ts,
  U,
  UintsOrNull,
  V,
} from '../../../lib/events/convert';
import { toUtcTimestamp } from '../../../lib/events/parse';
import type { Envelope, Json, JsonObject } from '../../../lib/protocol/envelope';

const TS = '2026-01-10T12:00:01.123456789+00:00';

function envelope(eventType: string, payload: JsonObject, over: Partial<Envelope> = {}): Envelope {
  return {
    event_id: 'e1',
    event_type: eventType,
    timestamp: TS,
    correlation_id: null,
    producer: 'blazing_sun',
    actor: { user_id: '0', username: 'system', roles: [] },
    audience: { type: 'room', user_ids: [], room_id: 'r1', game_id: null },
    payload,
    ...over,
  };
}

const ENV = envelope('x', {});
/** Applies a reader to `{ k: value }` (or `{}` when value is undefined). */
const read = (
  r: (o: JsonObject, e: Envelope) => Json | undefined,
  value: Json | undefined,
): Json | undefined => r(value === undefined ? {} : { k: value }, ENV);

describe('value helpers of docs/events.md', () => {
  it.each<[Json | undefined, string]>([
    ['abc', 'abc'],
    ['', ''],
    [5, ''],
    [null, ''],
    [undefined, ''],
  ])('S reads %p as %p', (value, out) => {
    expect(read(S('k'), value)).toBe(out);
  });

  it('S falls back to the named default', () => {
    expect(read(S('k', 'waiting'), 3)).toBe('waiting');
  });

  it.each<[Json | undefined, string]>([
    [42, '42'],
    [-3, '-3'],
    ['42', '42'],
    ['007', '7'],
    ['+5', '5'],
    ['-0', '0'],
    ['9223372036854775807', '9223372036854775807'],
    ['9223372036854775808', '0'],
    ['abc', '0'],
    ['4a', '0'],
    [' 4', '0'],
    ['', '0'],
    [1.5, '0'],
    [true, '0'],
    [null, '0'],
    [undefined, '0'],
    [[4], '0'],
  ])('ID0 reads %p as %p (a non-numeric string id becomes "0")', (value, out) => {
    expect(read(ID0('k'), value)).toBe(out);
  });

  it.each<[Json | undefined, string]>([
    [42, '42'],
    ['abc', 'abc'],
    ['007', '007'],
    ['', ''],
    [1.5, ''],
    [false, ''],
    [null, ''],
    [undefined, ''],
  ])('IDs reads %p as %p', (value, out) => {
    expect(read(IDs('k'), value)).toBe(out);
  });

  it.each<[Json | undefined, string | null]>([
    [42, '42'],
    ['42', '42'],
    ['abc', null],
    [null, null],
    [undefined, null],
    [2.5, null],
  ])('IDn reads %p as %p', (value, out) => {
    expect(read(IDn('k'), value)).toBe(out);
  });

  it('B, I and U fall back on the wrong JSON type', () => {
    expect(read(B('k', true), 'false')).toBe(true);
    expect(read(B('k', true), false)).toBe(false);
    expect(read(I('k', 7), 3)).toBe(3);
    expect(read(I('k', 7), -3)).toBe(-3);
    expect(read(I('k', 7), 3.5)).toBe(7);
    expect(read(I('k', 7), '3')).toBe(7);
    expect(read(U('k', 0), -1)).toBe(0);
    expect(read(U('k', 0), 300)).toBe(300);
  });

  it('V keeps an explicit null and hands out a fresh default each time', () => {
    expect(read(V('k', {}), null)).toBeNull();
    expect(read(V('k', {}), 'raw')).toBe('raw');
    const a = read(V('k', { x: [] }), undefined);
    const b = read(V('k', { x: [] }), undefined);
    expect(a).toEqual({ x: [] });
    expect(a).not.toBe(b);
  });

  it('A keeps arrays only', () => {
    expect(read(A('k'), [1, 'a'])).toEqual([1, 'a']);
    expect(read(A('k'), 'x')).toEqual([]);
    expect(read(A('k'), undefined)).toEqual([]);
  });

  it('IDopt stringifies integers, keeps strings, and leaves the key out otherwise', () => {
    expect(read(IDopt('k'), 17)).toBe('17');
    expect(read(IDopt('k'), '/avatars/17.png')).toBe('/avatars/17.png');
    expect(read(IDopt('k'), '')).toBe('');
    expect(read(IDopt('k'), null)).toBeUndefined();
    expect(read(IDopt('k'), undefined)).toBeUndefined();
    expect(read(IDopt('k'), 1.5)).toBeUndefined();
  });

  it('Char takes the first character (a whole code point) or the default', () => {
    expect(read(Char('k', '?'), 'XO')).toBe('X');
    expect(read(Char('k', '?'), '😀x')).toBe('😀');
    expect(read(Char('k', '?'), '')).toBe('?');
    expect(read(Char('k', '?'), 1)).toBe('?');
  });

  it('Board maps cells to a first character or null, and defaults to nine nulls', () => {
    expect(read(Board('k'), ['X', null, 'Oh', 3, ''])).toEqual(['X', null, 'O', null, null]);
    expect(read(Board('k'), undefined)).toEqual(Array(9).fill(null));
  });

  it('IdList drops ids that do not parse; IdsList turns them into ""', () => {
    expect(read(IdList('k'), [4, '9', 'abc', null, 1.5])).toEqual(['4', '9']);
    expect(read(IdsList('k'), [4, 'abc', null])).toEqual(['4', 'abc', '']);
    expect(read(IdList('k'), 'x')).toEqual([]);
  });

  it('Pairs drops pairs whose id does not parse, and (strict) whose number does not', () => {
    const pairs: Json = [['abc', 5], [4, '6'], [9, 2], 'x', ['12'], [15, 1.5]];
    expect(read(Pairs('k', true), pairs)).toEqual([['9', 2]]);
    expect(read(Pairs('k', false), pairs)).toEqual([
      ['4', 0],
      ['9', 2],
      ['12', 0],
      ['15', 0],
    ]);
  });

  it('Triples needs a parsable id; name and score default', () => {
    expect(read(Triples('k'), [[4, 'John', 5], ['9', 3, 'x'], ['abc', 'Zed', 1], 'x'])).toEqual([
      ['4', 'John', 5],
      ['9', '', 0],
    ]);
  });

  it('UintsOrNull keeps non-negative integers, null without an array', () => {
    expect(read(UintsOrNull('k'), [0, 4, -1, 8.5, '2', 8])).toEqual([0, 4, 8]);
    expect(read(UintsOrNull('k'), null)).toBeNull();
  });

  it('orElse takes the first non-empty value', () => {
    const r = orElse(S('a'), S('b'));
    expect(r({ a: '', b: 'B' }, ENV)).toBe('B');
    expect(r({ a: 'A', b: 'B' }, ENV)).toBe('A');
    expect(r({}, ENV)).toBe('');
  });

  it('Obj and Each read non-objects as {} and non-arrays as []', () => {
    const shape = { id: ID0('user_id'), name: S('username') };
    expect(read(Obj('k', shape), null)).toEqual({ id: '0', name: '' });
    expect(read(Each('k', shape), [{ user_id: 4, username: 'John' }, 'junk'])).toEqual([
      { id: '4', name: 'John' },
      { id: '0', name: '' },
    ]);
    expect(read(Each('k', shape), { user_id: 4 })).toEqual([]);
  });

  it('lookups never reach Object.prototype', () => {
    expect(S('constructor')({}, ENV)).toBe('');
    expect(V('toString', 'd')({}, ENV)).toBe('d');
    expect(convertEnvelope(envelope('constructor', {}), 'games.events')).toBeNull();
    expect(convertEnvelope(envelope('__proto__', {}), 'games.events')).toBeNull();
    expect(convertEnvelope(envelope('toString', {}), 'games.events')).toBeNull();
  });
});

describe('timestamps', () => {
  it.each<[string, string | undefined, string | undefined]>([
    [
      '2026-01-23T18:29:59.713273689+00:00',
      '2026-01-23T18:29:59.713273689Z',
      '2026-01-23T18:29:59.713273689Z',
    ],
    ['2026-01-23T18:30:01.825333+00:00', '2026-01-23T18:30:01.825333Z', '2026-01-23T18:30:01.825333Z'],
    [
      '2026-01-23T18:30:03.674415120+00:00',
      '2026-01-23T18:30:03.674415120Z',
      '2026-01-23T18:30:03.674415120Z',
    ],
    ['2026-01-23T18:30:03.500000+00:00', '2026-01-23T18:30:03.500000Z', '2026-01-23T18:30:03.500Z'],
    ['2026-01-23T18:30:03.000+00:00', '2026-01-23T18:30:03.000Z', '2026-01-23T18:30:03Z'],
    [
      '2026-01-23T18:30:03.1234567891+00:00',
      '2026-01-23T18:30:03.1234567891Z',
      '2026-01-23T18:30:03.123456789Z',
    ],
    ['2026-01-23T18:30:03Z', '2026-01-23T18:30:03Z', '2026-01-23T18:30:03Z'],
    ['2026-01-23t18:30:03.5z', '2026-01-23T18:30:03.5Z', '2026-01-23T18:30:03.500Z'],
    ['2026-01-01T01:30:00.25+02:00', '2025-12-31T23:30:00.25Z', '2025-12-31T23:30:00.250Z'],
    ['2024-02-28T23:00:00-01:30', '2024-02-29T00:30:00Z', '2024-02-29T00:30:00Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '0001-01-01T00:00:00Z'],
    ['0000-01-01T00:30:00+01:00', undefined, undefined],
    ['2026-02-29T00:00:00Z', undefined, undefined],
    ['2026-01-10T24:00:00Z', undefined, undefined],
    ['2026-01-10T12:00:60Z', undefined, undefined],
    ['2026-01-10T12:00:00', undefined, undefined],
    ['2026-01-10T12:00:00+0000', undefined, undefined],
    ['2026-13-10T12:00:00Z', undefined, undefined],
    ['yesterday', undefined, undefined],
  ])('%s → keep %p, chrono %p', (input, keep, chrono) => {
    expect(toUtcTimestamp(input, 'keep')).toBe(keep);
    expect(toUtcTimestamp(input, 'chrono')).toBe(chrono);
  });

  it('Ts falls back to the envelope timestamp under the same rule', () => {
    expect(Ts('k', 'keep')({ k: 'not a time' }, ENV)).toBe('2026-01-10T12:00:01.123456789Z');
    expect(Ts('k', 'chrono')({}, envelope('x', {}, { timestamp: '2026-01-10T13:00:01.5+01:00' }))).toBe(
      '2026-01-10T12:00:01.500Z',
    );
  });
});

describe('splitCorrelationToken', () => {
  it.each<[Json | undefined, string, string]>([
    ['L0SM9cOFvHcCIhw=|9', 'L0SM9cOFvHcCIhw=', '9'],
    ['conn|lobby:1', 'conn', 'lobby:1'],
    ['a|b|9', 'a|b', '9'],
    ['|9', '', '9'],
    ['conn|', 'conn', ''],
    ['no-bar', '', ''],
    ['', '', ''],
    [null, '', ''],
    [undefined, '', ''],
  ])('splits %p at the last | into %p and %p', (token, connectionId, recipient) => {
    expect(splitCorrelationToken(token)).toEqual({ connectionId, recipient });
  });
});

describe('conversion table', () => {
  it('holds the 117 event types of docs/events.md plus the five D5 delivers', () => {
    expect(CONVERTED_EVENT_TYPES.size).toBe(122);
  });

  it.each([...CONVERTED_EVENT_TYPES])(
    '%s on an empty payload gives exactly its documented fields',
    (eventType) => {
      const conversion = EVENT_CONVERSIONS[eventType]!;
      const topic = conversion.topics?.[0] ?? 'games.events';
      const message = conversion.convert(envelope(eventType, {}));
      if (eventType === 'chat.event') {
        expect(message).toBeNull(); // no payload.type, nothing to dispatch on
        return;
      }
      expect(message).not.toBeNull();
      expect(conversion.outputs).toContain(message!.type);
      const documented = conversion.fields.map((f) => f.replace(/[?{[].*$/, ''));
      const required = conversion.fields
        .filter((f) => !/^[^{[]*\?/.test(f))
        .map((f) => f.replace(/[{[].*$/, ''));
      const keys = Object.keys(message!).filter((k) => k !== 'type');
      expect(keys.every((k) => documented.includes(k))).toBe(true);
      expect(required.every((k) => keys.includes(k))).toBe(true);
      expect(convertEnvelope(envelope(eventType, {}), topic)).toEqual(message);
    },
  );

  it.each<[string, JsonObject]>([
    [
      'games.event.room_created',
      {
        type: 'games.event.room_created',
        room_id: '',
        room_name: '',
        game_type: '',
        host_id: '0',
        host_name: '',
        is_password_protected: false,
        player_count: 2,
        allow_spectators: false,
      },
    ],
    ['games.event.error', { type: 'system.error', code: 'game_error', message: 'Unknown error' }],
    ['games.event.bigger_dice.room_state', { type: 'games.event.bigger_dice.room_state', room: {} }],
    [
      'games.event.game_started',
      { type: 'games.event.game_started', room_id: '', players: [], first_turn: '0', game_type: 'unknown' },
    ],
    [
      'games.event.not_in_room',
      {
        type: 'games.event.not_in_room',
        room_id: '',
        room_name: '',
        is_password_protected: false,
        status: 'waiting',
        allow_spectators: false,
      },
    ],
    [
      'games.event.room_removed',
      { type: 'games.event.room_removed', room_id: '', room_name: '', reason: 'host_left' },
    ],
    [
      'games.event.lobby_joined',
      {
        type: 'games.event.lobby_joined',
        room_id: '',
        player: { user_id: '', username: '', score: 0, is_ready: false },
      },
    ],
    [
      'games.event.bigger_dice.state',
      {
        type: 'games.event.bigger_dice.state',
        room_id: '',
        round_number: 1,
        current_rolls: [],
        pending_rollers: [],
        is_tiebreaker: false,
        round_history: [],
      },
    ],
    [
      'games.event.game_ended',
      {
        type: 'games.event.bigger_dice.game_over',
        room_id: '',
        winner: '0',
        winner_name: '',
        final_scores: [],
      },
    ],
    [
      'games.event.tic_tac_toe.moved',
      {
        type: 'games.event.tic_tac_toe.moved',
        room_id: '',
        player_id: '0',
        player_username: '',
        position: 0,
        mark: '?',
        board: Array(9).fill(null),
      },
    ],
    [
      'games.event.tic_tac_toe.game_result',
      {
        type: 'games.event.tic_tac_toe.game_result',
        room_id: '',
        winner_id: null,
        winner_username: null,
        winning_line: null,
        is_draw: false,
        scores: [],
        game_number: 1,
        next_first_player: '0',
      },
    ],
    [
      'games.event.chat_message',
      {
        type: 'games.event.chat_message',
        room_id: '',
        channel: 'lobby',
        user_id: '',
        username: '',
        content: '',
        is_system: false,
        timestamp: '',
      },
    ],
    [
      'games.event.spectator_joined',
      {
        type: 'games.event.spectator_joined',
        room_id: '',
        spectator_id: '',
        spectator_name: '',
        spectator_count: 0,
        user_id: '',
        username: '',
      },
    ],
    [
      'games.event.spectator_data_joined',
      { type: 'games.event.spectator_data_joined', room_id: '', spectator: null },
    ],
    [
      'games.event.player_disconnected',
      {
        type: 'games.event.player_disconnected',
        room_id: '',
        user_id: '0',
        username: '',
        timeout_at: '2026-01-10T12:00:01.123456789Z',
      },
    ],
  ])('%s falls back to the contract defaults', (eventType, expected) => {
    expect(convertEnvelope(envelope(eventType, {}), 'games.events')).toStrictEqual(expected);
  });

  it('keeps spectator_id/spectator_name when a payload already has them', () => {
    const msg = convertEnvelope(
      envelope('games.event.spectator_joined', {
        room_id: 'r',
        spectator_id: 15,
        spectator_name: 'Eve',
        spectator_count: 2,
      }),
      'games.events',
    );
    expect(msg).toEqual({
      type: 'games.event.spectator_joined',
      room_id: 'r',
      spectator_id: '15',
      spectator_name: 'Eve',
      spectator_count: 2,
      user_id: '15',
      username: 'Eve',
    });
  });

  it('reads room_list rooms defensively', () => {
    const msg = convertEnvelope(
      envelope('games.event.room_list', {
        rooms: [{ room_id: 'r', player_count: -1, rejoin_role: 5, players: 'x', host_id: 'abc' }, 'junk'],
      }),
      'games.events',
    );
    const room = {
      room_id: 'r',
      room_name: '',
      game_type: 'bigger_dice',
      host_id: '0',
      host_name: '',
      status: 'waiting',
      player_count: 0,
      spectator_count: 0,
      is_password_protected: false,
      players: [],
      lobby: [],
      max_players: 0,
      allow_spectators: false,
      can_rejoin: false,
      rejoin_role: null,
    };
    expect(msg).toStrictEqual({ type: 'games.event.room_list', rooms: [room, { ...room, room_id: '' }] });
  });

  it('never lets two messages share a default object', () => {
    const a = convertEnvelope(envelope('games.event.room_state', {}), 'games.events');
    const b = convertEnvelope(envelope('games.event.room_state', {}), 'games.events');
    expect(a!['room']).not.toBe(b!['room']);
  });
});

describe('chat.event dispatch', () => {
  const chat = (payload: JsonObject, topic = 'chat.events') =>
    convertEnvelope(envelope('chat.event', payload), topic);

  it('is bridged only on chat.events', () => {
    const payload = { type: 'typing_indicator', sender_id: 9, recipient_id: 4, is_typing: true };
    expect(chat(payload)).not.toBeNull();
    expect(chat(payload, 'games.events')).toBeNull();
  });

  it('drops unknown and missing payload types', () => {
    expect(chat({ type: 'message_deleted' })).toBeNull();
    expect(chat({ type: 'constructor' })).toBeNull();
    expect(chat({})).toBeNull();
    expect(chat({ type: 5 })).toBeNull();
  });

  it('treats a typing indicator without is_typing as typing', () => {
    expect(chat({ type: 'typing_indicator', sender_id: 9 })).toEqual({
      type: 'chat.event.typing',
      sender_id: '9',
      sender_name: '',
    });
  });

  it('turns an error without code into a generic system.error', () => {
    expect(chat({ type: 'error' })).toEqual({
      type: 'system.error',
      code: 'chat_error',
      message: 'Unknown error',
    });
  });

  it('falls back to the envelope timestamp for an unreadable created_at', () => {
    expect(chat({ type: 'message_received', message_id: 'm', created_at: 'soon' })).toMatchObject({
      sent_at: '2026-01-10T12:00:01.123456789Z',
    });
  });
});
