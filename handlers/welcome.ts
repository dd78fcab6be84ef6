import middy from '@middy/core';
import type { GatewayDeps, WelcomeRequest } from '../lib/gateway/deps';
import { deliverWelcome } from '../lib/gateway/welcome';
import { type FunctionWiring, inContainer } from '../lib/runtime/lambda';

export type WelcomeDeps = Pick<GatewayDeps, 'store' | 'pusherFor' | 'logger' | 'now'>;

/** Invoked asynchronously by `$connect`: pushes `system.welcome` once the connection is open. */
export function createWelcomeHandler({ deps, observability }: FunctionWiring<WelcomeDeps>) {
  return middy<WelcomeRequest, { result: string }>()
    .use(observability.middlewares())
    .handler(async (event) => {
      const gateway = deps();
      if (typeof event?.connectionId !== 'string' || typeof event.endpoint !== 'string') {
        gateway.logger.warn('welcome invoked with a malformed event');
        return { result: 'invalid' };
      }
      return { result: await deliverWelcome(gateway, event) };
    });
}

export const handler = createWelcomeHandler(inContainer((runtime) => runtime.deps));
