import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { createPushBudget, type PushBudget } from '../push/budget';
import type { RedisClient } from '../redis';

/** The key of the fleet-wide bucket (one per deployment: the key prefix tells deployments apart). */
export const PUSH_BUDGET_KEY = 'gw:push:budget';

export interface FleetPushBudgetOptions {
  readonly config: Config;
  readonly redis: RedisClient;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * The fleet-wide push budget of this process (`PUSH_BUDGET_RPS`; null when 0), in the one bucket
 * every consumer instance and Lambda container shares. Shared by the pipeline's fan-out and the
 * welcome pushes of the gateway functions.
 *
 * @example
 * const pushBudget = createFleetPushBudget({ config, redis, logger, metrics });
 */
export function createFleetPushBudget({
  config,
  redis,
  logger,
  metrics,
}: FleetPushBudgetOptions): PushBudget | null {
  const { push } = config;
  if (!(push.budgetRps > 0)) return null;
  const local = metrics.gauge(
    'ws_gateway_push_budget_local',
    '1 while the push budget runs locally (Redis unreachable)',
  );
  local.set({}, 0);
  return createPushBudget({
    redis,
    key: `${config.redis.keyPrefix}${PUSH_BUDGET_KEY}`,
    rps: push.budgetRps,
    burst: push.budgetBurst,
    logger,
    onModeChange: (mode) => local.set({}, mode === 'local' ? 1 : 0),
  });
}
