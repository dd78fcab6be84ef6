import { writeFileSync } from 'node:fs';
import { MissingBinaryError, startKafkaMock, startRedis } from './services';
import { STATE_FILE } from './state';

/**
 * Starts a throwaway Redis and the Kafka mock cluster for the whole run, unless REDIS_URL /
 * KAFKA_BROKERS point at real ones. Addresses reach the test workers through the environment.
 */
export default async function globalSetup(): Promise<void> {
  const pids: number[] = [];
  try {
    if (!process.env.REDIS_URL) {
      const redis = await startRedis();
      process.env.REDIS_URL = redis.address;
      pids.push(redis.process.pid!);
    }
    if (!process.env.KAFKA_BROKERS) {
      const kafka = await startKafkaMock();
      process.env.KAFKA_BROKERS = kafka.address;
      pids.push(kafka.process.pid!);
    }
  } catch (err) {
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    if (err instanceof MissingBinaryError) {
      throw new Error(`\n\nTest services cannot start: ${err.message}\n`);
    }
    throw err;
  }
  writeFileSync(STATE_FILE, JSON.stringify({ pids }));
}
