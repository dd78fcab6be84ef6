import '../lib/kafka/preload';
import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { cleanupConnection } from '../lib/gateway/cleanup';
import type { WebSocketEvent } from '../lib/runtime/events';
import { getRuntime, observability } from '../lib/runtime/lambda';

/** `$disconnect`: removes every key of the connection and publishes the departure (docs/decisions.md D7). */
export const handler = middy<WebSocketEvent, APIGatewayProxyResult>()
  .use(observability())
  .handler(async (event) => {
    const { deps } = getRuntime();
    await cleanupConnection(deps, event.requestContext.connectionId, 'disconnect');
    return { statusCode: 200, body: '' };
  });
