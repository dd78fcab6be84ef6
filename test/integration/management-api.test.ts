/**
 * The Management API stand-in that tests and benchmarks push to behaves like API Gateway: account
 * throttle, slow ("buffer full") and gone connections, faults, latency, GET and DELETE — in this
 * process and in a child process. Pushes go through the production pusher, so what is checked is
 * what the pusher sees.
 */

import { silentLogger } from '../../lib/logger';
import { type ClientPusher, createManagementApiPusher, PushError } from '../../lib/push/pusher';
import { type FakeManagementApi, startManagementApi } from '../support/management-api';
import { type ManagementApiProcess, startManagementApiProcess } from '../support/management-api-process';

const credentials = () => ({ accessKeyId: 'local', secretAccessKey: 'local' });

function pusherFor(endpoint: string, timeoutMs = 5000): ClientPusher {
  return createManagementApiPusher({
    endpoint,
    region: 'us-east-1',
    logger: silentLogger,
    maxRetries: 0,
    timeoutMs,
    credentials,
  });
}

/** The push's result, or the status (or error type) it failed with. */
async function outcome(pusher: ClientPusher, id: string): Promise<string> {
  try {
    return await pusher.push(id, '{"type":"t"}');
  } catch (err) {
    if (!(err instanceof PushError)) throw err;
    return err.statusCode === undefined ? 'network' : `${err.statusCode} ${err.errorType}`;
  }
}

async function call(endpoint: string, method: 'GET' | 'DELETE', id: string): Promise<number> {
  const res = await fetch(`${endpoint}/@connections/${id}`, { method });
  await res.arrayBuffer();
  return res.status;
}

