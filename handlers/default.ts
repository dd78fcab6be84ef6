import '../lib/kafka/preload';
import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { handleMessage } from '../lib/gateway/message';
import { managementEndpoint } from '../lib/runtime/endpoint';
import { frameBody, type WebSocketEvent } from '../lib/runtime/events';
import { getRuntime, observability } from '../lib/runtime/lambda';

/**
 * `$default`: every client frame. The reply (if any) is the route response, which API Gateway
 * (routeResponseSelectionExpression `$default`) and serverless-offline both send back on the socket.
 */
export const handler = middy<WebSocketEvent, APIGatewayProxyResult>()
  .use(observability())
  .handler(async (event) => {
    const { deps } = getRuntime();
    const reply = await handleMessage(deps, {
      connectionId: event.requestContext.connectionId,
      body: frameBody(event),
      endpoint: managementEndpoint(deps.config, event.requestContext),
    });
    return { statusCode: 200, body: reply ?? '' };
  });
