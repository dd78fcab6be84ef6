/**
 * Commands and system events end to end through the real adapters: `handleMessage` / `cleanupConnection`
 * with the Redis session store and the kafkajs publisher on the mock cluster, then every record read
 * back from Kafka. Only the pusher and the welcome trigger are fakes (no API Gateway here).
 *
 * Every forwarded client type is driven from the table (`CLIENT_MESSAGE_TABLE`) and its example frame
 * (`test/fixtures/client-messages.json`). Topics are shared by the whole run, so records are picked
 * by ids unique to each test: request ids, user ids, room ids.
 */

import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { type Config, loadConfig } from '../../lib/config';
import { cleanupConnection } from '../../lib/gateway/cleanup';
import type { GatewayDeps } from '../../lib/gateway/deps';
import { handleMessage } from '../../lib/gateway/message';
import type { EventPublisher } from '../../lib/kafka/publisher';
import { createLogger } from '../../lib/logger';
import { CLIENT_MESSAGE_TABLE, type ForwardedMessageType } from '../../lib/protocol/client';
import type { Envelope, JsonObject } from '../../lib/protocol/envelope';
import type { RedisClient } from '../../lib/redis';
import type { SessionStore } from '../../lib/store/session-store';
import { clientMessageFixture } from '../fixtures/load-client-messages';
import { createTestGateway } from '../support/gateway-deps';
import { type KafkaReader, type KafkaRecord, startKafkaReader } from '../support/kafka';

// Project-level testTimeout is not applied by jest; Kafka round trips need more than the 5 s default.
jest.setTimeout(30_000);

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const ENVELOPE_KEYS = [
  'event_id',
  'event_type',
  'timestamp',
  'correlation_id',
  'producer',
  'actor',
  'audience',
  'payload',
];
const BROADCAST = { type: 'broadcast', user_ids: [], room_id: null, game_id: null };
const ENDPOINT = 'http://127.0.0.1:1';
const TOPICS = ['chat.commands', 'games.commands', 'system.events', 'gateway.presence'];

/** Fields a client might send to impersonate someone; the session's identity must win. */
const SPOOFED = {
  actor: { user_id: '1', username: 'Admin', roles: ['admin'] },
  user_id: '1',
  sender_id: 1,
  username: 'Admin',
  roles: ['admin'],
};

/** A numeric user id no other test (or earlier run on the same cluster) uses. */
const newUserId = () => String(randomInt(1_000_000, 2 ** 47));
const newConnectionId = () => randomBytes(10).toString('base64');

// ---------------------------------------------------------------------------------------------------
// What every forwarded type must produce for its example frame (docs/protocol.md, docs/decisions.md D4)
// ---------------------------------------------------------------------------------------------------

const R = '5d0c2a8e-room';

interface ExpectedRecord {
  readonly topic: 'chat.commands' | 'games.commands';
  readonly key: string;
  readonly audience: Envelope['audience'];
  readonly payload: JsonObject;
}

