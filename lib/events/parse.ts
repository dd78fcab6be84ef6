/**
 * Lenient parsing of the Kafka event envelope (docs/decisions.md D5).
 *
 * Two producers write envelopes the gateway consumes: the gateway itself (UUIDs,
 * `Z` timestamps, string actor ids, `roles` always present) and the backend (docs/events.md; any string
 * event id, `+00:00` timestamps, `socket_id` in the actor, `users` audiences, ids that may be
 * integers). Both are accepted and normalised into one {@link Envelope}, so nothing past this module
 * has to care which producer wrote a message.
 *
 * The rule for "lenient": an optional field that is absent or `null` takes its default; a field that
 * is present with the wrong JSON type makes the envelope unreadable. The single exception is
 * `payload` (see {@link parseEnvelopeValue}).
 */

import type { Actor, Audience, AudienceType, Envelope, Json, JsonObject } from '../protocol/envelope';

/** The outcome of parsing one Kafka message value. Never an exception. */
export type ParseResult =
  | { readonly ok: true; readonly envelope: Envelope }
  | { readonly ok: false; readonly reason: string };

/** `producer` when the envelope leaves it out (the backend's serde default). */
export const DEFAULT_PRODUCER = 'blazing_sun';

const AUDIENCE_TYPES: ReadonlySet<string> = new Set<AudienceType>([
  'user',
  'users',
  'room',
  'broadcast',
  'spectators',
  'players',
]);

/** Own-property lookup: JSON objects can carry keys such as `constructor` or `__proto__`. */
export function field(obj: JsonObject, key: string): Json | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** True for a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/**
 * An integer id rendered as a decimal string, or `undefined` when `value` is not a JSON integer
 * that fits an i64 (what serde's `as_i64` accepts). BigInt keeps large ids out of exponent notation.
 */
export function integerToString(value: unknown): string | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value)) return undefined;
  const big = BigInt(value);
  return big >= I64_MIN && big <= I64_MAX ? big.toString() : undefined;
}

/**
 * A decimal string that Rust's `str::parse::<i64>` accepts (optional sign, digits, in range),
 * rendered canonically ("007" → "7", "+5" → "5"); otherwise `undefined`.
 */
export function numericStringToString(value: unknown): string | undefined {
  if (typeof value !== 'string' || !/^[+-]?\d+$/.test(value)) return undefined;
  const big = BigInt(value);
  return big >= I64_MIN && big <= I64_MAX ? big.toString() : undefined;
}

// ---------------------------------------------------------------------------------------------
// RFC 3339 timestamps
// ---------------------------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/** A timestamp split into its UTC calendar fields and the fraction digits as written. */
interface UtcInstant {
  /** Milliseconds since the epoch of the whole second (fraction excluded). */
  readonly wholeSecondMs: number;
  /** Fraction digits exactly as written (possibly empty). */
  readonly fraction: string;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
}

