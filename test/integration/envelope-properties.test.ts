/**
 * Property-based tests (fast-check) of the event pipeline over hostile Kafka records, on a real Redis
 * and the production pusher against the stand-in Management API: random JSON, bytes, wrong types in
 * every field of real envelopes (the golden fixtures), deep nesting, huge strings, unknown event
 * types, `__proto__` / `constructor` keys, ids that try to leave the key space.
 *
 * The rule under test (docs/decisions.md D5, D9): a record never makes the pipeline throw while Redis
 * is up; it is either skipped (unparseable or undeliverable — counted) or delivered as documented;
 * a record that is not a known event pushes nothing; and Redis is consistent afterwards — every key
 * is under the gateway's prefix, room sets and each connection's reverse index agree, no
 * `Object.prototype` pollution.
 *
 * Runs are bounded (numRuns) and seeded: a failure prints its seed and path for `fc.assert` to replay.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { type Config, loadConfig } from '../../lib/config';
import { createPipeline, type ProcessRecord } from '../../lib/consumer/pipeline';
import { CONVERTED_EVENT_TYPES } from '../../lib/events/convert';
import { createLifecycleStores } from '../../lib/gateway/lifecycle';
import { silentLogger } from '../../lib/logger';
import { createMetrics, type Metrics } from '../../lib/metrics';
import type { JsonObject } from '../../lib/protocol/envelope';
import { type ClientPusher, createManagementApiPusher, MAX_PAYLOAD_BYTES } from '../../lib/push/pusher';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { loadEventFixtures } from '../support/fixtures';
import { type FakeManagementApi, startFakeManagementApi } from '../support/management-api';
import { connectAs } from '../support/store';

/** A database of its own, so that "every key is under the prefix" can be checked over all keys. */
const DB = 9;
const fixtures = loadEventFixtures();
const config: Config = loadConfig({ LOG_LEVEL: 'silent' });
const SEED = 0x8badf00d;

let redis: RedisClient;
let api: FakeManagementApi;
let pusher: ClientPusher;
let store: SessionStore;
let metrics: Metrics;
let processRecord: ProcessRecord;
const prefix = `it:props:${randomUUID()}:`;
let offset = 0;

/** Every user id an envelope of the fixtures addresses: each gets a live connection, so records route somewhere. */
const USERS = (() => {
  const ids = new Set<string>();
  for (const f of fixtures) {
    const a = f.envelope['audience'] as JsonObject | undefined;
    for (const id of (a?.['user_ids'] as unknown[] | undefined) ?? []) ids.add(String(id));
  }
  return [...ids].slice(0, 40);
})();

beforeAll(async () => {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set (the jest global setup exports it)');
  redis = createRedisClient({
    url: `${url.replace(/\/\d*$/, '')}/${DB}`,
    cluster: false,
    logger: silentLogger,
  });
  api = await startFakeManagementApi();
  pusher = createManagementApiPusher({
    endpoint: api.endpoint,
    region: 'us-east-1',
    logger: silentLogger,
    maxRetries: 0,
    timeoutMs: 5000,
  });
  store = createSessionStore({ redis, connectionTtlSecs: 3600, keyPrefix: prefix });
  metrics = createMetrics();
  processRecord = createPipeline({
    config,
    store,
    lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: prefix }),
    publisher: { publish: async () => {}, ping: async () => {}, disconnect: async () => {} },
    pusher,
    metrics,
    logger: silentLogger,
    pushConcurrency: 8,
    newId: randomUUID,
    now: () => new Date(),
  });
  for (const u of USERS) await connectAs(store, randomBytes(10).toString('base64'), u);
  await connectAs(store, randomBytes(10).toString('base64')); // an anonymous one: broadcasts reach it
});

afterAll(async () => {
  const keys = await allKeys();
  if (keys.length > 0) await redis.del(...keys.filter((k) => k.startsWith(prefix)));
  await pusher.close();
  await api.stop();
  await redis.quit();
});

