import type { Kafka, Producer } from 'kafkajs';
import { DeadlineError, withDeadline } from '../deadline';
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
  /** The kafkajs instance, or a function that creates it on first use (a Lambda cold start). */
  kafka: Kafka | (() => Promise<Kafka>);
  /** -1 = all in-sync replicas (default), 1 = leader only. */
  acks?: -1 | 1;
  /**
   * Deadline of one `publish`, connecting and kafkajs's own retries included (docs/decisions.md
   * docs/decisions.md D9). Past it `publish` rejects with a `DependencyError`; kafkajs may still complete the send in
   * the background, so a record reported as failed can still arrive (at least once, never lost
   * silently).
   */
  timeoutMs?: number;
}

/**
 * A kafkajs producer connected lazily on first use and reused for the life of the container.
 * Failures surface as a retriable `DependencyError('kafka')`: the client gets a MESSAGE_ERROR.
 */
export function createKafkaPublisher({
  kafka,
  acks = -1,
  timeoutMs = 3000,
}: KafkaPublisherOptions): EventPublisher {
  let producer: Producer | undefined;
  let connecting: Promise<Producer> | undefined;

  const ready = (): Promise<Producer> => {
    if (producer) return Promise.resolve(producer);
    connecting ??= (async () => {
      const client = typeof kafka === 'function' ? await kafka() : kafka;
      // Required here, not imported at the top, so that bundling this module does not load kafkajs
      // (in the Lambda bundles it is a file beside the handler: deploy/esbuild-plugins.js).
      const { Partitioners } = require('kafkajs') as typeof import('kafkajs');
      const p = client.producer({
        // Same key → same partition as the Java/librdkafka default (murmur2), like the old gateway.
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: true,
        // kafkajs's default retries run for 11–17 s against a dead broker; keep its own attempts
        // roughly inside the deadline so little is still in flight when the caller gave up.
        retry: { retries: 3, initialRetryTime: 100, maxRetryTime: Math.max(200, Math.floor(timeoutMs / 3)) },
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
      const send = async () => {
        const p = await ready();
        await p.sendBatch({
          acks,
          timeout: timeoutMs,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
      };
      try {
        await withDeadline(send(), timeoutMs, () => new DeadlineError('kafka publish', timeoutMs));
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
