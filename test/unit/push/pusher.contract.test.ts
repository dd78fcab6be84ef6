/**
 * One contract suite, run against both ClientPusher adapters — the production one and the AWS SDK
 * one — so the two cannot drift apart. The Management API is a loopback stub that records every
 * request; signatures are recomputed with the SDK's own signer.
 */
import type { Credentials } from '../../../lib/aws/sigv4';
import { silentLogger } from '../../../lib/logger';
import {
  type ClientPusher,
  createManagementApiPusher,
  MAX_PAYLOAD_BYTES,
  PayloadTooLargeError,
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
])('ClientPusher contract: %s', (_name, create) => {
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

  it("resolves 'ok' for a Buffer payload too", async () => {
    const { server, pusher } = await setup([{ status: 200 }]);
    await expect(pusher.push('abc', Buffer.from([1, 2, 3]))).resolves.toBe('ok');
    expect([...(server.requests[0]?.body ?? [])]).toEqual([1, 2, 3]);
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

  it('fails at once on 403 with a non-retriable PushError', async () => {
    const { server, pusher } = await setup([
      { status: 403, body: '{"message":"Forbidden"}', headers: { 'x-amzn-errortype': 'ForbiddenException' } },
    ]);

    const err: unknown = await pusher.push('abc', 'x').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PushError);
    expect(err).toMatchObject({ statusCode: 403, retriable: false, attempts: 1, connectionId: 'abc' });
    expect(server.requests).toHaveLength(1);
    expect(retries).toHaveLength(0);
  });

  it('fails at once on 400 too', async () => {
    const { server, pusher } = await setup([{ status: 400 }]);
    await expect(pusher.push('abc', 'x')).rejects.toMatchObject({ statusCode: 400, retriable: false });
    expect(server.requests).toHaveLength(1);
  });

  it('retries a connection reset and resolves when the next attempt succeeds', async () => {
    const { server, pusher } = await setup(['reset', { status: 200 }]);
    await expect(pusher.push('abc', 'x')).resolves.toBe('ok');
    expect(server.requests).toHaveLength(2);
    expect(retries[0]?.error.statusCode).toBeUndefined();
  });

  it('treats no answer within timeoutMs as a retriable failure', async () => {
    const { pusher } = await setup(['hang'], { timeoutMs: 150, maxRetries: 0 });
    await expect(pusher.push('abc', 'x')).rejects.toMatchObject({
      name: 'PushError',
      retriable: true,
      statusCode: undefined,
    });
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

  it('refuses a message over 128 KB with PayloadTooLargeError and sends nothing', async () => {
    const { server, pusher } = await setup([{ status: 200 }]);

    const err: unknown = await pusher.push('abc', 'x'.repeat(MAX_PAYLOAD_BYTES + 1)).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect(err).toMatchObject({
      name: 'PayloadTooLargeError',
      retriable: false,
      bytes: MAX_PAYLOAD_BYTES + 1,
    });
    expect(server.requests).toHaveLength(0);
  });

  it('measures the limit in bytes, not characters, and sends exactly 128 KB', async () => {
    const { server, pusher } = await setup([{ status: 200 }]);
    // 43,691 three-byte characters: under the limit in characters, over it in bytes.
    await expect(pusher.push('abc', '✓'.repeat(43_691))).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(pusher.push('abc', 'x'.repeat(MAX_PAYLOAD_BYTES))).resolves.toBe('ok');
    expect(server.requests).toHaveLength(1);
  });

  it('close() waits for pushes in flight, then refuses new ones', async () => {
    const { pusher } = await setup([{ status: 200 }]);
    const inFlight = pusher.push('abc', 'x');

    await pusher.close();

    await expect(inFlight).resolves.toBe('ok');
    await expect(pusher.push('abc', 'x')).rejects.toMatchObject({ name: 'PushError', retriable: false });
  });
});
