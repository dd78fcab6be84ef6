/**
 * The Management API closer on the wire, against the Management API stand-in on loopback: one
 * `DELETE @connections/{id}` per close, nothing retried. What its answers mean ('closed', 'gone',
 * an error) is the closer contract of test/support/contracts/pusher.contract.ts, run on this
 * adapter in test/integration/contracts/pusher.contract.test.ts and on the in-memory fake.
 */
import { createManagementApiCloser } from '../../../lib/push/closer';
import { type FakeManagementApi, startFakeManagementApi } from '../../support/management-api';

let api: FakeManagementApi;

beforeAll(async () => {
  api = await startFakeManagementApi();
});

afterAll(async () => {
  await api.stop();
});

const closer = () =>
  createManagementApiCloser({
    endpoint: api.endpoint,
    region: 'us-east-1',
    credentials: () => ({ accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' }),
  });

it('sends one DELETE @connections/{id} per close, the id percent-decoded by the server, and never retries', async () => {
  api.configure({ rate: 0.001, burst: 0 });
  const c = closer();

  await c.close('abc=').catch(() => undefined);
  api.configure({ rate: null, burst: null });
  await c.close('abc=');
  await c.close('abc=');

  expect(api.calls.map((call) => [call.method, call.connectionId, call.status])).toEqual([
    ['DELETE', 'abc=', 429],
    ['DELETE', 'abc=', 204],
    ['DELETE', 'abc=', 410],
  ]);
  c.destroy();
});
