import { ClientError } from '../../../lib/errors';
import { CLIENT_MESSAGE_TABLE, CLIENT_MESSAGE_TYPES, parseClientMessage } from '../../../lib/protocol/client';
import { loadClientMessageFixtures } from '../../fixtures/load-client-messages';
import { FIELD_NAMES, INTERESTING_VALUES as INTERESTING } from '../../support/hostile-frames';
import { seededRandom as prng } from '../../support/prng';

const SEED = Number(process.env.FUZZ_SEED ?? 20260123);
const ITERATIONS = 4000;

function generator(random: () => number) {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

  const value = (depth: number): unknown => {
    switch (depth > 3 ? int(2) : int(6)) {
      case 0:
        return pick(INTERESTING);
      case 1:
        return pick(['a', 'room', '5', String(int(1000)), randomText(int(8))]);
      case 2:
        return int(2) === 0 ? int(300) - 20 : random() * 1000;
      case 3:
        return Array.from({ length: int(4) }, () => value(depth + 1));
      case 4:
        return object(depth + 1);
      default:
        return pick([true, false, null]);
    }
  };

  const object = (depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = int(5); i > 0; i--) out[pick(FIELD_NAMES)] = value(depth);
    return out;
  };

  const randomText = (length: number): string => {
    const alphabet = '{}[]":,0123456789.-eE tnrufals\\\u00e9\u{1F600}abc';
    const chars = [...alphabet];
    return Array.from({ length }, () => pick(chars)).join('');
  };

  const fixtures = [...loadClientMessageFixtures().values()];

  /** A frame: random text, random JSON, a random message-like object, or a mutated valid example. */
  const frame = (): string => {
    switch (int(5)) {
      case 0:
        return randomText(int(40));
      case 1:
        return JSON.stringify(value(0)) ?? 'undefined';
      case 2:
        return JSON.stringify({ type: pick(CLIENT_MESSAGE_TYPES), ...object(0) });
      case 3: {
        const example = { ...pick(fixtures).frame } as Record<string, unknown>;
        const key = pick([...Object.keys(example), ...FIELD_NAMES]);
        if (int(3) === 0) delete example[key];
        else example[key] = value(1);
        return JSON.stringify(example);
      }
      default: {
        // Cut a valid frame anywhere: truncated input is common on a broken connection.
        const raw = pick(fixtures).raw;
        return raw.slice(0, int(raw.length + 1));
      }
    }
  };

  return { frame };
}

describe('parseClientMessage under fuzzing', () => {
  it(`only ever returns a known message or throws INVALID_FORMAT (seed ${SEED})`, () => {
    const { frame } = generator(prng(SEED));
    const allowedKeys = new Map(
      CLIENT_MESSAGE_TABLE.map((row) => [
        row.type,
        new Set(['type', 'correlation_id', ...Object.keys(row.fields)]),
      ]),
    );
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const raw = frame();
      try {
        const msg = parseClientMessage(raw);
        accepted++;
        const allowed = allowedKeys.get(msg.type);
        expect(allowed).toBeDefined();
        for (const key of Object.keys(msg)) {
          if (!allowed!.has(key))
            throw new Error(`unexpected key ${key} in ${JSON.stringify(msg)} from ${raw}`);
        }
      } catch (err) {
        if (!(err instanceof ClientError) || err.code !== 'INVALID_FORMAT') {
          throw new Error(`frame ${JSON.stringify(raw)} threw ${String(err)}`);
        }
        rejected++;
      }
    }
    // Both outcomes must actually be exercised, or the fuzzer is not testing anything.
    expect(accepted).toBeGreaterThan(ITERATIONS / 20);
    expect(rejected).toBeGreaterThan(ITERATIONS / 4);
  });
});
