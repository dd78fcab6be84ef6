/**
 * The dev backend on the Kafka protocol: a command as the gateway publishes it goes in on
 * `chat.commands` / `games.commands` / `gateway.presence`, the platform-format events come out on
 * `chat.events` / `games.events` / `system.events`. It runs on a Kafka mock cluster of its own: on
 * the run's shared topics it would answer other tests' commands.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../lib/config';
import { createKafka } from '../../lib/kafka/client';
import { createLogger } from '../../lib/logger';
import type { Envelope, JsonObject } from '../../lib/protocol/envelope';
import { createChat } from '../../scripts/dev-backend/chat';
import { createPresence } from '../../scripts/dev-backend/presence';
import { createRooms } from '../../scripts/dev-backend/rooms';
import { runDevBackend } from '../../scripts/dev-backend/service';
import { type FakeBackend, startBackend } from '../support/backend';
import { type KafkaReader, startKafkaReader } from '../support/kafka';
import { type RunningService, startKafkaMock } from '../support/services';

jest.setTimeout(60_000);

let mock: RunningService;
let producer: FakeBackend;
let reader: KafkaReader;
const controller = new AbortController();
let running: Promise<void>;

/** A command envelope exactly as the gateway publishes it. */
function gatewayCommand(eventType: string, userId: string, username: string, payload: JsonObject): Envelope {
  return {
    event_id: randomUUID(),
    event_type: eventType,
    timestamp: new Date().toISOString(),
    correlation_id: null,
    producer: 'ws_gateway',
    actor: { user_id: userId, username, roles: ['user'] },
    audience: { type: 'user', user_ids: [], room_id: null, game_id: null },
    payload,
  };
}

beforeAll(async () => {
  mock = await startKafkaMock();
  const brokers = [mock.address];
  const logger = createLogger({ level: 'silent' });
  const kafka = createKafka(loadConfig({ KAFKA_BROKERS: mock.address }).kafka, logger);
  let ready!: () => void;
  const joined = new Promise<void>((r) => {
    ready = r;
  });
  running = runDevBackend({
    kafka,
    logger,
    chat: createChat(),
    rooms: createRooms(),
    presence: createPresence(),
    groupId: 'dev-backend-test',
    fromBeginning: true,
    signal: controller.signal,
    onReady: ready,
  });
  [producer, reader] = await Promise.all([
    startBackend({ brokers }),
    startKafkaReader({ topics: ['chat.events', 'games.events', 'system.events'], brokers }),
    joined,
  ]);
}, 90_000);

afterAll(async () => {
  controller.abort();
  await running?.catch(() => undefined);
  await reader?.stop();
  await producer?.stop();
  await mock?.stop();
});

it('answers a direct message with message_received to the recipient and the sender', async () => {
  await producer.produce(
    'chat.commands',
    gatewayCommand('chat.command.send_message', '4', 'John', {
      type: 'send_message',
      sender_id: 4,
      recipient_id: 9,
      content: 'Rematch at 9?',
      socket_id: 'conn-1|9',
    }),
  );
  const toAnn = await reader.waitFor(
    (r) => r.topic === 'chat.events' && r.value.audience.user_ids[0] === '9',
  );
  const toJohn = await reader.waitFor(
    (r) => r.topic === 'chat.events' && r.value.audience.user_ids[0] === '4',
  );
  expect(toAnn.value).toMatchObject({
    event_type: 'chat.event',
    producer: 'blazing_sun',
    correlation_id: null,
    actor: { user_id: '0', username: 'system', socket_id: '', roles: [] },
    audience: { type: 'user', user_ids: ['9'], room_id: null, game_id: null },
    payload: {
      type: 'message_received',
      sender_id: 4,
      sender_username: 'John',
      recipient_id: 9,
      content: 'Rematch at 9?',
    },
  });
  expect(toJohn.value.payload).toEqual(toAnn.value.payload);
});

it('answers create_room with a broadcast room_created and a user-targeted room_state, keyed by room', async () => {
  await producer.produce(
    'games.commands',
    gatewayCommand('games.command.create_room', '4', 'John', {
      game_type: 'tic_tac_toe',
      room_name: 'Kafka room',
    }),
  );
  const created = await reader.waitFor((r) => r.value.event_type === 'games.event.tic_tac_toe.room_created');
  const roomId = created.value.payload['room_id'] as string;
  expect(created.value.audience.type).toBe('broadcast');
  expect(created.key).toBe(roomId);
  const state = await reader.waitFor((r) => r.value.event_type === 'games.event.tic_tac_toe.room_state');
  expect(state.value.audience).toEqual({ type: 'user', user_ids: ['4'], room_id: null, game_id: null });
  expect(state.value.payload).toMatchObject({
    type: 'room_state',
    room: { room_id: roomId, host_id: 4, lobby: [{ user_id: 4 }] },
  });
});

it('rebroadcasts gateway presence on system.events and skips records it cannot parse', async () => {
  await producer.produce('gateway.presence', gatewayCommand('presence.event.user_online', '12', 'Bob', {}));
  const online = await reader.waitFor((r) => r.topic === 'system.events' && r.value.actor.user_id === '12');
  expect(online.value).toMatchObject({
    event_type: 'presence.event.user_online',
    audience: { type: 'broadcast' },
  });
  await producer.produce('games.commands', { not: 'an envelope' } as unknown as Envelope);
  await producer.produce(
    'games.commands',
    gatewayCommand('games.command.list_rooms', '12', 'Bob', { game_type: 'tic_tac_toe' }),
  );
  const list = await reader.waitFor((r) => r.value.event_type === 'games.event.room_list');
  expect(list.value.payload['rooms']).toMatchObject([{ room_name: 'Kafka room', host_name: 'John' }]);
});
