/**
 * `$disconnect` (handlers/disconnect.ts) invoked directly with API Gateway's disconnect event: the
 * connection's state goes, its departure is published (docs/decisions.md D7, D10), and a second
 * invocation for the same connection (API Gateway retries, or a 410 cleanup got there first) finds
 * nothing and publishes nothing.
 */
import { TOPICS } from '../../../lib/protocol/envelope';
import { lambdaContext } from '../../support/lambda-events';
import { connected, createHarness, type Harness, newUserId } from './harness';

let h: Harness;
beforeEach(() => {
  h = createHarness();
});

const ctx = () => lambdaContext('disconnect');
const eventTypes = () => h.fakes.publisher.records.map((r) => `${r.topic} ${r.envelope.event_type}`);

describe('$disconnect', () => {
  it('removes the connection and publishes user_disconnected at once, the rest after the grace', async () => {
    const userId = newUserId();
    const socket = await connected(h, userId);
    await h.deps.store.joinRoom(userId, 'room-1', { spectator: false });
    h.fakes.publisher.clear();

    const result = await h.disconnect(socket.disconnect({ statusCode: 1001 }), ctx());

    expect(result).toEqual({ statusCode: 200, body: '' });
    expect(await h.deps.store.allConnections()).toEqual([]);
    expect(await h.deps.store.roomConnections('room-1')).toEqual([]);
    expect(await h.deps.store.connectionsOfUsers([userId])).toEqual([]);
    expect(eventTypes()).toEqual([`${TOPICS.systemEvents} system.event.user_disconnected`]);
    expect(h.fakes.publisher.records[0]?.envelope).toMatchObject({
      actor: { user_id: userId },
      payload: expect.objectContaining({ connection_id: socket.connectionId }),
    });
  });

  it('publishes user_offline and player_disconnected at once when DISCONNECT_GRACE_SECS=0', async () => {
    h = createHarness({ DISCONNECT_GRACE_SECS: '0' });
    const userId = newUserId();
    const socket = await connected(h, userId);
    await h.deps.store.joinRoom(userId, 'room-1', { spectator: false });
    h.fakes.publisher.clear();

    await h.disconnect(socket.disconnect(), ctx());

    expect(eventTypes().sort()).toEqual(
      [
        `${TOPICS.systemEvents} system.event.user_disconnected`,
        `${TOPICS.presence} presence.event.user_offline`,
        `${TOPICS.gamesCommands} games.command.player_disconnected`,
      ].sort(),
    );
  });

  it('publishes nothing the second time for the same connection', async () => {
    const socket = await connected(h, newUserId());
    await h.disconnect(socket.disconnect(), ctx());
    h.fakes.publisher.clear();

    const again = await h.disconnect(socket.disconnect({ statusCode: 1006, reason: 'Going away' }), ctx());

    expect(again).toEqual({ statusCode: 200, body: '' });
    expect(h.fakes.publisher.records).toEqual([]);
  });

  it('publishes nothing for an anonymous connection, and still removes it', async () => {
    const socket = await connected(h);

    await h.disconnect(socket.disconnect({ statusCode: 1000 }), ctx());

    expect(await h.deps.store.allConnections()).toEqual([]);
    expect(h.fakes.publisher.records).toEqual([]);
  });

  it('succeeds when Kafka is down: the state is clean, the lost events counted', async () => {
    const socket = await connected(h, newUserId());
    h.fakes.publisher.fail();

    const result = await h.disconnect(socket.disconnect(), ctx());

    expect(result).toEqual({ statusCode: 200, body: '' });
    expect(await h.deps.store.allConnections()).toEqual([]);
    expect(h.count('ws_gateway_system_events_lost_total', { during: 'disconnect' })).toBe(1);
  });
});
