/**
 * What every Lambda function shares: the container runtime, and observability through AWS Lambda
 * Powertools as middy middlewares — Logger (each entry carries the request id, cold start and
 * function name) and Metrics (CloudWatch EMF under the same metric names as the consumer's
 * `/metrics`).
 *
 * lib/ keeps logging through its own `Logger` port and counting through its `Metrics` port; here
 * the port is adapted onto Powertools, so no call site knows which one runs.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { type Config, getConfig } from '../config';
import { type Logger, redactFields } from '../logger';
import type { Metrics } from '../metrics';
import { createRuntime, type Runtime } from './container';
import { createEmfMetrics } from './emf';
import { loggerOnPowertools } from './powertools-logger';

/** `service` of every log entry and the EMF `service` dimension (`POWERTOOLS_SERVICE_NAME` overrides it). */
export const SERVICE_NAME = 'ws-gateway';
/** CloudWatch namespace of the metrics (`POWERTOOLS_METRICS_NAMESPACE` overrides it). */
export const METRICS_NAMESPACE = 'ws-gateway';

/** Logger and Metrics ports on Powertools, and the middlewares that give them their context. */
export interface Observability {
  /** The `Logger` port; every entry goes through Powertools with the invocation's context. */
  readonly logger: Logger;
  /** The `Metrics` port; what is recorded during an invocation is published as EMF at its end. */
  readonly metrics: Metrics;
  /** Sets the Powertools log level from the gateway's configuration. */
  setLogLevel(level: Config['logLevel']): void;
  /** The middlewares, outermost first: context injection, the log level, EMF publishing, error logging. */
  middlewares(): middy.MiddlewareObj<unknown, unknown, Error, Context>[];
}

export interface ObservabilityOptions {
  readonly serviceName?: string;
  readonly namespace?: string;
}

/**
 * Creates the Powertools Logger and Metrics of a container and the ports on them.
 *
 * @example
 * const obs = createObservability();
 * export const handler = middy().use(obs.middlewares()).handler(async () => { obs.logger.info('hi'); });
 */
export function createObservability({
  serviceName = SERVICE_NAME,
  namespace = METRICS_NAMESPACE,
}: ObservabilityOptions = {}): Observability {
  const powertoolsLogger = new PowertoolsLogger({ serviceName });
  const powertoolsMetrics = new PowertoolsMetrics({ namespace, serviceName });
  const metrics = createEmfMetrics();
  const flush = () => metrics.flush(powertoolsMetrics);
  type Level = Parameters<PowertoolsLogger['setLogLevel']>[0];
  let level: Level | undefined;

  /**
   * Re-applies the configured level after `injectLambdaContext`, which resets the logger to its
   * initial level (INFO unless `POWERTOOLS_LOG_LEVEL` says otherwise) at the start of every warm
   * invocation: without this, `LOG_LEVEL` held for a container's first invocation only. Debug
   * sampling (`POWERTOOLS_LOGGER_SAMPLE_RATE`, not used by this project) would be overridden too.
   */
  const keepLogLevel: middy.MiddlewareObj<unknown, unknown, Error, Context> = {
    before: () => {
      if (level !== undefined) powertoolsLogger.setLogLevel(level);
    },
  };

  /** Publishes the invocation's metrics (and the cold start once per container) as EMF. */
  const emitMetrics: middy.MiddlewareObj<unknown, unknown, Error, Context> = {
    before: (request) => {
      powertoolsMetrics.captureColdStartMetric(request.context.functionName);
    },
    after: flush,
    onError: flush,
  };

  /**
   * Logs an invocation's error with name, code and stack. It still propagates: API Gateway answers
   * the client with its generic `Internal server error` (no detail), Lambda retries an async event
   * and the Kafka event source its batch.
   */
  const logErrors: middy.MiddlewareObj<unknown, unknown, Error, Context> = {
    onError: (request) => {
      powertoolsLogger.error('invocation failed', redactFields({ err: request.error }));
    },
  };

  // `logEvent: false` always: an event carries credentials (`?token=`, `Cookie`, `Authorization`, a
  // `system.authenticate` frame), so POWERTOOLS_LOGGER_LOG_EVENT=true must never print one
  // (test/e2e/auth.test.ts runs with it set and greps the output for every token).
  const injectContext = injectLambdaContext(powertoolsLogger, {
    resetKeys: true,
    logEvent: false,
  }) as middy.MiddlewareObj<unknown, unknown, Error, Context>;

  return {
    logger: loggerOnPowertools(powertoolsLogger),
    metrics,
    setLogLevel: (configured) => {
      level = configured.toUpperCase() as Level;
      powertoolsLogger.setLogLevel(level);
    },
    middlewares: () => [injectContext, keepLogLevel, emitMetrics, logErrors],
  };
}

/** The container's observability: one per Lambda container, shared by the runtime and the middlewares. */
const shared = createObservability();

let runtime: Runtime | undefined;

/**
 * The container-wide runtime (created on first use, reused across invocations): its logger writes
 * through Powertools, its metrics are published as EMF at the end of each invocation.
 */
export function getRuntime(): Runtime {
  if (!runtime) {
    const config = getConfig();
    shared.setLogLevel(config.logLevel);
    runtime = createRuntime(config, { logger: shared.logger, metrics: shared.metrics });
  }
  return runtime;
}

/**
 * The middlewares every function uses, outermost first.
 *
 * @example
 * export const handler = middy<Event, Result>().use(observability()).handler(async (event) => …);
 */
export const observability = () => shared.middlewares();

/**
 * What a function factory of handlers/ is given: where its dependencies come from and the
 * observability middlewares around it. The Lambda export passes {@link inContainer}; a test passes
 * its own dependencies (in-memory adapters) and its own `createObservability()`, so it runs the
 * same middy chain (docs/architecture.md, "Testing a handler directly").
 */
export interface FunctionWiring<D> {
  /**
   * The dependencies, asked for on every invocation: the container creates its runtime on the
   * first one, never at module load (a `/health` check creates none).
   */
  readonly deps: () => D;
  readonly observability: Pick<Observability, 'middlewares'>;
}

/**
 * The container's wiring: dependencies taken from the container-wide runtime, the shared
 * Powertools middlewares.
 *
 * @example
 * export const handler = createConnectHandler(inContainer((runtime) => runtime.deps));
 */
export function inContainer<D>(depsOf: (runtime: Runtime) => D): FunctionWiring<D> {
  return { deps: () => depsOf(getRuntime()), observability: shared };
}
