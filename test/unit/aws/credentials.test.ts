import {
  type AwsIdentity,
  CREDENTIAL_SOURCE_VARIABLES,
  createCredentialsSource,
  staticCredentialsFor,
} from '../../../lib/aws/credentials';
import { CredentialsError, LOCAL_CREDENTIALS } from '../../../lib/aws/sigv4';
import { createLogger } from '../../../lib/logger';

const MIN = 60_000;

/** A provider that hands out numbered key pairs, each valid for `validMs` from the clock. */
function rotatingProvider(clock: { now: number }, validMs: number) {
  let n = 0;
  const provider = jest.fn(async (): Promise<AwsIdentity> => {
    n++;
    return {
      accessKeyId: `AKID${n}`,
      secretAccessKey: `secret${n}`,
      sessionToken: `token${n}`,
      expiration: new Date(clock.now + validMs),
    };
  });
  return provider;
}

describe('createCredentialsSource', () => {
  afterEach(() => jest.useRealTimers());

  it('answers synchronously from one load, without calling the provider per signature', async () => {
    const clock = { now: Date.parse('2026-12-02T04:00:00Z') };
    const provider = rotatingProvider(clock, 60 * MIN);
    const source = createCredentialsSource({ provider, now: () => clock.now });

    expect(() => source.get()).toThrow(CredentialsError);
    await source.ready();
    for (let i = 0; i < 1000; i++) source.get();

    expect(source.get()).toEqual({
      accessKeyId: 'AKID1',
      secretAccessKey: 'secret1',
      sessionToken: 'token1',
    });
    expect(provider).toHaveBeenCalledTimes(1);
    source.close();
  });

  it('refreshes in the background before the credentials expire', async () => {
    jest.useFakeTimers({ now: Date.parse('2026-12-02T04:00:00Z') });
    const clock = {
      get now() {
        return Date.now();
      },
    };
    const provider = rotatingProvider(clock, 60 * MIN);
    const source = createCredentialsSource({ provider, refreshMarginMs: 5 * MIN });
    await source.ready();

    await jest.advanceTimersByTimeAsync(54 * MIN);
    expect(source.get().accessKeyId).toBe('AKID1');
    await jest.advanceTimersByTimeAsync(1 * MIN + 1000);

    expect(provider).toHaveBeenCalledTimes(2);
    expect(source.get().accessKeyId).toBe('AKID2');
    source.close();
  });

  it('keeps the current credentials when a refresh fails, logs it, and tries again', async () => {
    jest.useFakeTimers({ now: Date.parse('2026-12-02T04:00:00Z') });
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', write: (l) => lines.push(l) });
    let fail = false;
    let n = 0;
    const provider = jest.fn(async (): Promise<AwsIdentity> => {
      if (fail) throw new Error('container credentials endpoint unreachable');
      n++;
      return { accessKeyId: `AKID${n}`, secretAccessKey: 's', expiration: new Date(Date.now() + 10 * MIN) };
    });
    const source = createCredentialsSource({ provider, refreshMarginMs: 5 * MIN, logger });
    await source.ready();

    fail = true;
    await jest.advanceTimersByTimeAsync(5 * MIN + 1000);
    expect(source.get().accessKeyId).toBe('AKID1');
    expect(lines.join('')).toContain('refreshing AWS credentials failed');
    fail = false;
    await jest.advanceTimersByTimeAsync(3 * MIN);

    expect(source.get().accessKeyId).toBe('AKID2');
    source.close();
  });

  it('rejects ready() with a CredentialsError naming the cause when nothing can be loaded', async () => {
    const source = createCredentialsSource({
      provider: async () => {
        throw new Error('Could not load credentials from any providers');
      },
    });

    await expect(source.ready()).rejects.toThrow(CredentialsError);
    await expect(source.ready()).rejects.toThrow(/Could not load credentials from any providers/);
    expect(() => source.get()).toThrow(CredentialsError);
  });
});

describe('staticCredentialsFor', () => {
  it("uses the environment's key pair as is (Lambda sets the role's credentials there)", () => {
    const source = staticCredentialsFor('https://abc.execute-api.eu-west-1.amazonaws.com/prod', {
      AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: 'token',
    });
    expect(source?.kind).toBe('environment');
    expect(source?.get()).toEqual({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'token',
    });
  });

  it.each(['http://127.0.0.1:9998', 'http://localhost:3002', 'http://[::1]:9998'])(
    'gives the dummy pair to the loopback endpoint %s when no source is configured',
    (endpoint) => {
      const source = staticCredentialsFor(endpoint, {});
      expect(source?.kind).toBe('local');
      expect(source?.get()).toBe(LOCAL_CREDENTIALS);
    },
  );

  it.each(CREDENTIAL_SOURCE_VARIABLES.filter((v) => v !== 'AWS_ACCESS_KEY_ID'))(
    'never falls back to the dummy pair when %s configures a source, even for a loopback endpoint',
    (variable) => {
      expect(staticCredentialsFor('http://127.0.0.1:9998', { [variable]: 'configured' })).toBeUndefined();
    },
  );

  it('leaves an AWS endpoint without static credentials to the provider chain', () => {
    expect(staticCredentialsFor('https://abc.execute-api.eu-west-1.amazonaws.com/prod', {})).toBeUndefined();
    expect(staticCredentialsFor('https://127.0.0.1:9998', {})).toBeUndefined();
  });
});
