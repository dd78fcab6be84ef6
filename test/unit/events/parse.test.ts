import { DEFAULT_PRODUCER, parseEnvelope, parseEnvelopeValue } from '../../../lib/events/parse';
import type { Envelope } from '../../../lib/protocol/envelope';

/** The backend variant (docs/events.md), as published by the games handler. */
const backend = {
  event_id: '9b1d0c55-aaaa-4bbb-8ccc-000000000001',
  event_type: 'games.event.bigger_dice.turn_changed',
  timestamp: '2026-01-10T12:00:01.123456789+00:00',
  correlation_id: null,
  producer: 'blazing_sun',
  actor: { user_id: '0', username: 'system', socket_id: '', roles: [] },
  audience: { type: 'room', user_ids: [], room_id: '5d0c', game_id: null },
  payload: { type: 'turn_changed', room_id: '5d0c', current_turn: 7, turn_number: 3 },
};

/** The gateway variant (docs/events.md), as produced for a client command. */
const gateway = {
  event_id: '2f0c7d1e-4a8f-4a43-9a0e-3f2d6f1b2c77',
  event_type: 'games.command.join_room',
  timestamp: '2026-01-10T12:00:00.123456789Z',
  correlation_id: null,
  producer: 'ws_gateway',
  actor: { user_id: '4', username: 'John', roles: ['user'] },
  audience: { type: 'room', user_ids: [], room_id: null, game_id: null },
  payload: { room_name: 'My Room', password: 'x' },
};

function ok(value: unknown): Envelope {
  const r = parseEnvelopeValue(value);
  if (!r.ok) throw new Error(`rejected: ${r.reason}`);
  return r.envelope;
}

function reason(value: unknown): string {
  const r = parseEnvelopeValue(value);
  if (r.ok) throw new Error('accepted');
  return r.reason;
}

const withField = (base: Record<string, unknown>, key: string, value: unknown) => ({ ...base, [key]: value });
const without = (base: Record<string, unknown>, key: string) => {
  const { [key]: _gone, ...rest } = base;
  return rest;
};