function parseRfc3339(ts: string): UtcInstant | undefined {
  const m = RFC3339.exec(ts);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offset = m[8] ?? 'Z';
  // Leap seconds (:60) are rejected: nothing on the platform produces them.
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (offset !== 'Z' && offset !== 'z') {
    const oh = Number(offset.slice(1, 3));
    const om = Number(offset.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (offset.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 onto 1900–1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return { wholeSecondMs: d.getTime() - offsetMinutes * 60_000, fraction: m[7] ?? '' };
}

/** True when `ts` is an RFC 3339 date-time with `Z` or a numeric offset. */
export function isRfc3339(ts: string): boolean {
  return parseRfc3339(ts) !== undefined;
}

/**
 * How the fraction of a second is written after conversion to UTC.
 * - `keep`: the digits as received (the chat bridge's `Z(ts)` rule).
 * - `chrono`: 0, 3, 6 or 9 digits, the fewest that are exact — what the Rust gateway's chrono
 *   `DateTime<Utc>` serialisation produced, which clients of the game events have always seen.
 */
export type FractionStyle = 'keep' | 'chrono';

function chronoFraction(digits: string): string {
  const nanos = Number(digits.slice(0, 9).padEnd(9, '0'));
  if (nanos === 0) return '';
  if (nanos % 1_000_000 === 0) return String(nanos / 1_000_000).padStart(3, '0');
  if (nanos % 1_000 === 0) return String(nanos / 1_000).padStart(6, '0');
  return String(nanos).padStart(9, '0');
}

/**
 * `ts` as an RFC 3339 UTC timestamp with a `Z` suffix, or `undefined` when it is not RFC 3339
 * (or falls outside years 0000–9999 once shifted to UTC).
 *
 * @example toUtcTimestamp('2026-01-23T18:29:59.713273689+00:00', 'keep') // '2026-01-23T18:29:59.713273689Z'
 */
export function toUtcTimestamp(ts: string, style: FractionStyle): string | undefined {
  const instant = parseRfc3339(ts);
  if (!instant) return undefined;
  const d = new Date(instant.wholeSecondMs);
  const year = d.getUTCFullYear();
  if (Number.isNaN(year) || year < 0 || year > 9999) return undefined;
  const fraction = style === 'keep' ? instant.fraction : chronoFraction(instant.fraction);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${pad(year, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `${fraction ? `.${fraction}` : ''}Z`
  );
}

// ---------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------

/** Thrown only inside this module and turned into `{ ok: false }`; never escapes. */
class Unreadable extends Error {
  override readonly name = 'Unreadable';
}

function fail(reason: string): never {
  throw new Unreadable(reason);
}

function optionalString(obj: JsonObject, key: string, where: string): string | undefined {
  const v = field(obj, key);
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : fail(`${where}${key} must be a string`);
}

/** A string, or an integer rendered as a string (ids the backend writes either way). */
function optionalId(obj: JsonObject, key: string, where: string): string | undefined {
  const v = field(obj, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  return integerToString(v) ?? fail(`${where}${key} must be a string or an integer`);
}

function parseActor(value: Json | undefined): Actor {
  if (!isJsonObject(value)) fail('actor must be an object');
  const userId = optionalId(value, 'user_id', 'actor.') ?? fail('actor.user_id is required');
  const rolesValue = field(value, 'roles');
  let roles: string[] = [];
  if (rolesValue !== undefined && rolesValue !== null) {
    if (!Array.isArray(rolesValue) || !rolesValue.every((r) => typeof r === 'string')) {
      fail('actor.roles must be an array of strings');
    }
    roles = rolesValue as string[];
  }
  const socketId = optionalString(value, 'socket_id', 'actor.');
  return {
    user_id: userId,
    username: optionalString(value, 'username', 'actor.') ?? '',
    roles,
    ...(socketId === undefined ? {} : { socket_id: socketId }),
  };
}

function parseAudience(value: Json | undefined): Audience {
  if (!isJsonObject(value)) fail('audience must be an object');
  const type = field(value, 'type');
  if (typeof type !== 'string' || !AUDIENCE_TYPES.has(type)) {
    fail(`audience.type must be one of ${[...AUDIENCE_TYPES].join('|')}`);
  }
  const idsValue = field(value, 'user_ids');
  let userIds: string[] = [];
  if (idsValue !== undefined && idsValue !== null) {
    if (!Array.isArray(idsValue)) fail('audience.user_ids must be an array');
    userIds = idsValue.map(
      (id) =>
        (typeof id === 'string' ? id : integerToString(id)) ??
        fail('audience.user_ids must hold strings or integers'),
    );
  }
  return {
    type: type as AudienceType,
    user_ids: userIds,
    room_id: optionalId(value, 'room_id', 'audience.') ?? null,
    game_id: optionalId(value, 'game_id', 'audience.') ?? null,
  };
}

/**
 * Validates an already-decoded JSON value as an envelope. Use {@link parseEnvelope} for raw
 * Kafka message values.
 *
 * `payload` may be any JSON value: a non-object (or absent) payload is read as `{}`, so every field
 * takes its default — exactly what the Rust gateway's field lookups did on such a payload. An event
 * is therefore never dropped for its payload alone; each conversion decides what its fields become.
 */
export function parseEnvelopeValue(value: unknown): ParseResult {
  try {
    if (!isJsonObject(value)) fail('envelope must be a JSON object');
    const eventId = field(value, 'event_id');
    if (typeof eventId !== 'string') fail('event_id must be a string');
    const eventType = field(value, 'event_type');
    if (typeof eventType !== 'string') fail('event_type must be a string');
    const timestamp = field(value, 'timestamp');
    if (typeof timestamp !== 'string' || !isRfc3339(timestamp)) {
      fail('timestamp must be an RFC 3339 date-time with Z or an offset');
    }
    const payload = field(value, 'payload');
    const envelope: Envelope = {
      event_id: eventId,
      event_type: eventType,
      timestamp,
      correlation_id: optionalString(value, 'correlation_id', '') ?? null,
      producer: optionalString(value, 'producer', '') ?? DEFAULT_PRODUCER,
      actor: parseActor(field(value, 'actor')),
      audience: parseAudience(field(value, 'audience')),
      payload: isJsonObject(payload) ? payload : {},
    };
    return { ok: true, envelope };
  } catch (err) {
    if (err instanceof Unreadable) return { ok: false, reason: err.message };
    // Anything else would be a bug in this module; it is still reported, never thrown, because a
    // consumer must skip an unreadable message rather than crash or retry it forever (docs/decisions.md D5).
    return { ok: false, reason: `unexpected parser failure: ${String(err)}` };
  }
}

/**
 * Parses a Kafka message value into an {@link Envelope}. Never throws: an unreadable message gives
 * `{ ok: false, reason }`, which the consumer logs and skips (docs/decisions.md D5).
 *
 * @param value the raw message value; `null` is a tombstone (no value).
 * @example
 * const r = parseEnvelope(message.value);
 * if (!r.ok) logger.warn('skipping unreadable event', { reason: r.reason });
 */
export function parseEnvelope(value: Buffer | string | null): ParseResult {
  if (value === null || value === undefined) return { ok: false, reason: 'message has no value' };
  let text: string;
  try {
    // A Buffer decodes in place; anything else array-like is copied into one first.
    text =
      typeof value === 'string'
        ? value
        : Buffer.isBuffer(value)
          ? value.toString('utf8')
          : Buffer.from(value).toString('utf8');
  } catch {
    return { ok: false, reason: 'message value is neither a string nor a buffer' };
  }
  let decoded: unknown;
  try {
    // A UTF-8 byte order mark is not JSON; tolerate one from hand-written producers.
    decoded = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return { ok: false, reason: 'message value is not valid JSON' };
  }
  return parseEnvelopeValue(decoded);
}
