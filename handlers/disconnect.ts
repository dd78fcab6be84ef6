import '../lib/kafka/preload';
import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { cleanupConnection } from '../lib/gateway/cleanup';
import type { CleanupDeps } from '../lib/gateway/deps';
import type { WebSocketEvent } from '../lib/runtime/events';
import { type FunctionWiring, inContainer } from '../lib/runtime/lambda';

/** `$disconnect`: removes every key of the connection and publishes the departure (docs/decisions.md D7). */
export function createDisconnectHandler({ deps, observability }: FunctionWiring<CleanupDeps>) {
  return middy<WebSocketEvent, APIGatewayProxyResult>()
    .use(observability.middlewares())
    .handler(async (event) => {
      await cleanupConnection(deps(), event.requestContext.connectionId, 'disconnect');
      return { statusCode: 200, body: '' };
    });
}

export const handler = createDisconnectHandler(inContainer((runtime) => runtime.deps));
