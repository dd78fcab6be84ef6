import { ConfigError, loadConfig } from '../../lib/config';
import { planDelivery } from '../../lib/events/plan';
import { departureId } from '../../lib/store/departures';
import { eventTimeMs } from '../../lib/store/membership-order';
import { audience, gameEvent } from '../support/backend';

const ALICE = { userId: '4', username: 'Alice', roles: ['user'] };

describe('lifecycle configuration (D10)', () => {
  it('defaults to a 10 s grace, 600 s stale limit, the 2 h cap, a sweep a minute and 300 s reconnection data', () => {
    expect(loadConfig({}).lifecycle).toEqual({
      graceSecs: 10,
      staleAfterSecs: 600,
      maxAgeSecs: 7200,
      sweepIntervalSecs: 60,
      reconnectTtlSecs: 300,
    });
  });

  it('accepts a grace of 0 (publish at once)', () => {
    expect(loadConfig({ DISCONNECT_GRACE_SECS: '0' }).lifecycle.graceSecs).toBe(0);
  });

  it.each([
    ['DISCONNECT_GRACE_SECS', '-1'],
    ['DISCONNECT_GRACE_SECS', 'soon'],
    ['WS_STALE_AFTER_SECS', '0'],
    ['WS_MAX_CONNECTION_AGE_SECS', '1.5'],
    ['WS_SWEEP_INTERVAL_SECS', '0'],
    ['WS_RECONNECT_TTL_SECS', 'x'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});

describe('departure ids', () => {
  it('are one per user for going offline and one per (user, room), whatever the username', () => {
    const offline = departureId({ kind: 'offline', identity: ALICE });
    expect(departureId({ kind: 'offline', identity: { ...ALICE, username: 'Other' } })).toBe(offline);
    const room = departureId({ kind: 'room', identity: ALICE, roomId: 'r:1' });
    expect(room).not.toBe(offline);
    expect(departureId({ kind: 'room', identity: ALICE, roomId: 'r:2' })).not.toBe(room);
    // A colon in an id cannot make two departures collide.
    expect(departureId({ kind: 'room', identity: { ...ALICE, userId: '4:r' }, roomId: '1' })).not.toBe(room);
  });
});

describe('event time for membership order', () => {
  it.each([
    ['2026-01-10T12:00:01.123456789+00:00', Date.UTC(2026, 0, 10, 12, 0, 1, 123)],
    ['2026-01-10T12:00:01.123Z', Date.UTC(2026, 0, 10, 12, 0, 1, 123)],
    ['2026-01-10T13:00:01+01:00', Date.UTC(2026, 0, 10, 12, 0, 1)],
  ])('reads %s', (timestamp, ms) => {
    expect(eventTimeMs(timestamp)).toBe(ms);
  });

  it('is undefined for an unreadable timestamp (the change is then applied unordered)', () => {
    expect(eventTimeMs('yesterday')).toBeUndefined();
  });
});

describe('the plan carries what D10 needs', () => {
  it('the envelope timestamp, and the room a room_removed event removes', () => {
    const removed = gameEvent('room_removed', audience.broadcast(), {
      room_id: 'r-9',
      room_name: 'x',
      reason: 'y',
    });
    const plan = planDelivery(removed, 'games.events');
    expect(plan.timestamp).toBe(removed.timestamp);
    expect(plan.roomRemoved).toBe('r-9');
    const turn = gameEvent('turn_changed', audience.room('r-9'), {
      room_id: 'r-9',
      current_turn: 1,
      turn_number: 2,
    });
    expect(planDelivery(turn, 'games.events').roomRemoved).toBeUndefined();
  });
});
