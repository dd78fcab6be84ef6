import type { CredentialsSource } from '../aws/credentials';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { ConnectionCloser } from '../push/closer';
import { createManagementApiPusher } from '../push/pusher';
import { createFanout, type Fanout } from '../push/scheduler';
import type { RedisClient } from '../redis';
import { createFleetPushBudget } from './push-budget';

export interface PipelineFanoutOptions {
  readonly config: Config;
  /** The Management API endpoint the pipeline pushes to. */
  readonly endpoint: string;
  readonly redis: RedisClient;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The endpoint's credentials (`runtime.credentialsFor(endpoint)`). */
  readonly credentials: CredentialsSource;
  /** Closes slow clients (`deps.closerFor(endpoint)`). */
  readonly closer: ConnectionCloser;
}

/**
 * The event pipeline's fan-out: its own single-attempt pusher (the scheduler retries, per
 * connection, within the budget), the fleet-wide budget in Redis (`PUSH_BUDGET_RPS`, 0: none) and
 * the slow-client policy (`PUSH_SLOW_CLIENT_SECS`). One per process / Lambda container.
 *
 * @example
 * const fanout = createPipelineFanout({ config, endpoint, redis, logger, metrics, credentials: runtime.credentialsFor(endpoint), closer: deps.closerFor(endpoint) });
 * const processRecord = createPipeline({ ...deps, pusher, fanout, metrics, pushConcurrency });
 */
export function createPipelineFanout({
  config,
  endpoint,
  redis,
  logger,
  metrics,
  credentials,
  closer,
}: PipelineFanoutOptions): Fanout {
  const { push } = config;
  const pusher = createManagementApiPusher({
    endpoint,
    credentials: credentials.get,
    credentialsReady: credentials.ready,
    region: config.aws.region,
    logger,
    maxRetries: 0,
    // The scheduler suspends unanswered connections itself, counting a frame's attempts together:
    // here each single attempt would suspend its connection.
    suspendUnansweredMs: 0,
    timeoutMs: push.timeoutMs,
    maxSockets: push.concurrency,
  });
  const budget = createFleetPushBudget({ config, redis, logger, metrics });
  return createFanout({
    pusher,
    closer,
    budget,
    maxInFlight: push.concurrency,
    maxRetries: push.maxRetries,
    slowClientMs: push.slowClientSecs * 1000,
    // 50 ms of the budget per Redis call: a few dozen calls a second per process at full rate.
    tokenBatch: Math.max(1, Math.ceil(push.budgetRps / 20)),
    logger,
    metrics,
  });
}
