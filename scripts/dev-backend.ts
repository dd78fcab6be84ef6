/**
 * The dev backend: a stand-in for the platform's chat and games services, so that `npm start`
 * shows the whole loop (browser → gateway → Kafka → here → Kafka → gateway → browser). It answers
 * `chat.commands` and `games.commands` with the platform's own events and audiences, in memory.
 * A development aid, not a game server: it is never bundled into a Lambda function or deployed.
 *
 * `npm start` runs it when it runs the embedded Kafka (`DEV_BACKEND`, see README). Alone:
 * `KAFKA_BROKERS=… npx tsx scripts/dev-backend.ts`. SIGTERM / SIGINT stop it.
 */
import { getConfigOrExit } from '../lib/config';
import { createKafka } from '../lib/kafka/client';
import { createLogger } from '../lib/logger';
import { createChat } from './dev-backend/chat';
import { createPresence } from './dev-backend/presence';
import { createRooms } from './dev-backend/rooms';
import { runDevBackend } from './dev-backend/service';

/** Optional score targets (the platform's are 10 and 5); tests shorten games with them. */
function target(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    process.stderr.write(`dev-backend: ${name} must be an integer from 1 to 100 (got "${raw}")\n`);
    process.exit(1);
  }
  return n;
}

async function main(): Promise<void> {
  const config = getConfigOrExit();
  const logger = createLogger({ level: config.logLevel, base: { service: 'ws-gateway-dev-backend' } });
  const kafka = createKafka({ ...config.kafka, clientId: `${config.kafka.clientId}_dev_backend` }, logger);
  const rooms = createRooms({
    diceTarget: target('DEV_BACKEND_DICE_TARGET'),
    tttTarget: target('DEV_BACKEND_TTT_TARGET'),
  });
  const controller = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => controller.abort());
  await runDevBackend({
    kafka,
    logger,
    chat: createChat(),
    rooms,
    presence: createPresence(),
    groupId: `${config.kafka.consumerGroup}_dev_backend`,
    fromBeginning: config.kafka.startPosition === 'earliest',
    signal: controller.signal,
    onReady: () => {
      logger.info('dev backend ready');
      // `npm start` waits for this (scripts/start.ts); run alone there is no channel.
      process.send?.({ type: 'ready' });
    },
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'dev backend failed', err: String(err) })}\n`,
    );
    process.exit(1);
  },
);
