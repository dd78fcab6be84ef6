/**
 * Event delivery through the real pipeline (`createPipeline`: parse → plan → execute) against a real
 * Redis, with the production Management API pusher pointed at a fake API Gateway that records every
 * frame and answers the status a test chooses (200, 410, 429, 5xx). Only the Kafka publisher of
 * departure events is a recording fake.
 *
 * Envelopes are built the way the backend writes them (test/support/backend.ts); every test has its
 * own Redis key prefix, user ids and room ids.
 */

import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { type Config, loadConfig } from '../../lib/config';
import { createPipeline, type ProcessRecord, type RecordOutcome } from '../../lib/consumer/pipeline';
import { CONVERTED_EVENT_TYPES } from '../../lib/events/convert';
import { createLifecycleStores } from '../../lib/gateway/lifecycle';
import type { EventPublisher, OutboundRecord } from '../../lib/kafka/publisher';
import { silentLogger } from '../../lib/logger';
import { createMetrics, type Metrics } from '../../lib/metrics';
import type { Envelope } from '../../lib/protocol/envelope';
import { type ClientPusher, createManagementApiPusher, MAX_PAYLOAD_BYTES } from '../../lib/push/pusher';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { audience, backendEnvelope, chatEvent, gameEvent, gameRoom } from '../support/backend';
import { type FakeManagementApi, startFakeManagementApi } from '../support/management-api';
import { connectAs, keysWithPrefix } from '../support/store';

const GAMES = 'games.events';
const CHAT = 'chat.events';
const PUSH_MAX_RETRIES = 2;
const LEAVE_KINDS = [
  'player_left',
  'player_kicked',
  'player_banned',
  'removed_from_game',
  'spectator_left',
  'spectator_kicked',
] as const;

const newUserId = () => String(randomInt(1_000_000, 2 ** 47));
/** An API Gateway-like connection id (base64: may contain `+`, `/`, `=`). */
const newConnectionId = () => randomBytes(10).toString('base64');

function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set (the jest global setup exports it)');
  return url;
}

/** A publisher that keeps what it was given. */
function recordingPublisher(): EventPublisher & { readonly records: OutboundRecord[] } {
  const records: OutboundRecord[] = [];
  return {
    records,
    publish: async (batch) => {
      records.push(...batch);
    },
    ping: async () => {},
    disconnect: async () => {},
  };
}

// No grace: departures are published by the cleanup itself (the grace has its own tests).
const config: Config = loadConfig({ LOG_LEVEL: 'silent', DISCONNECT_GRACE_SECS: '0' });

let redis: RedisClient;
let api: FakeManagementApi;
let pusher: ClientPusher;
let prefix: string;
let store: SessionStore;
let publisher: ReturnType<typeof recordingPublisher>;
let metrics: Metrics;
let processRecord: ProcessRecord;
let offset = 0;

beforeAll(async () => {
  redis = createRedisClient({ url: redisUrl(), cluster: false, logger: silentLogger });
  api = await startFakeManagementApi();
  pusher = createManagementApiPusher({
    endpoint: api.endpoint,
    region: 'us-east-1',
    logger: silentLogger,
    maxRetries: PUSH_MAX_RETRIES,
    backoffBaseMs: 1,
    timeoutMs: 5000,
  });
});

afterAll(async () => {
  await pusher.close();
  await api.stop();
  await redis.quit();
});

beforeEach(() => {
  prefix = `it:delivery:${randomUUID()}:`;
  store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: prefix });
  publisher = recordingPublisher();
  metrics = createMetrics();
  processRecord = createPipeline({
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
  api.onRequest(undefined);
});

afterEach(async () => {
  const keys = await keysUnderPrefix();
  if (keys.length > 0) await redis.del(...keys);
});

const keysUnderPrefix = () => keysWithPrefix(redis, prefix);

/** `$connect` (+ `system.authenticate` when a user is given); returns the connection id. */
function connect(userId?: string, username?: string): Promise<string> {
  return connectAs(store, newConnectionId(), userId, username);
}

/** Feeds one record, as the consumer would after reading it from `topic`. */
function deliver(topic: string, envelope: Envelope | string): Promise<RecordOutcome> {
  return processRecord({
    topic,
    partition: 0,
    offset: String(offset++),
    value: typeof envelope === 'string' ? envelope : JSON.stringify(envelope),
  });
}

/** The event types each connection received, in order. */
const received = (connectionId: string) => api.delivered(connectionId).map((b) => b['type']);

const counter = (name: string, labels: Record<string, string>) => metrics.counter(name, '').get(labels);

const sorted = (ids: string[]) => [...ids].sort();

