import { randomUUID } from 'node:crypto';
import { createTokenVerifier, type TokenVerifier } from '../../lib/auth/verifier';
import type { Config } from '../../lib/config';
import type { GatewayDeps } from '../../lib/gateway/deps';
import { createLifecycleStores } from '../../lib/gateway/lifecycle';
import { createKafka } from '../../lib/kafka/client';
import { createKafkaPublisher, type EventPublisher } from '../../lib/kafka/publisher';
import type { Logger } from '../../lib/logger';
import { createMetrics } from '../../lib/metrics';
import type { ClientPusher } from '../../lib/push/pusher';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createSessionStore } from '../../lib/store/session-store';

export interface TestGateway {
  readonly deps: GatewayDeps;
  readonly redis: RedisClient;
  readonly publisher: EventPublisher;
  /** Every frame pushed through the Management API (welcomes), in order. */
  readonly pushes: Array<{ connectionId: string; data: string }>;
}

/**
 * A container's worth of gateway dependencies on real adapters (its own Redis client and Kafka
 * producer, like one Lambda), with a recording pusher and no-op welcome trigger / closer. The caller
 * quits `redis` and disconnects `publisher`.
 */
export function createTestGateway(
  config: Config,
  logger: Logger,
  verifier: TokenVerifier = createTokenVerifier({ secret: config.auth.secret }),
): TestGateway {
  const redis = createRedisClient({ url: config.redis.url, cluster: false, logger });
  const store = createSessionStore({
    redis,
    connectionTtlSecs: config.ws.connectionTtlSecs,
    keyPrefix: config.redis.keyPrefix,
  });
  const publisher = createKafkaPublisher({ kafka: createKafka(config.kafka, logger) });
  const pushes: TestGateway['pushes'] = [];
  const pusher: ClientPusher = {
    push: async (connectionId, data) => {
      pushes.push({ connectionId, data: data.toString() });
      return 'ok';
    },
    close: async () => {},
  };
  const deps: GatewayDeps = {
    config,
    store,
    lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: config.redis.keyPrefix }),
    publisher,
    verifier,
    pusherFor: () => pusher,
    closerFor: () => ({ close: async () => 'closed' as const }),
    welcome: { trigger: async () => {} },
    logger,
    metrics: createMetrics(),
    newId: randomUUID,
    now: () => new Date(),
  };
  return { deps, redis, publisher, pushes };
}
