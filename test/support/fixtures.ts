/**
 * Typed loader for the golden event fixtures in `test/fixtures/events/`.
 *
 * One file per case: a backend envelope exactly as it appears on Kafka, the topic it arrives on, and
 * the exact client message (or `null`) plus the delivery plan it must produce. Files are named after
 * the event type; `<event_type>@<variant>.json` adds further cases of the same type.
 */

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChatHints, MembershipOp, Target } from '../../lib/events/plan';
import type { JsonObject } from '../../lib/protocol/envelope';

export const FIXTURES_DIR = path.resolve(__dirname, '..', 'fixtures');
export const EVENT_FIXTURES_DIR = path.join(FIXTURES_DIR, 'events');

export interface EventFixture {
  /** File name without `.json`. */
  readonly name: string;
  readonly description: string;
  readonly topic: string;
  /** The envelope as on the wire (unparsed). */
  readonly envelope: JsonObject;
  /** The exact client message, or `null` when nothing is delivered. */
  readonly expected: JsonObject | null;
  readonly target: Target;
  /** Membership changes before the send (`[]` when the file has none). */
  readonly before: readonly MembershipOp[];
  /** Membership changes after the send (`[]` when the file has none). */
  readonly after: readonly MembershipOp[];
  readonly chat?: ChatHints;
}

/** What the contract coverage JSON holds (written by `scripts/extract-contract-catalogue.ts`). */
export interface ContractEventTypes {
  readonly conversionTable: readonly string[];
  readonly backendCatalogue: readonly string[];
  readonly chatEventPayloadTypes: readonly string[];
  readonly eventTypes: readonly string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape of a fixture file so a typo fails loudly, naming the file. */
function toFixture(name: string, raw: unknown): EventFixture {
  const bad = (what: string): never => {
    throw new Error(`fixture ${name}.json: ${what}`);
  };
  if (!isObject(raw)) return bad('not a JSON object');
  const { description, topic, envelope, expected, target, before = [], after = [], chat } = raw;
  if (typeof description !== 'string') bad('description must be a string');
  if (typeof topic !== 'string') bad('topic must be a string');
  if (!isObject(envelope) || typeof envelope['event_type'] !== 'string')
    bad('envelope must be an object with an event_type');
  if (expected !== null && !isObject(expected)) bad('expected must be an object or null');
  if (!isObject(target) || typeof target['kind'] !== 'string') bad('target must be an object with a kind');
  if (!Array.isArray(before) || !Array.isArray(after)) bad('before/after must be arrays');
  if (chat !== undefined && !isObject(chat)) bad('chat must be an object');
  const known = new Set([
    'description',
    'topic',
    'envelope',
    'expected',
    'target',
    'before',
    'after',
    'chat',
  ]);
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length > 0) bad(`unknown keys ${unknown.join(', ')}`);
  return {
    name,
    description: description as string,
    topic: topic as string,
    envelope: envelope as JsonObject,
    expected: expected as JsonObject | null,
    target: target as Target,
    before: before as MembershipOp[],
    after: after as MembershipOp[],
    ...(chat === undefined ? {} : { chat: chat as ChatHints }),
  };
}

/** Every golden event fixture, sorted by file name. */
export function loadEventFixtures(): EventFixture[] {
  return readdirSync(EVENT_FIXTURES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.json'.length);
      return toFixture(name, JSON.parse(readFileSync(path.join(EVENT_FIXTURES_DIR, f), 'utf8')) as unknown);
    });
}

/** The event types the contract names, as last extracted. */
export function loadContractEventTypes(): ContractEventTypes {
  return JSON.parse(
    readFileSync(path.join(FIXTURES_DIR, 'contract-event-types.json'), 'utf8'),
  ) as ContractEventTypes;
}

/** The event_type of a fixture's envelope. */
export function eventTypeOf(fixture: EventFixture): string {
  return fixture.envelope['event_type'] as string;
}

/** The `payload.type` of a fixture's envelope, if any. */
export function payloadTypeOf(fixture: EventFixture): string | undefined {
  const payload = fixture.envelope['payload'];
  return isObject(payload) && typeof payload['type'] === 'string' ? payload['type'] : undefined;
}
