/**
 * Reads back what the gateway produced, for integration and e2e tests: a kafkajs consumer in its own
 * group, from the beginning of each topic, collecting every record as `{topic, partition, key, value}`
 * with the value parsed as JSON.
 *
 * Topics are shared by every test of a run (the mock cluster lives for the whole run), so tests must
 * filter records by something unique to them: a user id, a connection id, a room id, a request id.
 *
 * Mock-cluster notes: joining a group takes about 3 s (`startKafkaReader` resolves once joined);
 * topics are auto-created with 4 partitions on first use (never call `createTopics`, the mock refuses
 * it); the mock never answers a waiting fetch early, so `maxWaitTimeInMs` is kept short.
 */
import { randomUUID } from 'node:crypto';
import { type Consumer, Kafka, logLevel, type Producer } from 'kafkajs';
import type { Envelope } from '../../lib/protocol/envelope';

/** One record as read back from Kafka. */
export interface KafkaRecord<V = Envelope> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  /** The value parsed as JSON (`null` for an empty value). */
  readonly value: V;
}

export type RecordPredicate<V = Envelope> = (record: KafkaRecord<V>) => boolean;

export interface KafkaReader<V = Envelope> {
  /** Every record read so far, in arrival order (per partition: offset order). */
  readonly records: readonly KafkaRecord<V>[];
  /** The records read so far that match. */
  matching(predicate: RecordPredicate<V>): KafkaRecord<V>[];
  /** The first record (already read or still to come) that matches; rejects after `timeoutMs`. */
  waitFor(predicate: RecordPredicate<V>, timeoutMs?: number): Promise<KafkaRecord<V>>;
  /**
   * Produces a marker record to every partition of `topic` and waits until all of them have been
   * read back. Each partition is read in order, so once this resolves every record acknowledged on
   * that topic before the call has been read too: a test can then assert that something was *not*
   * published, without sleeping.
   */
  barrier(topic: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface KafkaReaderOptions {
  readonly topics: readonly string[];
  /** Defaults to `KAFKA_BROKERS` (exported by the jest global setup). */
  readonly brokers?: readonly string[];
  /** Defaults to a fresh unique group, so reading starts at the beginning of every partition. */
  readonly groupId?: string;
}

/** `event_type` of barrier markers: valid envelopes that no consumer converts or delivers. */
export const BARRIER_EVENT_TYPE = 'test.barrier';

function brokersFromEnv(): string[] {
  const raw = process.env.KAFKA_BROKERS;
  if (!raw) throw new Error('KAFKA_BROKERS is not set (the jest global setup exports it)');
  return raw.split(',').map((b) => b.trim());
}

function parseValue<V>(buffer: Buffer | null): V {
  if (buffer === null || buffer.length === 0) return null as V;
  return JSON.parse(buffer.toString('utf8')) as V;
}

function barrierEnvelope(id: string): Envelope {
  return {
    event_id: id,
    event_type: BARRIER_EVENT_TYPE,
    timestamp: new Date().toISOString(),
    correlation_id: id,
    producer: 'ws-gateway-tests',
    actor: { user_id: '0', username: 'test', roles: [] },
    audience: { type: 'user', user_ids: [], room_id: null, game_id: null },
    payload: {},
  };
}

/**
 * Starts a reader on `topics` and resolves once its consumer has joined its group.
 *
 * @example
 * const kafka = await startKafkaReader({ topics: ['games.commands'] });
 * const record = await kafka.waitFor((r) => r.value.correlation_id === requestId);
 * await kafka.stop();
 */
export async function startKafkaReader<V = Envelope>({
  topics,
  brokers = brokersFromEnv(),
  groupId = `test-reader-${randomUUID()}`,
}: KafkaReaderOptions): Promise<KafkaReader<V>> {
  const kafka = new Kafka({
    clientId: 'ws-gateway-test-reader',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries: 8 },
  });
  const consumer: Consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 100,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    allowAutoTopicCreation: true,
  });
  let producer: Producer | undefined;

  const records: KafkaRecord<V>[] = [];
  let waiters: Array<{ predicate: RecordPredicate<V>; resolve: (r: KafkaRecord<V>) => void }> = [];

  const joined = new Promise<void>((resolve) => {
    consumer.on(consumer.events.GROUP_JOIN, () => resolve());
  });

  await consumer.connect();
  await consumer.subscribe({ topics: [...topics], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      let value: V;
      try {
        value = parseValue<V>(message.value);
      } catch {
        // Another test's non-JSON record: not ours, so not recorded.
        return;
      }
      const record: KafkaRecord<V> = {
        topic,
        partition,
        offset: message.offset,
        key: message.key === null ? null : message.key.toString('utf8'),
        value,
      };
      records.push(record);
      waiters = waiters.filter((w) => {
        if (!w.predicate(record)) return true;
        w.resolve(record);
        return false;
      });
    },
  });
  await joined;

  const waitFor = (predicate: RecordPredicate<V>, timeoutMs = 15_000): Promise<KafkaRecord<V>> => {
    const found = records.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching Kafka record within ${timeoutMs} ms (${records.length} read)`));
      }, timeoutMs);
      const done = (r: KafkaRecord<V>) => {
        clearTimeout(timer);
        resolve(r);
      };
      waiters.push({ predicate, resolve: done });
    });
  };

  return {
    records,
    matching: (predicate) => records.filter(predicate),
    waitFor,
    async barrier(topic, timeoutMs) {
      if (!topics.includes(topic)) throw new Error(`barrier on ${topic}, which this reader does not read`);
      if (!producer) {
        producer = kafka.producer({ allowAutoTopicCreation: true });
        await producer.connect();
      }
      const admin = kafka.admin();
      await admin.connect();
      let partitions: number[];
      try {
        const { topics: [meta] = [] } = await admin.fetchTopicMetadata({ topics: [topic] });
        partitions = (meta?.partitions ?? []).map((p) => p.partitionId);
      } finally {
        await admin.disconnect();
      }
      if (partitions.length === 0) throw new Error(`topic ${topic} has no partitions`);
      const id = randomUUID();
      await producer.send({
        topic,
        messages: partitions.map((partition) => ({
          partition,
          value: JSON.stringify(barrierEnvelope(id)),
        })),
      });
      const isMarker = (r: KafkaRecord<V>, partition: number) => {
        const v = r.value as { event_type?: unknown; event_id?: unknown } | null;
        return (
          r.topic === topic &&
          r.partition === partition &&
          v?.event_type === BARRIER_EVENT_TYPE &&
          v.event_id === id
        );
      };
      await Promise.all(partitions.map((p) => waitFor((r) => isMarker(r, p), timeoutMs)));
    },
    async stop() {
      await Promise.allSettled([consumer.disconnect(), producer?.disconnect()]);
    },
  };
}
