import {
  type Credentials,
  CredentialsError,
  canonicalUri,
  createSigner,
  credentialsFromEnv,
  isLoopbackEndpoint,
  LOCAL_CREDENTIALS,
  type SignableRequest,
  uriEscape,
} from '../../../lib/aws/sigv4';
import { smithyAuthorization } from './stub-aws';

/** The credentials and time of AWS's published SigV4 test suite. */
const SUITE_CREDENTIALS: Credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const SUITE_TIME = Date.UTC(2015, 7, 30, 12, 36, 0);

const SESSION: Credentials = {
  accessKeyId: 'ASIAEXAMPLE',
  secretAccessKey: 'c2VjcmV0L2tleStleGFtcGxl',
  sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE/token+with/slashes==',
};

describe('createSigner', () => {
  describe('against the AWS SigV4 test suite', () => {
    const signer = createSigner({
      service: 'service',
      region: 'us-east-1',
      credentials: () => SUITE_CREDENTIALS,
    });

    it('reproduces get-vanilla', () => {
      const { authorization, 'x-amz-date': date } = signer.sign(
        { method: 'GET', host: 'example.amazonaws.com', path: '/', body: '' },
        SUITE_TIME,
      );
      expect(date).toBe('20150830T123600Z');
      expect(authorization).toBe(
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
      );
    });

    it('reproduces post-vanilla', () => {
      const { authorization } = signer.sign(
        { method: 'POST', host: 'example.amazonaws.com', path: '/', body: '' },
        SUITE_TIME,
      );
      expect(authorization).toBe(
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
      );
    });
  });

  describe('matches @smithy/signature-v4 byte for byte', () => {
    const frozen = (h: Record<string, string>) => Object.freeze({ ...h });
    const cases: ReadonlyArray<{
      name: string;
      service: string;
      credentials: Credentials;
      request: SignableRequest;
    }> = [
      {
        name: 'a Management API post with an AWS-shaped connection id (=) and a stage prefix',
        service: 'execute-api',
        credentials: SESSION,
        request: {
          method: 'POST',
          host: 'abc123.execute-api.eu-west-1.amazonaws.com',
          path: '/prod/@connections/L0SM9cOFvHcCIhw%3D',
          headers: frozen({ 'content-type': 'application/octet-stream' }),
          body: '{"type":"chat.message","payload":{"text":"héllo ✓"}}',
        },
      },
      {
        name: 'an offline post (host with port, no stage) with a Buffer body and long-term keys',
        service: 'execute-api',
        credentials: SUITE_CREDENTIALS,
        request: {
          method: 'POST',
          host: '127.0.0.1:9998',
          path: '/@connections/a%2Bb%2Fc%3D%3D',
          body: Buffer.from([0, 1, 2, 250, 251, 255]),
        },
      },
      {
        name: 'an async Lambda invoke by ARN with the invocation-type header',
        service: 'lambda',
        credentials: SESSION,
        request: {
          method: 'POST',
          host: 'lambda.eu-west-1.amazonaws.com',
          path: `/2015-03-31/functions/${encodeURIComponent('arn:aws:lambda:eu-west-1:123456789012:function:welcome')}/invocations`,
          query: { Qualifier: '$LATEST' },
          headers: frozen({ 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' }),
          body: '{"connectionId":"abc="}',
        },
      },
      {
        name: "a path with RFC 3986 reserved characters (!'()*), spaces and dot segments",
        service: 'execute-api',
        credentials: SUITE_CREDENTIALS,
        request: {
          method: 'POST',
          host: 'example.amazonaws.com',
          path: "/a/./b/../c/it's%20(x)*!/",
          headers: { 'x-custom': '  spaced   value  ' }, // not frozen: recomputed every time
          body: '',
        },
      },
    ];

    it.each(cases)('$name', async ({ service, credentials, request }) => {
      const ours = createSigner({ service, region: 'eu-west-1', credentials: () => credentials }).sign(
        request,
        SUITE_TIME,
      );
      const theirs = await smithyAuthorization(
        { service, region: 'eu-west-1', credentials, date: new Date(SUITE_TIME) },
        {
          method: request.method,
          host: request.host,
          path: request.path,
          query: request.query,
          headers: request.headers,
          body: typeof request.body === 'string' ? request.body : new Uint8Array(request.body),
        },
      );
      expect(ours.authorization).toBe(theirs);
      expect(ours['x-amz-security-token']).toBe(credentials.sessionToken);
    });
  });

  it('keeps signing correctly across a date change, a rotated secret and a changed mutable header', async () => {
    let credentials: Credentials = SESSION;
    const headers: Record<string, string> = { 'x-custom': 'one' };
    const signer = createSigner({
      service: 'execute-api',
      region: 'us-east-1',
      credentials: () => credentials,
    });
    const request = { method: 'POST', host: 'h.example.com', path: '/@connections/x%3D', headers, body: 'b' };
    const check = async (at: number) =>
      expect(signer.sign(request, at).authorization).toBe(
        await smithyAuthorization(
          { service: 'execute-api', region: 'us-east-1', credentials, date: new Date(at) },
          request,
        ),
      );

    await check(SUITE_TIME);
    await check(SUITE_TIME + 86_400_000); // next day: new signing key
    credentials = { ...SESSION, secretAccessKey: 'rotated', sessionToken: 'new-token' };
    await check(SUITE_TIME + 86_400_000);
    headers['x-custom'] = 'two';
    await check(SUITE_TIME + 86_400_000);
  });

  it('signs the session token and returns it to be sent', () => {
    const signed = createSigner({
      service: 'execute-api',
      region: 'us-east-1',
      credentials: () => SESSION,
    }).sign({ method: 'POST', host: 'h', path: '/', body: '' }, SUITE_TIME);
    expect(signed.authorization).toContain('SignedHeaders=host;x-amz-date;x-amz-security-token,');
    expect(signed['x-amz-security-token']).toBe(SESSION.sessionToken);
  });

  it('refuses extra headers it sets itself or that are not lower case', () => {
    const signer = createSigner({ service: 's', region: 'r', credentials: () => SESSION });
    expect(() =>
      signer.sign({ method: 'POST', host: 'h', path: '/', body: '', headers: { host: 'x' } }),
    ).toThrow(TypeError);
    expect(() =>
      signer.sign({ method: 'POST', host: 'h', path: '/', body: '', headers: { 'Content-Type': 'x' } }),
    ).toThrow(TypeError);
  });
});

describe('canonicalUri', () => {
  it('encodes each segment of the wire path a second time, as every service but S3 expects', () => {
    expect(canonicalUri('/prod/@connections/abc%3D')).toBe('/prod/%40connections/abc%253D');
  });

  it('resolves dot segments, drops empty ones and keeps a trailing slash', () => {
    expect(canonicalUri('/a/./b/../c//d/')).toBe('/a/c/d/');
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalUri('')).toBe('/');
  });

  it('escapes the characters encodeURIComponent leaves alone', () => {
    expect(uriEscape("!'()*~-_.")).toBe('%21%27%28%29%2A~-_.');
  });
});

describe('credentialsFromEnv', () => {
  it('reads the three variables Lambda sets', () => {
    const provider = credentialsFromEnv({
      env: { AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' },
      allowDummy: false,
    });
    expect(provider()).toEqual({ accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' });
  });

  it('leaves the session token out for long-term keys', () => {
    const provider = credentialsFromEnv({
      env: { AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 's' },
      allowDummy: false,
    });
    expect(provider()).toEqual({ accessKeyId: 'AKID', secretAccessKey: 's' });
  });

  it('falls back to the dummy local pair only when allowed (a loopback endpoint)', () => {
    expect(credentialsFromEnv({ env: {}, allowDummy: true })()).toBe(LOCAL_CREDENTIALS);
  });

  it('throws a CredentialsError naming the missing variable otherwise, instead of signing with dummies', () => {
    expect(() => credentialsFromEnv({ env: {}, allowDummy: false })).toThrow(CredentialsError);
    expect(() => credentialsFromEnv({ env: {}, allowDummy: false })).toThrow(/AWS_ACCESS_KEY_ID/);
    expect(() => credentialsFromEnv({ env: { AWS_ACCESS_KEY_ID: 'AKID' }, allowDummy: false })).toThrow(
      /AWS_SECRET_ACCESS_KEY/,
    );
  });
});

describe('isLoopbackEndpoint', () => {
  it.each([
    ['http://127.0.0.1:9998', true],
    ['http://localhost:3002', true],
    ['http://[::1]:9998', true],
    ['https://127.0.0.1:9998', false],
    ['https://abc.execute-api.eu-west-1.amazonaws.com/prod', false],
    ['http://127.0.0.1.nip.io', false],
    ['not a url', false],
  ])('%s ⇒ %s', (endpoint, expected) => {
    expect(isLoopbackEndpoint(endpoint)).toBe(expected);
  });
});
