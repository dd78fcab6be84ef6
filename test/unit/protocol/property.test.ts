import fc from 'fast-check';
import { ClientError } from '../../../lib/errors';
import { CLIENT_MESSAGE_TABLE, parseClientMessage } from '../../../lib/protocol/client';
import { hostileFrame, KEY_ESCAPE_IDS } from '../../support/hostile-frames';

const SEED = Number(process.env.FUZZ_SEED ?? 20260123);
const RUNS = 1000;

const allowedKeys = new Map(
  CLIENT_MESSAGE_TABLE.map((row) => [
    row.type,
    new Set(['type', 'correlation_id', ...Object.keys(row.fields)]),
  ]),
);

/** Every object reachable from a parsed message has a plain prototype and only own, allowed data. */
function assertPlain(value: unknown, path: string): void {
  if (value === null || typeof value !== 'object') return;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null)
    throw new Error(`${path} has a foreign prototype`);
  for (const [k, v] of Object.entries(value)) assertPlain(v, `${path}.${k}`);
}

describe('parseClientMessage, property-based (fast-check)', () => {
  it(`returns a known message with only its own fields, or throws INVALID_FORMAT (seed ${SEED}, ${RUNS} runs)`, () => {
    const outcomes = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(hostileFrame({ maxHugeString: 20_000 }), (raw) => {
        let msg: ReturnType<typeof parseClientMessage>;
        try {
          msg = parseClientMessage(raw);
        } catch (err) {
          if (
            !(err instanceof ClientError) ||
            err.code !== 'INVALID_FORMAT' ||
            err.message !== 'Invalid message format'
          )
            throw new Error(`threw ${String(err)}`);
          outcomes.rejected++;
          return;
        }
        outcomes.accepted++;
        const allowed = allowedKeys.get(msg.type);
        expect(allowed).toBeDefined();
        for (const key of Object.keys(msg)) expect(allowed!.has(key)).toBe(true);
        assertPlain(msg, msg.type);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // Both outcomes must be exercised, or the generator tests nothing past the first check.
    expect(outcomes.accepted).toBeGreaterThan(RUNS / 20);
    expect(outcomes.rejected).toBeGreaterThan(RUNS / 4);
  });

  it('never takes a field from a __proto__ or constructor key', () => {
    for (const key of ['__proto__', 'constructor']) {
      const raw = `{"type":"system.authenticate","${key}":{"token":"t","user_id":"1","username":"x","polluted":1}}`;

      const msg = parseClientMessage(raw) as Record<string, unknown>;

      expect(msg).toEqual({ type: 'system.authenticate' });
      expect(Object.getPrototypeOf(msg)).toBe(Object.prototype);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });

  it('passes key-escaping ids through as opaque strings where the kind is a string, and rejects them where it is an id', () => {
    for (const id of KEY_ESCAPE_IDS) {
      expect(parseClientMessage(JSON.stringify({ type: 'games.command.leave_room', room_id: id }))).toEqual({
        type: 'games.command.leave_room',
        room_id: id,
      });
      expect(() =>
        parseClientMessage(JSON.stringify({ type: 'chat.command.join_lobby', lobby_id: id })),
      ).toThrow(ClientError);
    }
  });

  it('survives nesting 100,000 levels deep', () => {
    for (const raw of [
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      `{"type":"system.heartbeat","x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
    ]) {
      try {
        expect(parseClientMessage(raw).type).toBe('system.heartbeat');
      } catch (err) {
        expect(err).toBeInstanceOf(ClientError);
      }
    }
  });
});
