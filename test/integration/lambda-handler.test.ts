/**
 * The events function behind a Lambda Kafka event source (handlers/events.ts → processKafkaEvent →
 * the shared pipeline), invoked with MSK-shaped events: records grouped under "topic-partition"
 * keys, values base64. The handler builds its runtime from the environment as on AWS (real Redis,
 * Kafka publisher on the mock cluster); WS_MANAGEMENT_ENDPOINT points at a fake API Gateway that
 * records every push. Nothing is mocked at the module level.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { handler } from '../../handlers/events';
import type { KafkaSourceEvent, KafkaSourceRecord } from '../../lib/consumer/lambda';
import { silentLogger } from '../../lib/logger';
import type { Envelope } from '../../lib/protocol/envelope';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { getRuntime } from '../../lib/runtime/lambda';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { audience, gameEvent, gameRoom } from '../support/backend';
import { type FakeManagementApi, startFakeManagementApi } from '../support/management-api';
import { connectAs } from '../support/store';

const GAMES = 'games.events';
const prefix = `it:lambda:${randomUUID()}:`;

const newUserId = () => String(randomInt(1_000_000, 2 ** 47));
const newConnectionId = () => randomBytes(10).toString('base64');

let api: FakeManagementApi;
let redis: RedisClient;
/** The test's own view of the key space, as a second container would have. */
let store: SessionStore;
let nextOffset = 100;

/** A Lambda context good enough for middy. */
const context = { getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

beforeAll(async () => {
  api = await startFakeManagementApi();
  // The runtime reads its configuration from the environment on first use, as in a Lambda container.
  process.env.WS_MANAGEMENT_ENDPOINT = api.endpoint;
  process.env.REDIS_KEY_PREFIX = prefix;
  process.env.LOG_LEVEL = 'silent';
  // Lambda puts the function role's credentials in the environment.
  process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
  process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set (the jest global setup exports it)');
  redis = createRedisClient({ url, cluster: false, logger: silentLogger });
  store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: prefix });
});

afterAll(async () => {
  await getRuntime().close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  await api.stop();
});

afterEach(() => api.onRequest(undefined));

function connect(userId: string): Promise<string> {
  return connectAs(store, newConnectionId(), userId);
}

/** One MSK record: the value base64, as the event source delivers it; backend records have no key. */
function mskRecord(partition: number, value: Envelope | string | null): KafkaSourceRecord & object {
  const raw = value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);
  return {
    topic: GAMES,
    partition,
    offset: nextOffset++,
    timestamp: Date.now(),
    timestampType: 'CREATE_TIME',
    value: raw === null ? null : Buffer.from(raw).toString('base64'),
    headers: [],
  } as KafkaSourceRecord;
}

/** An MSK event: records grouped by "topic-partition". */
function mskEvent(partitions: Record<number, Array<Envelope | string | null>>): KafkaSourceEvent {
  const records: Record<string, KafkaSourceRecord[]> = {};
  for (const [p, values] of Object.entries(partitions))
    records[`${GAMES}-${p}`] = values.map((v) => mskRecord(Number(p), v));
  return {
    eventSource: 'aws:kafka',
    eventSourceArn: 'arn:aws:kafka:us-east-1:123456789012:cluster/demo/abcd',
    bootstrapServers: 'b-1.demo.kafka.us-east-1.amazonaws.com:9092',
    records,
  } as KafkaSourceEvent;
}

/** A user-targeted event that carries its partition and sequence number to the client. */
const numbered = (userId: string, partition: number, seq: number) =>
  gameEvent('turn_changed', audience.user(userId), {
    room_id: 'r',
    current_turn: partition,
    turn_number: seq,
  });

/** `[partition, seq]` of each numbered frame a connection received, in arrival order. */
const numbersAt = (connectionId: string) =>
  api
    .delivered(connectionId)
    .filter((b) => b['type'] === 'games.event.bigger_dice.turn_changed')
    .map((b) => [Number(b['current_turn']), b['turn_number']]);