/** Written out by hand from the contract, for an actor id and the sending connection. */
function expectedRecords(
  actorId: string,
  connectionId: string,
): Record<ForwardedMessageType, ExpectedRecord> {
  const sender = Number(actorId);
  const chat = (payload: JsonObject): ExpectedRecord => ({
    topic: 'chat.commands',
    key: actorId,
    audience: { type: 'user', user_ids: [], room_id: null, game_id: null },
    payload,
  });
  const games = (payload: JsonObject, roomId: string | null = R): ExpectedRecord => ({
    topic: 'games.commands',
    key: roomId ?? actorId,
    audience: { type: 'room', user_ids: [], room_id: roomId, game_id: null },
    payload,
  });
  return {
    'chat.command.send_message': chat({
      type: 'send_message',
      sender_id: sender,
      recipient_id: 9,
      content: 'Rematch at 9?',
      socket_id: `${connectionId}|9`,
    }),
    'chat.command.send_lobby_message': chat({
      type: 'send_lobby_message',
      sender_id: sender,
      lobby_id: 1,
      content: 'Anyone up for Bigger Dice?',
      socket_id: `${connectionId}|lobby:1`,
    }),
    'chat.command.typing': chat({ type: 'typing', sender_id: sender, recipient_id: 9, is_typing: true }),
    'chat.command.mark_read': chat({ type: 'mark_read', user_id: sender, other_user_id: 9 }),
    'games.command.create_room': games(
      {
        game_type: 'bigger_dice',
        room_name: 'My Room',
        password: 'secret',
        max_players: 4,
        allow_spectators: true,
      },
      null,
    ),
    'games.command.join_room': games({ room_name: 'My Room', password: 'secret' }, null),
    'games.command.leave_room': games({ room_id: R }),
    'games.command.spectate': games({ room_id: R }),
    'games.command.stop_spectating': games({ room_id: R }),
    'games.command.player_chat': games({ room_id: R, content: 'gg' }),
    'games.command.spectator_chat': games({ room_id: R, content: 'nice roll' }),
    'games.command.select_player': games({ room_id: R, target_user_id: '9' }),
    'games.command.kick_player': games({ room_id: R, target_user_id: '9' }),
    'games.command.kick_spectator': games({ room_id: R, target_user_id: '12' }),
    'games.command.vote_kick_disconnected': games({ room_id: R, target_user_id: '9' }),
    'games.command.ban_player': games({ room_id: R, target_user_id: '9' }),
    'games.command.unban_player': games({ room_id: R, target_user_id: '9' }),
    'games.command.bigger_dice.roll': games({ room_id: R }),
    'games.command.bigger_dice.auto_roll': games({ room_id: R, target_user_id: '9' }),
    'games.command.bigger_dice.enable_auto_play': games({ room_id: R }),
    'games.command.tic_tac_toe.move': games({ room_id: 'a1b2c3-room', position: 4 }, 'a1b2c3-room'),
    'games.command.list_rooms': games({ game_type: 'tic_tac_toe' }, null),
    'games.command.ready': games({ room_id: R }),
    'games.command.rejoin_room': games({ room_id: R }),
    'games.command.send_chat': games({ room_id: R, channel: 'lobby', content: 'hello' }),
    'games.command.get_chat_history': games({ room_id: R, channel: 'lobby', limit: 50 }),
    'games.command.set_ready': games({ room_id: R, is_ready: false, ready: false }),
    'games.command.start_game': games({ room_id: R }),
    'games.command.deselect_player': games({ room_id: R, target_user_id: '9' }),
    'games.command.designate_admin_spectator': games({ room_id: R, target_user_id: '12' }),
    'games.command.join_as_spectator': games({ room_name: 'My Room' }, null),
    'games.command.mute_user': games({ room_id: R, target_user_id: '12' }),
    'games.command.unmute_user': games({ room_id: R, target_user_id: '12' }),
    'games.command.select_spectator': games({ room_id: R, target_user_id: '12' }),
    'games.command.become_spectator': games({ room_id: R }),
    'games.command.become_player': games({ room_id: R }),
    'games.command.leave_spectate': games({ room_id: R }),
  };
}

const FORWARDED_TYPES = CLIENT_MESSAGE_TABLE.filter((row) => row.route.kind === 'forward').map(
  (row) => row.type as ForwardedMessageType,
);

// ---------------------------------------------------------------------------------------------------
// Real adapters, fake pusher
// ---------------------------------------------------------------------------------------------------

interface Harness {
  readonly deps: GatewayDeps;
  readonly store: SessionStore;
  readonly pushes: Array<{ connectionId: string; data: string }>;
}

const logger = createLogger({ level: process.env.TEST_VERBOSE === '1' ? 'debug' : 'silent' });
const redisClients: RedisClient[] = [];
const publishers: EventPublisher[] = [];
const prefix = `it:commands:${randomUUID()}:`;

function testConfig(extra: Record<string, string> = {}): Config {
  return loadConfig({
    REDIS_URL: process.env.REDIS_URL,
    KAFKA_BROKERS: process.env.KAFKA_BROKERS,
    REDIS_KEY_PREFIX: prefix,
    AUTH_ALLOW_UNVERIFIED: 'true',
    JWT_SECRET: 'integration-secret',
    // No grace: departures are published by the cleanup itself (test/integration/lifecycle.test.ts has the grace).
    DISCONNECT_GRACE_SECS: '0',
    ...extra,
  });
}

