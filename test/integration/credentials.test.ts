/**
 * Credentials from AWS's default provider chain, as a task or pod gets them: container credentials
 * served on AWS_CONTAINER_CREDENTIALS_FULL_URI (a stand-in on loopback), loaded once, refreshed
 * before expiry, and used by the Management API pusher to sign every push. A configured source that
 * fails is an error, never the dummy pair.
 */
import { createChainCredentialsSource } from '../../lib/aws/credentials';
import { silentLogger } from '../../lib/logger';
import { createManagementApiPusher, PushError } from '../../lib/push/pusher';
import {
  type CredentialsEndpoint,
  type SignedRequestRecorder,
  startCredentialsEndpoint,
  startSignedRequestRecorder,
} from '../support/aws-stand-ins';

const SAVED = { ...process.env };
let api: SignedRequestRecorder;
let creds: CredentialsEndpoint | undefined;

beforeEach(async () => {
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
  api = await startSignedRequestRecorder();
});

afterEach(async () => {
  process.env = { ...SAVED };
  await api.stop();
  await creds?.stop();
  creds = undefined;
});

async function containerCredentials(options: { validForMs?: number } = {}) {
  creds = await startCredentialsEndpoint({ ...options, authorization: 'pod-identity-token' });
  process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = creds.url;
  process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = 'pod-identity-token';
  return creds;
}

it('signs every push with the container credentials, fetched once for many pushes', async () => {
  const endpoint = await containerCredentials();
  const source = createChainCredentialsSource({ logger: silentLogger });
  const pusher = createManagementApiPusher({
    endpoint: api.endpoint,
    region: 'eu-west-1',
    logger: silentLogger,
    credentials: source.get,
    credentialsReady: source.ready,
  });

  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => pusher.push(`conn-${i}`, '{"n":1}')),
  );

  expect(results).toEqual(Array(20).fill('ok'));
  expect(api.requests).toHaveLength(20);
  for (const r of api.requests) {
    expect(r.accessKeyId).toBe('ASIACONTAINER1');
    expect(r.securityToken).toBe('container-token-1');
    expect(r.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=ASIACONTAINER1\/\d{8}\/eu-west-1\/execute-api\/aws4_request, /,
    );
  }
  expect(endpoint.issued).toHaveLength(1);
  await pusher.close();
  source.close();
});

it('refreshes the credentials before they expire and signs with the new ones', async () => {
  // Valid for just over the 5-minute refresh margin: a refresh is due about a second from now.
  const endpoint = await containerCredentials({ validForMs: 5 * 60_000 + 1500 });
  const source = createChainCredentialsSource({ logger: silentLogger });
  const pusher = createManagementApiPusher({
    endpoint: api.endpoint,
    region: 'eu-west-1',
    logger: silentLogger,
    credentials: source.get,
    credentialsReady: source.ready,
  });
  await pusher.push('before', '{}');

  const deadline = Date.now() + 20_000;
  while (source.get().accessKeyId === 'ASIACONTAINER1' && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  await pusher.push('after', '{}');

  expect(api.requests.map((r) => r.accessKeyId)).toEqual(['ASIACONTAINER1', 'ASIACONTAINER2']);
  expect(endpoint.issued).toHaveLength(2);
  await pusher.close();
  source.close();
}, 30_000);

it('fails pushes (not retriable) and sends nothing when the configured container endpoint fails', async () => {
  const endpoint = await containerCredentials();
  endpoint.fail(500);
  const source = createChainCredentialsSource({ logger: silentLogger });
  const pusher = createManagementApiPusher({
    endpoint: api.endpoint, // loopback, yet no dummy credentials: a source is configured
    region: 'eu-west-1',
    logger: silentLogger,
    credentials: source.get,
    credentialsReady: source.ready,
    maxRetries: 0,
  });

  const outcome = await pusher.push('conn-1', '{}').catch((err: unknown) => err);

  expect(outcome).toBeInstanceOf(PushError);
  expect(outcome).toMatchObject({ retriable: false });
  expect(api.requests).toEqual([]);
  await pusher.close();
}, 30_000);
