/**
 * `GET /health` and `GET /ready` (handlers/health.ts) invoked with HTTP API (payload 2.0) events.
 */

import { createHealthHandler } from '../../../handlers/health';
import { createObservability } from '../../../lib/runtime/lambda';
import { httpApiEvent, lambdaContext } from '../../support/lambda-events';
import { createHarness, type Harness } from './harness';

let h: Harness;
beforeEach(() => {
  h = createHarness();
});

const ctx = () => lambdaContext('health');
const NO_CACHE = { 'content-type': 'application/json', 'cache-control': 'no-store' };

describe('health function', () => {
  it('answers /health with exactly {"status":"ok"} without asking for any dependency', async () => {
    const observability = createObservability();
    observability.setLogLevel('silent');
    const deps = jest.fn(() => {
      throw new Error('a liveness check must not create the runtime');
    });
    const health = createHealthHandler({ deps, observability });

    const result = await health(httpApiEvent('/health'), ctx());

    expect(result).toEqual({ statusCode: 200, headers: NO_CACHE, body: '{"status":"ok"}' });
    expect(deps).not.toHaveBeenCalled();
  });

  it('answers /ready with 200 when Redis and Kafka answer', async () => {
    const result = await h.health(httpApiEvent('/ready'), ctx());

    expect(result).toEqual({
      statusCode: 200,
      headers: NO_CACHE,
      body: JSON.stringify({ status: 'ready', redis: 'ok', kafka: 'ok' }),
    });
  });

  it('answers /ready with 503 and says which dependency is down (Kafka)', async () => {
    h.fakes.publisher.fail();

    const result = await h.health(httpApiEvent('/ready'), ctx());

    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body)).toEqual({ status: 'unavailable', redis: 'ok', kafka: 'down' });
  });

  it('answers /ready with 503 when Redis is down', async () => {
    h.fakes.store.faults.fail();

    const result = await h.health(httpApiEvent('/ready'), ctx());

    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body)).toEqual({ status: 'unavailable', redis: 'down', kafka: 'ok' });
  });
});
