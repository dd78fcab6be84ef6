/**
 * `$default` (handlers/default.ts) invoked directly with API Gateway message events: every client
 * message type of lib/protocol/client.ts's table, and every error a frame can earn. The reply is
 * the function's route response (its `body`); what was published, pushed and stored is read from
 * the in-memory adapters.
 */
import {
  CLIENT_MESSAGE_TABLE,
  CLIENT_MESSAGE_TYPES,
  type ClientMessageType,
  type LocalMessageType,
  requiresAuthentication,
} from '../../../lib/protocol/client';
import { TOPICS } from '../../../lib/protocol/envelope';
import { clientMessageFixture } from '../../fixtures/load-client-messages';
import {
  lambdaContext,
  MANAGEMENT_ENDPOINT,
  type WebSocketClient,
  webSocket,
} from '../../support/lambda-events';
import { KIND_CASES } from '../protocol/kind-cases';
import { connected, createHarness, type Harness, identityOf, newUserId, replyOf, tokenFor } from './harness';

let h: Harness;
beforeEach(() => {
  h = createHarness();
});

const ctx = () => lambdaContext('default');
const send = (socket: WebSocketClient, frame: string | object) => h.message(socket.message(frame), ctx());
const errorOf = (result: { body: string }) => {
  const frame = replyOf(result);
  expect(frame.type).toBe('system.error');
  return { code: frame.code, message: frame.message };
};

const FORWARDED = CLIENT_MESSAGE_TABLE.flatMap((row) =>
  row.route.kind === 'forward' ? [{ type: row.type, topic: row.route.topic }] : [],
);

describe('$default: forwarded commands (one case per row of the client message table)', () => {
  it.each(FORWARDED)(
    '$type → one command on $topic, with the sender as actor, and no reply',
    async ({ type, topic }) => {
      const userId = newUserId();
      const socket = await connected(h, userId);
      h.fakes.publisher.clear();

      const result = await send(socket, { ...clientMessageFixture(type).frame, request_id: `req-${type}` });

      expect(result).toEqual({ statusCode: 200, body: '' });
      expect(h.fakes.publisher.records.map((r) => r.topic)).toEqual([topic]);
      expect(h.fakes.publisher.envelopes(topic)[0]).toMatchObject({
        event_type: type,
        correlation_id: `req-${type}`,
        producer: 'ws_gateway',
        actor: { user_id: userId, username: identityOf(userId).username, roles: ['user'] },
      });
    },
  );

  it('subscribes the sender to the lobby of a send_lobby_message', async () => {
    const socket = await connected(h, newUserId());

    await send(socket, clientMessageFixture('chat.command.send_lobby_message').frame);

    expect(await h.deps.store.lobbyConnections('1')).toEqual([socket.connectionId]);
  });
});

/** What each local type answers on an authenticated connection; typed so a new local row must be added here. */
const LOCAL_CASES: Record<LocalMessageType, (socket: WebSocketClient, userId: string) => Promise<void>> = {
  'system.authenticate': async (socket, userId) => {
    // A second tab of the same user: authenticated again, user_connected published, no second user_online.
    const other = webSocket();
    await h.connect(other.connect(), lambdaContext('connect'));
    h.fakes.publisher.clear();
    const reply = replyOf(await send(other, { type: 'system.authenticate', token: tokenFor(userId) }));
    expect(reply).toMatchObject({ type: 'system.authenticated', user_id: userId, username: `user${userId}` });
    expect(h.fakes.publisher.envelopes(TOPICS.systemEvents).map((e) => e.event_type)).toEqual([
      'system.event.user_connected',
    ]);
    expect(h.fakes.publisher.envelopes(TOPICS.presence)).toEqual([]);
    expect((await h.deps.store.connectionsOfUsers([userId])).sort()).toEqual(
      [socket.connectionId, other.connectionId].sort(),
    );
  },
  'system.heartbeat': async (socket) => {
    expect(replyOf(await send(socket, { type: 'system.heartbeat' }))).toMatchObject({
      type: 'system.heartbeat_ack',
    });
  },
  'system.sync_state': async (socket) => {
    expect(replyOf(await send(socket, { type: 'system.sync_state' }))).toEqual({
      type: 'system.state_snapshot',
      active_rooms: [],
      game_states: {},
      unread_messages: 0,
    });
  },
  'chat.command.join_lobby': async (socket) => {
    expect(await send(socket, { type: 'chat.command.join_lobby', lobby_id: '12' })).toEqual({
      statusCode: 200,
      body: '',
    });
    expect(await h.deps.store.lobbyConnections('12')).toEqual([socket.connectionId]);
  },
  'chat.command.leave_lobby': async (socket) => {
    await send(socket, { type: 'chat.command.join_lobby', lobby_id: '12' });
    expect(await send(socket, { type: 'chat.command.leave_lobby', lobby_id: '12' })).toEqual({
      statusCode: 200,
      body: '',
    });
    expect(await h.deps.store.lobbyConnections('12')).toEqual([]);
  },
};