/** Puts the user's connections into a room the way the backend does: a user-targeted room_state. */
async function joinViaRoomState(userId: string, roomId: string, opts: { spectator?: boolean } = {}) {
  const room = opts.spectator
    ? gameRoom(roomId, { spectators: [Number(userId)] })
    : gameRoom(roomId, { players: [Number(userId)] });
  const outcome = await deliver(GAMES, gameEvent('room_state', audience.user(userId), { room }));
  expect(outcome.status).toBe('delivered');
}

const turnChanged = (roomId: string, turn: number) =>
  gameEvent('turn_changed', audience.room(roomId), { room_id: roomId, current_turn: 4, turn_number: turn });

describe('room membership: joins', () => {
  it('adds every connection of a user to the room on a user-targeted room_state, before the send', async () => {
    const [alice, bob] = [newUserId(), newUserId()];
    const [a1, a2, b1] = [await connect(alice), await connect(alice), await connect(bob)];
    const roomId = randomUUID();
    const membersAtSend: string[][] = [];
    api.onRequest(async ({ body }) => {
      if (body['type'] === 'games.event.bigger_dice.room_state')
        membersAtSend.push(await store.roomConnections(roomId));
    });

    await joinViaRoomState(alice, roomId);

    expect(received(a1)).toEqual(['games.event.bigger_dice.room_state']);
    expect(received(a2)).toEqual(['games.event.bigger_dice.room_state']);
    expect(membersAtSend.map(sorted)).toEqual([sorted([a1, a2]), sorted([a1, a2])]);
    expect(sorted(await store.roomConnections(roomId))).toEqual(sorted([a1, a2]));
    expect(await store.roomConnections(`spectators:${roomId}`)).toEqual([]);
    expect(await store.roomsOf(a1)).toEqual([roomId]);

    await deliver(GAMES, turnChanged(roomId, 1));

    expect(received(a1)).toEqual([
      'games.event.bigger_dice.room_state',
      'games.event.bigger_dice.turn_changed',
    ]);
    expect(received(a2)).toEqual([
      'games.event.bigger_dice.room_state',
      'games.event.bigger_dice.turn_changed',
    ]);
    expect(received(b1)).toEqual([]);
  });

  it('also adds a user listed in room.spectators_data to the room’s spectators', async () => {
    const [player, spectator] = [newUserId(), newUserId()];
    const [p1, s1] = [await connect(player), await connect(spectator)];
    const roomId = randomUUID();

    await joinViaRoomState(player, roomId);
    await joinViaRoomState(spectator, roomId, { spectator: true });

    expect(sorted(await store.roomConnections(roomId))).toEqual(sorted([p1, s1]));
    expect(await store.roomConnections(`spectators:${roomId}`)).toEqual([s1]);
    expect(sorted(await store.roomsOf(s1))).toEqual(sorted([roomId, `spectators:${roomId}`]));
  });

  it('adds the user to the room and its spectators on a user-targeted spectator_data_joined', async () => {
    const [spectator, other] = [newUserId(), newUserId()];
    const [s1, o1] = [await connect(spectator), await connect(other)];
    const roomId = randomUUID();
    const joined = (userId: string, spectatorId: string) =>
      gameEvent('spectator_data_joined', audience.user(userId), {
        room_id: roomId,
        spectator: { user_id: Number(spectatorId), username: 'Eve', avatar_id: null, joined_at: '' },
      });

    await deliver(GAMES, joined(spectator, spectator));
    // Told about someone else joining as spectator: joins the room, not its spectators.
    await deliver(GAMES, joined(other, spectator));

    expect(received(s1)).toEqual(['games.event.bigger_dice.spectator_data_joined']);
    expect(sorted(await store.roomConnections(roomId))).toEqual(sorted([s1, o1]));
    expect(await store.roomConnections(`spectators:${roomId}`)).toEqual([s1]);
  });

  it('leaves no connection that is being disconnected in the room it was joining meanwhile', async () => {
    const alice = newUserId();
    const [closing, open] = [await connect(alice), await connect(alice)];
    const roomId = randomUUID();
    // $disconnect of `closing` has claimed its record (the first step of removeConnection) and has
    // not yet taken it out of the user's sockets; the rooms it removes it from are those it claimed.
    await redis.del(`${prefix}gw:conn:${closing}`);

    await joinViaRoomState(alice, roomId, { spectator: true });
    await redis.srem(`${prefix}user:sockets:${alice}`, closing);

    expect(await store.roomConnections(roomId)).toEqual([open]);
    expect(await store.roomConnections(`spectators:${roomId}`)).toEqual([open]);
  });

  it('does not join anyone on a room_state to a user with no connection', async () => {
    const roomId = randomUUID();

    await joinViaRoomState(newUserId(), roomId);

    expect(await store.roomConnections(roomId)).toEqual([]);
  });
});

