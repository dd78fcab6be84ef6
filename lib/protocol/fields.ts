/**
 * A tiny schema language for the fields of inbound client messages, compiled once into fast validators.
 *
 * The Rust gateway deserialised frames with serde, and clients depend on its strictness: a number where a
 * string is expected is a format error, `1.5` is not an integer, `null` or a missing key only satisfies
 * an `Option`. Unknown extra fields are ignored. This module reproduces those rules (plus the additive
 * docs/decisions.md D4 / chat-bridge kinds) without a schema library on the hot path: `compileFields` turns a field table
 * into a closure over a precomputed array, so validating a frame is one loop with no allocation besides
 * the output object.
 *
 * @example
 * const validate = compileFields({ room_id: 'str', position: 'u8' });
 * validate({ room_id: 'r1', position: 4, extra: true }); // => { room_id: 'r1', position: 4 }
 * validate({ room_id: 'r1', position: 256 });            // throws FieldError
 */

/**
 * The kinds a field can have. A trailing `?` means absent or `null` ⇒ the key is left out of the output.
 *
 * | kind        | accepts                                                     | output     |
 * |-------------|-------------------------------------------------------------|------------|
 * | `str`       | a JSON string                                               | `string`   |
 * | `str[]`     | an array of JSON strings                                    | `string[]` |
 * | `bool`      | `true` / `false`                                            | `boolean`  |
 * | `int`       | an integer (i64 on the wire, limited to JavaScript's exact range ±(2^53−1)) | `number` |
 * | `i32`       | an integer −2^31 … 2^31−1                                   | `number`   |
 * | `u8`        | an integer 0 … 255                                          | `number`   |
 * | `uid`       | a user id: a JSON string, or a JSON integer (docs/decisions.md D4)            | `string`   |
 * | `chat_id`   | a chat id: `^[0-9]{1,18}$` string or integer, ≥ 1 (docs/protocol.md) | `number` |
 * | `chat_text` | a string of 1–512 characters, not only whitespace (docs/protocol.md) | `string`   |
 */
export const FIELD_KINDS = [
  'str',
  'str?',
  'str[]',
  'bool',
  'bool?',
  'int',
  'int?',
  'i32',
  'i32?',
  'u8',
  'uid',
  'uid?',
  'chat_id',
  'chat_id?',
  'chat_text',
] as const;

/** One of {@link FIELD_KINDS}. */
export type FieldKind = (typeof FIELD_KINDS)[number];

/** A message's fields: name → kind. Key order is kept (payload builders copy it). */
export type FieldSchema = Readonly<Record<string, FieldKind>>;

/** The TypeScript type each kind validates to. */
export interface FieldKindValues {
  str: string;
  'str?': string;
  'str[]': string[];
  bool: boolean;
  'bool?': boolean;
  int: number;
  'int?': number;
  i32: number;
  'i32?': number;
  u8: number;
  uid: string;
  'uid?': string;
  chat_id: number;
  'chat_id?': number;
  chat_text: string;
}

/** Any value a validated field can hold. */
export type FieldValue = FieldKindValues[FieldKind];

type OptionalKind = Extract<FieldKind, `${string}?`>;

/** Flattens an intersection so editors show one object type. */
export type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The validated, typed value of a schema: required kinds are required keys, `?` kinds optional keys. */
export type Fields<S extends FieldSchema> = Simplify<
  { readonly [K in keyof S as S[K] extends OptionalKind ? never : K]: FieldKindValues[S[K]] } & {
    readonly [K in keyof S as S[K] extends OptionalKind ? K : never]?: FieldKindValues[S[K]];
  }
>;

/** A parsed JSON object, as the validators receive it. */
export type JsonRecord = Readonly<Record<string, unknown>>;

/** A compiled validator: returns the typed fields or throws {@link FieldError}. */
export type FieldValidator<S extends FieldSchema> = (obj: JsonRecord) => Fields<S>;

/**
 * Why a field was rejected. Used as the `cause` of the client's INVALID_FORMAT error, so it names the
 * field, the expected kind and the JSON type received — never the value, which may be a secret (token).
 */
export class FieldError extends Error {
  override readonly name = 'FieldError';
  constructor(
    readonly field: string,
    readonly expected: FieldKind,
    readonly received: string,
  ) {
    super(`field "${field}": expected ${expected}, got ${received}`);
  }
}

/** Maximum chat content length, in characters (Unicode code points); the `game_chat_config` default. */
export const CHAT_TEXT_MAX_CHARS = 512;

