/**
 * A fake of the platform backend (blazing_sun) on the Kafka side: builds envelopes exactly as the
 * backend writes them (docs/events.md) and produces them to the mock cluster the way it does — no
 * key, one JSON document per record.
 *
 * Backend conventions reproduced here: `producer: "blazing_sun"`, `correlation_id: null`, the system
 * actor `{"user_id":"0","username":"system","socket_id":"","roles":[]}`, timestamps from chrono's
 * `to_rfc3339()` (nanoseconds and `+00:00`), a payload tagged with its inner `type`, integer ids in
 * payloads, and the audience constructors `user(id)`, `room(id)`, `spectators(room)` (room id in
 * `game_id`), `broadcast()`, plus `users(...)`.
 *
 * Topics are shared by every test file of a run: use ids (users, rooms) unique to the test.
 */
import { Kafka, logLevel, type Message, type Producer } from 'kafkajs';
import type { Audience, Envelope, JsonObject } from '../../lib/protocol/envelope';

import { backendEnvelope, backendTimestamp } from '../../scripts/dev-backend/envelope';

// The backend's envelope, audiences and timestamps (docs/events.md), shared with the dev backend.
export {
  audience,
  backendEnvelope,
  backendTimestamp,
  SYSTEM_ACTOR,
} from '../../scripts/dev-backend/envelope';

/**
 * A games event as the backend writes it, payload tagged `{"type": base, …}`: typed
 * (`publish_game_event_typed`) it is `games.event.<gameType>.<base>`; with `gameType: null`
 * (`error`, `room_list`, `user_muted` …) it is `games.event.<base>`.
 */
export function gameEvent(
  base: string,
  to: Audience,
  payload: JsonObject,
  gameType: 'bigger_dice' | 'tic_tac_toe' | null = 'bigger_dice',
): Envelope {
  const eventType = gameType === null ? `games.event.${base}` : `games.event.${gameType}.${base}`;
  return backendEnvelope(eventType, to, { type: base, ...payload });
}

/** A chat event (`event_type` `chat.event`, the kind in `payload.type`). */
export function chatEvent(to: Audience, payload: JsonObject & { type: string }): Envelope {
  return backendEnvelope('chat.event', to, payload);
}

/** A minimal `GameRoom` as the backend serialises it in `room_state`. */
export function gameRoom(
  roomId: string,
  opts: { players?: number[]; spectators?: number[]; name?: string } = {},
): JsonObject {
  const player = (id: number): JsonObject => ({
    user_id: id,
    username: `user${id}`,
    avatar_id: null,
    score: 0,
    is_ready: false,
    joined_at: backendTimestamp(),
  });
  const spectators = opts.spectators ?? [];
  return {
    room_id: roomId,
    room_name: opts.name ?? `Room ${roomId.slice(0, 8)}`,
    game_type: 'bigger_dice',
    status: 'waiting',
    host_id: opts.players?.[0] ?? 1,
    players: [],
    lobby: (opts.players ?? []).map(player),
    banned_users: [],
    spectators,
    current_turn: null,
    turn_number: 0,
    created_at: backendTimestamp(),
    is_password_protected: false,
    player_count: 2,
    allow_spectators: true,
    max_spectators: 10,
    spectators_data: spectators.map((id) => ({
      user_id: id,
      username: `user${id}`,
      avatar_id: null,
      joined_at: backendTimestamp(),
    })),
  };
}

export interface ProduceOptions {
  /** Pin the record to a partition (the backend lets the partitioner choose; tests pin to reason about order). */
  readonly partition?: number;
}

export interface FakeBackend {
  /**
   * Produces one envelope, unkeyed. Calls made in the same tick go out as one batch; batches are sent
   * one after another, so records keep their call order within each partition. Resolves once the
   * broker acknowledged the record.
   */
  produce(topic: string, envelope: Envelope, opts?: ProduceOptions): Promise<void>;
  stop(): Promise<void>;
}

interface Pending {
  readonly topic: string;
  readonly message: Message;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

function brokersFromEnv(): string[] {
  const raw = process.env.KAFKA_BROKERS;
  if (!raw) throw new Error('KAFKA_BROKERS is not set (the jest global setup exports it)');
  return raw.split(',').map((b) => b.trim());
}

/** Connects a kafkajs producer to the mock cluster (topics are auto-created with 4 partitions). */
export async function startBackend({
  brokers = brokersFromEnv(),
}: {
  brokers?: readonly string[];
} = {}): Promise<FakeBackend> {
  const kafka = new Kafka({
    clientId: 'fake-blazing-sun',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries: 8 },
  });
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();

  let queue: Pending[] = [];
  let scheduled = false;
  let sending: Promise<void> = Promise.resolve();

  const flush = async (): Promise<void> => {
    scheduled = false;
    const batch = queue;
    queue = [];
    const byTopic = new Map<string, Message[]>();
    for (const p of batch) {
      const list = byTopic.get(p.topic) ?? [];
      list.push(p.message);
      byTopic.set(p.topic, list);
    }
    try {
      await producer.sendBatch({
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      for (const p of batch) p.resolve();
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  };

  return {
    produce(topic, envelope, opts = {}) {
      return new Promise<void>((resolve, reject) => {
        queue.push({
          topic,
          message: {
            key: null,
            value: JSON.stringify(envelope),
            ...(opts.partition === undefined ? {} : { partition: opts.partition }),
          },
          resolve,
          reject,
        });
        if (!scheduled) {
          scheduled = true;
          // The next batch leaves only after the previous one was acknowledged: call order is kept.
          sending = sending.then(() => new Promise<void>((r) => setImmediate(() => flush().then(r))));
        }
      });
    },
    async stop() {
      await sending;
      await producer.disconnect();
    },
  };
}
