/**
 * What both Management API pushers — the production one and the AWS SDK one — do on the wire, so
 * the two cannot drift apart: the request they send, the two shapes of a 410, retries and their
 * hooks, network resets, the stage path and SigV4. The Management API is a loopback stub that
 * records every request; signatures are recomputed with the SDK's own signer. What the port
 * promises (results, errors, the size limit, close) is the shared suite of
 * test/support/contracts/pusher.contract.ts, run on these adapters in
 * test/integration/contracts/pusher.contract.test.ts and on the in-memory fake.
 */
import type { Credentials } from '../../../lib/aws/sigv4';
import { silentLogger } from '../../../lib/logger';
import {
  type ClientPusher,
  createManagementApiPusher,
  PushError,
  type PusherOptions,
  type RetryEvent,
} from '../../../lib/push/pusher';
import { createSdkPusher } from '../../../lib/push/sdk-pusher';
import { type Answer, type StubServer, startStubServer, verifySignature } from './stub-aws';

const CREDENTIALS: Credentials = {
  accessKeyId: 'ASIATESTKEY',
  secretAccessKey: 'test/secret+key',
  sessionToken: 'session-token/with+chars==',
};
const REGION = 'eu-west-1';
const MAX_RETRIES = 2;

type Factory = (opts: PusherOptions) => ClientPusher;

describe.each<[string, Factory]>([
  ['createManagementApiPusher', createManagementApiPusher],
  ['createSdkPusher', createSdkPusher],
])('Management API pusher on the wire: %s', (_name, create) => {
  let server: StubServer | undefined;
  let pusher: ClientPusher | undefined;
  let retries: RetryEvent[];

  /** A pusher against a fresh stub answering `answers`; the endpoint path is `stage`. */
  async function setup(answers: readonly Answer[], extra: Partial<PusherOptions> & { stage?: string } = {}) {
    server = await startStubServer(answers);
    retries = [];
    const { stage = '', ...rest } = extra;
    pusher = create({
      endpoint: `${server.url}${stage}`,
      region: REGION,
      logger: silentLogger,
      credentials: () => CREDENTIALS,
      maxRetries: MAX_RETRIES,
      backoffBaseMs: 1,
      timeoutMs: 2000,
      hooks: { onRetry: (e) => retries.push(e) },
      ...rest,
    });
    return { server, pusher };
  }

  afterEach(async () => {
    await pusher?.close();
    await server?.close();
    pusher = undefined;
    server = undefined;
  });

  it("resolves 'ok' on 200 and delivers the bytes unchanged", async () => {
    const { server, pusher } = await setup([{ status: 200 }]);
    const data = JSON.stringify({ type: 'chat.message', text: 'héllo ✓' });

    await expect(pusher.push('abc', data)).resolves.toBe('ok');

    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.method).toBe('POST');
    expect(server.requests[0]?.body.toString('utf8')).toBe(data);
  });

  it("resolves 'gone' on serverless-offline's 410 with an empty body, without retrying", async () => {
    const { server, pusher } = await setup([{ status: 410 }]);
    await expect(pusher.push('abc', 'x')).resolves.toBe('gone');
    expect(server.requests).toHaveLength(1);
  });

  it("resolves 'gone' on AWS's 410 GoneException", async () => {
    const { pusher } = await setup([
      {
        status: 410,
        body: '{"message":"Gone"}',
        headers: {
          'content-type': 'application/json',
          'x-amzn-errortype': 'GoneException:http://internal.amazon.com/',
        },
      },
    ]);
    await expect(pusher.push('abc', 'x')).resolves.toBe('gone');
  });

  it("retries a 429 and resolves 'ok' when the next attempt succeeds", async () => {
    const { server, pusher } = await setup([
      { status: 429, body: '{"message":"Rate exceeded"}' },
      { status: 200 },
    ]);

    await expect(pusher.push('abc', 'x')).resolves.toBe('ok');

    expect(server.requests).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]?.error.statusCode).toBe(429);
  });

  it('gives up on a persistent 500 after maxRetries retries with a retriable PushError', async () => {
    const { server, pusher } = await setup([{ status: 500 }]);

    const err: unknown = await pusher.push('abc', 'x').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PushError);
    expect(err).toMatchObject({
      name: 'PushError',
      statusCode: 500,
      retriable: true,
      attempts: MAX_RETRIES + 1,
    });
    expect(server.requests).toHaveLength(MAX_RETRIES + 1);
  });

  it('retries a connection reset and resolves when the next attempt succeeds', async () => {
    const { server, pusher } = await setup(['reset', { status: 200 }]);
    await expect(pusher.push('abc', 'x')).resolves.toBe('ok');
    expect(server.requests).toHaveLength(2);
    expect(retries[0]?.error.statusCode).toBeUndefined();
  });

  it('keeps the endpoint path (the stage) and percent-encodes the connection id', async () => {
    const { server, pusher } = await setup([{ status: 200 }], { stage: '/prod' });
    await pusher.push('abc=', 'x');
    expect(server.requests[0]?.url).toBe('/prod/@connections/abc%3D');
  });

  it('signs every request with SigV4 for execute-api, verifiable by the SDK signer', async () => {
    const { server, pusher } = await setup([{ status: 429 }, { status: 200 }], { stage: '/prod' });

    await pusher.push('L0SM9cOFvHcCIhw=', '{"a":1}');

    expect(server.requests).toHaveLength(2);
    for (const req of server.requests) {
      expect(req.headers['x-amz-security-token']).toBe(CREDENTIALS.sessionToken);
      expect(req.headers.authorization).toContain(`/${REGION}/execute-api/aws4_request`);
      const { received, recomputed } = await verifySignature(req, {
        service: 'execute-api',
        region: REGION,
        credentials: CREDENTIALS,
      });
      expect(received).toBe(recomputed);
    }
  });
});
