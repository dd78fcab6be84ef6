import type { APIGatewayProxyResult } from 'aws-lambda';
import { handleMessage } from '../../lib/gateway/message';
import { managementEndpoint } from '../../lib/runtime/endpoint';
import { frameBody, type WebSocketEvent } from '../../lib/runtime/events';
import { getRuntime } from '../../lib/runtime/lambda';

/**
 * Variant of handlers/default.ts for bench/gateway.ts: the same work, but the reply is pushed
 * through the Management API instead of returned as the route response.
 */
export const handler = async (event: WebSocketEvent): Promise<APIGatewayProxyResult> => {
  const { deps } = getRuntime();
  const endpoint = managementEndpoint(deps.config, event.requestContext);
  const reply = await handleMessage(deps, {
    connectionId: event.requestContext.connectionId,
    body: frameBody(event),
    endpoint,
  });
  if (reply !== undefined) await deps.pusherFor(endpoint).push(event.requestContext.connectionId, reply);
  return { statusCode: 200, body: '' };
};