describe('$default: the types the gateway answers itself', () => {
  it.each(Object.keys(LOCAL_CASES) as LocalMessageType[])('%s', async (type) => {
    const userId = newUserId();
    const socket = await connected(h, userId);
    h.fakes.publisher.clear();

    await LOCAL_CASES[type](socket, userId);

    if (type !== 'system.authenticate') expect(h.fakes.publisher.records).toEqual([]);
  });

  it('covers every type of the table between the two lists', () => {
    const covered = [...FORWARDED.map((f) => f.type), ...Object.keys(LOCAL_CASES)];
    expect([...covered].sort()).toEqual([...CLIENT_MESSAGE_TYPES].sort());
  });

  it('authenticates with a token: system.authenticated, then user_connected and user_online published', async () => {
    const userId = newUserId();
    const socket = await connected(h);

    const reply = replyOf(await send(socket, { type: 'system.authenticate', token: tokenFor(userId) }));

    expect(reply).toMatchObject({ type: 'system.authenticated', user_id: userId, roles: ['user'] });
    expect(h.fakes.publisher.envelopes(TOPICS.systemEvents)).toEqual([
      expect.objectContaining({ event_type: 'system.event.user_connected' }),
    ]);
    expect(h.fakes.publisher.envelopes(TOPICS.presence)).toEqual([
      expect.objectContaining({ event_type: 'presence.event.user_online' }),
    ]);
  });

  it('pushes system.welcome before the first reply when the client speaks first', async () => {
    const socket = await connected(h);

    const reply = await send(socket, { type: 'system.heartbeat' });

    expect(replyOf(reply).type).toBe('system.heartbeat_ack');
    expect(h.fakes.api.delivered(socket.connectionId)).toEqual([
      expect.objectContaining({ type: 'system.welcome', connection_id: socket.connectionId }),
    ]);
    expect(h.fakes.endpoints).toEqual([MANAGEMENT_ENDPOINT]);
  });
});

