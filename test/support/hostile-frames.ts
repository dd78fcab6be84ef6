/**
 * Hostile client frames for property-based tests (fast-check): random JSON, wrong types, huge
 * strings, deep nesting, odd unicode (lone surrogates as JSON escapes, BOM, RTL override, NUL),
 * `__proto__` / `constructor` keys and ids that try to escape a Redis key space. Shared by the
 * parser's unit properties and the end-to-end run through serverless-offline.
 */
import fc from 'fast-check';
import { CLIENT_MESSAGE_TABLE, CLIENT_MESSAGE_TYPES } from '../../lib/protocol/client';
import { loadClientMessageFixtures } from '../fixtures/load-client-messages';

/** Field names worth trying: every field of the table, correlation ids, and prototype names. */
export const FIELD_NAMES: readonly string[] = [
  ...new Set(CLIENT_MESSAGE_TABLE.flatMap((row) => Object.keys(row.fields))),
  'request_id',
  'correlation_id',
  '__proto__',
  'constructor',
  'prototype',
  'sender_id',
  'actor',
];

/** Values at the edges of the field kinds (docs/protocol.md "Field kinds"). */
export const INTERESTING_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  1.5,
  255,
  256,
  2 ** 31,
  2 ** 53,
  -0,
  1e308,
  '',
  ' ',
  '0',
  '9',
  '007',
  'x'.repeat(513),
  '😀',
  '\u0000',
  '1234567890123456789',
  [],
  ['a'],
  [1],
  {},
  { type: 'system.heartbeat' },
];

/**
 * Ids that would address another key if a key were built carelessly: separators, glob characters,
 * Cluster hash tags, the spectator pseudo-room prefix, CR/LF (inline-protocol injection), NUL.
 */
export const KEY_ESCAPE_IDS: readonly string[] = [
  'a:b',
  '*',
  '?',
  '[a-z]',
  '{x}',
  '{',
  '}{',
  'spectators:1',
  'gw:conn:x',
  '../../socket:1',
  '1\r\nFLUSHALL\r\n',
  '\n',
  '\u0000',
  ' ',
  '',
  'presence:online',
];

/** Strings with unusual code units. Lone surrogates travel as JSON escapes (`"\ud800"`). */
const oddUnicode = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom(
    '\ud800',
    '\udfff',
    'a\ud83dz',
    '\ufeff',
    '\u202e',
    '\u0000',
    '\u2028',
    'é',
    '😀'.repeat(300),
  ),
);

/** A string of `size` characters: around the frame limit when asked for. */
const hugeString = (maxLength: number) =>
  fc
    .integer({ min: 1_000, max: maxLength })
    .chain((n) => fc.constantFrom('x', 'é', '😀', '"').map((c) => c.repeat(n)));

export interface HostileFrameOptions {
  /** Longest huge string (characters); keep it near WS_MAX_MESSAGE_SIZE to cross it. */
  readonly maxHugeString?: number;
  /** Deepest nesting generated. */
  readonly maxDepth?: number;
}

const scalar = (opts: Required<HostileFrameOptions>) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...INTERESTING_VALUES) },
    { weight: 3, arbitrary: fc.constantFrom(...KEY_ESCAPE_IDS) },
    { weight: 2, arbitrary: oddUnicode },
    { weight: 2, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.double() },
    { weight: 1, arbitrary: hugeString(opts.maxHugeString) },
  );

/** `depth` levels of arrays or objects around `inner` (as text: faster than building objects). */
const nested = (depth: number, inner: string, asObject: boolean) =>
  asObject
    ? `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`
    : `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

/**
 * One client frame as text. Roughly half look like messages (a known `type` with fields of any
 * kind, or a valid fixture with one field changed) so validation is exercised past the first check.
 */
export function hostileFrame(options: HostileFrameOptions = {}): fc.Arbitrary<string> {
  const opts: Required<HostileFrameOptions> = { maxHugeString: 70_000, maxDepth: 5_000, ...options };
  const fixtures = [...loadClientMessageFixtures().values()];
  const value = fc.letrec<{ v: unknown }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalar(opts),
      fc.array(tie('v'), { maxLength: 4 }),
      fc.dictionary(fc.constantFrom(...FIELD_NAMES), tie('v'), { maxKeys: 4 }),
    ),
  })).v;
  const fields = fc.dictionary(fc.oneof(fc.constantFrom(...FIELD_NAMES), fc.string()), value, { maxKeys: 6 });
  const type = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...CLIENT_MESSAGE_TYPES) },
    { weight: 1, arbitrary: oddUnicode },
  );

  const messageLike = fc.tuple(type, fields).map(([t, f]) => JSON.stringify({ ...f, type: t }));
  const mutatedFixture = fc
    .tuple(fc.constantFrom(...fixtures), fc.constantFrom(...FIELD_NAMES), value, fc.boolean())
    .map(([fixture, key, v, remove]) => {
      const frame: Record<string, unknown> = { ...fixture.frame };
      if (remove) delete frame[key];
      else frame[key] = v;
      return JSON.stringify(frame);
    });
  // JSON.stringify drops a `__proto__` own key set through a literal; write it into the text instead.
  const protoKeys = fc
    .tuple(fc.constantFrom(...fixtures), fc.constantFrom('__proto__', 'constructor', 'prototype'), value)
    .map(
      ([fixture, key, v]) =>
        `${fixture.raw.slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(v) ?? 'null'}}`,
    );
  const deep = fc
    .tuple(fc.integer({ min: 1, max: opts.maxDepth }), fc.boolean(), fc.constantFrom(...fixtures))
    .map(
      ([depth, asObject, fixture]) =>
        `${fixture.raw.slice(0, -1)},"payload":${nested(depth, '1', asObject)}}`,
    );
  const deepBare = fc
    .tuple(fc.integer({ min: 1, max: opts.maxDepth }), fc.boolean())
    .map(([depth, asObject]) => nested(depth, '"x"', asObject));
  const truncated = fc
    .tuple(fc.constantFrom(...fixtures), fc.nat())
    .map(([fixture, cut]) => fixture.raw.slice(0, cut % (fixture.raw.length + 1)));
  const loneSurrogateEscapes = fc
    .tuple(fc.constantFrom(...fixtures), fc.constantFrom('\\ud800', '\\udfff', '\\udc00\\ud800', '\\u0000'))
    .map(([fixture, esc]) => fixture.raw.replace(/:"([^"]*)"/, `:"$1${esc}"`));

  return fc.oneof(
    { weight: 2, arbitrary: fc.json() },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
    { weight: 5, arbitrary: messageLike },
    { weight: 5, arbitrary: mutatedFixture },
    { weight: 2, arbitrary: protoKeys },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: deepBare },
    { weight: 2, arbitrary: truncated },
    { weight: 2, arbitrary: loneSurrogateEscapes },
  );
}
