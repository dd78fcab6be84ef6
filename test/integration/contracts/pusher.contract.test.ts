/**
 * The ClientPusher, ConnectionCloser and ConnectionProbe contracts against the Management API
 * adapters — the production pusher, the SDK pusher, the closer and the sweeper's probe — talking to the Management API stand-in
 * (test/support/management-api.ts): what the in-memory fakes promise (test/unit/memory/pusher.test.ts)
 * is what these do over HTTP.
 */
import { silentLogger } from '../../../lib/logger';
import { createManagementApiCloser } from '../../../lib/push/closer';
import { createConnectionProbe } from '../../../lib/push/connections';
import { type ClientPusher, createManagementApiPusher, type PusherOptions } from '../../../lib/push/pusher';
import { createSdkPusher } from '../../../lib/push/sdk-pusher';
import {
  CONTRACT_MAX_RETRIES,
  CONTRACT_TIMEOUT_MS,
  closerContract,
  type PushHarness,
  probeContract,
  pusherContract,
} from '../../support/contracts/pusher.contract';
import { startFakeManagementApi } from '../../support/management-api';

const credentials = () => ({ accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' });

const standInHarness = (create: (opts: PusherOptions) => ClientPusher) => async (): Promise<PushHarness> => {
  const api = await startFakeManagementApi();
  const closers: Array<{ destroy(): void }> = [];
  return {
    pusher: () =>
      create({
        endpoint: api.endpoint,
        region: 'us-east-1',
        logger: silentLogger,
        credentials,
        maxRetries: CONTRACT_MAX_RETRIES,
        timeoutMs: CONTRACT_TIMEOUT_MS,
        backoffBaseMs: 1,
      }),
    closer: () => {
      const c = createManagementApiCloser({ endpoint: api.endpoint, region: 'us-east-1', credentials });
      closers.push(c);
      return c;
    },
    probe: () => {
      const p = createConnectionProbe({ endpoint: api.endpoint, region: 'us-east-1', credentials });
      closers.push(p);
      return p;
    },
    delivered: async (id) => api.delivered(id),
    behave: (id, behaviour) => api.behave(id, behaviour),
    throttle: (on) => api.configure(on ? { rate: 0.001, burst: 0 } : { rate: null, burst: null }),
    async close() {
      for (const c of closers) c.destroy();
      await api.stop();
    },
  };
};

pusherContract('createManagementApiPusher on the stand-in', standInHarness(createManagementApiPusher));
pusherContract('createSdkPusher on the stand-in', standInHarness(createSdkPusher));
closerContract('createManagementApiCloser on the stand-in', standInHarness(createManagementApiPusher));
probeContract('createConnectionProbe on the stand-in', standInHarness(createManagementApiPusher));
