/**
 * The EventPublisher contract against the kafkajs adapter on the Kafka mock cluster: what the
 * in-memory fake promises (test/unit/memory/publisher.test.ts) is what Kafka does. Records are read
 * back by a consumer on two topics of this run only; "unreachable" is a port nobody listens on,
 * "unresponsive" a listener that accepts and never answers.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Kafka } from 'kafkajs';
import { loadConfig } from '../../../lib/config';
import { createKafka, kafkaConfig } from '../../../lib/kafka/client';
import { createKafkaPublisher, type EventPublisher } from '../../../lib/kafka/publisher';
import { silentLogger } from '../../../lib/logger';
import { publisherContract } from '../../support/contracts/publisher.contract';
import { startKafkaReader } from '../../support/kafka';
import { freePort } from '../../support/services';

jest.setTimeout(30_000);

const configFor = (brokers: string) => loadConfig({ KAFKA_BROKERS: brokers }).kafka;

/**
 * The adapter on a broken cluster, with a client that gives up connecting soon after the publish
 * deadline (production's 3 s connection timeout and retries would only keep the suite waiting).
 */
const brokenPublisher = (brokers: string, timeoutMs: number, giveUpMs: number): EventPublisher =>
  createKafkaPublisher({
    kafka: new Kafka({
      ...kafkaConfig(configFor(brokers), silentLogger),
      connectionTimeout: giveUpMs,
      requestTimeout: giveUpMs,
      retry: { retries: 0 },
    }),
    timeoutMs,
  });

publisherContract('kafkajs adapter on the Kafka mock', async () => {
  const run = randomUUID();
  const topics = [`contract.publisher.${run}.a`, `contract.publisher.${run}.b`] as const;
  const brokers = process.env.KAFKA_BROKERS!;
  const publisher = createKafkaPublisher({ kafka: createKafka(configFor(brokers), silentLogger) });
  // The topics exist (auto-created) before the reader subscribes, so it sees them from the start.
  await publisher.ping();
  const reader = await startKafkaReader({ topics });
  const silent = new Set<net.Socket>();
  const blackHole = net.createServer((socket) => {
    silent.add(socket);
    socket.on('close', () => silent.delete(socket));
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  const others: EventPublisher[] = [];
  return {
    topics,
    publisher: () => publisher,
    async published(topic) {
      await reader.barrier(topic);
      return reader.matching((r) => r.topic === topic).map(({ key, value }) => ({ key, envelope: value }));
    },
    unreachable(timeoutMs) {
      const p = brokenPublisher(`127.0.0.1:${unusedPort}`, timeoutMs, 250);
      others.push(p);
      return p;
    },
    async unresponsive(timeoutMs) {
      const { port } = blackHole.address() as net.AddressInfo;
      // Connecting outlasts the deadline, so it is the deadline that ends the publish.
      const p = brokenPublisher(`127.0.0.1:${port}`, timeoutMs, timeoutMs + 700);
      others.push(p);
      return p;
    },
    async close() {
      for (const s of silent) s.destroy();
      await Promise.allSettled([publisher.disconnect(), reader.stop(), ...others.map((p) => p.disconnect())]);
      await new Promise<void>((resolve) => blackHole.close(() => resolve()));
    },
  };
});

let unusedPort = 0;
beforeAll(async () => {
  unusedPort = await freePort();
});
