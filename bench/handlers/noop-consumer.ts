/**
 * Baseline process for bench/consumer-process.ts: a bare kafkajs consumer (bundled like the real
 * one) that reads `total` records of `topic` from the earliest offset and does nothing with them.
 * Prints `READY` once in its group, then `DONE {"ms":…}` (first record → last) and exits.
 *
 *   node noop-consumer.js <brokers> <topic> <total> <group>
 */
import { Kafka, logLevel } from 'kafkajs';

async function main(): Promise<void> {
  const [brokers, topic, totalArg, groupId] = process.argv.slice(2);
  const total = Number(totalArg);
  if (!brokers || !topic || !groupId || !(total > 0))
    throw new Error('usage: <brokers> <topic> <total> <group>');
  const kafka = new Kafka({ clientId: 'bench-noop', brokers: [brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write('READY\n'));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  let t0 = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      partitionsConsumedConcurrently: 16,
      eachBatch: async ({ batch }) => {
        if (seen === 0) t0 = performance.now();
        seen += batch.messages.length;
        if (seen >= total) resolve();
      },
    });
  });
  process.stdout.write(`DONE ${JSON.stringify({ ms: performance.now() - t0 })}\n`);
  await consumer.disconnect();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`noop consumer failed: ${String(err)}\n`);
    process.exit(1);
  },
);
