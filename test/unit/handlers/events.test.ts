/**
 * The events function (handlers/events.ts) invoked with MSK events, as the Lambda Kafka event
 * source invokes it: every golden event fixture (test/fixtures/events) delivered through the
 * function to the connections of its target, batches across partitions, poison records skipped,
 * and gone connections cleaned up. Pushes land on the in-memory Management API.
 */
import { TOPICS } from '../../../lib/protocol/envelope';
import { audience, gameEvent, gameRoom } from '../../support/backend';
import { type EventFixture, loadEventFixtures } from '../../support/fixtures';
import { lambdaContext, MANAGEMENT_ENDPOINT, mskEvent } from '../../support/lambda-events';
import { connected, createHarness, type Harness, newUserId } from './harness';

let h: Harness;
beforeEach(() => {
  // No request context here: the endpoint comes from WS_MANAGEMENT_ENDPOINT, as deployed.
  h = createHarness({ WS_MANAGEMENT_ENDPOINT: MANAGEMENT_ENDPOINT });
});

const ctx = (remainingMs = 60_000) => lambdaContext('events', { remainingMs });

/** Connections that must receive the fixture's event, set up as the gateway would have them. */
async function recipientsOf(fixture: EventFixture): Promise<string[]> {
  const { target } = fixture;
  switch (target.kind) {
    case 'users':
      return Promise.all(target.userIds.map(async (u) => (await connected(h, u)).connectionId));
    case 'room':
    case 'spectators': {
      const userId = newUserId();
      const socket = await connected(h, userId);
      await h.deps.store.joinRoom(userId, target.roomId, { spectator: target.kind === 'spectators' });
      return [socket.connectionId];
    }
    case 'lobby': {
      const socket = await connected(h, newUserId());
      await h.deps.store.joinLobby(socket.connectionId, target.lobbyId);
      return [socket.connectionId];
    }
    case 'broadcast':
      return [(await connected(h)).connectionId, (await connected(h, newUserId())).connectionId];
    case 'none':
      return [];
  }
}

describe('events function: every golden event fixture through an MSK event', () => {
  it.each(loadEventFixtures())('$name', async (fixture) => {
    const recipients = await recipientsOf(fixture);
    const bystander = (await connected(h, newUserId())).connectionId;
    if (fixture.chat?.recordMessage) {
      const { messageId, senderId } = fixture.chat.recordMessage;
      await h.deps.store.recordChatMessage(messageId, senderId);
    }
    h.fakes.api.clear();

    const outcome = await h.events(mskEvent([{ topic: fixture.topic, value: fixture.envelope }]), ctx());

    expect(outcome).toEqual({ records: 1, skipped: 0 });
    const expected = fixture.expected === null ? [] : [fixture.expected];
    for (const id of recipients) expect(h.fakes.api.delivered(id)).toEqual(expected);
    if (fixture.target.kind !== 'broadcast') expect(h.fakes.api.delivered(bystander)).toEqual([]);
  });
});

/** A user-targeted event that carries its partition and sequence number to the client. */
const numbered = (userId: string, partition: number, seq: number) =>
  gameEvent('turn_changed', audience.user(userId), {
    room_id: 'r',
    current_turn: partition,
    turn_number: seq,
  });

const numbersAt = (connectionId: string) =>
  h.fakes.api
    .delivered(connectionId)
    .filter((f) => f.type === 'games.event.bigger_dice.turn_changed')
    .map((f) => [Number(f.current_turn), f.turn_number]);

