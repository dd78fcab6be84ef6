/**
 * An in-memory `ConnectionCloser` (lib/push/closer.ts) on the connections of a
 * `MemoryManagementApi` (./management-api.ts): `'closed'` for an open connection, which is gone
 * from then on (its pushes answer `'gone'`), `'gone'` for one that already was, and an Error on any
 * other answer (the account throttle), with no retries — as the Management API adapter.
 * test/support/contracts/pusher.contract.ts checks both.
 *
 * @example
 * const api = createMemoryManagementApi();
 * const deps = { ...rest, pusherFor: () => createMemoryPusher({ api }), closerFor: () => createMemoryCloser({ api }) };
 * // … a frame of a connection Redis forgot …
 * expect(api.closed).toEqual(['abc=']);
 */
import type { CloseResult, ConnectionCloser } from '../../../lib/push/closer';
import { createMemoryManagementApi, type MemoryManagementApi } from './management-api';

export interface MemoryCloser extends ConnectionCloser {
  readonly api: MemoryManagementApi;
}

export function createMemoryCloser({
  api = createMemoryManagementApi(),
}: {
  api?: MemoryManagementApi;
} = {}): MemoryCloser {
  return {
    api,
    async close(connectionId): Promise<CloseResult> {
      const status = api.answer('DELETE', connectionId);
      if (status === 204) return 'closed';
      if (status === 410) return 'gone';
      throw new Error(`closing ${connectionId} failed: HTTP ${status}`);
    },
  };
}
