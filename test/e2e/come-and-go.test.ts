/**
 * Connections that come and go (docs/decisions.md D10) on the real stack: serverless-offline
 * running the real handlers, the event consumer (which also runs the departure and sweeper loop),
 * the run's Redis and Kafka mock, real `ws` clients, the fake backend producing events, and a
 * Kafka reader checking what the gateway published.
 *
 * Three gateways, because the settings are per deployment:
 * - `gw`   — grace 2 s, two consumers in one group (two instances completing departures);
 * - `cut`  — serverless-offline's hard timeout at 8 s (API Gateway's 2 h cut, shortened), grace 3 s;
 * - `lost` — `$disconnect` never arrives (the route runs a no-op handler), stale after 8 s, a sweep
 *            every second, grace 1 s.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../lib/logger';
import type { Envelope } from '../../lib/protocol/envelope';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import {
  audience,
  backendTimestamp,
  type FakeBackend,
  gameEvent,
  gameRoom,
  startBackend,
} from '../support/backend';
import { type KafkaReader, type KafkaRecord, startKafkaReader } from '../support/kafka';
import { type ConsumerProcess, type OfflineGateway, startConsumer, startOffline } from '../support/offline';
import { keysWithPrefix } from '../support/store';
import { TestClient } from '../support/ws-client';

jest.setTimeout(90_000);

const root = path.resolve(__dirname, '..', '..');
const GAMES = 'games.events';
const PUBLISHED = ['games.commands', 'gateway.presence', 'system.events'];
const GRACE = { gw: 2, cut: 3, lost: 1 } as const;
const HARD_TIMEOUT_SECS = 8;
// Long enough for a loaded machine to get from the upgrade to the first heartbeat.
const STALE_SECS = 8;

let gw: OfflineGateway;
let cut: OfflineGateway;
let lost: OfflineGateway;
const consumers: ConsumerProcess[] = [];
let backend: FakeBackend;
let published: KafkaReader;
let redis: RedisClient;
const clients: TestClient[] = [];
/** Config files and bundle folders written for this run (removed afterwards). */
const written: string[] = [];

/**
 * A copy of serverless.yml with its own bundle folder (gateways started while another one serves
 * never rebuild its bundles), optionally with `$disconnect` replaced by a handler that does nothing.
 */
function variantConfig(name: string, { lostDisconnect = false } = {}): string {
  const file = `serverless.e2e-${name}-${process.pid}.yml`;
  const build = `.esbuild/e2e-${name}-${process.pid}`;
  const yml = readFileSync(path.join(root, 'serverless.yml'), 'utf8');
  let variant = yml
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a serverless variable
    .replace('outputWorkFolder: .esbuild/${sls:stage}', `outputWorkFolder: ${build}`);
  if (lostDisconnect)
    variant = variant.replace(
      'handler: handlers/disconnect.handler',
      'handler: test/support/handlers/lost-disconnect.handler',
    );
  if (!variant.includes(build) || (lostDisconnect && !variant.includes('lost-disconnect.handler')))
    throw new Error('serverless.yml changed: the e2e variant no longer applies');
  writeFileSync(path.join(root, file), variant);
  written.push(file, build);
  return file;
}

const consumer = (gateway: OfflineGateway, group: string) =>
  startConsumer(gateway, { KAFKA_CONSUMER_GROUP: group, KAFKA_START_POSITION: 'earliest' }).then((c) => {
    consumers.push(c);
    return c;
  });