describe('events function', () => {
  it('delivers a batch across partitions, each partition in order, and reports the count', async () => {
    const [alice, bob] = [newUserId(), newUserId()];
    const [a1, a2, b1] = [await connected(h, alice), await connected(h, alice), await connected(h, bob)];
    const roomId = 'room-7';

    const outcome = await h.events(
      mskEvent([
        {
          topic: TOPICS.gamesEvents,
          partition: 0,
          value: gameEvent('room_state', audience.user(alice), {
            room: gameRoom(roomId, { players: [Number(alice)] }),
          }),
        },
        { topic: TOPICS.gamesEvents, partition: 2, value: numbered(bob, 2, 1) },
        { topic: TOPICS.gamesEvents, partition: 2, value: numbered(bob, 2, 2) },
        { topic: TOPICS.gamesEvents, partition: 0, value: numbered(alice, 0, 1) },
      ]),
      ctx(),
    );

    expect(outcome).toEqual({ records: 4, skipped: 0 });
    for (const a of [a1, a2]) {
      expect(h.fakes.api.delivered(a.connectionId).map((f) => f.type)).toEqual([
        'system.welcome',
        'games.event.bigger_dice.room_state',
        'games.event.bigger_dice.turn_changed',
      ]);
    }
    expect(numbersAt(b1.connectionId)).toEqual([
      [2, 1],
      [2, 2],
    ]);
    // room_state to a user registers their connections in the room (docs/events.md).
    expect((await h.deps.store.roomConnections(roomId)).sort()).toEqual(
      [a1.connectionId, a2.connectionId].sort(),
    );
    expect(h.fakes.endpoints).toEqual([MANAGEMENT_ENDPOINT]);
  });

  it('skips poison records (not JSON, a tombstone, not an envelope) and delivers the records around them', async () => {
    const alice = newUserId();
    const a1 = await connected(h, alice);

    const outcome = await h.events(
      mskEvent(
        [numbered(alice, 1, 1), 'this is not json', null, '{"event_type":7}', numbered(alice, 1, 2)].map(
          (value) => ({
            topic: TOPICS.gamesEvents,
            partition: 1,
            value,
          }),
        ),
      ),
      ctx(),
    );

    expect(outcome).toEqual({ records: 5, skipped: 3 });
    expect(numbersAt(a1.connectionId)).toEqual([
      [1, 1],
      [1, 2],
    ]);
    expect(
      h.count('ws_gateway_events_skipped_total', { topic: TOPICS.gamesEvents, reason: 'unparseable' }),
    ).toBe(3);
  });

  it('cleans up a connection the Management API says is gone (410), as $disconnect would', async () => {
    const alice = newUserId();
    const [a1, a2] = [await connected(h, alice), await connected(h, alice)];
    h.fakes.api.gone(a2.connectionId);
    h.fakes.publisher.clear();

    const outcome = await h.events(
      mskEvent([{ topic: TOPICS.gamesEvents, value: numbered(alice, 0, 1) }]),
      ctx(),
    );

    expect(outcome).toEqual({ records: 1, skipped: 0 });
    expect(numbersAt(a1.connectionId)).toEqual([[0, 1]]);
    expect(await h.deps.store.allConnections()).toEqual([a1.connectionId]);
    expect(h.fakes.publisher.envelopes(TOPICS.systemEvents)).toEqual([
      expect.objectContaining({
        event_type: 'system.event.user_disconnected',
        payload: expect.objectContaining({ connection_id: a2.connectionId }),
      }),
    ]);
  });

  it('broadcasts to every open connection, anonymous ones included, before returning', async () => {
    const sockets = [await connected(h), await connected(h, newUserId()), await connected(h)];
    h.fakes.api.clear();
    // A broadcast is handed off to the fan-out; one push retried after a 503 (50 ms backoff) must
    // still be sent before the function returns: a frozen container sends nothing.
    h.fakes.api.behave(sockets[1]!.connectionId, { kind: 'fail', status: 503, times: 1 });

    await h.events(
      mskEvent([
        {
          topic: TOPICS.gamesEvents,
          value: gameEvent('room_removed', audience.broadcast(), { room_id: 'room-9' }, null),
        },
      ]),
      ctx(),
    );

    for (const s of sockets)
      expect(h.fakes.api.delivered(s.connectionId)).toEqual([
        expect.objectContaining({ type: 'games.event.room_removed' }),
      ]);
  });

  it('fails the invocation without WS_MANAGEMENT_ENDPOINT (nothing to push through)', async () => {
    h = createHarness();

    await expect(
      h.events(mskEvent([{ topic: TOPICS.gamesEvents, value: numbered('1', 0, 1) }]), ctx()),
    ).rejects.toThrow('WS_MANAGEMENT_ENDPOINT');
  });

  it('gives the batch back (rejects) when Redis fails and the invocation has no time left to retry', async () => {
    const alice = newUserId();
    const a1 = await connected(h, alice);
    h.fakes.store.faults.fail();
    // Redis comes back within the retries' backoff (100 + 200 + 400 ms …): only a retry would see it.
    const recovery = setTimeout(() => h.fakes.store.faults.recover(), 500);

    // 15 s are kept back for what is in flight: 15.05 s left leaves no room for a 100 ms backoff.
    await expect(
      h.events(mskEvent([{ topic: TOPICS.gamesEvents, value: numbered(alice, 0, 1) }]), ctx(15_050)),
    ).rejects.toThrow('Connection is closed.');
    clearTimeout(recovery);
    expect(numbersAt(a1.connectionId)).toEqual([]);
  });

  it('retries a Redis failure in place and delivers once Redis is back, within the same invocation', async () => {
    const alice = newUserId();
    const a1 = await connected(h, alice);
    h.fakes.store.faults.fail();
    setTimeout(() => h.fakes.store.faults.recover(), 20);

    const outcome = await h.events(
      mskEvent([{ topic: TOPICS.gamesEvents, value: numbered(alice, 0, 1) }]),
      ctx(),
    );

    expect(outcome).toEqual({ records: 1, skipped: 0 });
    expect(numbersAt(a1.connectionId)).toEqual([[0, 1]]);
  });
});
