/**
 * The world of the consumer benchmarks (bench/consumer.ts, bench/consumer-process.ts): users with one
 * connection each, in rooms of `roomSize`, and a backlog of backend-format events to them.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { silentLogger } from '../lib/logger';
import type { Envelope } from '../lib/protocol/envelope';
import { createRedisClient } from '../lib/redis';
import { createSessionStore } from '../lib/store/session-store';
import { audience, gameEvent, gameRoom } from '../test/support/backend';

export const TOPIC = 'games.events';

/** Users `u0…`, one connection each, grouped into rooms of `roomSize` by a user-targeted room_state. */
export interface World {
  readonly users: readonly string[];
  readonly rooms: readonly string[];
}

/** `connections` users (rounded down to whole rooms) in rooms of `roomSize`. */
export function worldOf(connections: number, roomSize: number): World {
  const rooms = Array.from({ length: Math.max(1, Math.floor(connections / roomSize)) }, () => randomUUID());
  const users = Array.from({ length: rooms.length * roomSize }, (_, i) => String(1_000_000 + i));
  return { users, rooms };
}

export const roomOfUser = (world: World, i: number, roomSize: number) =>
  world.rooms[Math.floor(i / roomSize)]!;

/** The event mix, per 20: 9 room events, 9 user events, 2 membership events (idempotent). */
export function envelopes(world: World, args: { events: number; roomSize: number }): Envelope[] {
  const out: Envelope[] = [];
  for (let n = 0; n < args.events; n++) {
    const slot = n % 20;
    const i = (n * 7919) % world.users.length;
    const user = world.users[i]!;
    const roomId = roomOfUser(world, i, args.roomSize);
    if (slot < 9) {
      out.push(
        gameEvent('turn_changed', audience.room(roomId), {
          room_id: roomId,
          current_turn: 1,
          turn_number: n,
        }),
      );
    } else if (slot < 18) {
      out.push(gameEvent('game_starting', audience.user(user), { room_id: roomId, players: [] }));
    } else {
      out.push(
        gameEvent('room_state', audience.user(user), { room: gameRoom(roomId, { players: [+user] }) }),
      );
    }
  }
  return out;
}

export async function produceBacklog(brokers: string, list: readonly Envelope[]): Promise<void> {
  const kafka = new Kafka({ clientId: 'bench-backend', brokers: [brokers], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  try {
    for (let i = 0; i < list.length; i += 1000) {
      const messages = list.slice(i, i + 1000).map((e) => ({ key: null, value: JSON.stringify(e) }));
      await producer.sendBatch({ topicMessages: [{ topic: TOPIC, messages }] });
    }
  } finally {
    await producer.disconnect();
  }
}

export interface WorldEnv {
  readonly redisUrl: string;
  readonly keyPrefix: string;
}

/** Registers and authenticates every user's connection and joins it to its room. */
export async function populate(env: WorldEnv, world: World, roomSize: number): Promise<void> {
  const redis = createRedisClient({ url: env.redisUrl, cluster: false, logger: silentLogger });
  const store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: env.keyPrefix });
  const now = new Date();
  try {
    for (let start = 0; start < world.users.length; start += 200) {
      await Promise.all(
        world.users.slice(start, start + 200).map(async (userId, k) => {
          const i = start + k;
          const connectionId = `L0SM9cOFvHcC${i.toString(36).padStart(4, '0')}=`;
          await store.registerConnection(connectionId, { connectedAt: now, bound: null });
          await store.authenticate(
            connectionId,
            { userId, username: `user${userId}`, roles: ['user'] },
            null,
            now,
            now.toISOString(),
          );
          await store.joinRoom(userId, roomOfUser(world, i, roomSize), { spectator: false });
        }),
      );
    }
  } finally {
    await redis.quit();
  }
}

/** Pushes the backlog causes: room events to every member, the others to one connection. */
export const pushesPerEvent = (roomSize: number) => (9 * roomSize + 9 + 2) / 20;
