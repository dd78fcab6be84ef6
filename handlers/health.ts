import middy from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { GatewayDeps } from '../lib/gateway/deps';
import { type FunctionWiring, inContainer } from '../lib/runtime/lambda';
import { checkReadiness } from '../lib/runtime/readiness';

export interface HttpEvent {
  readonly path?: string;
  readonly rawPath?: string;
  readonly resource?: string;
}

export type HealthDeps = Pick<GatewayDeps, 'store' | 'publisher' | 'logger'>;

const json = (statusCode: number, body: unknown): APIGatewayProxyResult => ({
  statusCode,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
});

/**
 * `GET /health`: liveness, no dependency checks, exactly `{"status":"ok"}` (as the old gateway).
 * `GET /ready`: 200 when Redis and Kafka answer, 503 otherwise, with the state of each. Only
 * `/ready` asks for the dependencies, so a liveness check never creates the runtime.
 */
export function createHealthHandler({ deps, observability }: FunctionWiring<HealthDeps>) {
  return middy<HttpEvent, APIGatewayProxyResult>()
    .use(observability.middlewares())
    .handler(async (event) => {
      const path = event.rawPath ?? event.path ?? event.resource ?? '/health';
      if (!path.endsWith('/ready')) return json(200, { status: 'ok' });
      const report = await checkReadiness(deps());
      return json(report.status === 'ready' ? 200 : 503, report);
    });
}

export const handler = createHealthHandler(inContainer((runtime) => runtime.deps));
