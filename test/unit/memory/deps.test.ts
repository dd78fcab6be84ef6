/**
 * `createMemoryGatewayDeps` drives the real gateway functions end to end with no network: a
 * connection comes, authenticates with a token, sends a command, is swept by its grace and goes —
 * every effect visible on the fakes, time moved by the one clock.
 */

import { cleanupConnection } from '../../../lib/gateway/cleanup';
import { handleConnect } from '../../../lib/gateway/connect';
import { completeDueDepartures } from '../../../lib/gateway/lifecycle';
import { handleMessage } from '../../../lib/gateway/message';
import { sweep } from '../../../lib/gateway/sweeper';
import { deliverWelcome } from '../../../lib/gateway/welcome';
import { createMemoryGatewayDeps, MEMORY_ENDPOINT } from '../../support/memory/deps';
import { claimsFor } from '../../support/tokens';

const frame = (msg: Record<string, unknown>) => JSON.stringify(msg);

describe('createMemoryGatewayDeps', () => {
  it('runs $connect, the welcome, authenticate, a command, $disconnect and the grace on the fakes', async () => {
    const deps = createMemoryGatewayDeps();
    const { fakes } = deps;
    const token = fakes.tokens.hs256(claimsFor(42, { username: 'Zoë' }));

    const connected = await handleConnect(deps, {
      connectionId: 'abc=',
      request: { headers: {}, queryStringParameters: {} },
      endpoint: MEMORY_ENDPOINT,
    });
    expect(connected.statusCode).toBe(200);
    expect(fakes.welcome.requests).toEqual([{ connectionId: 'abc=', endpoint: MEMORY_ENDPOINT }]);

    await deliverWelcome(deps, { connectionId: 'abc=', endpoint: MEMORY_ENDPOINT });
    expect(fakes.api.delivered('abc=').map((f) => f['type'])).toEqual(['system.welcome']);

    const auth = await handleMessage(deps, {
      connectionId: 'abc=',
      body: frame({ type: 'system.authenticate', token }),
      endpoint: MEMORY_ENDPOINT,
    });
    expect(JSON.parse(auth!)).toMatchObject({ type: 'system.authenticated', user_id: '42', username: 'Zoë' });
    expect(fakes.store.online()).toEqual(['42']);
    expect(fakes.store.session('abc=')).toMatchObject({ user_id: '42', username: 'Zoë' });
    expect(fakes.publisher.envelopes('system.events').map((e) => e.event_type)).toEqual([
      'system.event.user_connected',
    ]);

    await cleanupConnection(deps, 'abc=', 'disconnect');
    expect(fakes.store.online()).toEqual([]);
    expect(await fakes.lifecycle.departures.pending()).toBe(1);

    fakes.clock.advance(deps.config.lifecycle.graceSecs * 1000);
    await completeDueDepartures(deps);

    expect(fakes.publisher.envelopes('gateway.presence').map((e) => e.event_type)).toEqual([
      'presence.event.user_online',
      'presence.event.user_offline',
    ]);
    expect(fakes.endpoints).toEqual([MEMORY_ENDPOINT]);
  });

  it('rate-limits on the clock: the burst, then one more frame after 1/rate seconds', async () => {
    const deps = createMemoryGatewayDeps({ env: { WS_RATE_LIMIT_BURST: '2', WS_RATE_LIMIT_PER_SEC: '2' } });
    await deps.fakes.store.registerConnection('r=', { connectedAt: deps.now(), bound: null });
    const beat = () =>
      handleMessage(deps, {
        connectionId: 'r=',
        body: frame({ type: 'system.heartbeat' }),
        endpoint: MEMORY_ENDPOINT,
      });
    const types = async () => JSON.parse((await beat())!).type as string;

    expect([await types(), await types(), await types()]).toEqual([
      'system.heartbeat_ack',
      'system.heartbeat_ack',
      'system.error',
    ]);
    deps.fakes.clock.advance(500);
    expect(await types()).toBe('system.heartbeat_ack');
  });

  it('answers a forwarded command with MESSAGE_ERROR while Kafka is down, and the heartbeat while Redis is', async () => {
    const deps = createMemoryGatewayDeps({ env: { AUTH_ALLOW_UNVERIFIED: 'true' } });
    await deps.fakes.store.registerConnection('k=', { connectedAt: deps.now(), bound: null });
    const send = async (msg: Record<string, unknown>) =>
      JSON.parse(
        (await handleMessage(deps, { connectionId: 'k=', body: frame(msg), endpoint: MEMORY_ENDPOINT }))!,
      );
    await send({ type: 'system.authenticate', user_id: '7', username: 'seven' });

    deps.fakes.publisher.fail();
    const reply = await send({ type: 'games.command.create_room', game_type: 'bigger_dice', room_name: 'r' });
    expect(reply).toMatchObject({
      type: 'system.error',
      code: 'MESSAGE_ERROR',
      message: expect.stringContaining('Kafka'),
    });

    deps.fakes.store.faults.fail();
    expect(await send({ type: 'system.heartbeat' })).toMatchObject({ type: 'system.heartbeat_ack' });
  });

  it('takes overrides in place of the fakes', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const deps = createMemoryGatewayDeps({ now: () => now });
    expect(deps.now()).toBe(now);
    expect(deps.store).toBe(deps.fakes.store);
  });
});

describe('createMemoryGatewayDeps for the sweeper', () => {
  it('sweeps a connection silent past WS_STALE_AFTER_SECS that the probe finds gone, on the clock', async () => {
    const deps = createMemoryGatewayDeps({
      env: { AUTH_ALLOW_UNVERIFIED: 'true', DISCONNECT_GRACE_SECS: '0' },
    });
    const { fakes } = deps;
    await fakes.store.registerConnection('quiet=', { connectedAt: deps.now(), bound: null });
    await fakes.store.registerConnection('busy=', { connectedAt: deps.now(), bound: null });
    fakes.api.gone('quiet=');

    fakes.clock.advance((deps.config.lifecycle.staleAfterSecs + 1) * 1000);
    await fakes.store.gateMessage('busy=', { burst: 10, perSec: 1 });
    const outcome = await sweep({ ...deps, liveness: fakes.liveness, probe: fakes.probe });

    expect(outcome).toMatchObject({ scanned: 2, cleaned: 1 });
    expect(await fakes.store.allConnections()).toEqual(['busy=']);
  });
});
