import {
  compileFields,
  FIELD_KINDS,
  FieldError,
  type FieldKind,
  isOptionalKind,
  jsonTypeOf,
  numericId,
} from '../../../lib/protocol/fields';
import { KIND_CASES } from './kind-cases';

const validatorFor = (kind: FieldKind) => compileFields({ f: kind });

describe('compileFields', () => {
  describe.each(FIELD_KINDS)('kind %s', (kind) => {
    const validate = validatorFor(kind);

    it.each(KIND_CASES[kind].valid.map(([input, output]) => [jsonTypeOf(input), input, output]))(
      'accepts %s %j',
      (_t, input, output) => {
        expect(validate({ f: input })).toEqual({ f: output });
      },
    );

    it.each(KIND_CASES[kind].invalid.map((v) => [jsonTypeOf(v), v]))('rejects %s %j', (_t, input) => {
      expect(() => validate({ f: input })).toThrow(FieldError);
    });

    if (isOptionalKind(kind)) {
      it('leaves the key out when it is absent or null', () => {
        expect(validate({})).toEqual({});
        expect(validate({ f: null })).toEqual({});
        expect(Object.keys(validate({ f: null }))).toEqual([]);
      });
    } else {
      it('rejects a missing field', () => {
        expect(() => validate({})).toThrow(new FieldError('f', kind, 'nothing'));
      });
    }
  });

  it('ignores unknown fields and copies only the schema keys, in schema order', () => {
    const validate = compileFields({ b: 'str', a: 'u8', c: 'bool?' });
    const out = validate({ z: 1, a: 3, b: 'x', sender_id: 99 });
    expect(out).toEqual({ b: 'x', a: 3 });
    expect(Object.keys(out)).toEqual(['b', 'a']);
  });

  it('returns a fresh array for str[] so the output never aliases the input', () => {
    const input = ['a'];
    const out = compileFields({ ids: 'str[]' })({ ids: input });
    expect(out.ids).toEqual(['a']);
    expect(out.ids).not.toBe(input);
  });

  it('does not let Object.prototype satisfy a field', () => {
    const validate = compileFields({ toString: 'str', constructor: 'str?' });
    expect(() => validate({})).toThrow(FieldError);
    expect(validate({ toString: 'x' })).toEqual({ toString: 'x' });
  });

  it('names the field, the kind and the JSON type received, never the value', () => {
    const validate = compileFields({ token: 'str?' });
    let caught: unknown;
    try {
      validate({ token: 12345 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FieldError);
    expect(caught).toMatchObject({ field: 'token', expected: 'str?', received: 'integer' });
    expect(String(caught)).not.toContain('12345');
  });

  it('accepts an empty schema and any object', () => {
    expect(compileFields({})({ anything: [1, 2] })).toEqual({});
  });
});

describe('numericId', () => {
  it.each([
    ['1', 1],
    [1, 1],
    ['0042', 42],
    ['999999999999999', 999999999999999],
  ])('reads %j as %d', (input, output) => {
    expect(numericId(input)).toBe(output);
  });

  it.each([0, '0', -1, '-1', 1.5, '1.5', '', 'x', null, undefined, true, '12345678901234567890', 2 ** 53])(
    'refuses %j',
    (input) => {
      expect(numericId(input)).toBeUndefined();
    },
  );
});

describe('jsonTypeOf', () => {
  it.each([
    [undefined, 'nothing'],
    [null, 'null'],
    [[], 'array'],
    [1, 'integer'],
    [1.5, 'number'],
    ['', 'string'],
    [{}, 'object'],
    [true, 'boolean'],
  ])('names %j %s', (value, name) => {
    expect(jsonTypeOf(value)).toBe(name);
  });
});
