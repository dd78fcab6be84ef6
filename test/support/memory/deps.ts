/**
 * A full `GatewayDeps` (lib/gateway/deps.ts) on in-memory adapters, for unit tests that call the
 * gateway functions and handlers directly: no network, one manual clock for everything
 * (`deps.now`, the store's bucket and TTLs, due departures), a real token verifier keyed by a
 * `TokenKit` (test/support/tokens.ts), and a test configuration from `loadConfig`. The real-adapter
 * equivalent is test/support/gateway-deps.ts.
 *
 * Every fake is exposed under `fakes`, to arrange state, inject faults and assert on what happened.
 * An override replaces a dependency in `deps` (the fake of the same name is then unused).
 *
 * @example
 * const deps = createMemoryGatewayDeps({ env: { AUTH_ALLOW_UNVERIFIED: 'true' } });
 * await deps.fakes.store.registerConnection('abc=', { connectedAt: deps.now(), bound: null });
 * const reply = await handleMessage(deps, { connectionId: 'abc=', body, endpoint: deps.fakes.endpoint });
 * expect(deps.fakes.publisher.envelopes('system.events')).toHaveLength(1);
 * deps.fakes.publisher.hang(); // Kafka frozen from here on
 */
import { createTokenVerifier } from '../../../lib/auth/verifier';
import { type Config, loadConfig } from '../../../lib/config';
import type { GatewayDeps } from '../../../lib/gateway/deps';
import { createLogger, type Logger } from '../../../lib/logger';
import { createMetrics, type MetricsRegistry } from '../../../lib/metrics';
import type { LivenessStore } from '../../../lib/store/liveness';
import { createTokenKit, type TokenKit } from '../tokens';
import { createManualClock, type ManualClock } from './clock';
import { createMemoryCloser, type MemoryCloser } from './closer';
import { createMemoryLifecycleStores, type MemoryLifecycleStores } from './lifecycle';
import { createMemoryLivenessStore } from './liveness';
import { createMemoryManagementApi, type MemoryManagementApi } from './management-api';
import { createMemoryProbe, type MemoryProbe } from './probe';
import { createMemoryPublisher, type MemoryPublisher } from './publisher';
import { createMemoryPusher, type MemoryPusher } from './pusher';
import { createMemorySessionStore, type MemorySessionStore } from './session-store';
import { createMemoryWelcomeTrigger, type MemoryWelcomeTrigger } from './welcome';

/** The Management API endpoint of the test configuration (`WS_MANAGEMENT_ENDPOINT`); never dialled. */
export const MEMORY_ENDPOINT = 'https://memory.execute-api.us-east-1.amazonaws.com/test';

/** One log entry as the JSON logger writes it. */
export type LogEntry = { level: string; msg: string } & Record<string, unknown>;

export interface MemoryFakes {
  readonly clock: ManualClock;
  readonly store: MemorySessionStore;
  readonly lifecycle: MemoryLifecycleStores;
  /** Over `store`'s state, for the sweeper (`SweeperDeps.liveness`, with `probe`). */
  readonly liveness: LivenessStore;
  readonly publisher: MemoryPublisher;
  /** The connections behind every endpoint: frames delivered, closes, gone / failing ones. */
  readonly api: MemoryManagementApi;
  /** The pusher `pusherFor` returns (one for every endpoint, on `api`). */
  readonly pusher: MemoryPusher;
  readonly closer: MemoryCloser;
  /** The sweeper's probe (`SweeperDeps.probe`), on `api`. */
  readonly probe: MemoryProbe;
  /** Endpoints `pusherFor` / `closerFor` were asked for, in order of first use. */
  readonly endpoints: readonly string[];
  readonly welcome: MemoryWelcomeTrigger;
  readonly tokens: TokenKit;
  readonly metrics: MetricsRegistry;
  /** Everything logged, parsed (debug level and up). */
  readonly logs: readonly LogEntry[];
  /** `MEMORY_ENDPOINT`. */
  readonly endpoint: string;
}

