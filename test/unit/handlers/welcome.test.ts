/**
 * The welcome function (handlers/welcome.ts), invoked as `$connect` invokes it (asynchronously,
 * with `{ connectionId, endpoint }`): `system.welcome` is the connection's first frame, sent once.
 */
import { lambdaContext, MANAGEMENT_ENDPOINT, webSocket } from '../../support/lambda-events';
import { connected, createHarness, type Harness, replyOf } from './harness';

let h: Harness;
beforeEach(() => {
  h = createHarness();
});

const ctx = () => lambdaContext('welcome', { remainingMs: 10_000 });

describe('welcome function', () => {
  it('pushes system.welcome with the connection id, through the endpoint $connect passed', async () => {
    const socket = await connected(h);
    const [request] = h.fakes.welcome.requests;

    const result = await h.welcome(request!, ctx());

    expect(request).toEqual({ connectionId: socket.connectionId, endpoint: MANAGEMENT_ENDPOINT });
    expect(result).toEqual({ result: 'sent' });
    expect(h.fakes.api.delivered(socket.connectionId)).toEqual([
      { type: 'system.welcome', connection_id: socket.connectionId, timestamp: expect.any(String) },
    ]);
    expect(h.fakes.endpoints).toEqual([MANAGEMENT_ENDPOINT]);
  });

  it('sends it once: a second invocation (Lambda retries async events) finds it claimed', async () => {
    const socket = await connected(h);
    await h.welcome(h.fakes.welcome.requests[0]!, ctx());

    const again = await h.welcome(h.fakes.welcome.requests[0]!, ctx());

    expect(again).toEqual({ result: 'claimed-elsewhere' });
    expect(h.fakes.api.delivered(socket.connectionId)).toHaveLength(1);
  });

  it('does not send it after $default already did (the client spoke first)', async () => {
    const socket = await connected(h);
    await h.message(socket.message({ type: 'system.heartbeat' }), lambdaContext('default'));

    const result = await h.welcome(h.fakes.welcome.requests[0]!, ctx());

    expect(result).toEqual({ result: 'claimed-elsewhere' });
    expect(h.fakes.api.delivered(socket.connectionId).map((f) => f.type)).toEqual(['system.welcome']);
  });

  it('makes $default wait for it: the reply after the welcome invocation is not a second welcome', async () => {
    const socket = await connected(h);
    await h.welcome(h.fakes.welcome.requests[0]!, ctx());

    const reply = await h.message(socket.message({ type: 'system.heartbeat' }), lambdaContext('default'));

    expect(replyOf(reply).type).toBe('system.heartbeat_ack');
    expect(h.fakes.api.delivered(socket.connectionId).map((f) => f.type)).toEqual(['system.welcome']);
  });

  it('pushes nothing to a connection $disconnect already removed (the claim never re-creates it)', async () => {
    const socket = await connected(h);
    await h.disconnect(socket.disconnect(), lambdaContext('disconnect'));

    const result = await h.welcome(h.fakes.welcome.requests[0]!, ctx());

    expect(result).toEqual({ result: 'claimed-elsewhere' });
    expect(h.fakes.api.requests).toEqual([]);
  });

  it('stops retrying once $disconnect removed the connection while pushes answered 410', async () => {
    const socket = await connected(h);
    // API Gateway answers 410 until $connect returned; here the client is already gone for good.
    h.fakes.api.gone(socket.connectionId);
    const welcoming = h.welcome(h.fakes.welcome.requests[0]!, ctx());
    await h.disconnect(socket.disconnect({ statusCode: 1006 }), lambdaContext('disconnect'));

    expect(await welcoming).toEqual({ result: 'gone' });
  });

  it('retries while API Gateway answers 410 because $connect has not returned yet, then sends it', async () => {
    const socket = await connected(h);
    h.fakes.api.behave(socket.connectionId, { kind: 'fail', status: 410, times: 3 });

    const result = await h.welcome(h.fakes.welcome.requests[0]!, ctx());

    expect(result).toEqual({ result: 'sent' });
    expect(h.fakes.api.requests.map((r) => r.status)).toEqual([410, 410, 410, 200]);
    expect(h.fakes.api.delivered(socket.connectionId).map((f) => f.type)).toEqual(['system.welcome']);
  });

  it.each([
    ['no connectionId', { endpoint: MANAGEMENT_ENDPOINT }],
    ['no endpoint', { connectionId: webSocket().connectionId }],
    ['null', null],
  ])('answers "invalid" to a malformed event (%s)', async (_what, event) => {
    const result = await h.welcome(event as never, ctx());

    expect(result).toEqual({ result: 'invalid' });
    expect(h.fakes.api.requests).toEqual([]);
  });
});
