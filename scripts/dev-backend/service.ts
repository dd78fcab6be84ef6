/**
 * The dev backend as a service: one kafkajs consumer (through the project's Kafka client) on the
 * command topics and the gateway's presence topics, records handled one at a time in arrival order
 * (the handlers keep their state in memory), each record's events produced as one batch before the
 * next record is taken.
 */
import { type Kafka, Partitioners } from 'kafkajs';
import { parseEnvelope } from '../../lib/events/parse';
import type { Logger } from '../../lib/logger';
import { TOPICS } from '../../lib/protocol/envelope';
import type { ChatHandler } from './chat';
import type { OutboundEvent } from './envelope';
import type { PresenceHandler } from './presence';
import type { RoomsHandler } from './rooms';

export const DEV_BACKEND_TOPICS = [
  TOPICS.chatCommands,
  TOPICS.gamesCommands,
  TOPICS.presence,
  TOPICS.systemEvents,
] as const;

export interface DevBackendOptions {
  readonly kafka: Kafka;
  readonly logger: Logger;
  readonly chat: ChatHandler;
  readonly rooms: RoomsHandler;
  readonly presence: PresenceHandler;
  readonly groupId: string;
  /** Read each topic from its start (a fresh embedded cluster) or only what arrives from now on. */
  readonly fromBeginning: boolean;
  readonly signal: AbortSignal;
  readonly onReady?: () => void;
}

/** What one consumed record produces; pure dispatch on the topic. */
export function eventsFor(
  topic: string,
  value: Buffer | string | null,
  { chat, rooms, presence }: Pick<DevBackendOptions, 'chat' | 'rooms' | 'presence'>,
): OutboundEvent[] | { skipped: string } {
  const parsed = parseEnvelope(value);
  if (!parsed.ok) return { skipped: parsed.reason };
  const env = parsed.envelope;
  if (topic === TOPICS.chatCommands) return chat.handle(env);
  if (topic === TOPICS.gamesCommands) return rooms.handle(env);
  return presence.handle(topic, env);
}

const MAX_RESTARTS = 5;

/** Resolves when `signal` aborts; rejects after {@link MAX_RESTARTS} crashes in a row. */
export async function runDevBackend(opts: DevBackendOptions): Promise<void> {
  let failures = 0;
  for (;;) {
    try {
      await session(opts, () => {
        failures = 0;
      });
      return;
    } catch (err) {
      // The mock cluster occasionally fails a group join; a new consumer gets past it.
      if (opts.signal.aborted || ++failures > MAX_RESTARTS) throw err;
      opts.logger.warn('dev backend consumer crashed, restarting', { attempt: failures, err });
      await new Promise((r) => setTimeout(r, 500 * failures));
    }
  }
}

async function session(opts: DevBackendOptions, joined: () => void): Promise<void> {
  const { kafka, logger, signal } = opts;
  const producer = kafka.producer({
    allowAutoTopicCreation: true,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const consumer = kafka.consumer({
    groupId: opts.groupId,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: true,
  });
  let crashed: unknown;
  let finish!: () => void;
  const finished = new Promise<void>((r) => {
    finish = r;
  });
  const onAbort = () => finish();
  signal.addEventListener('abort', onAbort, { once: true });
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined();
    opts.onReady?.();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) {
      crashed = e.payload.error;
      finish();
    }
  });
  try {
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topics: [...DEV_BACKEND_TOPICS], fromBeginning: opts.fromBeginning });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const result = eventsFor(topic, message.value, opts);
        if (!Array.isArray(result)) {
          logger.warn('record skipped', { topic, partition, offset: message.offset, reason: result.skipped });
          return;
        }
        if (result.length === 0) return;
        logger.debug('answering', {
          topic,
          offset: message.offset,
          events: result.map((e) => e.envelope.event_type),
        });
        const byTopic = new Map<string, { key: string; value: string }[]>();
        for (const e of result) {
          const list = byTopic.get(e.topic) ?? [];
          list.push({ key: e.key, value: JSON.stringify(e.envelope) });
          byTopic.set(e.topic, list);
        }
        await producer.sendBatch({
          topicMessages: [...byTopic].map(([t, messages]) => ({ topic: t, messages })),
        });
      },
    });
    if (signal.aborted) finish();
    await finished;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  }
  if (crashed !== undefined) throw crashed;
}