describe('events function (Lambda Kafka event source)', () => {
  it('delivers every record of an MSK batch to its recipients and reports the count', async () => {
    const [alice, bob] = [newUserId(), newUserId()];
    const [a1, a2, b1] = [await connect(alice), await connect(alice), await connect(bob)];
    const roomId = randomUUID();

    const outcome = await handler(
      mskEvent({
        0: [
          gameEvent('room_state', audience.user(alice), {
            room: gameRoom(roomId, { players: [Number(alice)] }),
          }),
        ],
        2: [numbered(bob, 2, 1)],
      }),
      context,
    );

    expect(outcome).toEqual({ records: 2, skipped: 0 });
    expect(api.delivered(a1).map((b) => b['type'])).toEqual(['games.event.bigger_dice.room_state']);
    expect(api.delivered(a2).map((b) => b['type'])).toEqual(['games.event.bigger_dice.room_state']);
    expect(numbersAt(b1)).toEqual([[2, 1]]);
    expect((await store.roomConnections(roomId)).sort()).toEqual([a1, a2].sort());
  });

  it('skips poison records and delivers the records around them', async () => {
    const alice = newUserId();
    const a1 = await connect(alice);

    const outcome = await handler(
      mskEvent({
        1: [numbered(alice, 1, 1), 'this is not json', null, '{"event_type":7}', numbered(alice, 1, 2)],
      }),
      context,
    );

    expect(outcome).toEqual({ records: 5, skipped: 3 });
    expect(numbersAt(a1)).toEqual([
      [1, 1],
      [1, 2],
    ]);
  });

  it('skips a record that can never be delivered (nested 5,000 levels deep) instead of failing the batch for ever', async () => {
    const alice = newUserId();
    const a1 = await connect(alice);
    // Raw JSON as the backend would write it: it parses, and JSON.stringify cannot serialise it again.
    const poison = JSON.stringify(
      gameEvent('room_state', audience.user(alice), {
        room: { ...gameRoom(randomUUID(), { players: [Number(alice)] }), extra: '__deep__' },
      }),
    ).replace('"__deep__"', `${'{"n":'.repeat(5000)}0${'}'.repeat(5000)}`);

    const outcome = await handler(
      mskEvent({ 2: [numbered(alice, 2, 1), poison, numbered(alice, 2, 2)] }),
      context,
    );

    expect(outcome).toEqual({ records: 3, skipped: 1 });
    expect(numbersAt(a1)).toEqual([
      [2, 1],
      [2, 2],
    ]);
  });

  it('keeps the order of each partition while the partitions of a batch run side by side', async () => {
    const alice = newUserId();
    const a1 = await connect(alice);
    const seqs = [0, 1, 2, 3, 4];
    // Hold partition 0's first push until partition 1's last one arrived: a batch processed one
    // partition after the other would only get there by the timeout; records of a partition
    // processed side by side would overtake the held one.
    let released = false;
    let release!: () => void;
    const partition1Done = new Promise<void>((r) => {
      release = () => {
        released = true;
        r();
      };
    });
    api.onRequest(async ({ connectionId, body }) => {
      if (connectionId !== a1) return;
      const [partition, seq] = [Number(body['current_turn']), body['turn_number']];
      if (partition === 1 && seq === 4) release();
      if (partition === 0 && seq === 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([partition1Done, new Promise((r) => (timer = setTimeout(r, 5000)))]);
        clearTimeout(timer);
      }
    });

    const outcome = await handler(
      mskEvent({
        0: seqs.map((s) => numbered(alice, 0, s)),
        1: seqs.map((s) => numbered(alice, 1, s)),
      }),
      context,
    );

    expect(outcome).toEqual({ records: 10, skipped: 0 });
    expect(released).toBe(true);
    const got = numbersAt(a1);
    expect(got.filter(([p]) => p === 0).map(([, s]) => s)).toEqual(seqs);
    expect(got.filter(([p]) => p === 1).map(([, s]) => s)).toEqual(seqs);
  });

  it('removes a connection the Management API reports gone (410) from every key', async () => {
    const alice = newUserId();
    const [gone, a2] = [await connect(alice), await connect(alice)];
    const roomId = randomUUID();
    await handler(
      mskEvent({ 0: [gameEvent('room_state', audience.user(alice), { room: gameRoom(roomId) })] }),
      context,
    );
    api.respond(gone, 410);

    const outcome = await handler(
      mskEvent({
        3: [
          gameEvent('turn_changed', audience.room(roomId), {
            room_id: roomId,
            current_turn: 1,
            turn_number: 1,
          }),
        ],
      }),
      context,
    );

    expect(outcome).toEqual({ records: 1, skipped: 0 });
    expect(await store.roomConnections(roomId)).toEqual([a2]);
    expect(await store.connectionsOfUsers([alice])).toEqual([a2]);
    expect(await redis.keys(`${prefix}*${gone}*`)).toEqual([]);
    expect(await redis.sismember(`${prefix}gw:connections`, gone)).toBe(0);
  });
});
