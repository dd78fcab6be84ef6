import '../lib/auth/preload';
import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { handleConnect } from '../lib/gateway/connect';
import { managementEndpoint } from '../lib/runtime/endpoint';
import type { WebSocketEvent } from '../lib/runtime/events';
import { getRuntime, observability } from '../lib/runtime/lambda';

const REFUSAL_BODY: Partial<Record<number, string>> = { 401: 'Unauthorized', 403: 'Forbidden' };

/** `$connect`: check the origin, authenticate from query/header/cookie, register, trigger the welcome. */
export const handler = middy<WebSocketEvent, APIGatewayProxyResult>()
  .use(observability())
  .handler(async (event) => {
    const { deps } = getRuntime();
    const { connectionId } = event.requestContext;
    const result = await handleConnect(deps, {
      connectionId,
      request: { headers: event.headers, queryStringParameters: event.queryStringParameters },
      endpoint: managementEndpoint(deps.config, event.requestContext),
    });
    return { statusCode: result.statusCode, body: REFUSAL_BODY[result.statusCode] ?? '' };
  });
