import {
  ClientError,
  DependencyError,
  invalidFormat,
  notAuthenticated,
  rateLimited,
  tooLarge,
} from '../../../lib/errors';
import {
  authenticated,
  clientErrorFrame,
  errorFrame,
  heartbeatAck,
  stateSnapshot,
  welcome,
} from '../../../lib/protocol/server';

const NOW = new Date('2026-01-10T12:00:00.123Z');
const RFC3339_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe('server frames (docs/protocol.md)', () => {
  it('builds system.welcome', () => {
    const frame = welcome('L0SM9cOFvHcCIhw=', NOW);
    expect(JSON.stringify(frame)).toBe(
      '{"type":"system.welcome","connection_id":"L0SM9cOFvHcCIhw=","timestamp":"2026-01-10T12:00:00.123Z"}',
    );
  });

  it('builds system.authenticated from the identity', () => {
    const frame = authenticated({ userId: '4', username: 'John', roles: ['user'] }, NOW);
    expect(JSON.stringify(frame)).toBe(
      '{"type":"system.authenticated","user_id":"4","username":"John","roles":["user"],"timestamp":"2026-01-10T12:00:00.123Z"}',
    );
  });

  it('builds system.heartbeat_ack', () => {
    expect(JSON.stringify(heartbeatAck(NOW))).toBe(
      '{"type":"system.heartbeat_ack","timestamp":"2026-01-10T12:00:00.123Z"}',
    );
  });

  it('stamps frames with the current time in RFC 3339 UTC by default', () => {
    expect(welcome('c').timestamp).toMatch(RFC3339_Z);
    expect(heartbeatAck().timestamp).toMatch(RFC3339_Z);
    expect(authenticated({ userId: '1', username: 'a', roles: [] }).timestamp).toMatch(RFC3339_Z);
  });

  it('builds system.error', () => {
    expect(JSON.stringify(errorFrame('not_your_turn', "It's not your turn"))).toBe(
      '{"type":"system.error","code":"not_your_turn","message":"It\'s not your turn"}',
    );
  });

  it('builds system.state_snapshot', () => {
    expect(JSON.stringify(stateSnapshot([]))).toBe(
      '{"type":"system.state_snapshot","active_rooms":[],"game_states":{},"unread_messages":0}',
    );
    expect(stateSnapshot(['r1', 'r2']).active_rooms).toEqual(['r1', 'r2']);
  });
});

describe('clientErrorFrame', () => {
  it.each([
    [invalidFormat(new SyntaxError('x')), 'INVALID_FORMAT', 'Invalid message format'],
    [notAuthenticated(), 'MESSAGE_ERROR', 'Connection not authenticated'],
    [rateLimited(), 'RATE_LIMIT', 'Rate limit exceeded'],
    [tooLarge(), 'MESSAGE_TOO_LARGE', 'Message too large'],
    [
      new ClientError('MESSAGE_ERROR', 'Chat requires a numeric user id'),
      'MESSAGE_ERROR',
      'Chat requires a numeric user id',
    ],
  ])('passes a ClientError through: %s', (err, code, message) => {
    expect(clientErrorFrame(err)).toEqual({ type: 'system.error', code, message });
  });

  it.each([
    ['a dependency error', new DependencyError('redis', 'connect ECONNREFUSED 10.0.0.5:6379', true)],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'room_id')")],
    ['a thrown string', 'secret internals'],
    ['undefined', undefined],
    ['an object', { stack: 'at x (/var/task/index.js:1:1)' }],
  ])('hides %s behind "Internal error"', (_name, err) => {
    const frame = clientErrorFrame(err);
    expect(frame).toEqual({ type: 'system.error', code: 'MESSAGE_ERROR', message: 'Internal error' });
  });
});
