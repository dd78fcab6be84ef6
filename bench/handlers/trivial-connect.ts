import type { APIGatewayProxyResult } from 'aws-lambda';

/**
 * Baseline for bench/gateway.ts's connection cycle: the cheapest possible `$connect` and
 * `$disconnect` — accept, do nothing (no Redis, no welcome).
 */
export const handler = async (): Promise<APIGatewayProxyResult> => ({ statusCode: 200, body: '' });