beforeAll(async () => {
  redis = createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
  const starting = Promise.all([startBackend(), startKafkaReader({ topics: PUBLISHED })]);
  // One after the other: esbuild bundling is the slow part of a start.
  gw = await startOffline({ DISCONNECT_GRACE_SECS: String(GRACE.gw) }, { config: variantConfig('gw') });
  cut = await startOffline(
    { DISCONNECT_GRACE_SECS: String(GRACE.cut), WS_OFFLINE_HARD_TIMEOUT_SECS: String(HARD_TIMEOUT_SECS) },
    { config: variantConfig('cut') },
  );
  lost = await startOffline(
    {
      DISCONNECT_GRACE_SECS: String(GRACE.lost),
      WS_STALE_AFTER_SECS: String(STALE_SECS),
      WS_SWEEP_INTERVAL_SECS: '1',
    },
    { config: variantConfig('lost', { lostDisconnect: true }) },
  );
  const group = `e2e-come-and-go-${randomUUID()}`;
  await Promise.all([
    consumer(gw, group),
    consumer(gw, group),
    consumer(cut, `${group}-cut`),
    consumer(lost, `${group}-lost`),
  ]);
  [backend, published] = await starting;
}, 300_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(consumers.map((c) => c.stop()));
  await Promise.allSettled([backend?.stop(), published?.stop(), gw?.stop(), cut?.stop(), lost?.stop()]);
  await redis?.quit();
  // What each gateway printed, for a failure's post-mortem (the test output keeps only the assertion).
  for (const [name, g] of [
    ['gw', gw],
    ['cut', cut],
    ['lost', lost],
  ] as const)
    if (g) writeFileSync(path.join(os.tmpdir(), `ws-gateway-e2e-come-and-go-${name}.log`), g.output());
  for (const f of written) rmSync(path.join(root, f), { recursive: true, force: true });
});

const newUserId = () => String(randomInt(1_000_000, 2 ** 47));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const prefixOf = (g: OfflineGateway) => g.env.REDIS_KEY_PREFIX!;
const connectionIdOf = (client: TestClient) => String(client.frames[0]?.connection_id);

async function open(gateway: OfflineGateway, userId: string): Promise<TestClient> {
  const client = await TestClient.open(gateway.wsUrl);
  clients.push(client);
  // A generous deadline: the first authentication of a gateway also connects its Kafka producer.
  await client.request(
    { type: 'system.authenticate', user_id: userId, username: `user${userId}` },
    'system.authenticated',
    20_000,
  );
  return client;
}

const produce = (envelope: Envelope, partition?: number) =>
  backend.produce(GAMES, envelope, partition === undefined ? {} : { partition });

const withTime = (env: Envelope, at?: Date): Envelope =>
  at ? { ...env, timestamp: backendTimestamp(at) } : env;

/** `room_state` to the user (the backend's join), and every tab of theirs saw it. */
async function join(userId: string, roomId: string, tabs: TestClient[], at?: Date, partition?: number) {
  await produce(
    withTime(
      gameEvent('room_state', audience.user(userId), {
        room: gameRoom(roomId, { players: [Number(userId)] }),
      }),
      at,
    ),
    partition,
  );
  for (const tab of tabs)
    await tab.next(
      (f) => f.type.endsWith('.room_state') && (f['room'] as { room_id?: string })?.room_id === roomId,
      20_000,
    );
}

const kick = (userId: string, roomId: string, at?: Date) =>
  withTime(
    gameEvent('player_kicked', audience.room(roomId), { room_id: roomId, user_id: Number(userId) }),
    at,
  );

/** Produces a numbered room event; resolves with its number. */
async function roomEvent(roomId: string, partition?: number): Promise<number> {
  const turn = randomInt(1, 1_000_000_000);
  await produce(
    gameEvent('turn_changed', audience.room(roomId), { room_id: roomId, current_turn: 1, turn_number: turn }),
    partition,
  );
  return turn;
}

const turnFrame = (turn: number) => (f: TestClient['frames'][number]) =>
  f.type.endsWith('.turn_changed') && f['turn_number'] === turn;

const playerDisconnected = (userId: string) => (r: KafkaRecord) =>
  r.value?.event_type === 'games.command.player_disconnected' && r.value.actor.user_id === userId;
const presence = (kind: 'online' | 'offline', userId: string) => (r: KafkaRecord) =>
  r.value?.event_type === `presence.event.user_${kind}` && r.key === userId;
const userDisconnected = (userId: string) => (r: KafkaRecord) =>
  r.value?.event_type === 'system.event.user_disconnected' && r.key === userId;

/** Everything the gateways published so far has been read. */
const settled = () => Promise.all(PUBLISHED.map((t) => published.barrier(t)));

/** Waits past the grace (and a sweep tick) so that a departure that was going to be published is. */
async function pastGrace(secs: number) {
  await sleep(secs * 1000 + 2500);
  await settled();
}

