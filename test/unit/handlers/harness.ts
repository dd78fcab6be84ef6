/**
 * The functions of handlers/ built by their factories on in-memory adapters
 * (test/support/memory/deps.ts) and a test's own Powertools observability, so a unit test runs each
 * handler's real middy chain with API Gateway / MSK events (test/support/lambda-events.ts) and no
 * network.
 */

import { createConnectHandler } from '../../../handlers/connect';
import { createDefaultHandler } from '../../../handlers/default';
import { createDisconnectHandler } from '../../../handlers/disconnect';
import { createEventsHandler, type EventsDeps } from '../../../handlers/events';
import { createHealthHandler } from '../../../handlers/health';
import { createSweeperHandler } from '../../../handlers/sweeper';
import { createWelcomeHandler } from '../../../handlers/welcome';
import type { Config } from '../../../lib/config';
import type { SweeperDeps } from '../../../lib/gateway/sweeper';
import type { Identity } from '../../../lib/protocol/envelope';
import { createFanout } from '../../../lib/push/scheduler';
import { createObservability } from '../../../lib/runtime/lambda';
import { lambdaContext, type WebSocketClient, webSocket } from '../../support/lambda-events';
import { createManualClock } from '../../support/memory/clock';
import { createMemoryGatewayDeps, type MemoryFakes, type MemoryGatewayDeps } from '../../support/memory/deps';
import { createMemoryPusher } from '../../support/memory/pusher';
import { claimsFor, createTokenKit } from '../../support/tokens';

/** The browser origin the gateway under test allows (`WS_ALLOWED_ORIGINS`). */
export const APP_ORIGIN = 'https://app.example.com';
/** One per test file: the keys the gateway under test verifies with. */
export const tokens = createTokenKit();

export interface Harness {
  readonly config: Config;
  readonly deps: MemoryGatewayDeps;
  readonly fakes: MemoryFakes;
  readonly connect: ReturnType<typeof createConnectHandler>;
  readonly message: ReturnType<typeof createDefaultHandler>;
  readonly disconnect: ReturnType<typeof createDisconnectHandler>;
  readonly welcome: ReturnType<typeof createWelcomeHandler>;
  readonly health: ReturnType<typeof createHealthHandler>;
  readonly events: ReturnType<typeof createEventsHandler>;
  readonly sweeper: ReturnType<typeof createSweeperHandler>;
  /** A counter's value on the gateway's metrics. */
  count(name: string, labels?: Record<string, string>): number;
}

export interface HarnessOptions {
  /** Where the store's clock (and `deps.now`) starts. Default: the memory deps' fixed start. */
  readonly clockMs?: number;
}

/**
 * A gateway on in-memory adapters with every function built by its factory. `env` is what a
 * deployment would set (read by `loadConfig`) over these defaults: stage `prod`, {@link APP_ORIGIN}
 * allowed, and no `WS_MANAGEMENT_ENDPOINT`: the endpoint is derived from each request context, as
 * on AWS.
 */
export function createHarness(
  env: Record<string, string | undefined> = {},
  options: HarnessOptions = {},
): Harness {
  const deps = createMemoryGatewayDeps({
    env: { STAGE: 'prod', WS_ALLOWED_ORIGINS: APP_ORIGIN, WS_MANAGEMENT_ENDPOINT: undefined, ...env },
    tokens,
    ...(options.clockMs === undefined ? {} : { clock: createManualClock(options.clockMs) }),
  });
  const { config, fakes } = deps;
  // Nothing leaves the test process: Powertools writes straight to stdout / stderr, not through
  // jest's silenced console.
  const observability = createObservability();
  observability.setLogLevel('silent');
  const wiring = <D>(d: D) => ({ deps: () => d, observability });
  const eventsDeps: EventsDeps = {
    ...deps,
    // The pipeline's real scheduler on the in-memory Management API, without the Redis budget, and
    // as lib/runtime/fanout.ts builds it: a single-attempt pusher, the scheduler does the retrying.
    createFanout: (endpoint) =>
      createFanout({
        pusher: createMemoryPusher({ api: fakes.api, maxRetries: 0, timeoutMs: config.push.timeoutMs }),
        closer: deps.closerFor(endpoint),
        budget: null,
        maxInFlight: config.push.concurrency,
        maxRetries: config.push.maxRetries,
        slowClientMs: config.push.slowClientSecs * 1000,
        logger: deps.logger,
        metrics: deps.metrics,
      }),
  };
  const sweeperDeps: SweeperDeps = { ...deps, liveness: fakes.liveness, probe: fakes.probe };
  return {
    config,
    deps,
    fakes,
    connect: createConnectHandler(wiring(deps)),
    message: createDefaultHandler(wiring(deps)),
    disconnect: createDisconnectHandler(wiring(deps)),
    welcome: createWelcomeHandler(wiring(deps)),
    health: createHealthHandler(wiring(deps)),
    events: createEventsHandler(wiring(eventsDeps)),
    sweeper: createSweeperHandler(wiring(sweeperDeps)),
    count: (name, labels = {}) => fakes.metrics.counter(name, '').get(labels),
  };
}

let users = 1000;
/** A user id the chat backend accepts (a positive decimal integer), unique within the file. */
export const newUserId = () => String(++users);

/** A valid session token for `userId`. */
export const tokenFor = (userId: string, extra: Record<string, unknown> = {}) =>
  tokens.hs256(claimsFor(userId, { username: `user${userId}`, roles: ['user'], ...extra }));

/** The identity a token of {@link tokenFor} carries. */
export const identityOf = (userId: string): Identity => ({
  userId,
  username: `user${userId}`,
  roles: ['user'],
});

/**
 * A connection as a client makes it: `$connect` (anonymous) and, with `userId`, a
 * `system.authenticate` frame carrying a token.
 */
export async function connected(h: Harness, userId?: string): Promise<WebSocketClient> {
  const socket = webSocket();
  const opened = await h.connect(
    socket.connect({ headers: { Origin: APP_ORIGIN } }),
    lambdaContext('connect'),
  );
  if (opened.statusCode !== 200) throw new Error(`$connect answered ${opened.statusCode}`);
  if (userId !== undefined) {
    const reply = await h.message(
      socket.message({ type: 'system.authenticate', token: tokenFor(userId) }),
      lambdaContext('default'),
    );
    if (!reply.body.includes('system.authenticated')) throw new Error(`authenticate answered ${reply.body}`);
  }
  return socket;
}

/** The parsed reply of a `$default` invocation (its route response). */
export const replyOf = (result: { body: string }): Record<string, unknown> =>
  JSON.parse(result.body) as Record<string, unknown>;
