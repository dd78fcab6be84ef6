import type { APIGatewayProxyResult } from 'aws-lambda';

/** Baseline for bench/gateway.ts: the cheapest possible `$default` — a constant route response. */
export const handler = async (): Promise<APIGatewayProxyResult> => ({
  statusCode: 200,
  body: `{"type":"system.heartbeat_ack","timestamp":"${new Date().toISOString()}"}`,
});