describe('per-room departure and the grace (D10)', () => {
  it('two tabs in a room: closing one publishes no player_disconnected; closing both publishes one, after the grace', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const [tab1, tab2] = [await open(gw, userId), await open(gw, userId)];
    await join(userId, roomId, [tab1, tab2]);

    await tab1.close();
    await published.waitFor(userDisconnected(userId));
    await pastGrace(GRACE.gw);

    expect(published.matching(playerDisconnected(userId))).toEqual([]);
    expect(published.matching(presence('offline', userId))).toEqual([]);

    const closedAt = Date.now();
    await tab2.close();
    const record = await published.waitFor(playerDisconnected(userId), 20_000);
    await pastGrace(GRACE.gw);

    expect(record.key).toBe(roomId);
    expect(record.value.payload).toEqual({ room_id: roomId });
    expect(Date.parse(record.value.timestamp) - closedAt).toBeGreaterThanOrEqual(GRACE.gw * 1000 - 250);
    expect(published.matching(playerDisconnected(userId))).toHaveLength(1);
    expect(published.matching(presence('offline', userId))).toHaveLength(1);
    expect(published.matching(userDisconnected(userId))).toHaveLength(2);
  });

  it('a reload within the grace publishes nothing, and the new connection gets a room event produced right after system.authenticated without rejoin_room', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const before = await open(gw, userId);
    await join(userId, roomId, [before]);
    await published.waitFor(presence('online', userId));

    await before.close();
    const after = await open(gw, userId);
    const turn = await roomEvent(roomId);

    await after.next(turnFrame(turn), 20_000);
    expect(after.frames.some((f) => f.type === 'games.command.rejoin_room')).toBe(false);
    await pastGrace(GRACE.gw);
    expect(published.matching(playerDisconnected(userId))).toEqual([]);
    expect(published.matching(presence('offline', userId))).toEqual([]);
    expect(published.matching(presence('online', userId))).toHaveLength(1);
  });

  it("done when: a player's two-tab session mid-game (close one tab, reload the other) produces no player_disconnected and no user_offline", async () => {
    const userId = newUserId();
    const opponent = newUserId();
    const roomId = randomUUID();
    const [tab1, tab2, other] = [await open(gw, userId), await open(gw, userId), await open(gw, opponent)];
    await join(userId, roomId, [tab1, tab2]);
    await join(opponent, roomId, [other]);
    await produce(gameEvent('game_started', audience.room(roomId), { room_id: roomId, players: [] }));

    await tab1.close();
    await sleep(500);
    await tab2.close();
    const reloaded = await open(gw, userId);
    const turn = await roomEvent(roomId);

    await reloaded.next(turnFrame(turn), 20_000);
    await other.next(turnFrame(turn), 20_000);
    await pastGrace(GRACE.gw);
    expect(published.matching(playerDisconnected(userId))).toEqual([]);
    expect(published.matching(presence('offline', userId))).toEqual([]);
    expect(published.matching(presence('online', userId))).toHaveLength(1);
    // What the opponent saw: no disconnect notice of any kind.
    expect(other.frames.filter((f) => f.type.includes('disconnect'))).toEqual([]);
  });

  it('two instances completing the same due departures publish each one once', async () => {
    const users = Array.from({ length: 12 }, newUserId);
    const roomId = randomUUID();
    const tabs = await Promise.all(users.map((u) => open(gw, u)));
    for (const [i, u] of users.entries()) await join(u, roomId, [tabs[i]!]);

    await Promise.all(tabs.map((t) => t.close()));
    for (const u of users) await published.waitFor(playerDisconnected(u), 20_000);
    await pastGrace(GRACE.gw);

    for (const u of users) {
      expect(published.matching(playerDisconnected(u))).toHaveLength(1);
      expect(published.matching(presence('offline', u))).toHaveLength(1);
    }
  });
});

