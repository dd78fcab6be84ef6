/**
 * The consumer's one decision about a failure: retry the record in place, or skip it as poison
 * (docs/decisions.md D9). Real error objects from the libraries involved, not look-alikes, where the
 * library exports them.
 */

import { ReplyError } from 'ioredis';
import { KafkaJSConnectionError, KafkaJSProtocolError } from 'kafkajs';
import { isRetriable } from '../../../lib/consumer/retriable';
import { DependencyError, UndeliverableEventError } from '../../../lib/errors';
import { PushError } from '../../../lib/push/pusher';

const deepJson = () => {
  let v: unknown = 0;
  for (let i = 0; i < 20_000; i++) v = [v];
  try {
    JSON.stringify(v);
  } catch (err) {
    return err;
  }
  throw new Error('expected JSON.stringify to throw');
};

describe('isRetriable', () => {
  it.each<[string, unknown]>([
    ['a closed Redis connection', new Error('Connection is closed.')],
    [
      'ioredis giving up on a request while Redis is down',
      Object.assign(new Error('Reached the max retries per request limit (which is 2).'), {
        name: 'MaxRetriesPerRequestError',
      }),
    ],
    ['a command timeout', new Error('Command timed out')],
    ['Redis loading its data set', new ReplyError('LOADING Redis is loading the dataset in memory')],
    ['a replica promoted meanwhile', new ReplyError("READONLY You can't write against a read only replica.")],
    ['Redis out of memory', new ReplyError("OOM command not allowed when used memory > 'maxmemory'.")],
    ['a retriable dependency error', new DependencyError('redis', 'redis timed out', true)],
    ['a retriable kafkajs error', new KafkaJSConnectionError('Connection error: ECONNREFUSED')],
    ['something thrown that is not an Error', 'boom'],
  ])('retries %s', (_what, err) => {
    expect(isRetriable(err)).toBe(true);
  });

  it.each<[string, unknown]>([
    ['a message nested too deep to serialise', deepJson()],
    ['a bug for one shape', new TypeError("Cannot read properties of undefined (reading 'x')")],
    [
      'WRONGTYPE from Redis',
      new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
    ],
    ['a Redis argument error', new ReplyError("ERR wrong number of arguments for 'sadd' command")],
    ['an undeliverable event', new UndeliverableEventError('cannot be serialised')],
    ['a non-retriable dependency error', new DependencyError('redis', 'refused', false)],
    [
      'a non-retriable push error',
      new PushError('forbidden', { retriable: false, connectionId: 'c', attempts: 1, statusCode: 403 }),
    ],
    [
      'a kafkajs protocol error that is not retriable',
      new KafkaJSProtocolError({
        message: 'm',
        type: 'INVALID_REQUEST',
        code: 42,
        retriable: false,
      } as never),
    ],
  ])('does not retry %s', (_what, err) => {
    expect(isRetriable(err)).toBe(false);
  });
});
