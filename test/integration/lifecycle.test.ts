/**
 * Connections that come and go (docs/decisions.md D10) through the real adapters: the Redis session
 * and lifecycle stores, the kafkajs publisher on the mock cluster (every record read back), the
 * delivery pipeline pushing to the Management API stand-in. `$disconnect` is `cleanupConnection`,
 * a frame is `handleMessage`; the grace is 1 s and due departures are completed by calling
 * `completeDueDepartures` as the consumer's loop does.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTokenVerifier } from '../../lib/auth/verifier';
import { type Config, loadConfig } from '../../lib/config';
import { createPipeline, type ProcessRecord } from '../../lib/consumer/pipeline';
import { cleanupConnection } from '../../lib/gateway/cleanup';
import type { GatewayDeps } from '../../lib/gateway/deps';
import { completeDueDepartures, createLifecycleStores } from '../../lib/gateway/lifecycle';
import { handleMessage } from '../../lib/gateway/message';
import { type SweeperDeps, sweep } from '../../lib/gateway/sweeper';
import { createKafka } from '../../lib/kafka/client';
import { createKafkaPublisher, type EventPublisher } from '../../lib/kafka/publisher';
import { createLogger } from '../../lib/logger';
import { createMetrics } from '../../lib/metrics';
import type { Envelope } from '../../lib/protocol/envelope';
import { createConnectionProbe } from '../../lib/push/connections';
import { type ClientPusher, createManagementApiPusher } from '../../lib/push/pusher';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createLivenessStore } from '../../lib/store/liveness';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { audience, backendTimestamp, gameEvent, gameRoom } from '../support/backend';
import { type KafkaReader, type KafkaRecord, startKafkaReader } from '../support/kafka';
import { type FakeManagementApi, startFakeManagementApi } from '../support/management-api';

jest.setTimeout(30_000);

const GRACE_SECS = 1;
const TOPICS = ['games.commands', 'gateway.presence', 'system.events'];
const prefix = `it:lifecycle:${randomUUID()}:`;
const logger = createLogger({ level: process.env.TEST_VERBOSE === '1' ? 'debug' : 'silent' });

const newUserId = () => String(randomInt(1_000_000, 2 ** 47));
const newConnectionId = () => randomBytes(10).toString('base64');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function testConfig(extra: Record<string, string> = {}): Config {
  return loadConfig({
    REDIS_URL: process.env.REDIS_URL,
    KAFKA_BROKERS: process.env.KAFKA_BROKERS,
    REDIS_KEY_PREFIX: prefix,
    AUTH_ALLOW_UNVERIFIED: 'true',
    DISCONNECT_GRACE_SECS: String(GRACE_SECS),
    LOG_LEVEL: 'silent',
    ...extra,
  });
}

interface Harness {
  readonly deps: GatewayDeps;
  readonly store: SessionStore;
  readonly redis: RedisClient;
  readonly processRecord: ProcessRecord;
}

const redisClients: RedisClient[] = [];
const publishers: EventPublisher[] = [];
const pushers: ClientPusher[] = [];
let api: FakeManagementApi;
let kafka: KafkaReader;
let main: Harness;

/** A container's worth of dependencies: its own Redis client and Kafka producer, like one Lambda. */
function harness(config: Config = testConfig()): Harness {
  const redis = createRedisClient({ url: config.redis.url, cluster: false, logger });
  redisClients.push(redis);
  const store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: prefix });
  const publisher = createKafkaPublisher({ kafka: createKafka(config.kafka, logger) });
  publishers.push(publisher);
  const pusher = createManagementApiPusher({ endpoint: api.endpoint, region: 'us-east-1', logger });
  pushers.push(pusher);
  const deps: GatewayDeps = {
    config,
    store,
    lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: prefix }),
    publisher,
    verifier: createTokenVerifier({}),
    pusherFor: () => pusher,
    closerFor: () => ({ close: async () => 'closed' as const }),
    welcome: { trigger: async () => {} },
    logger,
    metrics: createMetrics(),
    newId: randomUUID,
    now: () => new Date(),
  };
  const processRecord = createPipeline({ ...deps, pusher, pushConcurrency: 8 });
  return { deps, store, redis, processRecord };
}

beforeAll(async () => {
  api = await startFakeManagementApi();
  kafka = await startKafkaReader({ topics: TOPICS });
  main = harness();
  await main.deps.publisher.ping();
}, 30_000);

