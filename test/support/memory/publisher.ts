/**
 * An in-memory `EventPublisher` (lib/kafka/publisher.ts) for unit tests: it keeps what was
 * published per topic, exactly as the kafkajs adapter puts it on the wire (the partition key and
 * the envelope as one JSON string, no headers), and can be made to fail or to hang.
 *
 * Like the real adapter, a publish that fails or outlives `timeoutMs` rejects with a retriable
 * `DependencyError('kafka')` (a hang: caused by a `DeadlineError`), and a failed publish records
 * nothing. test/support/contracts/publisher.contract.ts runs the same cases against both.
 *
 * @example
 * const publisher = createMemoryPublisher();
 * await handleMessage({ ...deps, publisher }, input);
 * expect(publisher.envelopes('games.commands').map((e) => e.event_type)).toEqual(['games.command.create_room']);
 * publisher.fail(); // the next publishes reject, as with Kafka unreachable
 */
import { DeadlineError, withDeadline } from '../../../lib/deadline';
import { DependencyError } from '../../../lib/errors';
import type { EventPublisher } from '../../../lib/kafka/publisher';
import type { Envelope } from '../../../lib/protocol/envelope';

/** One record as the brokers received it. */
export interface PublishedRecord {
  readonly topic: string;
  readonly key: string;
  /** The record's value as sent: the envelope serialised once. */
  readonly value: string;
  /** `value` parsed back, for assertions. */
  readonly envelope: Envelope;
}

/** How publishes behave from now on (see `fail`, `hang`, `recover`). */
export type PublisherMode =
  | { readonly kind: 'ok' }
  | { readonly kind: 'fail'; readonly error: Error }
  /** Never acknowledged: the publish rejects when its deadline passes (never, with `timeoutMs: Infinity`). */
  | { readonly kind: 'hang' };

export interface MemoryPublisher extends EventPublisher {
  /** Every acknowledged record, in publish order, across topics. */
  readonly records: readonly PublishedRecord[];
  /** The acknowledged records of one topic, in order. */
  topic(topic: string): PublishedRecord[];
  /** The envelopes acknowledged on one topic, in order. */
  envelopes(topic: string): Envelope[];
  /** Every `publish` call, accepted or not: the batches as given (for "published in one batch" checks). */
  readonly calls: ReadonlyArray<readonly PublishedRecord[]>;
  /** Publishes (and `ping`) reject from now on with `error` as the cause, as with Kafka unreachable. */
  fail(error?: Error): void;
  /** Publishes are never acknowledged from now on: each rejects once its deadline passes. */
  hang(): void;
  /** Back to acknowledging at once. A publish already hanging stays hung. */
  recover(): void;
  readonly mode: PublisherMode;
  /** Forgets what was recorded (the mode stays). */
  clear(): void;
  /** True after `disconnect()` until the next publish or ping reconnects, as the adapter's lazy producer. */
  readonly disconnected: boolean;
}

export interface MemoryPublisherOptions {
  /**
   * The publish deadline, as `KAFKA_PUBLISH_TIMEOUT_MS` for the adapter (default 3000, the
   * adapter's). Only a hanging publish ever waits for it.
   */
  readonly timeoutMs?: number;
}

/** See the module comment. */
export function createMemoryPublisher({ timeoutMs = 3000 }: MemoryPublisherOptions = {}): MemoryPublisher {
  let records: PublishedRecord[] = [];
  let calls: PublishedRecord[][] = [];
  let mode: PublisherMode = { kind: 'ok' };
  let disconnected = false;

  /** What the brokers would do with a request now: acknowledge, refuse, or never answer. */
  const broker = (): Promise<void> => {
    if (mode.kind === 'fail') return Promise.reject(mode.error);
    if (mode.kind === 'hang') return new Promise<void>(() => undefined);
    return Promise.resolve();
  };

  const withinDeadline = async (work: Promise<void>, what: string): Promise<void> => {
    try {
      await (Number.isFinite(timeoutMs)
        ? withDeadline(work, timeoutMs, () => new DeadlineError('kafka publish', timeoutMs))
        : work);
    } catch (err) {
      throw new DependencyError('kafka', what, true, { cause: err });
    }
  };

  return {
    get records() {
      return records;
    },
    get calls() {
      return calls;
    },
    get mode() {
      return mode;
    },
    get disconnected() {
      return disconnected;
    },
    topic: (topic) => records.filter((r) => r.topic === topic),
    envelopes: (topic) => records.filter((r) => r.topic === topic).map((r) => r.envelope),

    async publish(batch) {
      if (batch.length === 0) return;
      // Serialised at the call, as the adapter does: a caller mutating its envelope later changes nothing.
      const sent = batch.map(({ topic, key, envelope }): PublishedRecord => {
        const value = JSON.stringify(envelope);
        return { topic, key, value, envelope: JSON.parse(value) as Envelope };
      });
      calls.push(sent);
      await withinDeadline(broker(), 'publish failed');
      disconnected = false;
      records.push(...sent);
    },

    async ping() {
      if (mode.kind === 'fail') throw mode.error;
      if (mode.kind === 'hang') await broker();
      disconnected = false;
    },

    async disconnect() {
      disconnected = true;
    },

    fail(error = new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092')) {
      mode = { kind: 'fail', error };
    },
    hang() {
      mode = { kind: 'hang' };
    },
    recover() {
      mode = { kind: 'ok' };
    },
    clear() {
      records = [];
      calls = [];
    },
  };
}
