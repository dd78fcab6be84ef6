/**
 * An in-memory `ConnectionProbe` (lib/push/connections.ts), the sweeper's questions to the
 * Management API, on the connections of a `MemoryManagementApi` (./management-api.ts): `'open'`
 * for a connection that exists (a close then makes it gone), `'gone'` for one that does not,
 * `'unknown'` for any other answer (the account throttle). test/support/contracts/pusher.contract.ts
 * runs the same cases on the Management API adapter.
 */
import type { ConnectionProbe, ProbeResult } from '../../../lib/push/connections';
import { createMemoryManagementApi, type MemoryManagementApi } from './management-api';

export interface MemoryProbe extends ConnectionProbe {
  readonly api: MemoryManagementApi;
}

const result = (status: number | 'hang'): ProbeResult =>
  status === 410 ? 'gone' : typeof status === 'number' && status >= 200 && status < 300 ? 'open' : 'unknown';

export function createMemoryProbe({
  api = createMemoryManagementApi(),
}: {
  api?: MemoryManagementApi;
} = {}): MemoryProbe {
  return {
    api,
    status: async (connectionId) => result(api.answer('GET', connectionId)),
    close: async (connectionId) => result(api.answer('DELETE', connectionId)),
    destroy() {},
  };
}