describe('parseEnvelope', () => {
  it('accepts the backend variant', () => {
    expect(ok(backend)).toEqual({
      ...backend,
      actor: { user_id: '0', username: 'system', socket_id: '', roles: [] },
    });
  });

  it('accepts the gateway variant', () => {
    expect(ok(gateway)).toEqual(gateway);
  });

  it('reads a string, a Buffer, and tolerates a byte order mark', () => {
    const text = JSON.stringify(backend);
    expect(parseEnvelope(text).ok).toBe(true);
    expect(parseEnvelope(Buffer.from(text)).ok).toBe(true);
    expect(parseEnvelope(`\uFEFF${text}`).ok).toBe(true);
  });

  it.each<[string, string | Buffer | null]>([
    ['a tombstone', null],
    ['invalid JSON', '{"event_id":'],
    ['an empty value', ''],
    ['invalid UTF-8 that is not JSON', Buffer.from([0xff, 0xfe, 0x00])],
    ['a JSON array', '[]'],
    ['a JSON string', '"x"'],
    ['JSON null', 'null'],
  ])('rejects %s without throwing', (_what, value) => {
    const r = parseEnvelope(value);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).not.toBe('');
  });

  it('accepts any string event_id, and rejects a non-string one', () => {
    expect(ok(withField(backend, 'event_id', 'not-a-uuid')).event_id).toBe('not-a-uuid');
    expect(reason(withField(backend, 'event_id', 5))).toMatch(/event_id/);
    expect(reason(without(backend, 'event_id'))).toMatch(/event_id/);
  });

  it('requires a string event_type', () => {
    expect(reason(withField(backend, 'event_type', null))).toMatch(/event_type/);
  });

  it.each([
    '2026-01-10T12:00:01Z',
    '2026-01-10T12:00:01.5+00:00',
    '2026-01-10T14:00:01-02:00',
    '2026-01-10t12:00:01z',
  ])('accepts the RFC 3339 timestamp %s as written', (timestamp) => {
    expect(ok(withField(backend, 'timestamp', timestamp)).timestamp).toBe(timestamp);
  });

  it.each([['2026-01-10 12:00'], ['2026-01-10T12:00:01'], ['1736510401'], [1736510401], [null]])(
    'rejects the timestamp %p',
    (timestamp) => {
      expect(reason(withField(backend, 'timestamp', timestamp))).toMatch(/timestamp/);
    },
  );

  it('accepts any correlation_id string, null or absent, and rejects other types', () => {
    expect(ok(withField(backend, 'correlation_id', 'req-42')).correlation_id).toBe('req-42');
    expect(ok(without(backend, 'correlation_id')).correlation_id).toBeNull();
    expect(reason(withField(backend, 'correlation_id', 42))).toMatch(/correlation_id/);
  });

  it('defaults producer to blazing_sun', () => {
    expect(ok(without(backend, 'producer')).producer).toBe(DEFAULT_PRODUCER);
    expect(ok(withField(backend, 'producer', null)).producer).toBe('blazing_sun');
    expect(reason(withField(backend, 'producer', 1))).toMatch(/producer/);
  });

  it('reads actor.user_id as a string or an integer', () => {
    expect(ok(withField(backend, 'actor', { user_id: 4, username: 'John' })).actor).toEqual({
      user_id: '4',
      username: 'John',
      roles: [],
    });
    expect(reason(withField(backend, 'actor', { user_id: 4.5, username: 'x' }))).toMatch(/actor.user_id/);
    expect(reason(withField(backend, 'actor', { username: 'x' }))).toMatch(/actor.user_id/);
    expect(reason(withField(backend, 'actor', 'system'))).toMatch(/actor/);
  });

  it('defaults actor.username to "" and actor.roles to []', () => {
    expect(ok(withField(backend, 'actor', { user_id: '4', username: null })).actor).toEqual({
      user_id: '4',
      username: '',
      roles: [],
    });
    expect(reason(withField(backend, 'actor', { user_id: '4', username: 4 }))).toMatch(/username/);
    expect(reason(withField(backend, 'actor', { user_id: '4', roles: 'admin' }))).toMatch(/roles/);
    expect(reason(withField(backend, 'actor', { user_id: '4', roles: ['a', 1] }))).toMatch(/roles/);
  });

  it.each(['user', 'users', 'room', 'broadcast', 'spectators', 'players'])(
    'accepts the %s audience',
    (type) => {
      expect(ok(withField(backend, 'audience', { type })).audience).toEqual({
        type,
        user_ids: [],
        room_id: null,
        game_id: null,
      });
    },
  );

  it('rejects an unknown audience type or a missing audience', () => {
    expect(reason(withField(backend, 'audience', { type: 'everyone' }))).toMatch(/audience.type/);
    expect(reason(without(backend, 'audience'))).toMatch(/audience/);
  });

  it('reads integer user ids and room ids as strings', () => {
    expect(
      ok(withField(backend, 'audience', { type: 'users', user_ids: [4, '9'], room_id: 1, game_id: 'g' }))
        .audience,
    ).toEqual({
      type: 'users',
      user_ids: ['4', '9'],
      room_id: '1',
      game_id: 'g',
    });
    expect(reason(withField(backend, 'audience', { type: 'users', user_ids: [true] }))).toMatch(/user_ids/);
    expect(reason(withField(backend, 'audience', { type: 'users', user_ids: '4' }))).toMatch(/user_ids/);
    expect(reason(withField(backend, 'audience', { type: 'room', room_id: [] }))).toMatch(/room_id/);
  });

  it('reads a payload that is not an object as {}', () => {
    expect(ok(withField(backend, 'payload', [1, 2])).payload).toEqual({});
    expect(ok(withField(backend, 'payload', 'x')).payload).toEqual({});
    expect(ok(withField(backend, 'payload', null)).payload).toEqual({});
    expect(ok(without(backend, 'payload')).payload).toEqual({});
  });

  it('ignores unknown envelope fields', () => {
    expect(ok({ ...backend, trace: { id: 1 } })).not.toHaveProperty('trace');
  });

  it('keeps a __proto__ key of the payload as plain data', () => {
    const text = JSON.stringify(backend).replace(
      '"type":"turn_changed"',
      '"__proto__":{"polluted":true},"type":"turn_changed"',
    );
    const r = parseEnvelope(text);
    expect(r.ok).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});
