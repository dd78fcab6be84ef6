import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { createTokenVerifier, readPublicKey } from '../auth/verifier';
import {
  type CredentialsSource,
  createChainCredentialsSource,
  staticCredentialsFor,
} from '../aws/credentials';
import type { Config } from '../config';
import type { GatewayDeps, WelcomeRequest, WelcomeTrigger } from '../gateway/deps';
import { createLifecycleStores } from '../gateway/lifecycle';
import { mskIamTokenProvider } from '../kafka/msk-iam';
import { createKafkaPublisher } from '../kafka/publisher';
import { createLogger, type Logger } from '../logger';
import type { Metrics } from '../metrics';
import { createManagementApiCloser } from '../push/closer';
import { type AsyncInvoker, createAsyncInvoker } from '../push/invoke';
import { type ClientPusher, createManagementApiPusher, type PusherHooks } from '../push/pusher';
import { createRedisClient, type RedisClient } from '../redis';
import { createSessionStore } from '../store/session-store';
import { createFleetPushBudget } from './push-budget';

export interface Runtime {
  readonly deps: GatewayDeps;
  readonly redis: RedisClient;
  /**
   * The process's kafkajs instance, created (and kafkajs loaded) on first call: a Lambda function
   * that never publishes never loads kafkajs (docs/architecture.md, "Cold start").
   */
  kafka(): Promise<Kafka>;
  /** The container's metrics: the consumer renders them on `/metrics`, Lambda emits them as EMF. */
  readonly metrics: Metrics;
  /** The credentials used to sign calls to `endpoint` (await `ready()` to fail fast at start-up). */
  credentialsFor(endpoint: string): CredentialsSource;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  readonly logger?: Logger;
  /** False for processes that never see client tokens (the consumer): no key check, no warning. */
  readonly verifiesTokens?: boolean;
  /** Environment the credentials are read from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The provider chain for endpoints without static credentials. Default AWS's default chain. */
  readonly credentialsChain?: CredentialsSource;
  /**
   * Where the container's metrics go: a Prometheus registry (`createMetrics`) in the consumer, EMF
   * (`createEmfMetrics`) in Lambda. Required, so Lambda bundles never load prom-client.
   */
  readonly metrics: Metrics;
}

/**
 * Creates every client of a container once: Redis, the Kafka producer, the token verifier and one
 * pusher per Management API endpoint. Nothing in lib/ creates clients itself.
 */
export function createRuntime(config: Config, options: RuntimeOptions): Runtime {
  const logger = options.logger ?? createLogger({ level: config.logLevel, base: { service: 'ws-gateway' } });
  const redis = createRedisClient({
    url: config.redis.url,
    cluster: config.redis.cluster,
    logger,
    commandTimeoutMs: config.redis.commandTimeoutMs,
  });
  const store = createSessionStore({
    redis,
    connectionTtlSecs: config.ws.connectionTtlSecs,
    keyPrefix: config.redis.keyPrefix,
    maxConnectionsPerUser: config.ws.maxConnectionsPerUser,
    maxLobbiesPerConnection: config.ws.maxLobbiesPerConnection,
  });
  // Credentials per endpoint: static ones where they need no provider (Lambda's environment, the
  // dummy pair for serverless-offline), else the one provider chain of the process.
  let chain: CredentialsSource | undefined;
  const credentialsFor = (endpoint: string): CredentialsSource => {
    const fixed = staticCredentialsFor(endpoint, options.env);
    if (fixed) return fixed;
    chain ??= options.credentialsChain ?? createChainCredentialsSource({ logger });
    return chain;
  };

  // Loaded on first use, not at module load: kafkajs is ~40 % of a function's bundle and most first
  // invocations never publish (docs/architecture.md, "Cold start").
  let kafka: Promise<Kafka> | undefined;
  const kafkaClient = (): Promise<Kafka> => {
    kafka ??= import('../kafka/client').then(({ createKafka }) =>
      createKafka(config.kafka, logger, {
        // MSK IAM: tokens signed with the same credentials as the pushes (the brokers are never loopback).
        mskIamToken:
          config.kafka.sasl?.mechanism === 'aws-msk-iam'
            ? mskIamTokenProvider({
                region: config.aws.region,
                credentials: async () => {
                  const source = credentialsFor(`https://kafka.${config.aws.region}.amazonaws.com`);
                  await source.ready();
                  return source.get();
                },
              })
            : undefined,
      }),
    );
    return kafka;
  };
  const publisher = createKafkaPublisher({ kafka: kafkaClient, timeoutMs: config.kafka.publishTimeoutMs });
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

  const { metrics } = options;
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
      const credentials = credentialsFor(endpoint);
      p = createManagementApiPusher({
        endpoint,
        credentials: credentials.get,
        credentialsReady: credentials.ready,
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

  const closers = new Map<string, ReturnType<typeof createManagementApiCloser>>();
  const closerFor = (endpoint: string) => {
    let c = closers.get(endpoint);
    if (!c) {
      const credentials = credentialsFor(endpoint);
      c = createManagementApiCloser({
        endpoint,
        credentials: credentials.get,
        credentialsReady: credentials.ready,
        region: config.aws.region,
        timeoutMs: config.push.timeoutMs,
      });
      closers.set(endpoint, c);
    }
    return c;
  };

  // Created on first use: only $connect invokes the welcome function, and other processes (the
  // consumer) must not need Lambda credentials.
  let invoker: AsyncInvoker<WelcomeRequest> | undefined;
  const welcome: WelcomeTrigger = {
    trigger: (req) => {
      const endpoint = config.aws.lambdaEndpoint ?? `https://lambda.${config.aws.region}.amazonaws.com`;
      const credentials = credentialsFor(endpoint);
      invoker ??= createAsyncInvoker<WelcomeRequest>({
        endpoint,
        credentials: credentials.get,
        credentialsReady: credentials.ready,
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
    closerFor,
    welcome,
    pushBudget: createFleetPushBudget({ config, redis, logger, metrics }),
    logger,
    metrics,
    newId: randomUUID,
    now: () => new Date(),
  };
  return {
    deps,
    redis,
    kafka: kafkaClient,
    metrics,
    credentialsFor,
    async close() {
      chain?.close();
      await Promise.allSettled([
        publisher.disconnect(),
        invoker?.close(),
        ...[...pushers.values()].map((p) => p.close()),
        ...[...closers.values()].map(async (c) => c.destroy()),
        redis.quit(),
      ]);
    },
  };
}