// Compiled once at module load; never constructed per call.
const CHAT_ID_PATTERN = /^[0-9]{1,18}$/;
const NON_WHITESPACE = /\S/;

/**
 * A positive numeric id as the chat backend needs it (an i64 it can take as a JSON integer): a JSON
 * integer ≥ 1, or a string of 1–18 decimal digits with a value ≥ 1. Values above 2^53−1 are refused
 * because they cannot be forwarded exactly as JSON numbers. Returns `undefined` when not such an id.
 */
export function numericId(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 1 ? value : undefined;
  if (typeof value !== 'string' || !CHAT_ID_PATTERN.test(value)) return undefined;
  const n = Number(value);
  return n >= 1 && n <= Number.MAX_SAFE_INTEGER ? n : undefined;
}

/** Counts code points only when UTF-16 length alone cannot decide (each code point is 1–2 units). */
function withinChars(s: string, max: number): boolean {
  if (s.length <= max) return true;
  if (s.length > max * 2) return false;
  let n = 0;
  for (const _ of s) if (++n > max) return false;
  return true;
}

const INVALID: unique symbol = Symbol('invalid');
type Converted = FieldValue | typeof INVALID;

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const str = (v: unknown): Converted => (typeof v === 'string' ? v : INVALID);
const bool = (v: unknown): Converted => (typeof v === 'boolean' ? v : INVALID);
// JSON.parse cannot tell `1.0` from `1`, so an integral float is accepted where serde refused it;
// the forwarded value is the same integer either way.
const int = (v: unknown): Converted => (typeof v === 'number' && Number.isSafeInteger(v) ? v : INVALID);
const i32 = (v: unknown): Converted => (isInt(v, -2147483648, 2147483647) ? v : INVALID);
const u8 = (v: unknown): Converted => (isInt(v, 0, 255) ? v : INVALID);
const uid = (v: unknown): Converted => {
  if (typeof v === 'string') return v;
  return typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : INVALID;
};
const strArray = (v: unknown): Converted => {
  if (!Array.isArray(v)) return INVALID;
  const out: string[] = [];
  for (const item of v) {
    if (typeof item !== 'string') return INVALID;
    out.push(item);
  }
  return out;
};
const chatId = (v: unknown): Converted => numericId(v) ?? INVALID;
const chatText = (v: unknown): Converted =>
  typeof v === 'string' && NON_WHITESPACE.test(v) && withinChars(v, CHAT_TEXT_MAX_CHARS) ? v : INVALID;

interface KindSpec {
  readonly optional: boolean;
  readonly convert: (value: unknown) => Converted;
}

const KINDS: Readonly<Record<FieldKind, KindSpec>> = {
  str: { optional: false, convert: str },
  'str?': { optional: true, convert: str },
  'str[]': { optional: false, convert: strArray },
  bool: { optional: false, convert: bool },
  'bool?': { optional: true, convert: bool },
  int: { optional: false, convert: int },
  'int?': { optional: true, convert: int },
  i32: { optional: false, convert: i32 },
  'i32?': { optional: true, convert: i32 },
  u8: { optional: false, convert: u8 },
  uid: { optional: false, convert: uid },
  'uid?': { optional: true, convert: uid },
  chat_id: { optional: false, convert: chatId },
  'chat_id?': { optional: true, convert: chatId },
  chat_text: { optional: false, convert: chatText },
};

/** Whether a kind may be absent or `null`. */
export const isOptionalKind = (kind: FieldKind): boolean => KINDS[kind].optional;

/** The JSON type name of a value, for error messages. */
export function jsonTypeOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * Compiles a field table into a validator. Call once per schema (at module load); the returned function
 * reads only the schema's own keys of `obj` and builds a fresh object, so client JSON is never spread
 * into anything downstream.
 */
export function compileFields<const S extends FieldSchema>(schema: S): FieldValidator<S> {
  const entries = Object.entries(schema).map(([key, kind]) => ({ key, kind, ...KINDS[kind] }));
  return (obj) => {
    const out: Record<string, FieldValue> = {};
    for (const { key, kind, optional, convert } of entries) {
      // Own keys only: a schema key must never be satisfied by Object.prototype.
      const raw = Object.hasOwn(obj, key) ? obj[key] : undefined;
      if (raw === undefined || (raw === null && optional)) {
        if (optional) continue;
        throw new FieldError(key, kind, 'nothing');
      }
      const value = convert(raw);
      if (value === INVALID) throw new FieldError(key, kind, jsonTypeOf(raw));
      out[key] = value;
    }
    // The loop above checked every key of S against its kind; this is where runtime meets type.
    return out as Fields<S>;
  };
}
