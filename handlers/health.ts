import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { getRuntime, observability } from '../lib/runtime/lambda';
import { checkReadiness } from '../lib/runtime/readiness';

interface HttpEvent {
  readonly path?: string;
  readonly rawPath?: string;
  readonly resource?: string;
}

const json = (statusCode: number, body: unknown): APIGatewayProxyResult => ({
  statusCode,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
});

/**
 * `GET /health`: liveness, no dependency checks, exactly `{"status":"ok"}` (as the old gateway).
 * `GET /ready`: 200 when Redis and Kafka answer, 503 otherwise, with the state of each.
 */
export const handler = middy<HttpEvent, APIGatewayProxyResult>()
  .use(observability())
  .handler(async (event) => {
    const path = event.rawPath ?? event.path ?? event.resource ?? '/health';
    if (!path.endsWith('/ready')) return json(200, { status: 'ok' });
    const { deps } = getRuntime();
    const report = await checkReadiness(deps);
    return json(report.status === 'ready' ? 200 : 503, report);
  });
