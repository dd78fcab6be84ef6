import '../lib/auth/preload';
import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { handleConnect } from '../lib/gateway/connect';
import type { GatewayDeps } from '../lib/gateway/deps';
import { managementEndpoint } from '../lib/runtime/endpoint';
import type { WebSocketEvent } from '../lib/runtime/events';
import { type FunctionWiring, inContainer } from '../lib/runtime/lambda';

const REFUSAL_BODY: Partial<Record<number, string>> = { 401: 'Unauthorized', 403: 'Forbidden' };

/**
 * `$connect`: check the origin, authenticate from query/header/cookie, register, trigger the welcome.
 *
 * @example
 * const connect = createConnectHandler({ deps: () => deps, observability: createObservability() });
 * await connect(connectEvent({ connectionId: 'abc=', query: { token } }), lambdaContext());
 */
export function createConnectHandler({ deps, observability }: FunctionWiring<GatewayDeps>) {
  return middy<WebSocketEvent, APIGatewayProxyResult>()
    .use(observability.middlewares())
    .handler(async (event) => {
      const gateway = deps();
      const { connectionId } = event.requestContext;
      const result = await handleConnect(gateway, {
        connectionId,
        request: { headers: event.headers, queryStringParameters: event.queryStringParameters },
        endpoint: managementEndpoint(gateway.config, event.requestContext),
      });
      return { statusCode: result.statusCode, body: REFUSAL_BODY[result.statusCode] ?? '' };
    });
}

export const handler = createConnectHandler(inContainer((runtime) => runtime.deps));
