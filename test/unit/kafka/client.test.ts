/**
 * Configuration → kafkajs: SASL/SCRAM as before, and MSK IAM as OAUTHBEARER whose tokens are signed
 * (by AWS's signer) for the configured region with the process's credentials.
 */
import type { SASLOptions } from 'kafkajs';
import { loadConfig } from '../../../lib/config';
import { kafkaConfig } from '../../../lib/kafka/client';
import { type MskTokenSigner, mskIamTokenProvider } from '../../../lib/kafka/msk-iam';
import { silentLogger } from '../../../lib/logger';

const BROKERS = 'b-1.msk.internal:9098,b-2.msk.internal:9098';

describe('kafkaConfig', () => {
  it.each([
    ['plain', 'plain'],
    ['scram-sha-256', 'scram-sha-256'],
    ['SCRAM-SHA-512', 'scram-sha-512'],
  ])('maps KAFKA_SASL_MECHANISM=%s to kafkajs %s with the user and password', (given, mechanism) => {
    const config = loadConfig({
      KAFKA_BROKERS: BROKERS,
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: given,
      KAFKA_SASL_USERNAME: 'gateway',
      KAFKA_SASL_PASSWORD: 'pw',
    });

    const result = kafkaConfig(config.kafka, silentLogger);

    expect(result.sasl).toEqual({ mechanism, username: 'gateway', password: 'pw' });
    expect(result.ssl).toBe(true);
    expect(result.brokers).toEqual(['b-1.msk.internal:9098', 'b-2.msk.internal:9098']);
  });

  it('uses no SASL when no mechanism is configured', () => {
    expect(kafkaConfig(loadConfig({ KAFKA_BROKERS: BROKERS }).kafka, silentLogger).sasl).toBeUndefined();
  });

  it('maps aws-msk-iam to OAUTHBEARER over TLS with the token provider, and needs no user or password', async () => {
    const config = loadConfig({ KAFKA_BROKERS: BROKERS, KAFKA_SASL_MECHANISM: 'aws-msk-iam' });
    const provider = jest.fn(async () => ({ value: 'signed-token' }));

    const result = kafkaConfig(config.kafka, silentLogger, { mskIamToken: provider });

    const sasl = result.sasl as Extract<SASLOptions, { mechanism: 'oauthbearer' }>;
    expect(sasl.mechanism).toBe('oauthbearer');
    expect(result.ssl).toBe(true);
    await expect(sasl.oauthBearerProvider()).resolves.toEqual({ value: 'signed-token' });
  });

  it('refuses aws-msk-iam without a token provider rather than connecting unauthenticated', () => {
    const config = loadConfig({ KAFKA_BROKERS: BROKERS, KAFKA_SASL_MECHANISM: 'aws-msk-iam' });
    expect(() => kafkaConfig(config.kafka, silentLogger)).toThrow(/aws-msk-iam needs a token provider/);
  });
});

describe('mskIamTokenProvider', () => {
  it('asks the signer for a token for the region, with the process credentials, on every authentication', async () => {
    const credentials = { accessKeyId: 'ASIATASK', secretAccessKey: 's', sessionToken: 't' };
    const calls: Array<{ region: string; credentials: unknown }> = [];
    const sign: MskTokenSigner = async ({ region, awsCredentialsProvider }) => {
      calls.push({ region, credentials: await awsCredentialsProvider() });
      return { token: `token-${calls.length}`, expiryTime: Date.now() + 900_000 };
    };
    const provider = mskIamTokenProvider({ region: 'eu-west-1', credentials: async () => credentials, sign });

    await expect(provider()).resolves.toEqual({ value: 'token-1' });
    await expect(provider()).resolves.toEqual({ value: 'token-2' });
    expect(calls).toEqual([
      { region: 'eu-west-1', credentials },
      { region: 'eu-west-1', credentials },
    ]);
  });

  it("signs with AWS's signer by default: a base64url presigned kafka-cluster:Connect URL", async () => {
    const provider = mskIamTokenProvider({
      region: 'eu-west-1',
      credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }),
    });

    const { value } = await provider();

    const url = new URL(Buffer.from(value, 'base64url').toString('utf8'));
    expect(url.host).toBe('kafka.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('Action')).toBe('kafka-cluster:Connect');
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(
      /^AKIDEXAMPLE\/\d{8}\/eu-west-1\/kafka-cluster\/aws4_request$/,
    );
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });
});
