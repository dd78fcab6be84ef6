/**
 * The `EventPublisher` contract (lib/kafka/publisher.ts), one suite for every adapter: the
 * in-memory fake (test/unit/memory/publisher.test.ts) and the kafkajs adapter on the Kafka mock
 * cluster (test/integration/contracts/publisher.contract.test.ts), so the fake cannot promise what
 * Kafka does not do. What reached "the cluster" is read back through the harness: the fake's
 * records, or a Kafka consumer on the mock.
 */
import { randomUUID } from 'node:crypto';
import { DeadlineError } from '../../../lib/deadline';
import { DependencyError } from '../../../lib/errors';
import type { EventPublisher, OutboundRecord } from '../../../lib/kafka/publisher';
import type { Envelope } from '../../../lib/protocol/envelope';

/** A record as read back from the cluster. */
export interface ReadRecord {
  readonly key: string | null;
  readonly envelope: Envelope;
}

export interface PublisherHarness {
  /** A publisher on a reachable cluster; the same object for the whole suite, or fresh after `reset`. */
  publisher(): EventPublisher;
  /** Two topics the suite publishes to (read back by `published`). */
  readonly topics: readonly [string, string];
  /** Every record acknowledged on `topic` so far, in the order each partition received it. */
  published(topic: string): Promise<readonly ReadRecord[]>;
  /** A publisher whose cluster refuses connections. */
  unreachable(timeoutMs: number): EventPublisher;
  /** A publisher whose cluster accepts connections and never answers. */
  unresponsive(timeoutMs: number): Promise<EventPublisher>;
  /** Before each case. */
  reset?(): Promise<void> | void;
  /** After the suite. */
  close?(): Promise<void>;
}

/** An envelope as the gateway produces it, unique to one case through `id`. */
export function contractEnvelope(id: string, payload: Envelope['payload'] = {}): Envelope {
  return {
    event_id: id,
    event_type: 'games.command.contract_check',
    timestamp: '2026-02-01T10:00:00.123Z',
    correlation_id: `req-${id}`,
    producer: 'ws_gateway',
    actor: { user_id: '4', username: 'Ålice ✓', roles: ['user'] },
    audience: { type: 'room', user_ids: [], room_id: 'room-1', game_id: null },
    payload,
  };
}

const mine = (records: readonly ReadRecord[], id: string) =>
  records.filter((r) => r.envelope?.event_id?.startsWith(id));

/**
 * Declares the contract's cases for one adapter.
 *
 * @example
 * publisherContract('in-memory publisher', async () => memoryHarness());
 */
export function publisherContract(name: string, setup: () => Promise<PublisherHarness>): void {
  describe(`EventPublisher contract: ${name}`, () => {
    let h: PublisherHarness;
    let id: string;

    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.close?.();
    });
    beforeEach(async () => {
      id = randomUUID();
      await h.reset?.();
    });

    it('delivers every record of a batch to its topic with its key and the envelope as the value', async () => {
      const [a, b] = h.topics;
      const records: OutboundRecord[] = [
        { topic: a, key: 'room-1', envelope: contractEnvelope(`${id}:1`, { room_id: 'room-1', n: 1 }) },
        { topic: b, key: '4', envelope: contractEnvelope(`${id}:2`, { nested: { list: [1, 'two', null] } }) },
        { topic: a, key: 'room-2', envelope: contractEnvelope(`${id}:3`) },
      ];

      await h.publisher().publish(records);

      const onA = mine(await h.published(a), id);
      const onB = mine(await h.published(b), id);
      const byId = (rs: readonly ReadRecord[]) =>
        [...rs].sort((x, y) => x.envelope.event_id.localeCompare(y.envelope.event_id));
      expect(byId(onA)).toEqual([
        { key: 'room-1', envelope: records[0]!.envelope },
        { key: 'room-2', envelope: records[2]!.envelope },
      ]);
      expect(onB).toEqual([{ key: '4', envelope: records[1]!.envelope }]);
    });

    it('keeps the order of the records of one key, within a batch and across publishes', async () => {
      const [a] = h.topics;
      const key = `k-${id}`;
      const rec = (n: number): OutboundRecord => ({
        topic: a,
        key,
        envelope: contractEnvelope(`${id}:${n}`),
      });

      await h.publisher().publish([rec(1), rec(2), rec(3)]);
      await h.publisher().publish([rec(4)]);
      await h.publisher().publish([rec(5), rec(6)]);

      const order = mine(await h.published(a), id).map((r) => r.envelope.event_id);
      expect(order).toEqual([1, 2, 3, 4, 5, 6].map((n) => `${id}:${n}`));
    });

    it('resolves an empty batch without sending anything', async () => {
      await expect(h.publisher().publish([])).resolves.toBeUndefined();
    });

    it('answers ping on a reachable cluster', async () => {
      await expect(h.publisher().ping()).resolves.toBeUndefined();
    });

    it('publishes again after disconnect: the producer reconnects on first use', async () => {
      const [a] = h.topics;
      const publisher = h.publisher();
      await publisher.publish([{ topic: a, key: 'x', envelope: contractEnvelope(`${id}:before`) }]);

      await publisher.disconnect();
      await publisher.publish([{ topic: a, key: 'x', envelope: contractEnvelope(`${id}:after`) }]);

      const ids = mine(await h.published(a), id).map((r) => r.envelope.event_id);
      expect(ids).toEqual([`${id}:before`, `${id}:after`]);
    });

    it('rejects with a retriable DependencyError("kafka") when the cluster is unreachable', async () => {
      const publisher = h.unreachable(1000);
      try {
        const err: unknown = await publisher
          .publish([{ topic: h.topics[0], key: 'x', envelope: contractEnvelope(id) }])
          .then(
            () => undefined,
            (e: unknown) => e,
          );

        expect(err).toBeInstanceOf(DependencyError);
        expect(err).toMatchObject({ name: 'DependencyError', dependency: 'kafka', retriable: true });
      } finally {
        await publisher.disconnect();
      }
    });

    it('rejects once its deadline passes when the cluster never answers, the DeadlineError as the cause', async () => {
      const publisher = await h.unresponsive(300);
      try {
        const err: unknown = await publisher
          .publish([{ topic: h.topics[0], key: 'x', envelope: contractEnvelope(id) }])
          .then(
            () => undefined,
            (e: unknown) => e,
          );

        expect(err).toBeInstanceOf(DependencyError);
        expect(err).toMatchObject({ dependency: 'kafka', retriable: true });
        expect((err as DependencyError).cause).toBeInstanceOf(DeadlineError);
      } finally {
        await publisher.disconnect();
      }
    });
  });
}