export interface MemoryGatewayDeps extends GatewayDeps {
  readonly fakes: MemoryFakes;
}

export interface MemoryGatewayOptions extends Partial<GatewayDeps> {
  /** Environment for `loadConfig`, over the test defaults (ignored when `config` is given). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly clock?: ManualClock;
  /** Keys the verifier trusts; default one kit shared by the test file (RSA keys are slow to make). */
  readonly tokens?: TokenKit;
}

let sharedKit: TokenKit | undefined;
function sharedTokenKit(): TokenKit {
  sharedKit ??= createTokenKit();
  return sharedKit;
}

/** The test configuration: `env` over the defaults below, validated by `loadConfig`. */
export function memoryTestConfig(
  tokens: TokenKit,
  env: Readonly<Record<string, string | undefined>> = {},
): Config {
  return loadConfig({
    STAGE: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: tokens.secret,
    WS_MANAGEMENT_ENDPOINT: MEMORY_ENDPOINT,
    LAMBDA_ENDPOINT: 'https://lambda.us-east-1.amazonaws.com',
    ...env,
  });
}

/** See the module comment. */
export function createMemoryGatewayDeps(options: MemoryGatewayOptions = {}): MemoryGatewayDeps {
  const { env, clock = createManualClock(), tokens = sharedTokenKit(), ...overrides } = options;
  const config = overrides.config ?? memoryTestConfig(tokens, env);
  const faults = { timeoutMs: config.redis.commandTimeoutMs };
  const store = createMemorySessionStore({
    clock,
    connectionTtlSecs: config.ws.connectionTtlSecs,
    maxConnectionsPerUser: config.ws.maxConnectionsPerUser,
    maxLobbiesPerConnection: config.ws.maxLobbiesPerConnection,
    keyPrefix: config.redis.keyPrefix,
    faults,
  });
  const lifecycle = createMemoryLifecycleStores({
    clock,
    reconnectTtlSecs: config.lifecycle.reconnectTtlSecs,
    faults,
  });
  const publisher = createMemoryPublisher({ timeoutMs: config.kafka.publishTimeoutMs });
  const api = createMemoryManagementApi();
  const pusher = createMemoryPusher({
    api,
    maxRetries: config.push.maxRetries,
    timeoutMs: config.push.timeoutMs,
  });
  const closer = createMemoryCloser({ api });
  const endpoints: string[] = [];
  const used = (endpoint: string) => {
    if (!endpoints.includes(endpoint)) endpoints.push(endpoint);
  };
  const logs: LogEntry[] = [];
  const verbose = process.env.TEST_VERBOSE === '1';
  const logger: Logger = createLogger({
    level: 'debug',
    write: (line) => {
      logs.push(JSON.parse(line) as LogEntry);
      if (verbose) process.stdout.write(line);
    },
  });
  const metrics = createMetrics();
  const welcome = createMemoryWelcomeTrigger();
  let ids = 0;

  const fakes: MemoryFakes = {
    clock,
    store,
    lifecycle,
    liveness: createMemoryLivenessStore(store),
    publisher,
    api,
    pusher,
    closer,
    probe: createMemoryProbe({ api }),
    endpoints,
    welcome,
    tokens,
    metrics,
    logs,
    endpoint: MEMORY_ENDPOINT,
  };
  return {
    config,
    store,
    lifecycle,
    publisher,
    verifier: createTokenVerifier({ publicKey: tokens.publicKeyPem, secret: tokens.secret }),
    pusherFor: (endpoint) => {
      used(endpoint);
      return pusher;
    },
    closerFor: (endpoint) => {
      used(endpoint);
      return closer;
    },
    welcome,
    logger,
    metrics,
    // Deterministic UUIDs, unique within these deps.
    newId: () => `00000000-0000-4000-8000-${String(++ids).padStart(12, '0')}`,
    now: () => clock.date(),
    ...overrides,
    fakes,
  };
}