/** A container's worth of dependencies: its own Redis client and Kafka producer, like one Lambda. */
function harness(config: Config = testConfig()): Harness {
  const gateway = createTestGateway(config, logger);
  redisClients.push(gateway.redis);
  publishers.push(gateway.publisher);
  return { deps: gateway.deps, store: gateway.deps.store, pushes: gateway.pushes };
}

let kafka: KafkaReader;
let main: Harness;

beforeAll(async () => {
  kafka = await startKafkaReader({ topics: TOPICS });
  main = harness();
  // Connect the producer before the first test so its timeout covers only the test itself.
  await main.deps.publisher.ping();
}, 30_000);

afterAll(async () => {
  await kafka?.stop();
  await Promise.allSettled(publishers.map((p) => p.disconnect()));
  const redis = redisClients[0];
  if (redis) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await Promise.allSettled(redisClients.map((r) => r.quit()));
});

const send = (h: Harness, connectionId: string, frame: unknown) =>
  handleMessage(h.deps, {
    connectionId,
    body: typeof frame === 'string' ? frame : JSON.stringify(frame),
    endpoint: ENDPOINT,
  });

/** `$connect` then `system.authenticate` (credential form); returns the connection id. */
async function connectAs(h: Harness, userId: string, username = 'John'): Promise<string> {
  const connectionId = newConnectionId();
  await h.store.registerConnection(connectionId, { connectedAt: new Date(), bound: null });
  const reply = await send(h, connectionId, { type: 'system.authenticate', user_id: userId, username });
  expect(JSON.parse(reply ?? 'null')).toMatchObject({ type: 'system.authenticated', user_id: userId });
  return connectionId;
}

const byType =
  (eventType: string, key: string) =>
  (r: KafkaRecord): boolean =>
    r.value?.event_type === eventType && r.key === key;

const ofConnection = (eventType: string, connectionId: string) => (r: KafkaRecord) =>
  r.value?.event_type === eventType && r.value.payload.connection_id === connectionId;

// ---------------------------------------------------------------------------------------------------
// Forwarded commands
// ---------------------------------------------------------------------------------------------------

describe('forwarded commands: one exact Kafka record per client type', () => {
  const userId = newUserId();
  let connectionId: string;
  let expected: Record<ForwardedMessageType, ExpectedRecord>;

  beforeAll(async () => {
    connectionId = await connectAs(main, userId);
    expected = expectedRecords(userId, connectionId);
  });

  it('covers every forwarded type of the table (33 of the contract + 4 of D4)', () => {
    expect(new Set(Object.keys(expected))).toEqual(new Set(FORWARDED_TYPES));
    expect(FORWARDED_TYPES).toHaveLength(37);
  });

  it('pushed the welcome before the first reply, since the client spoke first', () => {
    const welcomes = main.pushes.filter((p) => p.connectionId === connectionId);
    expect(welcomes).toHaveLength(1);
    expect(JSON.parse(welcomes[0]!.data)).toMatchObject({
      type: 'system.welcome',
      connection_id: connectionId,
    });
  });

  it.each(FORWARDED_TYPES)('%s', async (type) => {
    const requestId = randomUUID();
    const frame = { ...SPOOFED, ...clientMessageFixture(type).frame, request_id: requestId };

    const reply = await send(main, connectionId, frame);

    expect(reply).toBeUndefined();
    const record = await kafka.waitFor((r) => r.value?.correlation_id === requestId);
    const want = expected[type];
    expect(record.topic).toBe(want.topic);
    expect(record.key).toBe(want.key);
    expect(record.value).toEqual({
      event_id: expect.stringMatching(UUID_V4),
      event_type: type,
      timestamp: expect.stringMatching(RFC3339_UTC),
      correlation_id: requestId,
      producer: 'ws_gateway',
      actor: { user_id: userId, username: 'John', roles: ['user'] },
      audience: want.audience,
      payload: want.payload,
    });
    // Parsed from the wire, so this is the order the backend sees.
    expect(Object.keys(record.value.payload)).toEqual(Object.keys(want.payload));
    expect(Object.keys(record.value)).toEqual(ENVELOPE_KEYS);
    expect(kafka.matching((r) => r.value?.correlation_id === requestId)).toHaveLength(1);
  });
});

