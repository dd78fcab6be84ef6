/**
 * The scheduled sweeper (handlers/sweeper.ts) invoked with EventBridge's schedule event: in one
 * invocation it completes the departures that fell due and cleans up connections silent past
 * `WS_STALE_AFTER_SECS`, and returns shortly before the function's timeout (docs/decisions.md D10).
 * The sweeper polls once a second, so this invocation lasts about one second.
 */
import { TOPICS } from '../../../lib/protocol/envelope';
import { lambdaContext, scheduledEvent } from '../../support/lambda-events';
import { connected, createHarness, newUserId } from './harness';

describe('sweeper function', () => {
  it('completes due departures and cleans up stale connections, stopping 5 s before its timeout', async () => {
    // The store's clock an hour back: what happens first is an hour old by the time the sweep runs.
    const h = createHarness({}, { clockMs: Date.now() - 3_600_000 });
    const [silent, left, active] = [newUserId(), newUserId(), newUserId()];
    await connected(h, silent);
    const leftSocket = await connected(h, left);
    await h.disconnect(leftSocket.disconnect(), lambdaContext('disconnect'));
    h.fakes.clock.set(Date.now()); // now: the grace of the departure above is long over
    const activeSocket = await connected(h, active);
    h.fakes.publisher.clear();

    const result = await h.sweeper(scheduledEvent(), lambdaContext('sweeper', { remainingMs: 5_500 }));

    expect(result).toEqual({ ok: true });
    expect(await h.deps.store.allConnections()).toEqual([activeSocket.connectionId]);
    const published = h.fakes.publisher.records.map((r) => [
      r.topic,
      r.envelope.event_type,
      r.envelope.actor.user_id,
    ]);
    expect(published).toEqual(
      expect.arrayContaining([
        [TOPICS.presence, 'presence.event.user_offline', left],
        [TOPICS.systemEvents, 'system.event.user_disconnected', silent],
      ]),
    );
    expect(published.filter(([, , user]) => user === active)).toEqual([]);
  });
});
