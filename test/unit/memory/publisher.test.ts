/**
 * The in-memory EventPublisher: the shared contract (as the kafkajs adapter passes it on the Kafka
 * mock), then what only the fake offers — its failure modes and what it records.
 */
import { DeadlineError } from '../../../lib/deadline';
import { DependencyError } from '../../../lib/errors';
import { contractEnvelope, publisherContract } from '../../support/contracts/publisher.contract';
import { createMemoryPublisher, type MemoryPublisher } from '../../support/memory/publisher';

const TOPICS = ['contract.a', 'contract.b'] as const;

publisherContract('in-memory publisher', async () => {
  let publisher: MemoryPublisher = createMemoryPublisher();
  return {
    topics: TOPICS,
    publisher: () => publisher,
    reset: () => {
      publisher = createMemoryPublisher();
    },
    published: async (topic) => publisher.topic(topic).map(({ key, envelope }) => ({ key, envelope })),
    unreachable: (timeoutMs) => {
      const p = createMemoryPublisher({ timeoutMs });
      p.fail();
      return p;
    },
    unresponsive: async (timeoutMs) => {
      const p = createMemoryPublisher({ timeoutMs });
      p.hang();
      return p;
    },
  };
});

describe('in-memory publisher: modes and records', () => {
  const record = (id: string, topic = 'games.commands') => ({
    topic,
    key: 'room-1',
    envelope: contractEnvelope(id),
  });

  it('records the value exactly as the adapter sends it, serialised at the call', async () => {
    const publisher = createMemoryPublisher();
    const envelope = contractEnvelope('e1', { text: 'héllo' });
    const mutable = {
      topic: 'games.commands',
      key: 'room-1',
      envelope: { ...envelope, payload: { text: 'héllo' } },
    };

    await publisher.publish([mutable]);
    (mutable.envelope.payload as { text: string }).text = 'changed later';

    expect(publisher.records).toEqual([
      { topic: 'games.commands', key: 'room-1', value: JSON.stringify(envelope), envelope },
    ]);
  });

  it('records every call as a batch, failed ones included, and only acknowledged records', async () => {
    const publisher = createMemoryPublisher();
    await publisher.publish([record('a'), record('b', 'system.events')]);
    publisher.fail(new Error('broker down'));
    await expect(publisher.publish([record('c')])).rejects.toBeInstanceOf(DependencyError);

    expect(publisher.calls.map((batch) => batch.map((r) => r.envelope.event_id))).toEqual([
      ['a', 'b'],
      ['c'],
    ]);
    expect(publisher.records.map((r) => r.envelope.event_id)).toEqual(['a', 'b']);
    expect(publisher.envelopes('system.events').map((e) => e.event_id)).toEqual(['b']);
  });

  it('fails with the given error as the cause, ping included, until it recovers', async () => {
    const publisher = createMemoryPublisher();
    const cause = new Error('SASL authentication failed');
    publisher.fail(cause);

    await expect(publisher.publish([record('a')])).rejects.toMatchObject({ dependency: 'kafka', cause });
    await expect(publisher.ping()).rejects.toBe(cause);

    publisher.recover();
    await publisher.publish([record('b')]);
    expect(publisher.records.map((r) => r.envelope.event_id)).toEqual(['b']);
  });

  it('hangs until the deadline with fake timers: no record, a DeadlineError cause', async () => {
    jest.useFakeTimers();
    try {
      const publisher = createMemoryPublisher({ timeoutMs: 3000 });
      publisher.hang();
      const outcome = publisher.publish([record('a')]).catch((e: unknown) => e);

      await jest.advanceTimersByTimeAsync(3000);

      const err = await outcome;
      expect(err).toBeInstanceOf(DependencyError);
      expect((err as DependencyError).cause).toEqual(new DeadlineError('kafka publish', 3000));
      expect(publisher.records).toEqual([]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('reports disconnect until the next use, and forgets its records on clear', async () => {
    const publisher = createMemoryPublisher();
    await publisher.publish([record('a')]);
    await publisher.disconnect();
    expect(publisher.disconnected).toBe(true);
    await publisher.ping();
    expect(publisher.disconnected).toBe(false);

    publisher.clear();

    expect(publisher.records).toEqual([]);
    expect(publisher.calls).toEqual([]);
  });
});
