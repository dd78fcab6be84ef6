/**
 * The long-running event consumer: `system.events`, `chat.events`, `games.events` → the right
 * connections. Run with `tsx consumers/events.ts` (started by `npm start`) or from the container
 * image. SIGTERM / SIGINT stop it cleanly.
 */
import { getConfigOrExit, orExit, requireManagementEndpoint } from '../lib/config';
import { startMetricsServer } from '../lib/consumer/http';
import { createPipeline } from '../lib/consumer/pipeline';
import { runConsumer } from '../lib/consumer/run';
import { runSweeper } from '../lib/gateway/sweeper';
import { createLogger } from '../lib/logger';
import { createMetrics } from '../lib/metrics';
import { createRuntime } from '../lib/runtime/container';
import { createPipelineFanout } from '../lib/runtime/fanout';
import { createSweeperDeps } from '../lib/runtime/sweeper';

/** On a stop, queued pushes get this long to go out (inside a 30 s termination grace period). */
const FANOUT_DRAIN_MS = 20_000;

async function main(): Promise<void> {
  const config = getConfigOrExit();
  const logger = createLogger({ level: config.logLevel, base: { service: 'ws-gateway-consumer' } });
  const endpoint = orExit(() => requireManagementEndpoint(config));
  const metrics = createMetrics({ processMetrics: true });
  const runtime = createRuntime(config, { logger, verifiesTokens: false, metrics });
  const { deps, kafka, redis } = runtime;
  // No credentials (a configured provider that fails, none found off loopback): one line, exit 1,
  // rather than a consumer that joins its group and fails every push.
  try {
    await runtime.credentialsFor(endpoint).ready();
  } catch (err) {
    process.stderr.write(`ws-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
    await runtime.close();
    process.exit(1);
  }
  const pusher = deps.pusherFor(endpoint);
  const fanout = createPipelineFanout({
    config,
    endpoint,
    redis,
    logger,
    metrics,
    credentials: runtime.credentialsFor(endpoint),
    closer: deps.closerFor(endpoint),
  });
  const processRecord = createPipeline({
    ...deps,
    pusher,
    fanout,
    metrics,
    pushConcurrency: config.push.concurrency,
  });

  let ready = false;
  const server = await startMetricsServer({
    port: config.consumer.metricsPort,
    metrics,
    isReady: () => ready,
  });
  const controller = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    // `on`, not `once`: a repeated signal (a supervisor such as tsx relaying it again, a second
    // Ctrl+C) must not fall back to Node's default action and kill the process half-way through
    // the clean stop. SIGKILL remains the way to stop it at once.
    process.on(sig, () => {
      if (controller.signal.aborted) {
        logger.info('signal received, already stopping', { signal: sig });
        return;
      }
      logger.info('signal received, stopping', { signal: sig });
      controller.abort();
    });
  }
  // Due departures and stale connections are looked after here too: this process wakes up without
  // a client event (docs/decisions.md D10). It stops with the consumer, however that ends.
  const sweeperDeps = createSweeperDeps(runtime, endpoint);
  const sweeperStop = new AbortController();
  controller.signal.addEventListener('abort', () => sweeperStop.abort(), { once: true });
  const sweeper = runSweeper(sweeperDeps, { signal: sweeperStop.signal });
  try {
    await runConsumer({
      kafka: await kafka(),
      config: config.kafka,
      processRecord,
      logger,
      metrics,
      signal: controller.signal,
      onReady: () => {
        ready = true;
      },
      // Not consuming while the group rebalances or a crashed consumer is restarted in-process.
      onNotReady: () => {
        ready = false;
      },
    });
  } finally {
    sweeperStop.abort();
    await sweeper;
    sweeperDeps.close();
    // Broadcasts handed to the fan-out are still being paced out: let them finish (bounded).
    await fanout.close(FANOUT_DRAIN_MS);
    server.close();
    await runtime.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'consumer failed', err: String(err) })}\n`,
    );
    process.exit(1);
  },
);