afterAll(async () => {
  await kafka?.stop();
  await Promise.allSettled([...publishers.map((p) => p.disconnect()), ...pushers.map((p) => p.close())]);
  const redis = redisClients[0];
  if (redis) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await Promise.allSettled(redisClients.map((r) => r.quit()));
  await api?.stop();
});

/** `$connect` then `system.authenticate`; returns the connection id. */
async function connect(h: Harness, userId: string): Promise<string> {
  const connectionId = newConnectionId();
  await h.store.registerConnection(connectionId, { connectedAt: new Date(), bound: null });
  const reply = await handleMessage(h.deps, {
    connectionId,
    body: JSON.stringify({ type: 'system.authenticate', user_id: userId, username: `user${userId}` }),
    endpoint: api.endpoint,
  });
  expect(JSON.parse(reply ?? 'null')).toMatchObject({ type: 'system.authenticated', user_id: userId });
  return connectionId;
}

const disconnect = (h: Harness, connectionId: string) =>
  cleanupConnection(h.deps, connectionId, 'disconnect');

let offset = 0;
function deliver(h: Harness, envelope: Envelope) {
  return h.processRecord({
    topic: 'games.events',
    partition: 0,
    offset: String(offset++),
    value: JSON.stringify(envelope),
  });
}

/** `room_state` to the user: the backend's join (the user's connections join the room). */
const joined = (userId: string, roomId: string, at?: Date) =>
  withTime(
    gameEvent('room_state', audience.user(userId), { room: gameRoom(roomId, { players: [Number(userId)] }) }),
    at,
  );

/** A room-audience leave event for the user, as the backend sends a kick. */
const kicked = (userId: string, roomId: string, at?: Date) =>
  withTime(
    gameEvent('player_kicked', audience.room(roomId), { room_id: roomId, user_id: Number(userId) }),
    at,
  );

const withTime = (env: Envelope, at?: Date): Envelope =>
  at ? { ...env, timestamp: backendTimestamp(at) } : env;

/** A room event for everyone in the room; returns its turn number to find it in the pushes. */
async function roomEvent(h: Harness, roomId: string): Promise<number> {
  const turn = randomInt(1, 1_000_000);
  await deliver(
    h,
    gameEvent('turn_changed', audience.room(roomId), { room_id: roomId, current_turn: 1, turn_number: turn }),
  );
  return turn;
}

const gotTurn = (connectionId: string, turn: number) =>
  api.delivered(connectionId).some((f) => f['turn_number'] === turn);

const playerDisconnected = (userId: string, roomId: string) => (r: KafkaRecord) =>
  r.value?.event_type === 'games.command.player_disconnected' &&
  r.key === roomId &&
  r.value.actor.user_id === userId;
const presence = (kind: 'online' | 'offline', userId: string) => (r: KafkaRecord) =>
  r.value?.event_type === `presence.event.user_${kind}` && r.key === userId;

/** Lets the grace pass, completes what is due, and waits until Kafka has everything acknowledged before. */
async function afterGrace(h: Harness = main): Promise<void> {
  await sleep(GRACE_SECS * 1000 + 300);
  await completeDueDepartures(h.deps);
  await Promise.all(TOPICS.map((t) => kafka.barrier(t)));
}