describe('room membership: the six leave events', () => {
  /** Alice (two tabs) is a player and a spectator of the room; Bob is a player. */
  async function roomWithAliceAndBob() {
    const [alice, bob] = [newUserId(), newUserId()];
    const [a1, a2, b1] = [await connect(alice), await connect(alice), await connect(bob)];
    const roomId = randomUUID();
    await joinViaRoomState(alice, roomId, { spectator: true });
    await joinViaRoomState(bob, roomId);
    expect(sorted(await store.roomConnections(roomId))).toEqual(sorted([a1, a2, b1]));
    expect(sorted(await store.roomConnections(`spectators:${roomId}`))).toEqual(sorted([a1, a2]));
    return { alice, bob, a1, a2, b1, roomId };
  }

  /** Snapshots the room and its spectators when the first frame of `eventType` reaches `connectionId`. */
  function membershipAtSend(connectionId: string, eventType: string, roomId: string) {
    const seen: { room?: string[]; spectators?: string[] } = {};
    api.onRequest(async ({ connectionId: id, body }) => {
      if (id !== connectionId || body['type'] !== eventType || seen.room) return;
      seen.room = sorted(await store.roomConnections(roomId));
      seen.spectators = sorted(await store.roomConnections(`spectators:${roomId}`));
    });
    return seen;
  }

  describe.each(LEAVE_KINDS)('%s', (kind) => {
    const eventType = `games.event.bigger_dice.${kind}`;

    it('to the user: removes them from the room and its spectators before the send', async () => {
      const { alice, a1, a2, b1, roomId } = await roomWithAliceAndBob();
      const atSend = membershipAtSend(a1, eventType, roomId);

      await deliver(
        GAMES,
        gameEvent(kind, audience.user(alice), { room_id: roomId, user_id: Number(alice), username: 'Alice' }),
      );

      expect(received(a1)).toContain(eventType);
      expect(received(a2)).toContain(eventType);
      expect(atSend).toEqual({ room: [b1], spectators: [] });
      expect(await store.roomConnections(roomId)).toEqual([b1]);
      expect(await store.roomConnections(`spectators:${roomId}`)).toEqual([]);
      expect(await store.roomsOf(a1)).toEqual([]);

      await deliver(GAMES, turnChanged(roomId, 2));

      expect(received(a1)).not.toContain('games.event.bigger_dice.turn_changed');
      expect(received(b1)).toContain('games.event.bigger_dice.turn_changed');
    });

    it('to the room: the leaving user still gets it, and is removed after the send', async () => {
      const { alice, a1, a2, b1, roomId } = await roomWithAliceAndBob();
      const atSend = membershipAtSend(a1, eventType, roomId);

      await deliver(
        GAMES,
        gameEvent(kind, audience.room(roomId), {
          room_id: roomId,
          user_id: Number(alice),
          username: 'Alice',
        }),
      );

      for (const c of [a1, a2, b1]) expect(received(c)).toContain(eventType);
      expect(atSend).toEqual({ room: sorted([a1, a2, b1]), spectators: sorted([a1, a2]) });
      expect(await store.roomConnections(roomId)).toEqual([b1]);
      expect(await store.roomConnections(`spectators:${roomId}`)).toEqual([]);

      await deliver(GAMES, turnChanged(roomId, 2));

      expect(received(a1)).not.toContain('games.event.bigger_dice.turn_changed');
      expect(received(a2)).not.toContain('games.event.bigger_dice.turn_changed');
      expect(received(b1)).toContain('games.event.bigger_dice.turn_changed');
    });
  });

  it('removes the addressed user when a user-targeted leave has no payload.user_id (removed_from_game)', async () => {
    const { alice, a1, a2, b1, roomId } = await roomWithAliceAndBob();

    await deliver(
      GAMES,
      gameEvent('removed_from_game', audience.user(alice), {
        room_id: roomId,
        reason: 'not_selected',
        message: 'You were not selected to play',
      }),
    );

    expect(received(a1)).toContain('games.event.bigger_dice.removed_from_game');
    expect(received(a2)).toContain('games.event.bigger_dice.removed_from_game');
    expect(await store.roomConnections(roomId)).toEqual([b1]);
    expect(await store.roomConnections(`spectators:${roomId}`)).toEqual([]);
  });

  it('removes nobody when a room-audience leave has no payload.user_id', async () => {
    const { a1, a2, b1, roomId } = await roomWithAliceAndBob();

    await deliver(GAMES, gameEvent('player_left', audience.room(roomId), { room_id: roomId, username: 'x' }));

    expect(received(b1)).toContain('games.event.bigger_dice.player_left');
    expect(sorted(await store.roomConnections(roomId))).toEqual(sorted([a1, a2, b1]));
  });

  it('still removes the leaving user when a room-audience leave event has no conversion', async () => {
    const { alice, b1, roomId } = await roomWithAliceAndBob();
    const eventType = 'games.event.checkers.player_left';
    expect(CONVERTED_EVENT_TYPES.has(eventType)).toBe(false);
    const before = api.requests.length;

    const outcome = await deliver(
      GAMES,
      backendEnvelope(eventType, audience.room(roomId), {
        type: 'player_left',
        room_id: roomId,
        user_id: alice,
      }),
    );

    expect(outcome).toMatchObject({ status: 'delivered', recipients: 0 });
    expect(api.requests.length).toBe(before);
    expect(counter('ws_gateway_events_dropped_total', { reason: 'unmapped' })).toBe(1);
    expect(await store.roomConnections(roomId)).toEqual([b1]);
  });
});

