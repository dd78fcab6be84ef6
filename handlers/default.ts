import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { handleMessage } from '../lib/gateway/message';
import { getRuntime } from '../lib/runtime/container';
import { managementEndpoint } from '../lib/runtime/endpoint';
import type { WebSocketEvent } from '../lib/runtime/events';

/**
 * `$default`: every client frame. The reply (if any) is the route response, which API Gateway
 * (routeResponseSelectionExpression `$default`) and serverless-offline both send back on the socket.
 */
export const handler = middy<WebSocketEvent, APIGatewayProxyResult>().handler(async (event) => {
  const { deps } = getRuntime();
  const body =
    event.isBase64Encoded && event.body
      ? Buffer.from(event.body, 'base64').toString('utf8')
      : (event.body ?? '');
  const reply = await handleMessage(deps, {
    connectionId: event.requestContext.connectionId,
    body,
    endpoint: managementEndpoint(deps.config, event.requestContext),
  });
  return reply === undefined ? { statusCode: 200, body: '' } : { statusCode: 200, body: reply };
});
