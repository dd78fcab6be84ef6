import middy from '@middy/core';
import type { WelcomeRequest } from '../lib/gateway/deps';
import { deliverWelcome } from '../lib/gateway/welcome';
import { getRuntime, observability } from '../lib/runtime/lambda';

/** Invoked asynchronously by `$connect`: pushes `system.welcome` once the connection is open. */
export const handler = middy<WelcomeRequest, { result: string }>()
  .use(observability())
  .handler(async (event) => {
    const { deps } = getRuntime();
    if (typeof event?.connectionId !== 'string' || typeof event.endpoint !== 'string') {
      deps.logger.warn('welcome invoked with a malformed event');
      return { result: 'invalid' };
    }
    return { result: await deliverWelcome(deps, event) };
  });