describe('per-room departure and the grace', () => {
  it('closing one of two tabs in a room publishes no player_disconnected; closing both publishes one, after the grace', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const [tab1, tab2] = [await connect(main, userId), await connect(main, userId)];
    await deliver(main, joined(userId, roomId));

    await disconnect(main, tab1);
    await afterGrace();

    expect(kafka.matching(playerDisconnected(userId, roomId))).toEqual([]);
    expect(kafka.matching(presence('offline', userId))).toEqual([]);

    await disconnect(main, tab2);
    await Promise.all(TOPICS.map((t) => kafka.barrier(t)));
    // Not before the grace…
    expect(kafka.matching(playerDisconnected(userId, roomId))).toEqual([]);
    expect(kafka.matching(presence('offline', userId))).toEqual([]);
    // …but after it, once each.
    await afterGrace();
    expect(kafka.matching(playerDisconnected(userId, roomId))).toHaveLength(1);
    expect(kafka.matching(presence('offline', userId))).toHaveLength(1);
    // user_disconnected stays immediate and per connection.
    const disconnected = kafka.matching(
      (r) => r.value?.event_type === 'system.event.user_disconnected' && r.key === userId,
    );
    expect(disconnected.map((r) => r.value.payload.connection_id).sort()).toEqual([tab1, tab2].sort());
  });

  it('a reload within the grace publishes neither user_offline, player_disconnected nor a second user_online', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const before = await connect(main, userId);
    await deliver(main, joined(userId, roomId));
    await kafka.waitFor(presence('online', userId));

    await disconnect(main, before);
    const after = await connect(main, userId);
    await afterGrace();

    expect(kafka.matching(playerDisconnected(userId, roomId))).toEqual([]);
    expect(kafka.matching(presence('offline', userId))).toEqual([]);
    expect(kafka.matching(presence('online', userId))).toHaveLength(1);
    expect(await main.store.roomConnections(roomId)).toEqual([after]);
  });

  it('publishes player_disconnected for a room the user is no longer in on any tab, but not user_offline', async () => {
    const userId = newUserId();
    const [roomA, roomB] = [randomUUID(), randomUUID()];
    const inA = await connect(main, userId);
    await deliver(main, joined(userId, roomA));
    const lobbyTab = await connect(main, userId);

    await disconnect(main, inA);
    await afterGrace();

    expect(kafka.matching(playerDisconnected(userId, roomA))).toHaveLength(1);
    expect(kafka.matching(playerDisconnected(userId, roomB))).toEqual([]);
    expect(kafka.matching(presence('offline', userId))).toEqual([]);
    expect(await main.store.connectionsOfUsers([userId])).toEqual([lobbyTab]);
  });

  it('with no grace (DISCONNECT_GRACE_SECS=0) publishes the departure with the cleanup', async () => {
    const h = harness(testConfig({ DISCONNECT_GRACE_SECS: '0' }));
    const userId = newUserId();
    const roomId = randomUUID();
    const c = await connect(h, userId);
    await deliver(h, joined(userId, roomId));

    await disconnect(h, c);

    await kafka.waitFor(playerDisconnected(userId, roomId));
    await kafka.waitFor(presence('offline', userId));
    expect(await h.deps.lifecycle.departures.claimDue(1000)).toEqual([]);
  });
});

describe('completing due departures', () => {
  it('two instances completing the same due departures publish each one once', async () => {
    const other = harness();
    const users = Array.from({ length: 20 }, newUserId);
    const roomId = randomUUID();
    const conns = await Promise.all(users.map((u) => connect(main, u)));
    for (const u of users) await deliver(main, joined(u, roomId));
    await Promise.all(conns.map((c) => disconnect(main, c)));
    await sleep(GRACE_SECS * 1000 + 300);

    const outcomes = await Promise.all([
      completeDueDepartures(main.deps),
      completeDueDepartures(other.deps),
      completeDueDepartures(main.deps),
      completeDueDepartures(other.deps),
    ]);
    await Promise.all(TOPICS.map((t) => kafka.barrier(t)));

    expect(outcomes.reduce((n, o) => n + o.published, 0)).toBe(users.length * 2);
    for (const u of users) {
      expect(kafka.matching(playerDisconnected(u, roomId))).toHaveLength(1);
      expect(kafka.matching(presence('offline', u))).toHaveLength(1);
    }
  });

  it('a departure scheduled again restarts its grace from the latest leave', async () => {
    const userId = newUserId();
    const first = await connect(main, userId);
    await disconnect(main, first);
    await sleep(GRACE_SECS * 600);
    const second = await connect(main, userId);
    await disconnect(main, second);
    await sleep(GRACE_SECS * 600);

    // 1.2 grace after the first leave, 0.6 after the second: not due.
    await completeDueDepartures(main.deps);
    await kafka.barrier('gateway.presence');
    expect(kafka.matching(presence('offline', userId))).toEqual([]);

    await afterGrace();
    expect(kafka.matching(presence('offline', userId))).toHaveLength(1);
  });
});

