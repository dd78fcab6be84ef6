import { CONVERTED_EVENT_TYPES } from '../../../lib/events/convert';
import { parseEnvelope, parseEnvelopeValue } from '../../../lib/events/parse';
import { planDelivery } from '../../../lib/events/plan';
import type { Json, JsonObject } from '../../../lib/protocol/envelope';
import { loadEventFixtures } from '../../support/fixtures';
import { seededRandom as rng } from '../../support/prng';

const fixtures = loadEventFixtures();
const TOPICS = ['games.events', 'chat.events', 'system.events', 'gateway.presence', ''];
const EVENT_TYPES = [
  ...CONVERTED_EVENT_TYPES,
  'games.event.chess.player_left',
  'games.event.x.room_state',
  '',
  'constructor',
];

/** Every key seen in a fixture payload (at any depth): the keys the converters read. */
const KEYS = (() => {
  const keys = new Set<string>(['__proto__', 'constructor', 'toString', 'type', 'socket_id']);
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        keys.add(k);
        walk(x);
      }
    }
  };
  for (const f of fixtures) walk(f.envelope['payload']);
  return [...keys];
})();
const STRINGS = [
  '',
  '0',
  '4',
  '-1',
  '007',
  '9223372036854775808',
  'abc',
  'X',
  '😀',
  'a|b|9',
  '|',
  'not_friends',
  'message_received',
  'lobby_message_received',
  'message_read',
  'typing_indicator',
  'error',
  '2026-01-10T12:00:01.123456789+00:00',
  '2026-02-30T00:00:00Z',
  '9999-12-31T23:59:59-23:59',
  '0000-01-01T00:00:00+23:59',
];
const NUMBERS = [0, 1, -1, 7, 2.5, -0, 1e21, Number.MAX_SAFE_INTEGER, 2 ** 63, -(2 ** 63), 255, 256];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function json(r: () => number, depth: number): Json {
  const roll = r();
  if (depth <= 0 || roll < 0.45) {
    const k = Math.floor(r() * 5);
    if (k === 0) return null;
    if (k === 1) return r() < 0.5;
    if (k === 2) return pick(r, NUMBERS);
    return pick(r, STRINGS);
  }
  if (roll < 0.7) return Array.from({ length: Math.floor(r() * 4) }, () => json(r, depth - 1));
  const o: JsonObject = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) o[pick(r, KEYS)] = json(r, depth - 1);
  return o;
}

function randomEnvelope(r: () => number): JsonObject {
  const base = structuredClone(pick(r, fixtures).envelope);
  base['event_type'] = r() < 0.7 ? pick(r, EVENT_TYPES) : (base['event_type'] as Json);
  base['payload'] = r() < 0.2 ? json(r, 3) : (json(r, 4) as Json);
  if (r() < 0.5) {
    const payload = base['payload'];
    if (typeof payload === 'object' && payload !== null && !Array.isArray(payload)) {
      payload['type'] = pick(r, STRINGS);
    }
  }
  // Corrupt some top-level and nested fields now and then.
  for (const key of ['event_id', 'timestamp', 'correlation_id', 'producer', 'actor', 'audience']) {
    if (r() < 0.08) base[key] = json(r, 2);
    if (r() < 0.03) delete base[key];
  }
  const audience = base['audience'];
  if (typeof audience === 'object' && audience !== null && !Array.isArray(audience) && r() < 0.4) {
    audience[pick(r, ['type', 'user_ids', 'room_id', 'game_id'])] = r() < 0.5 ? json(r, 2) : pick(r, STRINGS);
    if (r() < 0.3)
      audience['type'] = pick(r, ['user', 'users', 'room', 'players', 'spectators', 'broadcast']);
  }
  return base;
}

describe('fuzz', () => {
  it('parseEnvelope never throws on random bytes, text or JSON', () => {
    const r = rng(0xc0ffee);
    for (let i = 0; i < 3000; i++) {
      const kind = i % 3;
      const input =
        kind === 0
          ? Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)))
          : kind === 1
            ? JSON.stringify(json(r, 4))
            : JSON.stringify(randomEnvelope(r)).slice(0, Math.floor(r() * 400));
      const result = parseEnvelope(input);
      expect(typeof result.ok).toBe('boolean');
      if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
    }
  });

  it('parseEnvelopeValue never throws on values JSON cannot produce', () => {
    for (const v of [undefined, () => 1, Symbol('x'), 10n, new Date(), Object.create(null), new Map()]) {
      expect(() => parseEnvelopeValue(v)).not.toThrow();
    }
  });

  it('planDelivery never throws and yields a JSON message or null for random envelopes', () => {
    const r = rng(0x5eed);
    let planned = 0;
    for (let i = 0; i < 20000; i++) {
      const result = parseEnvelopeValue(randomEnvelope(r));
      if (!result.ok) continue;
      planned++;
      const plan = planDelivery(result.envelope, pick(r, TOPICS));
      if (plan.message !== null) {
        expect(typeof plan.message['type']).toBe('string');
        expect(() => JSON.stringify(plan.message)).not.toThrow();
      }
      expect(['users', 'room', 'spectators', 'lobby', 'broadcast', 'none']).toContain(plan.target.kind);
      for (const op of [...plan.before, ...plan.after]) {
        expect(typeof op.userId).toBe('string');
        expect(typeof op.roomId).toBe('string');
      }
    }
    // Many random envelopes must get past the parser, or the test exercises nothing.
    expect(planned).toBeGreaterThan(5000);
  });
});
