/**
 * The in-memory ClientPusher, ConnectionCloser and ConnectionProbe: the shared contracts (as the Management API
 * adapters pass them against the stand-in), then what only the fakes offer — the records of the
 * connections' far side.
 */
import {
  CONTRACT_MAX_RETRIES,
  CONTRACT_TIMEOUT_MS,
  closerContract,
  type PushHarness,
  probeContract,
  pusherContract,
} from '../../support/contracts/pusher.contract';
import { createMemoryCloser } from '../../support/memory/closer';
import { createMemoryManagementApi, type MemoryManagementApi } from '../../support/memory/management-api';
import { createMemoryProbe } from '../../support/memory/probe';
import { createMemoryPusher } from '../../support/memory/pusher';

async function memoryHarness(): Promise<PushHarness> {
  let api: MemoryManagementApi = createMemoryManagementApi();
  return {
    pusher: () =>
      createMemoryPusher({ api, maxRetries: CONTRACT_MAX_RETRIES, timeoutMs: CONTRACT_TIMEOUT_MS }),
    closer: () => createMemoryCloser({ api }),
    probe: () => createMemoryProbe({ api }),
    delivered: async (id) => api.delivered(id),
    behave: (id, behaviour) => api.behave(id, behaviour),
    throttle: (on) => api.throttle(on),
    reset: () => {
      api = createMemoryManagementApi();
    },
  };
}

pusherContract('in-memory pusher', memoryHarness);
closerContract('in-memory closer', memoryHarness);
probeContract('in-memory probe', memoryHarness);

describe('in-memory Management API: what it records', () => {
  it('records every request with its answer, and frames only for the 2xx ones', async () => {
    const api = createMemoryManagementApi();
    const pusher = createMemoryPusher({ api, maxRetries: 1 });
    api.behave('b', { kind: 'fail', status: 503, times: 1 });
    api.gone('c');

    await pusher.push('a', '{"n":1}');
    await pusher.push('b', '{"n":2}');
    await pusher.push('c', '{"n":3}');

    expect(api.requests.map((r) => [r.connectionId, r.status])).toEqual([
      ['a', 200],
      ['b', 503],
      ['b', 200],
      ['c', 410],
    ]);
    expect(api.frames('b')).toEqual(['{"n":2}']);
    expect(api.recipients()).toEqual(['a', 'b']);
  });

  it('gives up after maxRetries retries, so a fault longer than that surfaces', async () => {
    const api = createMemoryManagementApi();
    api.behave('a', { kind: 'fail', status: 500, times: 3 });

    await expect(createMemoryPusher({ api, maxRetries: 2 }).push('a', '{}')).rejects.toMatchObject({
      statusCode: 500,
      attempts: 3,
    });
    expect(api.frames('a')).toEqual([]);
  });

  it('lists the connections a closer closed; a shared api makes them gone for the pusher', async () => {
    const api = createMemoryManagementApi();
    const closer = createMemoryCloser({ api });

    await closer.close('a');

    expect(api.closed).toEqual(['a']);
    expect(api.isGone('a')).toBe(true);
    await expect(createMemoryPusher({ api }).push('a', '{}')).resolves.toBe('gone');
  });

  it('forgets frames and requests on clear, keeping behaviours', async () => {
    const api = createMemoryManagementApi();
    const pusher = createMemoryPusher({ api });
    api.gone('g');
    await pusher.push('a', '{}');

    api.clear();

    expect([api.requests, api.frames('a'), api.recipients()]).toEqual([[], [], []]);
    await expect(pusher.push('g', '{}')).resolves.toBe('gone');
  });
});