describe('membership order and reconnection (D10)', () => {
  it('a leave produced to another partition with an older timestamp after a join does not undo it', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const tab = await open(gw, userId);
    const joinedAt = new Date();

    await join(userId, roomId, [tab], joinedAt, 0);
    await produce(kick(userId, roomId, new Date(joinedAt.getTime() - 1000)), 1);
    await tab.next((f) => f.type.endsWith('.player_kicked'), 20_000);
    const turn = await roomEvent(roomId, 2);

    await tab.next(turnFrame(turn), 20_000);
  });

  it('a user kicked while away is not put back into the room', async () => {
    const [userId, observer] = [newUserId(), newUserId()];
    const roomId = randomUUID();
    const [tab, watcher] = [await open(gw, userId), await open(gw, observer)];
    await join(userId, roomId, [tab]);
    await join(observer, roomId, [watcher]);
    await tab.close();
    await published.waitFor(userDisconnected(userId));

    await produce(kick(userId, roomId));
    await watcher.next((f) => f.type.endsWith('.player_kicked'), 20_000);
    const back = await open(gw, userId);
    const turn = await roomEvent(roomId);

    await watcher.next(turnFrame(turn), 20_000);
    await sleep(500);
    expect(back.frames.filter(turnFrame(turn))).toEqual([]);
    await pastGrace(GRACE.gw);
    expect(published.matching(playerDisconnected(userId))).toEqual([]);
  });
});

describe("API Gateway's 2-hour cut (serverless-offline's hard timeout, shortened)", () => {
  it('with an automatic reconnect publishes nothing, and the room follows the new connection', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const first = await TestClient.open(cut.wsUrl);
    clients.push(first);
    // What today's clients do on close: reconnect and authenticate at once.
    const reconnected = new Promise<TestClient>((resolve, reject) => {
      first.socket.once('close', (code) => {
        if (code !== 1001) reject(new Error(`closed with ${code}, not the cut`));
        else open(cut, userId).then(resolve, reject);
      });
    });
    await first.request(
      { type: 'system.authenticate', user_id: userId, username: `user${userId}` },
      'system.authenticated',
      20_000,
    );
    await join(userId, roomId, [first]);
    await published.waitFor(presence('online', userId));

    const second = await reconnected;
    const turn = await roomEvent(roomId);

    await second.next(turnFrame(turn), 20_000);
    await pastGrace(GRACE.cut);
    expect(published.matching(userDisconnected(userId)).length).toBeGreaterThanOrEqual(1);
    expect(published.matching(playerDisconnected(userId))).toEqual([]);
    expect(published.matching(presence('offline', userId))).toEqual([]);
    expect(published.matching(presence('online', userId))).toHaveLength(1);
    await second.close();
  });
});

describe('a lost $disconnect', () => {
  it('a connection gone silent is cleaned up by the sweeper and presence goes offline, within the stale limit', async () => {
    const userId = newUserId();
    const roomId = randomUUID();
    const tab = await TestClient.open(lost.wsUrl);
    clients.push(tab);
    const connectionId = connectionIdOf(tab);
    // Alive and talking until it goes silent: heartbeats keep it fresher than the stale limit.
    const beating = setInterval(() => tab.send({ type: 'system.heartbeat' }), 500);
    try {
      await tab.request(
        { type: 'system.authenticate', user_id: userId, username: `user${userId}` },
        'system.authenticated',
        20_000,
      );
      await join(userId, roomId, [tab]);
    } finally {
      clearInterval(beating);
    }
    const online = `${prefixOf(lost)}presence:online`;
    expect(await redis.sismember(online, userId)).toBe(1);
    expect(tab.closed).toBe(false);

    const closedAt = Date.now();
    await tab.close();
    // No $disconnect: the state stays until the sweeper finds the connection stale.
    await sleep(1000);
    expect(await redis.sismember(`${prefixOf(lost)}gw:connections`, connectionId)).toBe(1);

    const offline = await published.waitFor(presence('offline', userId), 30_000);
    const cleanedAfterMs = Date.parse(offline.value.timestamp) - closedAt;
    expect(await redis.sismember(online, userId)).toBe(0);
    expect((await keysWithPrefix(redis, prefixOf(lost))).filter((k) => k.includes(connectionId))).toEqual([]);
    expect(await redis.smembers(`${prefixOf(lost)}room:sockets:${roomId}`)).toEqual([]);
    await published.waitFor(playerDisconnected(userId));
    expect(published.matching(userDisconnected(userId))).toHaveLength(1);
    // Stale after 8 s, a sweep every second, then the 1 s grace (loaded-machine margin on top).
    expect(cleanedAfterMs).toBeLessThan((STALE_SECS + 1 + GRACE.lost + 10) * 1000);
  });
});
