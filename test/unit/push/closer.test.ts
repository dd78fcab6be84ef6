/**
 * The Management API closer (`DELETE @connections/{id}`) against the Management API stand-in on
 * loopback: a live connection is closed once (204 → 'closed'), a gone one is reported (410 → 'gone'),
 * and throttling is an error for the caller to log (no retries here).
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

it('closes a live connection with a signed DELETE and reports a gone one', async () => {
  const c = closer();

  const first = await c.close('abc=');
  const second = await c.close('abc=');

  expect([first, second]).toEqual(['closed', 'gone']);
  expect(api.calls.map((call) => [call.method, call.connectionId, call.status])).toEqual([
    ['DELETE', 'abc=', 204],
    ['DELETE', 'abc=', 410],
  ]);
  c.destroy();
});

it('rejects on a status that is neither success nor 410', async () => {
  api.configure({ rate: 0.001, burst: 0 });
  const c = closer();

  await expect(c.close('def=')).rejects.toThrow(/closing def= failed/);
  api.configure({ rate: null, burst: null });
  c.destroy();
});
