import type { FieldKind, FieldValue } from '../../../lib/protocol/fields';

/**
 * For every field kind: JSON values it accepts (with the validated output) and values it must reject
 * with INVALID_FORMAT. Shared by the field tests and the per-message tests, so every field of every
 * client type is tried with every wrong JSON type for its kind.
 */
export interface KindCases {
  readonly valid: ReadonlyArray<readonly [input: unknown, output: FieldValue]>;
  readonly invalid: readonly unknown[];
}

const NOT_STRING = [1, 0, 1.5, true, false, [], ['a'], {}, { a: 'b' }];
const NOT_BOOL = ['true', 'false', 1, 0, [], {}];
const NOT_INT = ['1', 1.5, -0.5, true, [], {}, 2 ** 53, Number.MAX_VALUE];

const str: KindCases = {
  valid: [
    ['', ''],
    ['x', 'x'],
    ['9', '9'],
  ],
  invalid: NOT_STRING,
};
const bool: KindCases = {
  valid: [
    [true, true],
    [false, false],
  ],
  invalid: NOT_BOOL,
};
const int: KindCases = {
  valid: [
    [0, 0],
    [50, 50],
    [-5, -5],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ],
  invalid: NOT_INT,
};
const i32: KindCases = {
  valid: [
    [2, 2],
    [2 ** 31 - 1, 2 ** 31 - 1],
    [-(2 ** 31), -(2 ** 31)],
  ],
  invalid: [...NOT_INT, 2 ** 31, -(2 ** 31) - 1],
};
const uid: KindCases = {
  valid: [
    ['9', '9'],
    [9, '9'],
    ['abc', 'abc'],
    [-3, '-3'],
  ],
  invalid: [1.5, true, false, [], ['9'], {}, 2 ** 53],
};
const chatId: KindCases = {
  valid: [
    ['9', 9],
    [9, 9],
    ['007', 7],
    ['900719925474099', 900719925474099],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ],
  invalid: [
    0,
    -1,
    1.5,
    '',
    '0',
    '000',
    '-1',
    '+1',
    ' 1',
    '1 ',
    '1a',
    'abc',
    '1e3',
    '0x10',
    '1234567890123456789',
    '9007199254740993',
    2 ** 53,
    true,
    [],
    [9],
    {},
  ],
};

const withNull = (cases: KindCases): KindCases => ({ ...cases, invalid: [...cases.invalid, null] });

export const KIND_CASES: Readonly<Record<FieldKind, KindCases>> = {
  str: withNull(str),
  'str?': str,
  'str[]': withNull({
    valid: [
      [[], []],
      [
        ['a', 'b'],
        ['a', 'b'],
      ],
    ],
    invalid: ['a', 1, true, {}, [1], ['a', null], ['a', 2], [['a']]],
  }),
  bool: withNull(bool),
  'bool?': bool,
  int: withNull(int),
  'int?': int,
  i32: withNull(i32),
  'i32?': i32,
  u8: withNull({
    valid: [
      [0, 0],
      [4, 4],
      [255, 255],
    ],
    invalid: [...NOT_INT, -1, 256],
  }),
  uid: withNull(uid),
  'uid?': uid,
  chat_id: withNull(chatId),
  'chat_id?': chatId,
  chat_text: withNull({
    valid: [
      ['a', 'a'],
      [' hi ', ' hi '],
      ['a'.repeat(512), 'a'.repeat(512)],
      // 512 characters outside the BMP are 1024 UTF-16 units: the limit counts characters.
      ['😀'.repeat(512), '😀'.repeat(512)],
    ],
    invalid: [
      '',
      ' ',
      '\n\t ',
      '\u00a0\u2003',
      'a'.repeat(513),
      '😀'.repeat(513),
      'b'.repeat(5000),
      1,
      true,
      [],
      {},
    ],
  }),
};