describe('Management API stand-in (in process)', () => {
  let api: FakeManagementApi;
  let pusher: ClientPusher;
  afterEach(async () => {
    await pusher?.close();
    await api?.stop();
  });

  it('answers 429 LimitExceededException beyond the account burst and recovers at the account rate', async () => {
    api = await startManagementApi({ rate: 20, burst: 10, latencyMs: 0 });
    pusher = pusherFor(api.endpoint);
    const first = await Promise.all(Array.from({ length: 30 }, (_, i) => outcome(pusher, `c${i}`)));
    // Refill during the burst (20/s) can add a token or two on a slow box, never 20.
    const ok = first.filter((o) => o === 'ok').length;
    expect(ok).toBeGreaterThanOrEqual(10);
    expect(ok).toBeLessThan(20);
    expect(first.filter((o) => o === '429 LimitExceededException')).toHaveLength(30 - ok);
    expect(api.stats().throttled).toBe(30 - ok);
    await new Promise((r) => setTimeout(r, 300)); // ≥ 6 tokens back at 20/s
    expect(await outcome(pusher, 'later')).toBe('ok');
  });

  it('answers "buffer full" 429s to a slow connection only, and lets a draining one through at its pace', async () => {
    api = await startManagementApi({ latencyMs: 0 });
    pusher = pusherFor(api.endpoint);
    api.behave('slow', { kind: 'slow' });
    api.behave('draining', { kind: 'slow', acceptPerSec: 1 });
    expect(await outcome(pusher, 'slow')).toBe('429 LimitExceededException');
    expect(await outcome(pusher, 'fine')).toBe('ok');
    expect(await outcome(pusher, 'draining')).toBe('ok'); // its one-message buffer had room
    expect(await outcome(pusher, 'draining')).toBe('429 LimitExceededException');
    expect(api.stats()).toMatchObject({ bufferFull: 2, throttled: 0 });
    api.behave('slow', { kind: 'normal' });
    expect(await outcome(pusher, 'slow')).toBe('ok');
    expect(api.delivered('slow')).toEqual([{ type: 't' }]);
  });

  it('answers 410 to POST, GET and DELETE of a gone connection; DELETE makes a connection gone', async () => {
    api = await startManagementApi({ latencyMs: 0 });
    pusher = pusherFor(api.endpoint);
    api.behave('gone', { kind: 'gone' });
    expect(await outcome(pusher, 'gone')).toBe('gone');
    expect(await call(api.endpoint, 'GET', 'gone')).toBe(410);
    expect(await call(api.endpoint, 'DELETE', 'gone')).toBe(410);
    expect(await call(api.endpoint, 'GET', 'live')).toBe(200);
    expect(await call(api.endpoint, 'DELETE', 'live')).toBe(204);
    expect(await call(api.endpoint, 'GET', 'live')).toBe(410);
    expect(await outcome(pusher, 'live')).toBe('gone');
    expect(api.calls.map((c) => `${c.method} ${c.connectionId} ${c.status}`)).toEqual([
      'GET gone 410',
      'DELETE gone 410',
      'GET live 200',
      'DELETE live 204',
      'GET live 410',
    ]);
  });

  it('fails a connection with the given status for the given number of requests, or always', async () => {
    api = await startManagementApi({ latencyMs: 0 });
    pusher = pusherFor(api.endpoint);
    api.behave('flaky', { kind: 'fail', status: 503, times: 2 });
    api.behave('broken', { kind: 'fail', status: 500 });
    const flaky = [];
    const broken = [];
    for (let i = 0; i < 3; i++) {
      flaky.push(await outcome(pusher, 'flaky'));
      broken.push(await outcome(pusher, 'broken'));
    }
    expect(flaky).toEqual(['503 InternalServerErrorException', '503 InternalServerErrorException', 'ok']);
    expect(broken).toEqual(Array(3).fill('500 InternalServerErrorException'));
  });

  it('never answers a hanging connection, so the pusher times out; others are answered', async () => {
    api = await startManagementApi({ latencyMs: 0 });
    pusher = pusherFor(api.endpoint, 300);
    api.behave('hung', { kind: 'hang', times: 1 });
    const [hung, fine] = await Promise.all([outcome(pusher, 'hung'), outcome(pusher, 'fine')]);
    expect(hung).toBe('network');
    expect(fine).toBe('ok');
    // A fresh pusher: the first one's idle sockets time out (300 ms) right about now.
    await pusher.close();
    pusher = pusherFor(api.endpoint);
    expect(await outcome(pusher, 'hung')).toBe('ok'); // hung once only
  });

  it('answers no earlier than its configured round-trip latency', async () => {
    api = await startManagementApi({ latencyMs: 60, jitterMs: 10 });
    pusher = pusherFor(api.endpoint);
    const t0 = performance.now();
    expect(await outcome(pusher, 'c')).toBe('ok');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(49);
  });
});

describe('Management API stand-in (child process)', () => {
  let api: ManagementApiProcess;
  let pusher: ClientPusher;
  afterEach(async () => {
    await pusher?.close();
    await api?.stop();
  });

  it('is configured and read over its control routes', async () => {
    api = await startManagementApiProcess({ latencyMs: 1, jitterMs: 0, recordBodies: false });
    pusher = pusherFor(api.endpoint);
    await api.configure({
      rate: 1,
      burst: 2,
      connections: { slow: { kind: 'slow' }, gone: { kind: 'gone' } },
    });
    const results = [];
    for (const id of ['a', 'slow', 'gone', 'b', 'c']) results.push(await outcome(pusher, id));
    expect(results).toEqual([
      'ok',
      '429 LimitExceededException', // buffer full (it took an account token)
      'gone',
      '429 LimitExceededException', // account bucket empty
      '429 LimitExceededException',
    ]);
    expect(await api.stats()).toMatchObject({ posts: 5, throttled: 2, bufferFull: 1 });
    expect((await api.requests()).map((r) => `${r.connectionId} ${r.status}`)).toEqual([
      'a 200',
      'slow 429',
      'gone 410',
      'b 429',
      'c 429',
    ]);
    await api.reset();
    expect((await api.stats()).posts).toBe(0);
  });
});
