/**
 * A `$disconnect` that never arrives: API Gateway delivers `$disconnect` on a best-effort basis,
 * and e2e tests stand this handler in for the real one to see what the gateway does without it
 * (docs/decisions.md D10: the sweeper cleans up).
 */
export const handler = async (): Promise<{ statusCode: number; body: string }> => ({
  statusCode: 200,
  body: '',
});