async function allKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** Every key under the prefix; room sets and connection reverse indexes agree; nothing polluted. */
async function expectConsistent(): Promise<void> {
  const keys = await allKeys();
  expect(keys.filter((k) => !k.startsWith(prefix))).toEqual([]);
  const roomPrefix = `${prefix}room:sockets:`;
  const connPrefix = `${prefix}gw:conn:`;
  for (const key of keys.filter((k) => k.startsWith(roomPrefix))) {
    const roomId = key.slice(roomPrefix.length);
    expect(await redis.type(key)).toBe('set');
    for (const member of await redis.smembers(key))
      expect({
        roomId,
        member,
        indexed: await redis.hexists(`${connPrefix}${member}`, `r:${roomId}`),
      }).toEqual({
        roomId,
        member,
        indexed: 1,
      });
  }
  for (const key of keys.filter((k) => k.startsWith(connPrefix))) {
    const id = key.slice(connPrefix.length);
    for (const field of await redis.hkeys(key)) {
      if (!field.startsWith('r:')) continue;
      expect({ id, field, member: await redis.sismember(`${roomPrefix}${field.slice(2)}`, id) }).toEqual({
        id,
        field,
        member: 1,
      });
    }
  }
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
}

/** Runs one record; the pushes it made. Throws what the pipeline threw (the property fails). */
async function run(value: Buffer | string | null, topic = 'games.events') {
  const before = api.requests.length;
  const outcome = await processRecord({ topic, partition: 0, offset: String(offset++), value });
  return { outcome, pushes: api.requests.length - before, sent: api.requests.slice(before) };
}

/** The event type a record names, when it is JSON with a string event_type. */
function eventTypeOf(value: Buffer | string | null): string | undefined {
  try {
    const v = JSON.parse(String(value)) as unknown;
    const t = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)['event_type'] : undefined;
    return typeof t === 'string' ? t : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const fixture = fc.constantFrom(...fixtures);

/** A value of the wrong type (or the right one, sometimes) for any field. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, -1, 0, 1e308, -0, '', '0', '-5', '9223372036854775808', [], {}, true),
  fc.constantFrom('../../etc', '*', '{slot}', 'a\u0000b', '\ud800', '😀'.repeat(20), 'x:y:z', '__proto__'),
  fc.string({ maxLength: 40 }),
  fc.integer(),
);

/** Paths into an envelope that the parser and converters read. */
const PATHS = (() => {
  const paths = new Set<string>([
    'event_id',
    'event_type',
    'timestamp',
    'correlation_id',
    'producer',
    'actor',
    'actor.user_id',
    'actor.roles',
    'audience',
    'audience.type',
    'audience.user_ids',
    'audience.room_id',
    'audience.game_id',
    'payload',
  ]);
  const walk = (v: unknown, at: string, depth: number) => {
    if (depth > 3 || typeof v !== 'object' || v === null) return;
    for (const [k, x] of Object.entries(v)) {
      paths.add(`${at}.${k}`);
      walk(x, `${at}.${k}`, depth + 1);
    }
  };
  for (const f of fixtures) walk(f.envelope['payload'], 'payload', 1);
  return [...paths];
})();

function setPath(obj: JsonObject, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let at: unknown = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof at !== 'object' || at === null) return;
    at = (at as Record<string, unknown>)[p];
  }
  if (typeof at === 'object' && at !== null) (at as Record<string, unknown>)[parts.at(-1)!] = value;
}

/** A real envelope with a few fields replaced by values of any type. */
const mutatedEnvelope = fc
  .tuple(fixture, fc.array(fc.tuple(fc.constantFrom(...PATHS), anyValue), { minLength: 1, maxLength: 4 }))
  .map(([f, edits]) => {
    const env = structuredClone(f.envelope);
    for (const [p, v] of edits) setPath(env, p, v);
    return { topic: f.topic, value: JSON.stringify(env) };
  });

/** Raw JSON text spliced into a real envelope's payload (things an object literal cannot hold). */
const splicedEnvelope = (inner: fc.Arbitrary<string>) =>
  fc.tuple(fixture, inner).map(([f, text]) => ({
    topic: f.topic,
    value: JSON.stringify(f.envelope).replace('"payload":{', `"payload":{${text},`),
  }));

const deepNesting = fc
  .tuple(
    fc.integer({ min: 50, max: 20_000 }),
    fc.constantFrom('{"a":', '['),
    fc.constantFrom('room', 'extra', 'players', 'type'),
  )
  .map(([depth, open, key]) => `"${key}":${open.repeat(depth)}0${(open === '[' ? ']' : '}').repeat(depth)}`);