describe('audiences', () => {
  it('sends a user audience to every tab of the user and to nobody else', async () => {
    const [alice, bob] = [newUserId(), newUserId()];
    const [a1, a2, b1] = [await connect(alice), await connect(alice), await connect(bob)];

    await deliver(
      GAMES,
      gameEvent(
        'user_muted',
        audience.user(alice),
        { room_id: 'r', target_user_id: 7, target_username: 'M' },
        null,
      ),
    );

    expect(received(a1)).toEqual(['games.event.user_muted']);
    expect(received(a2)).toEqual(['games.event.user_muted']);
    expect(received(b1)).toEqual([]);
  });

  it('sends a users audience to every connection of each listed user, once each', async () => {
    const [alice, bob, carol] = [newUserId(), newUserId(), newUserId()];
    const [a1, a2, b1, c1] = [
      await connect(alice),
      await connect(alice),
      await connect(bob),
      await connect(carol),
    ];
    const roomId = randomUUID();

    const outcome = await deliver(
      GAMES,
      gameEvent('game_starting', audience.users(alice, bob, alice, Number(bob)), {
        room_id: roomId,
        players: [],
      }),
    );

    expect(outcome).toMatchObject({ status: 'delivered', recipients: 3, ok: 3 });
    for (const c of [a1, a2, b1]) {
      expect(received(c)).toEqual(['games.event.bigger_dice.game_starting']);
      expect(api.attempts(c)).toBe(1);
    }
    expect(received(c1)).toEqual([]);
  });

  it('sends a spectators audience to the room’s spectators only', async () => {
    const [player, spectator] = [newUserId(), newUserId()];
    const [p1, s1] = [await connect(player), await connect(spectator)];
    const roomId = randomUUID();
    await joinViaRoomState(player, roomId);
    await joinViaRoomState(spectator, roomId, { spectator: true });

    await deliver(
      GAMES,
      gameEvent('spectator_chat', audience.spectators(roomId), {
        room_id: roomId,
        user_id: Number(spectator),
        username: 'Eve',
        avatar_id: null,
        content: 'gg',
        is_system: false,
        timestamp: '2026-01-10T12:00:00Z',
      }),
    );

    expect(received(s1)).toEqual([
      'games.event.bigger_dice.room_state',
      'games.event.bigger_dice.spectator_chat',
    ]);
    expect(received(p1)).toEqual(['games.event.bigger_dice.room_state']);
  });

  it('sends a lobby message (room audience on chat.events) to lobby subscribers, never to a game room', async () => {
    const lobbyId = String(randomInt(1_000_000, 2 ** 31));
    const [subscriber, gamer, bystander] = [newUserId(), newUserId(), newUserId()];
    const [l1, g1, x1] = [await connect(subscriber), await connect(gamer), await connect(bystander)];
    await store.joinLobby(l1, lobbyId);
    // A game room with the same id as the lobby.
    await joinViaRoomState(gamer, lobbyId);
    expect(await store.roomConnections(lobbyId)).toEqual([g1]);

    await deliver(
      CHAT,
      chatEvent(audience.room(lobbyId), {
        type: 'lobby_message_received',
        message_id: 1042,
        lobby_id: Number(lobbyId),
        sender_id: Number(subscriber),
        sender_username: 'Ann',
        sender_avatar_id: null,
        content: 'Anyone up for Bigger Dice?',
        message_type: 'text',
        created_at: '2026-01-23T18:30:01.825333+00:00',
      }),
    );

    expect(api.delivered(l1)).toEqual([
      {
        type: 'chat.event.lobby_message',
        lobby_id: lobbyId,
        message_id: '1042',
        sender_id: subscriber,
        sender_name: 'Ann',
        content: 'Anyone up for Bigger Dice?',
        sent_at: '2026-01-23T18:30:01.825333Z',
      },
    ]);
    expect(received(g1)).toEqual(['games.event.bigger_dice.room_state']);
    expect(received(x1)).toEqual([]);
  });

  it('sends a broadcast to every open connection, anonymous ones included', async () => {
    const alice = newUserId();
    const [anon, a1] = [await connect(), await connect(alice)];
    const roomId = randomUUID();

    const outcome = await deliver(
      GAMES,
      gameEvent('room_created', audience.broadcast(), {
        room_id: roomId,
        room_name: 'Friday Dice',
        game_type: 'bigger_dice',
        host_id: Number(alice),
        host_username: 'Alice',
        is_password_protected: false,
        player_count: 2,
        allow_spectators: true,
      }),
    );

    expect(outcome).toMatchObject({ status: 'delivered', recipients: 2, ok: 2 });
    expect(received(anon)).toEqual(['games.event.bigger_dice.room_created']);
    expect(received(a1)).toEqual(['games.event.bigger_dice.room_created']);
  });
});

