/**
 * The publisher with a kafkajs client created on first use (what the Lambda container passes, so
 * that functions which never publish never load kafkajs): nothing is created before the first
 * record, the client is created once, and a failed creation is a retriable error that the next
 * publish retries.
 */
import type { Kafka, Producer } from 'kafkajs';
import { DependencyError } from '../../../lib/errors';
import { createKafkaPublisher, type OutboundRecord } from '../../../lib/kafka/publisher';
import type { Envelope } from '../../../lib/protocol/envelope';

function fakeKafka() {
  const producer = {
    events: { DISCONNECT: 'producer.disconnect' },
    on: jest.fn(),
    connect: jest.fn(async () => undefined),
    sendBatch: jest.fn(async () => []),
    disconnect: jest.fn(async () => undefined),
  };
  const kafka = { producer: jest.fn(() => producer as unknown as Producer) };
  return { kafka: kafka as unknown as Kafka, producer, producerCalls: kafka.producer };
}

const record = (topic: string): OutboundRecord => ({
  topic,
  key: 'k',
  envelope: { event_id: 'e1', event_type: 'system.user_connected' } as unknown as Envelope,
});

describe('createKafkaPublisher with a client created on first use', () => {
  it('creates the client when the first record is published, and only once', async () => {
    const fake = fakeKafka();
    const create = jest.fn(async () => fake.kafka);
    const publisher = createKafkaPublisher({ kafka: create });

    await publisher.publish([]);
    expect(create).not.toHaveBeenCalled();

    await publisher.publish([record('a')]);
    await publisher.publish([record('b')]);

    expect(create).toHaveBeenCalledTimes(1);
    expect(fake.producerCalls).toHaveBeenCalledTimes(1);
    expect(fake.producer.sendBatch).toHaveBeenCalledTimes(2);
    expect(fake.producer.sendBatch.mock.calls[1]).toEqual([
      expect.objectContaining({ topicMessages: [{ topic: 'b', messages: [expect.any(Object)] }] }),
    ]);
  });

  it('fails a publish as a retriable DependencyError when the client cannot be created, and tries again on the next', async () => {
    const fake = fakeKafka();
    const create = jest
      .fn<Promise<Kafka>, []>()
      .mockRejectedValueOnce(new Error('no brokers'))
      .mockResolvedValue(fake.kafka);
    const publisher = createKafkaPublisher({ kafka: create });

    const failure = await publisher.publish([record('a')]).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DependencyError);
    expect(failure).toMatchObject({ retriable: true });

    await publisher.publish([record('a')]);
    expect(create).toHaveBeenCalledTimes(2);
    expect(fake.producer.sendBatch).toHaveBeenCalledTimes(1);
  });

  it('does not create a client to disconnect one that was never used', async () => {
    const create = jest.fn(async () => fakeKafka().kafka);
    const publisher = createKafkaPublisher({ kafka: create });

    await publisher.disconnect();

    expect(create).not.toHaveBeenCalled();
  });
});