describe('reconnection data', () => {
  it('puts a returning user back into their room at authentication, before any rejoin_room, and consumes the record', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const old = await connect(main, userId);
    await deliver(main, joined(userId, roomId));
    await disconnect(main, old);
    expect(await main.deps.lifecycle.reconnect.peek(userId)).toEqual([roomId]);

    const back = await connect(main, userId);
    const turn = await roomEvent(main, roomId);

    expect(await main.store.roomConnections(roomId)).toEqual([back]);
    expect(await main.store.roomsOf(back)).toEqual([roomId]);
    expect(gotTurn(back, turn)).toBe(true);
    expect(await main.deps.lifecycle.reconnect.peek(userId)).toEqual([]);
    // Consumed: a second tab opened later is not put into the room by the record.
    const later = await connect(main, userId);
    expect(await main.store.roomsOf(later)).toEqual([]);
  });

  it('puts a returning spectator back into the room and its spectator set', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const old = await connect(main, userId);
    await deliver(
      main,
      gameEvent('room_state', audience.user(userId), {
        room: gameRoom(roomId, { spectators: [Number(userId)] }),
      }),
    );
    await disconnect(main, old);

    const back = await connect(main, userId);

    expect((await main.store.roomsOf(back)).sort()).toEqual([roomId, `spectators:${roomId}`].sort());
  });

  it.each([
    ['kicked', (u: string, r: string) => kicked(u, r)],
    [
      'banned',
      (u: string, r: string) =>
        gameEvent('player_banned', audience.room(r), { room_id: r, user_id: Number(u) }),
    ],
    [
      'left',
      (u: string, r: string) =>
        gameEvent('player_left', audience.room(r), { room_id: r, user_id: Number(u) }),
    ],
    [
      'removed from the game',
      (u: string, r: string) => gameEvent('removed_from_game', audience.user(u), { room_id: r }),
    ],
    [
      'in a room that was removed',
      (_u: string, r: string) =>
        gameEvent('room_removed', audience.broadcast(), { room_id: r, room_name: 'x', reason: 'host_left' }),
    ],
  ])('does not put back a user %s while away', async (_what, event) => {
    const userId = newUserId();
    const roomId = randomUUID();
    const old = await connect(main, userId);
    await deliver(main, joined(userId, roomId));
    await disconnect(main, old);

    await deliver(main, event(userId, roomId));
    const back = await connect(main, userId);

    expect(await main.store.roomsOf(back)).toEqual([]);
    expect(await main.store.roomConnections(roomId)).toEqual([]);
  });

  it('a kick while away cancels the pending player_disconnected', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const old = await connect(main, userId);
    await deliver(main, joined(userId, roomId));
    await disconnect(main, old);

    await deliver(main, kicked(userId, roomId));
    await afterGrace();

    expect(kafka.matching(playerDisconnected(userId, roomId))).toEqual([]);
    expect(kafka.matching(presence('offline', userId))).toHaveLength(1);
  });
});

describe('membership order', () => {
  it('ignores a leave older than the join applied before it: the user still gets the room events', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const c = await connect(main, userId);
    const t0 = Date.now();

    await deliver(main, joined(userId, roomId, new Date(t0)));
    await deliver(main, kicked(userId, roomId, new Date(t0 - 50)));
    const turn = await roomEvent(main, roomId);

    expect(await main.store.roomConnections(roomId)).toEqual([c]);
    expect(gotTurn(c, turn)).toBe(true);

    // A newer leave applies.
    await deliver(main, kicked(userId, roomId, new Date(t0 + 50)));
    expect(await main.store.roomConnections(roomId)).toEqual([]);
    // And an older join after it is ignored too.
    await deliver(main, joined(userId, roomId, new Date(t0 + 10)));
    expect(await main.store.roomConnections(roomId)).toEqual([]);
  });

  it('keeps the order per (room, user): another room or user is not affected', async () => {
    const [alice, bob] = [newUserId(), newUserId()];
    const [roomA, roomB] = [randomUUID(), randomUUID()];
    const [a, b] = [await connect(main, alice), await connect(main, bob)];
    const t0 = Date.now();

    await deliver(main, joined(alice, roomA, new Date(t0)));
    await deliver(main, joined(bob, roomA, new Date(t0 - 100)));
    await deliver(main, joined(alice, roomB, new Date(t0 - 100)));

    expect((await main.store.roomConnections(roomA)).sort()).toEqual([a, b].sort());
    expect(await main.store.roomConnections(roomB)).toEqual([a]);
  });
});