describe('forwarded commands: envelope details', () => {
  const userId = newUserId();
  let connectionId: string;

  beforeAll(async () => {
    connectionId = await connectAs(main, userId, 'Ann');
  });

  it('takes correlation_id from the client correlation_id when there is no request_id', async () => {
    const correlationId = randomUUID();

    await send(main, connectionId, {
      type: 'games.command.ready',
      room_id: R,
      correlation_id: correlationId,
    });

    const record = await kafka.waitFor((r) => r.value?.correlation_id === correlationId);
    expect(record.value.event_type).toBe('games.command.ready');
  });

  it('prefers request_id over correlation_id', async () => {
    const requestId = randomUUID();
    const correlationId = randomUUID();

    await send(main, connectionId, {
      type: 'games.command.ready',
      room_id: R,
      correlation_id: correlationId,
      request_id: requestId,
    });

    await kafka.waitFor((r) => r.value?.correlation_id === requestId);
    expect(kafka.matching((r) => r.value?.correlation_id === correlationId)).toEqual([]);
  });

  it('sends correlation_id null when the client sent none', async () => {
    const roomId = `room-${randomUUID()}`;

    await send(main, connectionId, { type: 'games.command.ready', room_id: roomId });

    const record = await kafka.waitFor(byType('games.command.ready', roomId));
    expect(record.value.correlation_id).toBeNull();
    expect(record.value.actor).toEqual({ user_id: userId, username: 'Ann', roles: ['user'] });
  });

  it('resolves mark_read senders through the delivered-message cache: one record per sender', async () => {
    const [m1, m2, m3] = [randomUUID(), randomUUID(), randomUUID()];
    await main.store.recordChatMessage(m1, '9');
    await main.store.recordChatMessage(m2, '12');
    await main.store.recordChatMessage(m3, '9');
    const requestId = randomUUID();

    const reply = await send(main, connectionId, {
      type: 'chat.command.mark_read',
      message_ids: [m1, m2, m3, randomUUID()],
      request_id: requestId,
    });

    expect(reply).toBeUndefined();
    await kafka.waitFor((r) => r.value?.correlation_id === requestId && r.value.payload.other_user_id === 12);
    await kafka.waitFor((r) => r.value?.correlation_id === requestId && r.value.payload.other_user_id === 9);
    const records = kafka.matching((r) => r.value?.correlation_id === requestId);
    expect(
      records.map((r) => r.value.payload).sort((a, b) => Number(a.other_user_id) - Number(b.other_user_id)),
    ).toEqual([
      { type: 'mark_read', user_id: Number(userId), other_user_id: 9 },
      { type: 'mark_read', user_id: Number(userId), other_user_id: 12 },
    ]);
    expect(records.every((r) => r.topic === 'chat.commands' && r.key === userId)).toBe(true);
  });

  it('subscribes the sending connection to the lobby it posts to', async () => {
    const lobbyId = String(randomInt(1_000, 1_000_000));
    const requestId = randomUUID();

    await send(main, connectionId, {
      type: 'chat.command.send_lobby_message',
      lobby_id: lobbyId,
      content: 'hi',
      request_id: requestId,
    });

    await kafka.waitFor((r) => r.value?.correlation_id === requestId);
    expect(await main.store.lobbyConnections(lobbyId)).toEqual([connectionId]);
  });

  it('publishes nothing for a command on an unauthenticated connection', async () => {
    const anonymous = newConnectionId();
    await main.store.registerConnection(anonymous, { connectedAt: new Date(), bound: null });
    const roomId = `room-${randomUUID()}`;

    const reply = await send(main, anonymous, { type: 'games.command.ready', room_id: roomId });

    expect(JSON.parse(reply ?? 'null')).toEqual({
      type: 'system.error',
      code: 'MESSAGE_ERROR',
      message: 'Connection not authenticated',
    });
    await kafka.barrier('games.commands');
    expect(kafka.matching((r) => r.key === roomId && r.value?.event_type === 'games.command.ready')).toEqual(
      [],
    );
  });

  it('refuses chat for a non-numeric user id and publishes nothing', async () => {
    const userName = `user-${randomUUID()}`;
    const conn = await connectAs(main, userName);
    const requestId = randomUUID();

    const reply = await send(main, conn, {
      type: 'chat.command.typing',
      recipient_id: '9',
      request_id: requestId,
    });

    expect(JSON.parse(reply ?? 'null')).toEqual({
      type: 'system.error',
      code: 'MESSAGE_ERROR',
      message: 'Chat requires a numeric user id',
    });
    await kafka.barrier('chat.commands');
    expect(kafka.matching((r) => r.value?.correlation_id === requestId)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// System and presence events (docs/events.md, docs/decisions.md D7)
// ---------------------------------------------------------------------------------------------------

describe('system.events and gateway.presence', () => {
  it('publishes user_connected and user_online when a user authenticates', async () => {
    const userId = newUserId();

    const connectionId = await connectAs(main, userId, 'Zoe');

    const connected = await kafka.waitFor(ofConnection('system.event.user_connected', connectionId));
    expect(connected.topic).toBe('system.events');
    expect(connected.key).toBe(userId);
    expect(connected.value).toEqual({
      event_id: expect.stringMatching(UUID_V4),
      event_type: 'system.event.user_connected',
      timestamp: expect.stringMatching(RFC3339_UTC),
      correlation_id: null,
      producer: 'ws_gateway',
      actor: { user_id: userId, username: 'Zoe', roles: ['user'] },
      audience: BROADCAST,
      payload: { connection_id: connectionId },
    });
    const online = await kafka.waitFor(byType('presence.event.user_online', userId));
    expect(online.topic).toBe('gateway.presence');
    expect(online.value).toMatchObject({
      producer: 'ws_gateway',
      actor: { user_id: userId, username: 'Zoe', roles: ['user'] },
      audience: BROADCAST,
      payload: { user_id: userId, username: 'Zoe' },
    });
  });

  it('publishes user_connected for a second tab but no second user_online', async () => {
    const userId = newUserId();
    await connectAs(main, userId);
    await kafka.waitFor(byType('presence.event.user_online', userId));

    const secondTab = await connectAs(main, userId);

    await kafka.waitFor(ofConnection('system.event.user_connected', secondTab));
    await kafka.barrier('gateway.presence');
    expect(kafka.matching(byType('presence.event.user_online', userId))).toHaveLength(1);
  });

  it('publishes user_disconnected for every tab and user_offline only when the last one goes', async () => {
    const userId = newUserId();
    const tab1 = await connectAs(main, userId, 'Max');
    const tab2 = await connectAs(main, userId, 'Max');

    await cleanupConnection(main.deps, tab1, 'disconnect');

    const first = await kafka.waitFor(ofConnection('system.event.user_disconnected', tab1));
    expect(first.topic).toBe('system.events');
    expect(first.key).toBe(userId);
    expect(first.value).toMatchObject({
      actor: { user_id: userId, username: 'Max', roles: ['user'] },
      audience: BROADCAST,
      payload: { connection_id: tab1 },
    });
    await kafka.barrier('gateway.presence');
    expect(kafka.matching(byType('presence.event.user_offline', userId))).toEqual([]);

    await cleanupConnection(main.deps, tab2, 'disconnect');

    await kafka.waitFor(ofConnection('system.event.user_disconnected', tab2));
    const offline = await kafka.waitFor(byType('presence.event.user_offline', userId));
    expect(offline.topic).toBe('gateway.presence');
    expect(offline.value).toMatchObject({
      actor: { user_id: userId, username: 'Max' },
      audience: BROADCAST,
      payload: { user_id: userId, username: 'Max' },
    });
  });

  it('publishes the old user leaving and the new one arriving when a connection re-authenticates', async () => {
    const oldUser = newUserId();
    const newUser = newUserId();
    const connectionId = await connectAs(main, oldUser, 'Old');

    const reply = await send(main, connectionId, {
      type: 'system.authenticate',
      user_id: newUser,
      username: 'New',
    });

    expect(JSON.parse(reply ?? 'null')).toMatchObject({ type: 'system.authenticated', user_id: newUser });
    const left = await kafka.waitFor(ofConnection('system.event.user_disconnected', connectionId));
    expect(left.key).toBe(oldUser);
    expect(left.value.actor).toEqual({ user_id: oldUser, username: 'Old', roles: ['user'] });
    await kafka.waitFor(byType('presence.event.user_offline', oldUser));
    await kafka.waitFor(byType('presence.event.user_online', newUser));
    const arrived = await kafka.waitFor(
      (r) => ofConnection('system.event.user_connected', connectionId)(r) && r.key === newUser,
    );
    expect(arrived.value.actor).toEqual({ user_id: newUser, username: 'New', roles: ['user'] });
  });

  it('publishes the departure once when $disconnect and a 410 cleanup race', async () => {
    const userId = newUserId();
    const connectionId = await connectAs(main, userId);
    const other = harness();

    await Promise.all([
      cleanupConnection(main.deps, connectionId, 'disconnect'),
      cleanupConnection(other.deps, connectionId, 'gone'),
    ]);

    await kafka.waitFor(ofConnection('system.event.user_disconnected', connectionId));
    await kafka.barrier('system.events');
    await kafka.barrier('gateway.presence');
    expect(kafka.matching(ofConnection('system.event.user_disconnected', connectionId))).toHaveLength(1);
    expect(kafka.matching(byType('presence.event.user_offline', userId))).toHaveLength(1);
  });
});

describe('games.command.player_disconnected on disconnect', () => {
  it('is published once per game room the connection was in, keyed by room, and not for spectators:*', async () => {
    const userId = newUserId();
    const connectionId = await connectAs(main, userId, 'Pia');
    const playing = `room-${randomUUID()}`;
    const watching = `room-${randomUUID()}`;
    await main.store.joinRoom(userId, playing, { spectator: false });
    await main.store.joinRoom(userId, watching, { spectator: true });

    await cleanupConnection(main.deps, connectionId, 'disconnect');

    for (const roomId of [playing, watching]) {
      const record = await kafka.waitFor(byType('games.command.player_disconnected', roomId));
      expect(record.topic).toBe('games.commands');
      expect(record.value).toEqual({
        event_id: expect.stringMatching(UUID_V4),
        event_type: 'games.command.player_disconnected',
        timestamp: expect.stringMatching(RFC3339_UTC),
        correlation_id: null,
        producer: 'ws_gateway',
        actor: { user_id: userId, username: 'Pia', roles: ['user'] },
        audience: { type: 'room', user_ids: [], room_id: roomId, game_id: null },
        payload: { room_id: roomId },
      });
    }
    await kafka.barrier('games.commands');
    const mine = kafka.matching(
      (r) => r.value?.event_type === 'games.command.player_disconnected' && r.value.actor.user_id === userId,
    );
    expect(mine.map((r) => r.key).sort()).toEqual([playing, watching].sort());
  });

  it("is published for the old user's rooms when the connection re-authenticates as someone else", async () => {
    const [oldUser, newUser] = [newUserId(), newUserId()];
    const connectionId = await connectAs(main, oldUser, 'Old');
    const roomId = `room-${randomUUID()}`;
    await main.store.joinRoom(oldUser, roomId, { spectator: false });

    await send(main, connectionId, { type: 'system.authenticate', user_id: newUser, username: 'New' });

    const record = await kafka.waitFor(byType('games.command.player_disconnected', roomId));
    expect(record.value.actor).toEqual({ user_id: oldUser, username: 'Old', roles: ['user'] });
    expect(record.value.payload).toEqual({ room_id: roomId });
    expect(await main.store.roomConnections(roomId)).toEqual([]);
  });

  it('is not published when DISCONNECT_NOTIFY_ROOMS=false', async () => {
    const quiet = harness(testConfig({ DISCONNECT_NOTIFY_ROOMS: 'false' }));
    const userId = newUserId();
    const connectionId = await connectAs(quiet, userId);
    const roomId = `room-${randomUUID()}`;
    await quiet.store.joinRoom(userId, roomId, { spectator: false });

    await cleanupConnection(quiet.deps, connectionId, 'disconnect');

    await kafka.waitFor(ofConnection('system.event.user_disconnected', connectionId));
    await kafka.barrier('games.commands');
    expect(kafka.matching(byType('games.command.player_disconnected', roomId))).toEqual([]);
  });

  it('is not published for an anonymous connection, whose departure publishes nothing', async () => {
    const connectionId = newConnectionId();
    await main.store.registerConnection(connectionId, { connectedAt: new Date(), bound: null });

    await cleanupConnection(main.deps, connectionId, 'disconnect');

    await kafka.barrier('system.events');
    expect(kafka.matching((r) => r.value?.payload?.connection_id === connectionId)).toEqual([]);
  });
});
