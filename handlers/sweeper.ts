import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { requireManagementEndpoint } from '../lib/config';
import { runSweeper, type SweeperDeps } from '../lib/gateway/sweeper';
import type { Runtime } from '../lib/runtime/container';
import { type FunctionWiring, inContainer } from '../lib/runtime/lambda';
import { createSweeperDeps } from '../lib/runtime/sweeper';

/** Stop this long before the function's timeout, so a step in progress can finish. */
const MARGIN_MS = 5000;

/**
 * The scheduled sweeper for Lambda-only deployments (docs/decisions.md D10): invoked once a minute,
 * it completes due departures every second and sweeps stale connections until shortly before its
 * timeout. Safe next to the long-running consumer, which runs the same loop: departures are claimed
 * atomically and a sweep takes a lock.
 */
export function createSweeperHandler({ deps, observability }: FunctionWiring<SweeperDeps>) {
  return middy<unknown, { ok: true }, Error, Context>()
    .use(observability.middlewares())
    .handler(async (_event, context) => {
      const controller = new AbortController();
      await runSweeper(deps(), {
        signal: controller.signal,
        proceed: () => context.getRemainingTimeInMillis() > MARGIN_MS,
      });
      return { ok: true };
    });
}

let containerDeps: SweeperDeps | undefined;

/** The container's runtime with the liveness store and the probe of WS_MANAGEMENT_ENDPOINT. */
const sweeperDepsOf = (runtime: Runtime): SweeperDeps =>
  (containerDeps ??= createSweeperDeps(runtime, requireManagementEndpoint(runtime.deps.config)));

export const handler = createSweeperHandler(inContainer(sweeperDepsOf));
