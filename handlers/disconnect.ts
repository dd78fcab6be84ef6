import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { cleanupConnection } from '../lib/gateway/cleanup';
import { getRuntime } from '../lib/runtime/container';
import type { WebSocketEvent } from '../lib/runtime/events';

/** `$disconnect`: removes every key of the connection and publishes the departure (D7). */
export const handler = middy<WebSocketEvent, APIGatewayProxyResult>().handler(async (event) => {
  const { deps } = getRuntime();
  await cleanupConnection(deps, event.requestContext.connectionId, 'disconnect');
  return { statusCode: 200, body: '' };
});
