/**
 * Behaviour of the production adapter beyond the shared contract: connection reuse and bounds,
 * headers, error details, hooks, default credentials; and `pushMany`.
 */
import { CredentialsError } from '../../../lib/aws/sigv4';
import { silentLogger } from '../../../lib/logger';
import {
  type ClientPusher,
  createManagementApiPusher,
  PayloadTooLargeError,
  PushError,
  type PushOutcomeEvent,
  type PushResult,
  pushMany,
} from '../../../lib/push/pusher';
import { type StubServer, startStubServer, verifySignature } from './stub-aws';

const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };

describe('a connection whose pushes get no answer (suspension)', () => {
  let server: StubServer | undefined;
  let pusher: ClientPusher | undefined;

  afterEach(async () => {
    await pusher?.close();
    await server?.close();
    pusher = undefined;
    server = undefined;
  });

  /** `bad` never answers (or answers `badStatus`); every other connection gets 200. */
  async function start(suspendUnansweredMs: number, badStatus?: number) {
    server = await startStubServer((req) =>
      req.url.includes('bad') ? (badStatus === undefined ? 'hang' : { status: badStatus }) : { status: 200 },
    );
    pusher = createManagementApiPusher({
      endpoint: server.url,
      region: 'us-east-1',
      logger: silentLogger,
      credentials: () => CREDENTIALS,
      timeoutMs: 100,
      maxRetries: 1,
      backoffBaseMs: 1,
      suspendUnansweredMs,
    });
    return { pusher, server };
  }

  const requestsTo = (s: StubServer, id: string) => s.requests.filter((r) => r.url.endsWith(`/${id}`)).length;

  it('fails later pushes to it at once, without a request, while other connections are served', async () => {
    const { pusher: p, server: s } = await start(60_000);

    await expect(p.push('bad', 'x')).rejects.toMatchObject({ retriable: true, attempts: 2 });
    await expect(p.push('bad', 'x')).rejects.toMatchObject({
      retriable: true,
      attempts: 0,
      errorType: 'Suspended',
    });

    expect(requestsTo(s, 'bad')).toBe(2);
    await expect(p.push('good', 'x')).resolves.toBe('ok');
  });

  it('tries the connection again once the suspension is over', async () => {
    const { pusher: p, server: s } = await start(50);
    await expect(p.push('bad', 'x')).rejects.toBeInstanceOf(PushError);

    await new Promise((r) => setTimeout(r, 80));
    await expect(p.push('bad', 'x')).rejects.toMatchObject({ attempts: 2 });

    expect(requestsTo(s, 'bad')).toBe(4);
  });

  it.each([429, 503])(
    'never suspends a connection that answers %i (throttling and outages answer fast)',
    async (status) => {
      const { pusher: p, server: s } = await start(60_000, status);

      await expect(p.push('bad', 'x')).rejects.toMatchObject({ statusCode: status, attempts: 2 });
      await expect(p.push('bad', 'x')).rejects.toMatchObject({ statusCode: status, attempts: 2 });

      expect(requestsTo(s, 'bad')).toBe(4);
    },
  );

  it('does not suspend when disabled (0)', async () => {
    const { pusher: p, server: s } = await start(0);

    await expect(p.push('bad', 'x')).rejects.toMatchObject({ attempts: 2 });
    await expect(p.push('bad', 'x')).rejects.toMatchObject({ attempts: 2 });

    expect(requestsTo(s, 'bad')).toBe(4);
  });
});

