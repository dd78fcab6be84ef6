/**
 * Records of one partition in flight together (lib/consumer/run.ts), through the real consumer and
 * pipeline: the Kafka mock cluster, a real Redis, and the production pusher against a fake
 * Management API that answers every push after a random delay, so pushes of consecutive records
 * finish out of order.
 *
 * What must still hold (the partition's contract): each connection gets the partition's events in
 * order, and every record's recipients reflect the membership changes of all the records before it
 * — joins and leaves that precede a send, and a room-audience leave applied after its send.
 */

import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { loadConfig } from '../../lib/config';
import { createPipeline } from '../../lib/consumer/pipeline';
import { runConsumer } from '../../lib/consumer/run';
import { createLifecycleStores } from '../../lib/gateway/lifecycle';
import { createKafka } from '../../lib/kafka/client';
import type { EventPublisher } from '../../lib/kafka/publisher';
import { silentLogger } from '../../lib/logger';
import { createMetrics } from '../../lib/metrics';
import type { Envelope, JsonObject } from '../../lib/protocol/envelope';
import { type ClientPusher, createManagementApiPusher } from '../../lib/push/pusher';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { audience, type FakeBackend, gameEvent, gameRoom, startBackend } from '../support/backend';
import { type FakeManagementApi, startFakeManagementApi } from '../support/management-api';
import { connectAs } from '../support/store';

jest.setTimeout(90_000);

const newUserId = () => String(randomInt(1_000_000, 2 ** 47));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const publisher: EventPublisher = {
  publish: async () => {},
  ping: async () => {},
  disconnect: async () => {},
};

let redis: RedisClient;
let store: SessionStore;
let api: FakeManagementApi;
let pusher: ClientPusher;
let backend: FakeBackend;
const prefix = `it:order:${randomUUID()}:`;

beforeAll(async () => {
  redis = createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
  store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: prefix });
  api = await startFakeManagementApi();
  pusher = createManagementApiPusher({ endpoint: api.endpoint, region: 'us-east-1', logger: silentLogger });
  backend = await startBackend();
});

afterAll(async () => {
  await backend?.stop();
  await pusher?.close();
  await api?.stop();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis?.quit();
});

function connect(userId: string): Promise<string> {
  return connectAs(store, randomBytes(10).toString('base64'), userId);
}

/** A frame as the assertions name it: its type without the game prefix, and the turn for turn_changed. */
function label(frame: JsonObject): string {
  const type = String(frame['type']).replace('games.event.bigger_dice.', '');
  return type === 'turn_changed' ? `turn ${frame['turn_number']}` : type;
}

it('keeps each connection in partition order, and each record sees the memberships of the records before it', async () => {
  const [alice, bob, carol] = [newUserId(), newUserId(), newUserId()];
  const conns = {
    alice: [await connect(alice), await connect(alice)],
    bob: [await connect(bob)],
    carol: [await connect(carol)],
  };
  const roomId = randomUUID();

  // The records, and what a strictly sequential consumer delivers to whom (a model of the contract).
  const records: Envelope[] = [];
  const expected = new Map<string, string[]>(
    Object.values(conns)
      .flat()
      .map((c) => [c, []]),
  );
  const inRoom = new Set<string>();
  const to = (users: Iterable<string>, what: string) => {
    for (const u of users) for (const c of conns[u as keyof typeof conns]) expected.get(c)!.push(what);
  };
  const userOf = { [alice]: 'alice', [bob]: 'bob', [carol]: 'carol' } as Record<string, string>;
  const join = (userId: string) => {
    records.push(
      gameEvent('room_state', audience.user(userId), { room: gameRoom(roomId, { players: [+userId] }) }),
    );
    inRoom.add(userOf[userId]!);
    to([userOf[userId]!], 'room_state');
  };
  join(alice);
  join(bob);
  for (let turn = 1; turn <= 30; turn++) {
    records.push(
      gameEvent('turn_changed', audience.room(roomId), {
        room_id: roomId,
        current_turn: +bob,
        turn_number: turn,
      }),
    );
    to(inRoom, `turn ${turn}`);
    // To a connection outside the room: free to overtake the room's events.
    if (turn % 3 === 0) {
      records.push(gameEvent('game_starting', audience.user(carol), { room_id: randomUUID(), players: [] }));
      to(['carol'], 'game_starting');
    }
    if (turn === 8 || turn === 22) {
      // Room audience: everyone still in the room gets it, alice leaves after the send.
      records.push(
        gameEvent('player_left', audience.room(roomId), {
          room_id: roomId,
          user_id: +alice,
          username: 'Alice',
        }),
      );
      to(inRoom, 'player_left');
      inRoom.delete('alice');
    }
    if (turn === 12 || turn === 25) join(alice);
    if (turn === 16) {
      // User audience: alice leaves before the send (and still gets it, as its addressee).
      records.push(gameEvent('player_kicked', audience.user(alice), { room_id: roomId, user_id: +alice }));
      inRoom.delete('alice');
      to(['alice'], 'player_kicked');
    }
  }
  const total = [...expected.values()].reduce((n, list) => n + list.length, 0);

  const topic = `it.order.${randomUUID()}`;
  await Promise.all(records.map((envelope) => backend.produce(topic, envelope, { partition: 0 })));

  // Every push is answered after 0–6 ms; records whose pushes are in flight at once are counted.
  const inFlight = new Map<string, number>();
  let mostRecordsInFlight = 0;
  api.onRequest(async ({ body }) => {
    const key = label(body);
    inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
    mostRecordsInFlight = Math.max(mostRecordsInFlight, inFlight.size);
    await sleep(randomInt(0, 7));
    const left = inFlight.get(key)! - 1;
    if (left === 0) inFlight.delete(key);
    else inFlight.set(key, left);
  });

  const config = loadConfig({
    KAFKA_BROKERS: process.env.KAFKA_BROKERS,
    KAFKA_CONSUMER_GROUP: `it-order-${randomUUID()}`,
    KAFKA_START_POSITION: 'earliest',
    LOG_LEVEL: 'silent',
  });
  const metrics = createMetrics();
  const processRecord = createPipeline({
    config,
    store,
    lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: prefix }),
    publisher,
    pusher,
    metrics,
    logger: silentLogger,
    pushConcurrency: 8,
    newId: randomUUID,
    now: () => new Date(),
  });
  const controller = new AbortController();
  const service = runConsumer({
    kafka: createKafka(config.kafka, silentLogger),
    config: config.kafka,
    processRecord,
    logger: silentLogger,
    metrics,
    signal: controller.signal,
    topics: [topic],
  });
  try {
    const deadline = Date.now() + 60_000;
    while (api.requests.length < total && Date.now() < deadline) await sleep(50);
    await sleep(200); // nothing more than expected arrives
  } finally {
    controller.abort();
    await service;
    api.onRequest(undefined);
  }

  for (const [connectionId, frames] of expected)
    expect({ connectionId, got: api.delivered(connectionId).map(label) }).toEqual({
      connectionId,
      got: frames,
    });
  expect(api.requests).toHaveLength(total);
  expect((await store.roomConnections(roomId)).sort()).toEqual([...conns.alice, ...conns.bob].sort());
  // Records did overlap: otherwise this test would prove nothing about running them together.
  expect(mostRecordsInFlight).toBeGreaterThan(1);
});
