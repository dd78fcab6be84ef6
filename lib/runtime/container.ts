import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { createTokenVerifier, readPublicKey } from '../auth/verifier';
import type { Config } from '../config';
import type { GatewayDeps, WelcomeRequest, WelcomeTrigger } from '../gateway/deps';
import { createLifecycleStores } from '../gateway/lifecycle';
import { createKafka } from '../kafka/client';
import { createKafkaPublisher } from '../kafka/publisher';
import { createLogger, type Logger } from '../logger';
import { createMetrics, type Metrics } from '../metrics';
import { type AsyncInvoker, createAsyncInvoker } from '../push/invoke';
import { type ClientPusher, createManagementApiPusher, type PusherHooks } from '../push/pusher';
import { createRedisClient, type RedisClient } from '../redis';
import { createSessionStore } from '../store/session-store';

export interface Runtime {
  readonly deps: GatewayDeps;
  readonly redis: RedisClient;
  readonly kafka: Kafka;
  /** The container's metrics: the consumer renders them on `/metrics`, Lambda emits them as EMF. */
  readonly metrics: Metrics;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  readonly logger?: Logger;
  /** False for processes that never see client tokens (the consumer): no key check, no warning. */
  readonly verifiesTokens?: boolean;
  /** Defaults to a fresh registry. */
  readonly metrics?: Metrics;
}

/**
 * Creates every client of a container once: Redis, the Kafka producer, the token verifier and one
 * pusher per Management API endpoint. Nothing in lib/ creates clients itself.
 */
export function createRuntime(config: Config, options: RuntimeOptions = {}): Runtime {
  const logger = options.logger ?? createLogger({ level: config.logLevel, base: { service: 'ws-gateway' } });
  const redis = createRedisClient({ url: config.redis.url, cluster: config.redis.cluster, logger });
  const store = createSessionStore({
    redis,
    connectionTtlSecs: config.ws.connectionTtlSecs,
    keyPrefix: config.redis.keyPrefix,
  });
  const kafka = createKafka(config.kafka, logger);
  const publisher = createKafkaPublisher({ kafka });
  const verifiesTokens = options.verifiesTokens ?? true;
  const verifier = createTokenVerifier(
    verifiesTokens
      ? {
          publicKey: readPublicKey(config.auth.publicKeyPath),
          secret: config.auth.secret,
          issuer: config.auth.issuer,
          audience: config.auth.audience,
        }
      : {},
  );
  if (verifiesTokens && !verifier.hasKeys)
    logger.warn('no JWT key configured (JWT_PUBLIC_KEY_PATH / JWT_SECRET): every token will be rejected');

  const metrics = options.metrics ?? createMetrics();
  const pushDuration = metrics.histogram(
    'ws_gateway_push_duration_seconds',
    'One push to a connection through the Management API, retries included, by result',
  );
  const hooks: PusherHooks = {
    onOutcome: (e) => pushDuration.observe({ result: e.outcome }, e.durationMs / 1000),
  };

  const pushers = new Map<string, ClientPusher>();
  const pusherFor = (endpoint: string): ClientPusher => {
    let p = pushers.get(endpoint);
    if (!p) {
      p = createManagementApiPusher({
        endpoint,
        region: config.aws.region,
        logger,
        maxRetries: config.push.maxRetries,
        timeoutMs: config.push.timeoutMs,
        maxSockets: config.push.concurrency,
        hooks,
      });
      pushers.set(endpoint, p);
    }
    return p;
  };

  // Created on first use: only $connect invokes the welcome function, and other processes (the
  // consumer) must not need Lambda credentials.
  let invoker: AsyncInvoker<WelcomeRequest> | undefined;
  const welcome: WelcomeTrigger = {
    trigger: (req) => {
      invoker ??= createAsyncInvoker<WelcomeRequest>({
        endpoint: config.aws.lambdaEndpoint,
        region: config.aws.region,
        functionName: config.aws.welcomeFunctionName,
      });
      return invoker.invoke(req);
    },
  };

  const deps: GatewayDeps = {
    config,
    store,
    lifecycle: createLifecycleStores({
      redis,
      reconnectTtlSecs: config.lifecycle.reconnectTtlSecs,
      keyPrefix: config.redis.keyPrefix,
    }),
    publisher,
    verifier,
    pusherFor,
    welcome,
    logger,
    metrics,
    newId: randomUUID,
    now: () => new Date(),
  };
  return {
    deps,
    redis,
    kafka,
    metrics,
    async close() {
      await Promise.allSettled([
        publisher.disconnect(),
        invoker?.close(),
        ...[...pushers.values()].map((p) => p.close()),
        redis.quit(),
      ]);
    },
  };
}