describe('push failures', () => {
  it('removes a connection whose push returns 410 from every key and room, and publishes its departure', async () => {
    const [alice, bob] = [newUserId(), newUserId()];
    const [gone, a2, b1] = [await connect(alice, 'Alice'), await connect(alice, 'Alice'), await connect(bob)];
    const [roomId, lobbyId] = [randomUUID(), String(randomInt(1_000_000, 2 ** 31))];
    await joinViaRoomState(alice, roomId, { spectator: true });
    await joinViaRoomState(bob, roomId);
    await store.joinLobby(gone, lobbyId);
    api.respond(gone, 410);

    const outcome = await deliver(GAMES, turnChanged(roomId, 1));

    expect(outcome).toMatchObject({ recipients: 3, ok: 2, gone: 1, failed: 0 });
    expect(received(a2)).toContain('games.event.bigger_dice.turn_changed');
    expect(received(b1)).toContain('games.event.bigger_dice.turn_changed');
    // Every key of the connection, and its membership of every set.
    expect((await keysUnderPrefix()).filter((k) => k.includes(gone))).toEqual([]);
    expect(await redis.sismember(`${prefix}gw:connections`, gone)).toBe(0);
    expect(await store.connectionsOfUsers([alice])).toEqual([a2]);
    expect(sorted(await store.roomConnections(roomId))).toEqual(sorted([a2, b1]));
    expect(await store.roomConnections(`spectators:${roomId}`)).toEqual([a2]);
    expect(await store.lobbyConnections(lobbyId)).toEqual([]);
    // Alice still has a tab open: still online.
    expect(await redis.sismember(`${prefix}presence:online`, alice)).toBe(1);
    // Alice still plays in the room on her other tab: not a disconnect of the player (docs/decisions.md D10).
    expect(publisher.records.map((r) => [r.topic, r.envelope.event_type, r.key, r.envelope.payload])).toEqual(
      [['system.events', 'system.event.user_disconnected', alice, { connection_id: gone }]],
    );
    expect(counter('ws_gateway_deliveries_total', { result: 'gone' })).toBe(1);

    const attempts = api.attempts(gone);
    await deliver(GAMES, turnChanged(roomId, 2));

    expect(api.attempts(gone)).toBe(attempts);
  });

  it('publishes the departure events once when two deliveries find the same connection gone', async () => {
    const alice = newUserId();
    const gone = await connect(alice, 'Alice');
    const roomId = randomUUID();
    await joinViaRoomState(alice, roomId);
    api.respond(gone, 410);
    // Hold the 410s until both pushes are in flight, so both deliveries see the connection gone.
    let release!: () => void;
    const bothInFlight = new Promise<void>((r) => {
      release = r;
    });
    api.onRequest(async ({ connectionId }) => {
      if (connectionId !== gone) return;
      if (api.attempts(gone) >= 3) release();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([bothInFlight, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
    });

    const outcomes = await Promise.all([
      deliver(GAMES, turnChanged(roomId, 1)),
      deliver(
        GAMES,
        gameEvent('user_muted', audience.user(alice), { room_id: roomId, target_user_id: 7 }, null),
      ),
    ]);

    expect(outcomes.map((o) => (o.status === 'delivered' ? o.gone : -1))).toEqual([1, 1]);
    expect(api.attempts(gone)).toBe(3); // the room_state, then both events
    expect((await keysUnderPrefix()).filter((k) => k.includes(gone))).toEqual([]);
    expect(await redis.sismember(`${prefix}presence:online`, alice)).toBe(0);
    expect(publisher.records.map((r) => r.envelope.event_type).sort()).toEqual([
      'games.command.player_disconnected',
      'presence.event.user_offline',
      'system.event.user_disconnected',
    ]);
  });

  it.each([429, 500, 502, 503])(
    'retries a push answered %i and delivers it when the next try succeeds',
    async (status) => {
      const alice = newUserId();
      const a1 = await connect(alice);
      api.respond(a1, (attempt) => (attempt === 1 ? status : 200));

      const outcome = await deliver(
        GAMES,
        gameEvent('user_muted', audience.user(alice), { room_id: 'r', target_user_id: 7 }, null),
      );

      expect(outcome).toMatchObject({ ok: 1, failed: 0 });
      expect(api.attempts(a1)).toBe(2);
      expect(received(a1)).toEqual(['games.event.user_muted']);
      expect(counter('ws_gateway_deliveries_total', { result: 'ok' })).toBe(1);
    },
  );

  it.each([429, 500, 503])(
    'gives up on a push still answered %i after the bounded retries, and counts it',
    async (status) => {
      const [alice, bob] = [newUserId(), newUserId()];
      const [a1, b1] = [await connect(alice), await connect(bob)];
      api.respond(a1, status);

      const outcome = await deliver(
        GAMES,
        gameEvent('game_starting', audience.users(alice, bob), { room_id: 'r', players: [] }),
      );

      expect(outcome).toMatchObject({ recipients: 2, ok: 1, gone: 0, failed: 1 });
      expect(api.attempts(a1)).toBe(1 + PUSH_MAX_RETRIES);
      expect(received(b1)).toEqual(['games.event.bigger_dice.game_starting']);
      expect(counter('ws_gateway_deliveries_total', { result: 'failed' })).toBe(1);
      expect(counter('ws_gateway_deliveries_total', { result: 'ok' })).toBe(1);
      // A throttled connection is not a gone one: it stays registered.
      expect(await store.connectionsOfUsers([alice])).toEqual([a1]);
      expect(publisher.records).toEqual([]);
    },
  );

  it('does not send a message over 128 KB, and counts it', async () => {
    const alice = newUserId();
    const a1 = await connect(alice);
    const roomId = randomUUID();
    const huge = {
      ...gameRoom(roomId, { players: [Number(alice)] }),
      room_name: 'x'.repeat(MAX_PAYLOAD_BYTES),
    };

    const outcome = await deliver(GAMES, gameEvent('room_state', audience.user(alice), { room: huge }));

    expect(outcome).toMatchObject({ status: 'delivered', recipients: 1, ok: 0, failed: 0 });
    expect(api.attempts(a1)).toBe(0);
    expect(counter('ws_gateway_events_dropped_total', { reason: 'oversize' })).toBe(1);
  });

  it('sends a message just under 128 KB', async () => {
    const alice = newUserId();
    const a1 = await connect(alice);
    const roomId = randomUUID();
    const big = {
      ...gameRoom(roomId, { players: [Number(alice)] }),
      room_name: 'x'.repeat(MAX_PAYLOAD_BYTES - 4096),
    };

    await deliver(GAMES, gameEvent('room_state', audience.user(alice), { room: big }));

    expect(received(a1)).toEqual(['games.event.bigger_dice.room_state']);
    expect(counter('ws_gateway_events_dropped_total', { reason: 'oversize' })).toBe(0);
  });
});

describe('chat events', () => {
  it('fills typing sender_name from the sender’s live session', async () => {
    const [ann, john] = [newUserId(), newUserId()];
    await connect(ann, 'Ann');
    const j1 = await connect(john, 'John');

    await deliver(
      CHAT,
      chatEvent(audience.user(john), {
        type: 'typing_indicator',
        sender_id: Number(ann),
        recipient_id: Number(john),
        is_typing: true,
      }),
    );

    expect(api.delivered(j1)).toEqual([{ type: 'chat.event.typing', sender_id: ann, sender_name: 'Ann' }]);
  });

  it('sends typing with an empty sender_name when the sender has no live session', async () => {
    const [ann, john] = [newUserId(), newUserId()];
    const j1 = await connect(john, 'John');

    await deliver(
      CHAT,
      chatEvent(audience.user(john), {
        type: 'typing_indicator',
        sender_id: Number(ann),
        recipient_id: Number(john),
        is_typing: true,
      }),
    );

    expect(api.delivered(j1)).toEqual([{ type: 'chat.event.typing', sender_id: ann, sender_name: '' }]);
  });

  it('delivers a chat error to the connection named by its correlation token only', async () => {
    const john = newUserId();
    const [j1, j2] = [await connect(john), await connect(john)];

    await deliver(
      CHAT,
      chatEvent(audience.user(john), {
        type: 'error',
        code: 'not_friends',
        message: 'You can only message friends or people who allow messages from everyone',
        socket_id: `${j2}|9`,
      }),
    );
    await deliver(
      CHAT,
      chatEvent(audience.user(john), {
        type: 'error',
        code: 'lobby_not_found',
        message: 'The lobby does not exist',
        socket_id: `${j1}|lobby:3`,
      }),
    );

    expect(api.delivered(j2)).toEqual([
      { type: 'chat.event.message_rejected', reason: 'not_friends', recipient_id: '9' },
    ]);
    expect(api.delivered(j1)).toEqual([
      { type: 'system.error', code: 'lobby_not_found', message: 'The lobby does not exist' },
    ]);
  });

  it('delivers a chat error to every connection of the user when the token’s connection is gone', async () => {
    const john = newUserId();
    const [j1, j2] = [await connect(john), await connect(john)];

    await deliver(
      CHAT,
      chatEvent(audience.user(john), {
        type: 'error',
        code: 'not_friends',
        message: 'nope',
        socket_id: `${newConnectionId()}|9`,
      }),
    );

    for (const c of [j1, j2])
      expect(api.delivered(c)).toEqual([
        { type: 'chat.event.message_rejected', reason: 'not_friends', recipient_id: '9' },
      ]);
  });

  it('remembers the sender of a delivered message_received for mark_read (chat:msg, 7 days)', async () => {
    const [john, ann] = [newUserId(), newUserId()];
    const a1 = await connect(ann);
    const messageId = randomBytes(12).toString('hex');

    await deliver(
      CHAT,
      chatEvent(audience.user(ann), {
        type: 'message_received',
        message_id: messageId,
        sender_id: Number(john),
        sender_username: 'John',
        sender_avatar_id: 17,
        recipient_id: Number(ann),
        content: 'Rematch at 9?',
        message_type: 'text',
        created_at: '2026-01-23T18:29:59.713273689+00:00',
      }),
    );

    expect(api.delivered(a1)).toEqual([
      {
        type: 'chat.event.message_received',
        message_id: messageId,
        sender_id: john,
        sender_name: 'John',
        content: 'Rematch at 9?',
        sent_at: '2026-01-23T18:29:59.713273689Z',
        recipient_id: ann,
      },
    ]);
    expect(await store.chatMessageSenders([messageId])).toEqual([john]);
    const ttl = await redis.ttl(`${prefix}chat:msg:${messageId}`);
    expect(ttl).toBeGreaterThan(7 * 86400 - 60);
    expect(ttl).toBeLessThanOrEqual(7 * 86400);
  });
});

describe('poison records', () => {
  it.each([
    ['not JSON', '{"event_id": '],
    ['not an envelope', '{"hello":"world"}'],
    ['an empty value', ''],
  ])('skips %s and counts it, without throwing', async (_what, value) => {
    const outcome = await deliver(GAMES, value);

    expect(outcome.status).toBe('skipped');
    expect(counter('ws_gateway_events_skipped_total', { topic: GAMES, reason: 'unparseable' })).toBe(1);
  });

  it('delivers the record after a poison one', async () => {
    const alice = newUserId();
    const a1 = await connect(alice);

    await deliver(GAMES, 'garbage');
    await deliver(
      GAMES,
      gameEvent('user_muted', audience.user(alice), { room_id: 'r', target_user_id: 7 }, null),
    );

    expect(received(a1)).toEqual(['games.event.user_muted']);
  });
});

/**
 * A `room_state` whose room carries a value nested `depth` levels deep, as the raw JSON the backend
 * would write: it parses and plans, and cannot be serialised again (JSON.stringify recurses).
 */
function deeplyNested(envelope: Envelope, depth: number): string {
  return JSON.stringify(envelope).replace(
    '"__deep__"',
    `${'{"nested":'.repeat(depth)}{"end":true}${'}'.repeat(depth)}`,
  );
}

describe('poison: records that retrying cannot fix (docs/decisions.md D9)', () => {
  it('skips a room_state nested 5,000 levels deep (serialisation fails), counts it, and delivers the next record', async () => {
    const alice = newUserId();
    const a1 = await connect(alice);
    const roomId = randomUUID();
    const poison = deeplyNested(
      gameEvent('room_state', audience.user(alice), {
        room: { ...gameRoom(roomId, { players: [Number(alice)] }), extra: '__deep__' },
      }),
      5000,
    );

    const outcome = await deliver(GAMES, poison);
    await deliver(
      GAMES,
      gameEvent('user_muted', audience.user(alice), { room_id: 'r', target_user_id: 7 }, null),
    );

    expect(outcome).toMatchObject({ status: 'skipped' });
    expect(counter('ws_gateway_events_skipped_total', { topic: GAMES, reason: 'undeliverable' })).toBe(1);
    expect(received(a1)).toEqual(['games.event.user_muted']);
  });

  it('skips a record whose routing Redis refuses for good (WRONGTYPE), and delivers the next one', async () => {
    const alice = newUserId();
    const a1 = await connect(alice);
    const roomId = randomUUID();
    // Someone else's data under the room's key: every read of its members is refused.
    await redis.set(`${prefix}room:sockets:${roomId}`, 'not a set');

    const outcome = await deliver(GAMES, turnChanged(roomId, 1));
    await deliver(
      GAMES,
      gameEvent('user_muted', audience.user(alice), { room_id: 'r', target_user_id: 7 }, null),
    );

    expect(outcome).toMatchObject({ status: 'skipped' });
    expect(counter('ws_gateway_events_skipped_total', { topic: GAMES, reason: 'undeliverable' })).toBe(1);
    expect(received(a1)).toEqual(['games.event.user_muted']);
  });
});

describe('a retry after a transient failure (docs/decisions.md D9)', () => {
  /** The store, with `method` failing (as a Redis outage would) the first `times` calls. */
  function failingFirst<K extends keyof SessionStore>(method: K, times = 1): SessionStore {
    let left = times;
    return new Proxy(store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (key !== method || typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (left-- > 0) throw new Error('Connection is closed.');
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      },
    });
  }

  function pipelineOver(s: SessionStore): ProcessRecord {
    return createPipeline({
      config,
      store: s,
      lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: prefix }),
      publisher,
      pusher,
      metrics,
      logger: silentLogger,
      pushConcurrency: 8,
      newId: randomUUID,
      now: () => new Date(),
    });
  }

  /** Prepares a record, then runs its delivery step until it succeeds, as the consumer's retry loop does. */
  async function deliverRetrying(p: ProcessRecord, envelope: Envelope, attempts = 5): Promise<RecordOutcome> {
    const prepared = await p.prepare!({
      topic: GAMES,
      partition: 0,
      offset: String(offset++),
      value: JSON.stringify(envelope),
    });
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        return await prepared.deliver();
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  it('does not push again to the recipients that got the frame when the leave after the send failed', async () => {
    const { alice, a1, a2, b1, roomId } = await (async () => {
      const [alice, bob] = [newUserId(), newUserId()];
      const [a1, a2, b1] = [await connect(alice), await connect(alice), await connect(bob)];
      const roomId = randomUUID();
      await joinViaRoomState(alice, roomId);
      await joinViaRoomState(bob, roomId);
      return { alice, a1, a2, b1, roomId };
    })();
    const flaky = pipelineOver(failingFirst('leaveRoom'));

    await deliverRetrying(
      flaky,
      gameEvent('player_left', audience.room(roomId), {
        room_id: roomId,
        user_id: Number(alice),
        username: 'A',
      }),
    );

    for (const c of [a1, a2, b1])
      expect(received(c).filter((t) => String(t).endsWith('.player_left'))).toHaveLength(1);
    expect(await store.roomConnections(roomId)).toEqual([b1]);
  });

  it('does not push again to anyone when cleaning up a gone connection (410) failed', async () => {
    const [alice, bob] = [newUserId(), newUserId()];
    const [gone, a2, b1] = [await connect(alice), await connect(alice), await connect(bob)];
    const roomId = randomUUID();
    await joinViaRoomState(alice, roomId);
    await joinViaRoomState(bob, roomId);
    api.respond(gone, 410);
    const flaky = pipelineOver(failingFirst('removeConnection'));
    const before = [gone, a2, b1].map((c) => api.attempts(c));

    const outcome = await deliverRetrying(flaky, turnChanged(roomId, 1));

    expect([gone, a2, b1].map((c, i) => api.attempts(c) - before[i]!)).toEqual([1, 1, 1]);
    expect(outcome).toMatchObject({ status: 'delivered', recipients: 3, ok: 2, gone: 1 });
    // The retry finished the cleanup.
    expect(sorted(await store.roomConnections(roomId))).toEqual(sorted([a2, b1]));
    expect(await store.connectionsOfUsers([alice])).toEqual([a2]);
  });
});