describe('the sweeper', () => {
  let closedProbe: http.Server;
  let notImplemented: string;

  beforeAll(async () => {
    // serverless-offline's answer to GET @connections/{id}: 404 (no such route).
    closedProbe = http.createServer((req, res) => {
      res.writeHead(req.method === 'DELETE' ? 410 : 404).end();
    });
    await new Promise<void>((r) => closedProbe.listen(0, '127.0.0.1', r));
    notImplemented = `http://127.0.0.1:${(closedProbe.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => closedProbe.close(() => r())));

  const sweeperDeps = (h: Harness, endpoint: string): SweeperDeps => ({
    ...h.deps,
    liveness: createLivenessStore({ redis: h.redis, keyPrefix: prefix }),
    probe: createConnectionProbe({ endpoint, region: 'us-east-1' }),
  });
  /** Sweeps as if `secs` had passed since now. */
  const sweepLater = (deps: SweeperDeps, secs: number) => sweep(deps, Date.now() + secs * 1000);

  it('cleans up a silent connection the Management API reports gone (410), as $disconnect would, and presence converges', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const c = await connect(main, userId);
    await deliver(main, joined(userId, roomId));
    api.behave(c, { kind: 'gone' });

    const outcome = await sweepLater(sweeperDeps(main, api.endpoint), 601);

    expect(outcome.cleaned).toBeGreaterThanOrEqual(1);
    expect(api.calls).toContainEqual(
      expect.objectContaining({ method: 'GET', connectionId: c, status: 410 }),
    );
    expect(await main.store.allConnections()).not.toContain(c);
    expect(await main.store.connectionsOfUsers([userId])).toEqual([]);
    expect(await main.redis.sismember(`${prefix}presence:online`, userId)).toBe(0);
    await kafka.waitFor(
      (r) => r.value?.event_type === 'system.event.user_disconnected' && r.value.payload.connection_id === c,
    );
    await afterGrace();
    expect(kafka.matching(presence('offline', userId))).toHaveLength(1);
    expect(kafka.matching(playerDisconnected(userId, roomId))).toHaveLength(1);
  });

  it('keeps a silent connection the Management API reports open, and a connection that spoke recently', async () => {
    const [quiet, chatty] = [await connect(main, newUserId()), await connect(main, newUserId())];
    const deps = sweeperDeps(main, api.endpoint);

    await sweepLater(deps, 601);
    const recent = await sweepLater(deps, 10);

    expect(api.calls).toContainEqual(
      expect.objectContaining({ method: 'GET', connectionId: quiet, status: 200 }),
    );
    expect(await main.store.allConnections()).toEqual(expect.arrayContaining([quiet, chatty]));
    expect(recent.cleaned).toBe(0);
  });

  it('cleans up a connection open longer than the 2-hour cap even if it kept talking, once confirmed gone', async () => {
    const c = await connect(main, newUserId());
    await main.redis.hset(`${prefix}gw:conn:${c}`, 'at', new Date(Date.now() - 7201 * 1000).toISOString());
    api.behave(c, { kind: 'gone' });

    await sweepLater(sweeperDeps(main, api.endpoint), 1);

    expect(await main.store.allConnections()).not.toContain(c);
  });

  it('without GetConnection (serverless-offline: 404) cleans up by the staleness rule and closes the socket', async () => {
    const c = await connect(main, newUserId());
    const deps = sweeperDeps(main, notImplemented);
    const closed: string[] = [];
    const probe = deps.probe!;
    const recording: SweeperDeps = {
      ...deps,
      probe: {
        ...probe,
        close: (id) => {
          closed.push(id);
          return probe.close(id);
        },
      },
    };

    await sweepLater(recording, 601);

    expect(await main.store.allConnections()).not.toContain(c);
    expect(closed).toContain(c);
  });

  it('takes a user out of presence:online whose connections vanished without a cleanup, and says so once', async () => {
    const userId = newUserId();
    const c = await connect(main, userId);
    // The connection's records expired (no $disconnect, no sweep in time): only the user's sets remain.
    await Promise.all([
      main.redis.del(`${prefix}gw:conn:${c}`),
      main.redis.srem(`${prefix}gw:connections`, c),
    ]);
    const deps = sweeperDeps(main, api.endpoint);

    const first = await sweepLater(deps, 1);
    const second = await sweepLater(deps, 1);

    expect(first.presenceDropped).toBeGreaterThanOrEqual(1);
    expect(second.presenceDropped).toBe(0);
    expect(await main.redis.sismember(`${prefix}presence:online`, userId)).toBe(0);
    expect(await main.redis.smembers(`${prefix}user:sockets:${userId}`)).toEqual([]);
    await kafka.barrier('gateway.presence');
    expect(kafka.matching(presence('offline', userId))).toHaveLength(1);
  });
});