const hugeString = fc
  .tuple(
    fc.integer({ min: 70_000, max: 400_000 }),
    fc.constantFrom('room_id', 'content', 'username', 'message', 'extra'),
  )
  .map(([n, key]) => `"${key}":"${'x'.repeat(n)}"`);

const protoKeys = fc
  .constantFrom(
    '"__proto__":{"polluted":true}',
    '"constructor":{"prototype":{"polluted":true}}',
    '"room":{"__proto__":{"polluted":true},"room_id":"r"}',
    '"players":[{"__proto__":{"polluted":true}}]',
    '"type":"__proto__"',
  )
  .map((s) => s);

const unknownType = fc
  .tuple(
    fixture,
    fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('games.event.chess.room_state', 'constructor', '__proto__', 'toString', 'chat.event.'),
    ),
  )
  .map(([f, type]) => ({ topic: f.topic, value: JSON.stringify({ ...f.envelope, event_type: type }) }));

const params = (numRuns: number) => ({ numRuns, seed: SEED, endOnFailure: true });

describe('the event pipeline over hostile Kafka records', () => {
  afterAll(async () => {
    await expectConsistent();
  });

  it('never throws on random bytes, text or JSON, and pushes nothing for what is not a known event', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
          fc.string({ maxLength: 300 }),
          fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
          fc.constant(null),
        ),
        async (value) => {
          const { outcome, pushes } = await run(value);
          expect(['skipped', 'delivered']).toContain(outcome.status);
          const type = eventTypeOf(value);
          if (type === undefined || !CONVERTED_EVENT_TYPES.has(type)) expect(pushes).toBe(0);
        },
      ),
      params(400),
    );
    await expectConsistent();
  });

  it('skips or delivers a real envelope with fields of the wrong type, never throwing', async () => {
    let delivered = 0;
    await fc.assert(
      fc.asyncProperty(mutatedEnvelope, async ({ topic, value }) => {
        const { outcome, pushes } = await run(value, topic);
        expect(['skipped', 'delivered']).toContain(outcome.status);
        if (outcome.status === 'skipped') expect(pushes).toBe(0);
        else delivered++;
      }),
      params(400),
    );
    // Most mutations leave a readable envelope, or the property exercises only the parser.
    expect(delivered).toBeGreaterThan(100);
    await expectConsistent();
  });

  it('skips deep nesting that cannot be serialised, and sends or drops huge strings, never throwing', async () => {
    const skippedBefore = metrics.counter('ws_gateway_events_skipped_total', '').get({
      topic: 'games.events',
      reason: 'undeliverable',
    });
    let outcomes = 0;
    await fc.assert(
      fc.asyncProperty(splicedEnvelope(fc.oneof(deepNesting, hugeString)), async ({ topic, value }) => {
        const { outcome, sent } = await run(value, topic);
        outcomes++;
        expect(['skipped', 'delivered']).toContain(outcome.status);
        // API Gateway's limit: nothing over 128 KB is ever pushed.
        for (const r of sent)
          expect(Buffer.byteLength(JSON.stringify(r.body))).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
      }),
      params(60),
    );
    expect(outcomes).toBe(60);
    expect(
      metrics
        .counter('ws_gateway_events_skipped_total', '')
        .get({ topic: 'games.events', reason: 'undeliverable' }),
    ).toBeGreaterThanOrEqual(skippedBefore);
    await expectConsistent();
  });

  it('is not polluted by __proto__ / constructor keys anywhere in an envelope', async () => {
    await fc.assert(
      fc.asyncProperty(splicedEnvelope(protoKeys), async ({ topic, value }) => {
        const { outcome } = await run(value, topic);
        expect(['skipped', 'delivered']).toContain(outcome.status);
        expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      }),
      params(100),
    );
    await expectConsistent();
  });

  it('delivers nothing for unknown event types, counting them', async () => {
    await fc.assert(
      fc.asyncProperty(unknownType, async ({ topic, value }) => {
        const type = eventTypeOf(value)!;
        fc.pre(!CONVERTED_EVENT_TYPES.has(type));
        const { outcome, pushes } = await run(value, topic);
        expect(['skipped', 'delivered']).toContain(outcome.status);
        expect(pushes).toBe(0);
      }),
      params(150),
    );
    expect(
      metrics.counter('ws_gateway_events_dropped_total', '').get({ reason: 'unmapped' }),
    ).toBeGreaterThan(0);
    await expectConsistent();
  });
});