describe('createManagementApiPusher', () => {
  let server: StubServer | undefined;
  let pusher: ClientPusher | undefined;

  afterEach(async () => {
    await pusher?.close();
    await server?.close();
    pusher = undefined;
    server = undefined;
  });

  it('reuses one keep-alive socket for consecutive pushes', async () => {
    server = await startStubServer([{ status: 200 }]);
    pusher = createManagementApiPusher({
      endpoint: server.url,
      region: 'us-east-1',
      logger: silentLogger,
      credentials: () => CREDENTIALS,
    });

    for (let i = 0; i < 10; i++) await pusher.push(`c${i}`, 'x');

    expect(new Set(server.requests.map((r) => r.remotePort)).size).toBe(1);
  });

  it('never has more than maxSockets requests in flight', async () => {
    server = await startStubServer([{ status: 200 }], { delayMs: 20 });
    pusher = createManagementApiPusher({
      endpoint: server.url,
      region: 'us-east-1',
      logger: silentLogger,
      credentials: () => CREDENTIALS,
      maxSockets: 4,
    });

    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => pusher!.push(`c${i}`, 'x')));

    expect(results.every((r) => r === 'ok')).toBe(true);
    expect(server.maxConcurrent).toBe(4);
  });

  it('sends the body as application/octet-stream with its length, and signs ids with + / =', async () => {
    server = await startStubServer([{ status: 200 }]);
    pusher = createManagementApiPusher({
      endpoint: server.url,
      region: 'us-east-1',
      logger: silentLogger,
      credentials: () => CREDENTIALS,
    });

    await pusher.push('a+b/c==', 'héllo');

    const [req] = server.requests;
    expect(req?.url).toBe('/@connections/a%2Bb%2Fc%3D%3D');
    expect(req?.headers['content-type']).toBe('application/octet-stream');
    expect(req?.headers['content-length']).toBe(String(Buffer.byteLength('héllo')));
    const { received, recomputed } = await verifySignature(req!, {
      service: 'execute-api',
      region: 'us-east-1',
      credentials: CREDENTIALS,
    });
    expect(received).toBe(recomputed);
  });

  it("carries AWS's error type and message in the PushError", async () => {
    server = await startStubServer([
      {
        status: 403,
        body: '{"message":"The security token included in the request is invalid."}',
        headers: { 'x-amzn-errortype': 'ForbiddenException:http://internal.amazon.com/coral/' },
      },
    ]);
    pusher = createManagementApiPusher({
      endpoint: server.url,
      region: 'us-east-1',
      logger: silentLogger,
      credentials: () => CREDENTIALS,
    });

    const err = await pusher.push('abc', 'x').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PushError);
    expect(err).toMatchObject({ errorType: 'ForbiddenException', statusCode: 403, retriable: false });
    expect((err as PushError).message).toContain('security token included in the request is invalid');
  });

  it('reports each settled push to onOutcome, and a throwing hook does not break the push', async () => {
    server = await startStubServer([{ status: 500 }, { status: 410 }]);
    const outcomes: PushOutcomeEvent[] = [];
    pusher = createManagementApiPusher({
      endpoint: server.url,
      region: 'us-east-1',
      logger: silentLogger,
      credentials: () => CREDENTIALS,
      backoffBaseMs: 1,
      hooks: {
        onOutcome: (e) => outcomes.push(e),
        onRetry: () => {
          throw new Error('metrics backend down');
        },
      },
    });

    await expect(pusher.push('abc', 'x')).resolves.toBe('gone');

    expect(outcomes).toEqual([
      expect.objectContaining({ connectionId: 'abc', outcome: 'gone', attempts: 2 }),
    ]);
  });

  describe('default credentials', () => {
    const names = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;
    const saved = names.map((n) => [n, process.env[n]] as const);
    beforeEach(() => {
      for (const n of names) delete process.env[n];
    });
    afterEach(() => {
      for (const [n, v] of saved) {
        if (v === undefined) delete process.env[n];
        else process.env[n] = v;
      }
    });

    it('signs with the dummy local pair against a loopback (serverless-offline) endpoint', async () => {
      server = await startStubServer([{ status: 200 }]);
      pusher = createManagementApiPusher({ endpoint: server.url, region: 'us-east-1', logger: silentLogger });

      await pusher.push('abc', 'x');

      expect(server.requests[0]?.headers.authorization).toContain('Credential=local/');
    });

    it('uses the Lambda environment credentials when they are set', async () => {
      process.env['AWS_ACCESS_KEY_ID'] = 'ASIAENV';
      process.env['AWS_SECRET_ACCESS_KEY'] = 'envsecret';
      process.env['AWS_SESSION_TOKEN'] = 'envtoken';
      server = await startStubServer([{ status: 200 }]);
      pusher = createManagementApiPusher({ endpoint: server.url, region: 'us-east-1', logger: silentLogger });

      await pusher.push('abc', 'x');

      expect(server.requests[0]?.headers.authorization).toContain('Credential=ASIAENV/');
      expect(server.requests[0]?.headers['x-amz-security-token']).toBe('envtoken');
    });

    it('refuses to start against AWS without credentials instead of signing with dummies', () => {
      expect(() =>
        createManagementApiPusher({
          endpoint: 'https://abc.execute-api.us-east-1.amazonaws.com/prod',
          region: 'us-east-1',
          logger: silentLogger,
        }),
      ).toThrow(CredentialsError);
    });
  });
});

