/**
 * An in-memory `ClientPusher` (lib/push/pusher.ts) for unit tests: pushes land on the connections
 * of a `MemoryManagementApi` (./management-api.ts), which records the frames per connection and
 * can make a connection gone, failing or hanging.
 *
 * It keeps the port's promises as the Management API adapter does (the shared suite of
 * test/support/contracts/pusher.contract.ts checks both): the 128 KB limit in bytes, 410 ⇒
 * `'gone'`, the status mapping of `verdict` (the adapter's own), retriable failures retried up to
 * `maxRetries` times with no delay, a push nobody answers failing after `timeoutMs`, and `close()`
 * waiting for pushes in flight.
 *
 * @example
 * const pusher = createMemoryPusher();
 * pusher.api.gone('old=');
 * await deliverWelcome({ ...deps, pusherFor: () => pusher }, request);
 * expect(pusher.api.delivered('abc=')).toEqual([{ type: 'system.welcome', ... }]);
 */
import {
  type ClientPusher,
  MAX_PAYLOAD_BYTES,
  PayloadTooLargeError,
  PushError,
  type PushResult,
  verdict,
} from '../../../lib/push/pusher';
import { createMemoryManagementApi, type MemoryManagementApi } from './management-api';

export interface MemoryPusher extends ClientPusher {
  /** The connections pushed to: frames, requests, behaviours. */
  readonly api: MemoryManagementApi;
  /** Pushes started and not settled yet. */
  readonly inFlight: number;
}

export interface MemoryPusherOptions {
  /** Shared with a `createMemoryCloser`, so a closed connection is gone for the pusher too. */
  readonly api?: MemoryManagementApi;
  /** Retries after the first attempt for 429, 5xx and unanswered pushes (default 3, as the adapter). */
  readonly maxRetries?: number;
  /** How long an unanswered attempt waits (default 5000 ms, as the adapter). */
  readonly timeoutMs?: number;
}

export function createMemoryPusher({
  api = createMemoryManagementApi(),
  maxRetries = 3,
  timeoutMs = 5000,
}: MemoryPusherOptions = {}): MemoryPusher {
  let inFlight = 0;
  let closed = false;
  let drained: (() => void) | undefined;

  /** One attempt: a result, or the PushError it failed with. */
  const attempt = async (connectionId: string, data: string, n: number): Promise<PushResult | PushError> => {
    const status = api.answer('POST', connectionId, data);
    if (status === 'hang') {
      await new Promise((r) => setTimeout(r, timeoutMs).unref?.());
      return new PushError(`push to ${connectionId} failed: no answer within ${timeoutMs} ms`, {
        retriable: true,
        connectionId,
        attempts: n,
      });
    }
    const v = verdict(status);
    if (v === 'ok' || v === 'gone') return v;
    return new PushError(`push to ${connectionId} failed: HTTP ${status}`, {
      statusCode: status,
      retriable: v === 'retry',
      connectionId,
      attempts: n,
    });
  };

  const push = async (connectionId: string, data: string | Buffer): Promise<PushResult> => {
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (bytes > MAX_PAYLOAD_BYTES) throw new PayloadTooLargeError(connectionId, bytes);
    if (closed) throw new PushError('pusher is closed', { retriable: false, connectionId, attempts: 0 });
    const text = typeof data === 'string' ? data : data.toString('utf8');
    inFlight++;
    try {
      for (let n = 1; ; n++) {
        const outcome = await attempt(connectionId, text, n);
        if (!(outcome instanceof PushError)) return outcome;
        // Once closing, a retriable failure is handed back at once, as the adapter does.
        if (!outcome.retriable || n > maxRetries || closed) throw outcome;
      }
    } finally {
      if (--inFlight === 0) drained?.();
    }
  };

  let closing: Promise<void> | undefined;
  return {
    api,
    get inFlight() {
      return inFlight;
    },
    push,
    close() {
      closed = true;
      closing ??= inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => (drained = r));
      return closing;
    },
  };
}
