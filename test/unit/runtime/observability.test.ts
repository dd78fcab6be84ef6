/**
 * Observability in Lambda: the Logger and Metrics ports on Powertools, driven through a middy
 * handler with a Lambda context. What leaves the process (stdout: JSON log lines and EMF blobs) is
 * what is checked.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createObservability } from '../../../lib/runtime/lambda';

const context = (requestId: string): Context =>
  ({
    awsRequestId: requestId,
    functionName: 'ws-gateway-prod-events',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:ws-gateway-prod-events',
    memoryLimitInMB: '512',
    logGroupName: '/aws/lambda/ws-gateway-prod-events',
    logStreamName: '2026/12/02/[$LATEST]abc',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }) as Context;

// What Lambda sets for on-demand containers; Powertools reports cold starts only for those.
process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';

let lines: Array<Record<string, unknown>>;
let restore: () => void;

beforeEach(() => {
  lines = [];
  // Powertools writes WARN and ERROR entries to stderr, the rest to stdout; Lambda collects both.
  const capture = (stream: NodeJS.WriteStream) =>
    jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      for (const line of String(chunk).split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      return true;
    });
  const spies = [capture(process.stdout), capture(process.stderr)];
  restore = () => {
    for (const spy of spies) spy.mockRestore();
  };
});

afterEach(() => restore());

const logs = () => lines.filter((l) => typeof l.message === 'string');
const blobs = () => lines.filter((l) => l._aws !== undefined);

class PushFailedError extends Error {
  override readonly name = 'PushFailedError';
  readonly code = 'EPUSH';
}

describe('Lambda observability (Powertools Logger and Metrics as middy middlewares)', () => {
  it('puts the request id, cold start and function name on entries of loggers created before the invocation', async () => {
    const obs = createObservability({ serviceName: 'ws-gateway' });
    const child = obs.logger.child({ component: 'pusher' });
    const handler = middy()
      .use(obs.middlewares())
      .handler(async () => {
        child.info('pushed', { connectionId: 'abc=', token: 'secret.jwt.value' });
      });

    await handler({}, context('req-1'));
    await handler({}, context('req-2'));

    const [first, second] = logs();
    expect(first).toMatchObject({
      level: 'INFO',
      message: 'pushed',
      service: 'ws-gateway',
      component: 'pusher',
      connectionId: 'abc=',
      token: '[redacted]',
      function_request_id: 'req-1',
      function_name: 'ws-gateway-prod-events',
      cold_start: true,
    });
    expect(second).toMatchObject({ function_request_id: 'req-2', cold_start: false });
  });

  it('logs a failed invocation with the error name, code and stack, and still rethrows it', async () => {
    const obs = createObservability();
    const handler = middy()
      .use(obs.middlewares())
      .handler(async () => {
        throw new PushFailedError('push to abc= failed');
      });

    await expect(handler({}, context('req-err'))).rejects.toThrow('push to abc= failed');

    const entry = logs().find((l) => l.message === 'invocation failed');
    expect(entry).toMatchObject({
      level: 'ERROR',
      function_request_id: 'req-err',
      err: { name: 'PushFailedError', code: 'EPUSH', message: 'push to abc= failed' },
    });
    expect((entry?.err as { stack: string } | undefined)?.stack).toContain(
      'PushFailedError: push to abc= failed',
    );
  });

  it('publishes what the Metrics port recorded as EMF under the same names, one blob per label set', async () => {
    const obs = createObservability({ namespace: 'ws-gateway' });
    const deliveries = obs.metrics.counter('ws_gateway_deliveries_total', 'Pushes by result');
    const duration = obs.metrics.histogram('ws_gateway_push_duration_seconds', 'Push latency');
    const handler = middy()
      .use(obs.middlewares())
      .handler(async () => {
        deliveries.inc({ result: 'ok' });
        deliveries.inc({ result: 'ok' }, 2);
        deliveries.inc({ result: 'gone' });
        duration.observe({ result: 'ok' }, 0.004);
        duration.observe({ result: 'ok' }, 0.006);
      });

    await handler({}, context('req-m'));

    const emf = blobs().filter((b) => !('ColdStart' in b));
    const ok = emf.find((b) => b.result === 'ok');
    const gone = emf.find((b) => b.result === 'gone');
    expect(ok).toMatchObject({
      service: 'ws-gateway',
      ws_gateway_deliveries_total: 3,
      ws_gateway_push_duration_seconds: [0.004, 0.006],
    });
    const aws = ok?._aws as { CloudWatchMetrics: Array<Record<string, unknown>> } | undefined;
    const directive = aws?.CloudWatchMetrics[0];
    expect(directive).toMatchObject({ Namespace: 'ws-gateway' });
    expect(directive?.Dimensions).toEqual([expect.arrayContaining(['service', 'result'])]);
    expect(directive?.Metrics).toEqual(
      expect.arrayContaining([
        { Name: 'ws_gateway_deliveries_total', Unit: 'Count' },
        { Name: 'ws_gateway_push_duration_seconds', Unit: 'Seconds' },
      ]),
    );
    expect(gone).toMatchObject({ ws_gateway_deliveries_total: 1 });
    // Published once: the next invocation starts empty.
    lines = [];
    await handler({}, context('req-n'));
    expect(blobs().filter((b) => 'ws_gateway_deliveries_total' in b)).toHaveLength(2);
    expect(blobs().find((b) => b.result === 'ok')).toMatchObject({ ws_gateway_deliveries_total: 3 });
  });

  it('keeps the configured log level on warm invocations (Powertools resets it to its initial level on each)', async () => {
    const obs = createObservability();
    let first = true;
    const handler = middy()
      .use(obs.middlewares())
      .handler(async () => {
        // As getRuntime() does: the level comes from LOG_LEVEL on the first invocation.
        if (first) obs.setLogLevel('warn');
        first = false;
        obs.logger.info('routine');
        obs.logger.warn('worth a look');
      });

    for (const id of ['w-1', 'w-2', 'w-3']) await handler({}, context(id));

    expect(logs().map((l) => [l.function_request_id, l.message])).toEqual([
      ['w-1', 'worth a look'],
      ['w-2', 'worth a look'],
      ['w-3', 'worth a look'],
    ]);
  });

  it('emits the cold start metric once per container and nothing when nothing was recorded', async () => {
    const obs = createObservability();
    const handler = middy()
      .use(obs.middlewares())
      .handler(async () => undefined);

    await handler({}, context('a'));
    await handler({}, context('b'));

    expect(blobs()).toEqual([
      expect.objectContaining({ ColdStart: 1, function_name: 'ws-gateway-prod-events' }),
    ]);
    expect(logs()).toEqual([]);
  });

  it('splits more than 99 observations of one histogram into several blobs, each with its dimensions', async () => {
    const obs = createObservability();
    const duration = obs.metrics.histogram('ws_gateway_push_duration_seconds', 'Push latency');
    const handler = middy()
      .use(obs.middlewares())
      .handler(async () => {
        for (let i = 0; i < 250; i++) duration.observe({ result: 'ok' }, i / 1000);
      });

    await handler({}, context('h'));

    const emf = blobs().filter((b) => 'ws_gateway_push_duration_seconds' in b);
    expect(emf.every((b) => b.result === 'ok')).toBe(true);
    expect(emf.flatMap((b) => b.ws_gateway_push_duration_seconds as number[])).toHaveLength(250);
    expect(logs()).toEqual([]);
  });
});