/** A fake ClientPusher that records concurrency and answers per id. */
function fakePusher(answer: (id: string) => PushResult | Error, delayMs = 5) {
  const calls: string[] = [];
  let current = 0;
  let max = 0;
  const pusher: ClientPusher = {
    async push(id) {
      calls.push(id);
      current++;
      max = Math.max(max, current);
      await new Promise((r) => setTimeout(r, delayMs));
      current--;
      const a = answer(id);
      if (a instanceof Error) throw a;
      return a;
    },
    close: async () => {},
  };
  return { pusher, calls, maxConcurrent: () => max };
}

describe('pushMany', () => {
  it('never runs more than `concurrency` pushes at once', async () => {
    const fake = fakePusher(() => 'ok');
    const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);

    const results = await pushMany(fake.pusher, ids, 'x', { concurrency: 7 });

    expect(results.size).toBe(50);
    expect(fake.maxConcurrent()).toBe(7);
  });

  it('maps every id to its own result or error, so one failure hides nothing', async () => {
    const failure = new PushError('boom', { retriable: true, connectionId: 'bad', attempts: 4 });
    const fake = fakePusher((id) => (id === 'gone' ? 'gone' : id === 'bad' ? failure : 'ok'));

    const results = await pushMany(fake.pusher, ['a', 'gone', 'bad', 'b'], 'x', { concurrency: 2 });

    expect([...results]).toEqual([
      ['a', 'ok'],
      ['gone', 'gone'],
      ['bad', failure],
      ['b', 'ok'],
    ]);
  });

  it('pushes a duplicated id once', async () => {
    const fake = fakePusher(() => 'ok');
    await pushMany(fake.pusher, ['a', 'b', 'a'], 'x', { concurrency: 4 });
    expect(fake.calls.sort()).toEqual(['a', 'b']);
  });

  it('does nothing for an empty audience', async () => {
    const fake = fakePusher(() => 'ok');
    await expect(pushMany(fake.pusher, [], 'x', { concurrency: 4 })).resolves.toEqual(new Map());
    expect(fake.calls).toEqual([]);
  });

  it('through the real pusher: ok, gone and an oversize message per connection', async () => {
    const server = await startStubServer((req) => ({ status: req.url.endsWith('/gone') ? 410 : 200 }));
    const pusher = createManagementApiPusher({
      endpoint: server.url,
      region: 'us-east-1',
      logger: silentLogger,
      credentials: () => CREDENTIALS,
    });
    try {
      const small = await pushMany(pusher, ['a', 'gone', 'b'], '{"t":1}', { concurrency: 2 });
      expect([...small]).toEqual([
        ['a', 'ok'],
        ['gone', 'gone'],
        ['b', 'ok'],
      ]);

      const big = await pushMany(pusher, ['a', 'b'], 'x'.repeat(200_000), { concurrency: 2 });
      expect([...big.values()].every((r) => r instanceof PayloadTooLargeError)).toBe(true);
      expect(server.requests).toHaveLength(3);
    } finally {
      await pusher.close();
      await server.close();
    }
  });
});
