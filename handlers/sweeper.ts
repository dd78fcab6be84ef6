import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { requireManagementEndpoint } from '../lib/config';
import { runSweeper, type SweeperDeps } from '../lib/gateway/sweeper';
import { getRuntime, observability } from '../lib/runtime/lambda';
import { createSweeperDeps } from '../lib/runtime/sweeper';

let sweeperDeps: SweeperDeps | undefined;

/** Stop this long before the function's timeout, so a step in progress can finish. */
const MARGIN_MS = 5000;

/**
 * The scheduled sweeper for Lambda-only deployments (docs/decisions.md D10): invoked once a minute,
 * it completes due departures every second and sweeps stale connections until shortly before its
 * timeout. Safe next to the long-running consumer, which runs the same loop: departures are claimed
 * atomically and a sweep takes a lock.
 */
export const handler = middy<unknown, { ok: true }, Error, Context>()
  .use(observability())
  .handler(async (_event, context) => {
    const runtime = getRuntime();
    sweeperDeps ??= createSweeperDeps(runtime, requireManagementEndpoint(runtime.deps.config));
    const controller = new AbortController();
    await runSweeper(sweeperDeps, {
      signal: controller.signal,
      proceed: () => context.getRemainingTimeInMillis() > MARGIN_MS,
    });
    return { ok: true };
  });