describe('$default: errors, each one system.error frame and nothing forwarded', () => {
  const PRE_AUTH_REFUSED = CLIENT_MESSAGE_TYPES.filter(requiresAuthentication);

  it.each(PRE_AUTH_REFUSED)(
    '%s before authentication: MESSAGE_ERROR "Connection not authenticated"',
    async (type) => {
      const socket = await connected(h);

      const result = await send(socket, clientMessageFixture(type).frame);

      expect(errorOf(result)).toEqual({ code: 'MESSAGE_ERROR', message: 'Connection not authenticated' });
      expect(h.fakes.publisher.records).toEqual([]);
    },
  );

  it('system.sync_state before authentication: the same error', async () => {
    const socket = await connected(h);
    expect(errorOf(await send(socket, { type: 'system.sync_state' }))).toEqual({
      code: 'MESSAGE_ERROR',
      message: 'Connection not authenticated',
    });
  });

  it.each([
    ['malformed JSON', '{"type":"system.heartbeat"'],
    ['a JSON array', '[{"type":"system.heartbeat"}]'],
    ['no type', '{"room_id":"r1"}'],
    ['an unknown type', '{"type":"games.command.teleport","room_id":"r1"}'],
    ['a type that is not a string', '{"type":7}'],
  ])('%s: INVALID_FORMAT', async (_what, frame) => {
    const socket = await connected(h, newUserId());
    h.fakes.publisher.clear();

    expect(errorOf(await send(socket, frame))).toEqual({
      code: 'INVALID_FORMAT',
      message: 'Invalid message format',
    });
    expect(h.fakes.publisher.records).toEqual([]);
  });

  /** Each forwarded row with fields, its first field set to a JSON value of the wrong type for its kind. */
  const WRONG_TYPES = CLIENT_MESSAGE_TABLE.flatMap((row) => {
    const entry = Object.entries(row.fields)[0];
    if (row.route.kind !== 'forward' || entry === undefined) return [];
    const [field, kind] = entry;
    return [{ type: row.type as ClientMessageType, field, kind, value: KIND_CASES[kind].invalid[0] }];
  });

  it.each(WRONG_TYPES)(
    '$type with $field = $value ($kind): INVALID_FORMAT',
    async ({ type, field, value }) => {
      const socket = await connected(h, newUserId());
      h.fakes.publisher.clear();

      const result = await send(socket, { ...clientMessageFixture(type).frame, [field]: value });

      expect(errorOf(result)).toEqual({ code: 'INVALID_FORMAT', message: 'Invalid message format' });
      expect(h.fakes.publisher.records).toEqual([]);
    },
  );

  it('a frame over WS_MAX_MESSAGE_SIZE: MESSAGE_TOO_LARGE', async () => {
    h = createHarness({ WS_MAX_MESSAGE_SIZE: '1024' });
    const socket = await connected(h, newUserId());
    h.fakes.publisher.clear();

    const result = await send(socket, {
      type: 'games.command.player_chat',
      room_id: 'r1',
      content: 'x'.repeat(1100),
    });

    expect(errorOf(result)).toEqual({ code: 'MESSAGE_TOO_LARGE', message: 'Message too large' });
    expect(h.fakes.publisher.records).toEqual([]);
  });

  it('past the rate-limit burst: RATE_LIMIT, and the frame is dropped', async () => {
    h = createHarness({ WS_RATE_LIMIT_BURST: '3', WS_RATE_LIMIT_PER_SEC: '0' });
    const socket = await connected(h, newUserId()); // the authenticate frame takes one token
    h.fakes.publisher.clear();
    const roll = { type: 'games.command.bigger_dice.roll', room_id: 'r1' };

    const results = [await send(socket, roll), await send(socket, roll), await send(socket, roll)];

    expect(results.map((r) => r.body)).toEqual(['', '', expect.stringContaining('RATE_LIMIT')]);
    expect(errorOf(results[2]!)).toEqual({ code: 'RATE_LIMIT', message: 'Rate limit exceeded' });
    expect(h.fakes.publisher.records).toHaveLength(2);
  });

  it('Kafka failing: MESSAGE_ERROR "Kafka error: the command could not be forwarded"', async () => {
    const socket = await connected(h, newUserId());
    h.fakes.publisher.fail(new Error('KafkaJSNumberOfRetriesExceeded'));

    const result = await send(socket, clientMessageFixture('games.command.create_room').frame);

    expect(errorOf(result)).toEqual({
      code: 'MESSAGE_ERROR',
      message: 'Kafka error: the command could not be forwarded',
    });
  });

  it('Kafka not acknowledging within KAFKA_PUBLISH_TIMEOUT_MS: the same error, once the deadline passed', async () => {
    h = createHarness({ KAFKA_PUBLISH_TIMEOUT_MS: '100' });
    const socket = await connected(h, newUserId());
    h.fakes.publisher.hang();

    const result = await send(socket, clientMessageFixture('games.command.join_room').frame);

    expect(errorOf(result)).toEqual({
      code: 'MESSAGE_ERROR',
      message: 'Kafka error: the command could not be forwarded',
    });
    expect(h.fakes.publisher.records.filter((r) => r.topic === TOPICS.gamesCommands)).toEqual([]);
  });

  it('Kafka failing during system.authenticate: still authenticated, the lost events counted', async () => {
    const socket = await connected(h);
    h.fakes.publisher.fail();

    const reply = replyOf(await send(socket, { type: 'system.authenticate', token: tokenFor(newUserId()) }));

    expect(reply.type).toBe('system.authenticated');
    expect(h.count('ws_gateway_system_events_lost_total', { during: 'authenticate' })).toBe(2);
  });

  it('an invalid token in system.authenticate: MESSAGE_ERROR naming the reason, nothing stored', async () => {
    const socket = await connected(h);

    const result = await send(socket, { type: 'system.authenticate', token: `${tokenFor('5')}x` });

    expect(errorOf(result)).toEqual({
      code: 'MESSAGE_ERROR',
      message: 'Authentication failed: Invalid token: InvalidSignature',
    });
    expect(await h.deps.store.connectionsOfUsers(['5'])).toEqual([]);
  });

  it('more than 100 message_ids in one mark_read: MESSAGE_ERROR, counted as a limit', async () => {
    const socket = await connected(h, newUserId());
    h.fakes.publisher.clear();
    const ids = Array.from({ length: 101 }, (_, i) => `m${i}`);

    const result = await send(socket, {
      type: 'chat.command.mark_read',
      message_ids: ids,
      other_user_id: '9',
    });

    expect(errorOf(result)).toEqual({ code: 'MESSAGE_ERROR', message: 'Too many message_ids (at most 100)' });
    expect(h.count('ws_gateway_limit_rejections_total', { limit: 'mark_read_ids' })).toBe(1);
    expect(h.fakes.publisher.records).toEqual([]);
  });

  it('a frame from a connection the store has no record of: closed through the Management API, no reply', async () => {
    const socket = webSocket(); // never went through $connect here: its state was lost

    const result = await send(socket, { type: 'games.command.list_rooms' });

    expect(result).toEqual({ statusCode: 200, body: '' });
    expect(h.fakes.api.closed).toEqual([socket.connectionId]);
    expect(h.count('ws_gateway_lost_connections_closed_total')).toBe(1);
  });

  it('a binary frame: ignored, no reply, counted', async () => {
    const socket = await connected(h, newUserId());
    h.fakes.publisher.clear();

    const result = await h.message(socket.binary(Buffer.from('{"type":"system.heartbeat"}')), ctx());

    expect(result).toEqual({ statusCode: 200, body: '' });
    expect(h.count('ws_gateway_frames_ignored_total', { reason: 'binary' })).toBe(1);
    expect(h.fakes.publisher.records).toEqual([]);
  });

  it('Redis failing: MESSAGE_ERROR "Service temporarily unavailable", counted', async () => {
    const socket = await connected(h, newUserId());
    h.fakes.store.faults.fail();

    const result = await send(socket, clientMessageFixture('games.command.leave_room').frame);

    expect(errorOf(result)).toEqual({ code: 'MESSAGE_ERROR', message: 'Service temporarily unavailable' });
    expect(h.count('ws_gateway_dependency_errors_total', { dependency: 'redis' })).toBe(1);
  });

  it('Redis frozen: a heartbeat is still acknowledged, the refresh skipped and counted', async () => {
    const socket = await connected(h, newUserId());
    h.fakes.store.faults.hang();

    const reply = await send(socket, { type: 'system.heartbeat' });

    expect(replyOf(reply).type).toBe('system.heartbeat_ack');
    expect(h.count('ws_gateway_heartbeat_refresh_skipped_total')).toBe(1);
  });
});
