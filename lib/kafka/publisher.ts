import { type Kafka, Partitioners, type Producer } from 'kafkajs';
import { DependencyError } from '../errors';
import type { Envelope } from '../protocol/envelope';

/** One record for Kafka: the envelope goes out as one JSON line, keyed for partitioning. */
export interface OutboundRecord {
  readonly topic: string;
  readonly key: string;
  readonly envelope: Envelope;
}

/** The `EventPublisher` port: commands and system events to Kafka. */
export interface EventPublisher {
  /** Publishes all records (one batch per call); resolves once the brokers acknowledged them. */
  publish(records: readonly OutboundRecord[]): Promise<void>;
  /** Resolves when a connection to the cluster is (or can be) established; for readiness checks. */
  ping(): Promise<void>;
  disconnect(): Promise<void>;
}

export interface KafkaPublisherOptions {
  kafka: Kafka;
  /** -1 = all in-sync replicas (default), 1 = leader only. */
  acks?: -1 | 1;
  timeoutMs?: number;
}

/**
 * A kafkajs producer connected lazily on first use and reused for the life of the container.
 * Failures surface as a retriable `DependencyError('kafka')`: the client gets a MESSAGE_ERROR.
 */
export function createKafkaPublisher({
  kafka,
  acks = -1,
  timeoutMs = 5000,
}: KafkaPublisherOptions): EventPublisher {
  let producer: Producer | undefined;
  let connecting: Promise<Producer> | undefined;

  const ready = (): Promise<Producer> => {
    if (producer) return Promise.resolve(producer);
    connecting ??= (async () => {
      const p = kafka.producer({
        // Same key → same partition as the Java/librdkafka default (murmur2), like the old gateway.
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: true,
      });
      p.on(p.events.DISCONNECT, () => {
        producer = undefined;
        connecting = undefined;
      });
      await p.connect();
      producer = p;
      return p;
    })().catch((err: unknown) => {
      connecting = undefined;
      throw err;
    });
    return connecting;
  };

  return {
    async publish(records) {
      if (records.length === 0) return;
      const byTopic = new Map<string, { key: string; value: string }[]>();
      for (const r of records) {
        let list = byTopic.get(r.topic);
        if (!list) {
          list = [];
          byTopic.set(r.topic, list);
        }
        list.push({ key: r.key, value: JSON.stringify(r.envelope) });
      }
      try {
        const p = await ready();
        await p.sendBatch({
          acks,
          timeout: timeoutMs,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
      } catch (err) {
        throw new DependencyError('kafka', 'publish failed', true, { cause: err });
      }
    },
    async ping() {
      await ready();
    },
    async disconnect() {
      const p = producer ?? (connecting ? await connecting.catch(() => undefined) : undefined);
      producer = undefined;
      connecting = undefined;
      await p?.disconnect();
    },
  };
}
