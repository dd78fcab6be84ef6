import '../lib/kafka/preload';
import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { GatewayDeps } from '../lib/gateway/deps';
import { handleMessage } from '../lib/gateway/message';
import { managementEndpoint } from '../lib/runtime/endpoint';
import { frameBody, type WebSocketEvent } from '../lib/runtime/events';
import { type FunctionWiring, inContainer } from '../lib/runtime/lambda';

/**
 * `$default`: every client frame. The reply (if any) is the route response, which API Gateway
 * (routeResponseSelectionExpression `$default`) and serverless-offline both send back on the socket.
 */
export function createDefaultHandler({ deps, observability }: FunctionWiring<GatewayDeps>) {
  return middy<WebSocketEvent, APIGatewayProxyResult>()
    .use(observability.middlewares())
    .handler(async (event) => {
      const gateway = deps();
      const reply = await handleMessage(gateway, {
        connectionId: event.requestContext.connectionId,
        body: frameBody(event),
        endpoint: managementEndpoint(gateway.config, event.requestContext),
      });
      return { statusCode: 200, body: reply ?? '' };
    });
}

export const handler = createDefaultHandler(inContainer((runtime) => runtime.deps));
