/**
 * The scheduled sweeper (handlers/sweeper.ts) invoked with EventBridge's schedule event: in one
 * invocation it completes the departures that fell due and cleans up connections silent past
 * `WS_STALE_AFTER_SECS` once the Management API (the in-memory probe) confirms they are gone, and
 * returns shortly before the function's timeout (docs/decisions.md D10).
 * The sweeper polls once a second: with 5.9 s left it runs one step, sleeps, and stops (about 1 s).
 */
import { TOPICS } from '../../../lib/protocol/envelope';
import { lambdaContext, scheduledEvent } from '../../support/lambda-events';
import { connected, createHarness, newUserId } from './harness';

describe('sweeper function', () => {
  it('completes due departures and cleans up stale connections the Management API says are gone, stopping 5 s before its timeout', async () => {
    // The store's clock an hour back: what happens first is an hour old by the time the sweep runs.
    const h = createHarness({}, { clockMs: Date.now() - 3_600_000 });
    const [silent, quiet, left, active] = [newUserId(), newUserId(), newUserId(), newUserId()];
    const silentSocket = await connected(h, silent);
    const quietSocket = await connected(h, quiet);
    const leftSocket = await connected(h, left);
    await h.disconnect(leftSocket.disconnect(), lambdaContext('disconnect'));
    h.fakes.clock.set(Date.now()); // now: the grace of the departure above is long over
    const activeSocket = await connected(h, active);
    h.fakes.publisher.clear();
    // Both silent for an hour; the Management API says one of them is gone, the other still open.
    h.fakes.api.gone(silentSocket.connectionId);

    const result = await h.sweeper(scheduledEvent(), lambdaContext('sweeper', { remainingMs: 5_900 }));

    expect(result).toEqual({ ok: true });
    expect((await h.deps.store.allConnections()).sort()).toEqual(
      [quietSocket.connectionId, activeSocket.connectionId].sort(),
    );
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
    expect(published.filter(([, , user]) => user === active || user === quiet)).toEqual([]);
  });
});
