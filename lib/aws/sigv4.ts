/**
 * A lean AWS Signature Version 4 signer for the two AWS APIs the gateway calls directly: the API
 * Gateway Management API (`execute-api`) and Lambda (`lambda`).
 *
 * Why not `@smithy/signature-v4`: it is async, rebuilds the canonical request from a generic
 * `HttpRequest` with header maps, normalisation and checksum hooks, and costs more per request than
 * the HTTP round trip it signs when fanning out thousands of posts. This signer does only what those
 * two services need — header-based signing of a request with a fully known body — synchronously,
 * with the per-second date string and the per-day signing key cached. The unit tests compare its
 * `Authorization` header with `@smithy/signature-v4` byte for byte.
 *
 * Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */
import { createHmac, hash } from 'node:crypto';

/** AWS credentials. On Lambda they come from the environment the runtime sets. */
export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Present for temporary credentials (always on Lambda); sent and signed as `x-amz-security-token`. */
  readonly sessionToken?: string;
}

/** Called once per signature, so rotated credentials are picked up; keep it cheap (no I/O). */
export type CredentialsProvider = () => Credentials;

/** A missing credential where a real one is required. Not retriable: the deployment is wrong. */
export class CredentialsError extends Error {
  override readonly name = 'CredentialsError';
  readonly retriable = false;
}

/** What gets signed. Header names must be lower case; `host` is always signed and must not be repeated here. */
export interface SignableRequest {
  readonly method: string;
  /** The `Host` header exactly as sent: `hostname` or `hostname:port` for a non-default port. */
  readonly host: string;
  /** The path as it goes on the wire, percent-encoded once (e.g. `/prod/@connections/abc%3D`). */
  readonly path: string;
  /** Query parameters, not yet encoded. */
  readonly query?: Readonly<Record<string, string>>;
  /**
   * Further headers to sign (lower-case names), e.g. `content-type`, `x-amz-invocation-type`.
   * Pass a frozen constant: its canonical form is then computed once, not per request.
   */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string | Buffer;
}

/** The headers to add to the request. */
export interface SignatureHeaders {
  readonly authorization: string;
  readonly 'x-amz-date': string;
  readonly 'x-amz-security-token'?: string;
}

/** Signs requests for one service in one region. */
export interface Signer {
  /**
   * Returns the headers that make `request` authentic. Synchronous: a few microseconds.
   * @param nowMs signing time (epoch ms); defaults to `Date.now()`. Tests pin it.
   */
  sign(request: SignableRequest, nowMs?: number): SignatureHeaders;
}

export interface SignerOptions {
  /** Signing name of the service: `execute-api` for the Management API, `lambda` for Lambda. */
  readonly service: string;
  readonly region: string;
  readonly credentials: CredentialsProvider;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** SHA-256 block size, to which HMAC pads its key. */
const HMAC_BLOCK = 64;
const RESERVED_HEADERS = new Set(['host', 'x-amz-date', 'x-amz-security-token', 'authorization']);

/**
 * RFC 3986 encoding as SigV4 defines it: everything but `A-Z a-z 0-9 - _ . ~` is percent-encoded.
 * `encodeURIComponent` leaves `! ' ( ) *` alone, so those are added.
 */
export function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The canonical URI of a wire path. Every service but S3 encodes each segment a second time, so a
 * connection id `abc=` sent as `abc%3D` is signed as `abc%253D` — the detail that makes hand-rolled
 * signers fail with 403 on AWS only. `.` and `..` segments are resolved and empty ones dropped,
 * as the SDK does.
 */
export function canonicalUri(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(uriEscape(segment));
  }
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return `/${segments.join('/')}${trailing}`;
}

function canonicalQuery(query: Readonly<Record<string, string>> | undefined): string {
  if (query === undefined) return '';
  return Object.keys(query)
    .map((k) => [uriEscape(k), uriEscape(query[k] ?? '')] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** `20150830T123600Z` from epoch milliseconds. */
function amzDate(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2015-08-30T12:36:00.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/** Header values are trimmed and inner whitespace runs collapsed before signing. */
function canonicalValue(v: string): string {
  return v.trim().replace(/\s+/g, ' ');
}

/** The canonical-header block around `x-amz-date`, which is the only line that changes per request. */
interface HeaderTemplate {
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly host: string;
  readonly sessionToken: string | undefined;
  readonly before: string;
  readonly after: string;
  readonly signedHeaders: string;
}

function headerTemplate(
  host: string,
  sessionToken: string | undefined,
  headers: Readonly<Record<string, string>> | undefined,
): HeaderTemplate {
  const entries: [string, string | undefined][] = [
    ['host', host],
    ['x-amz-date', undefined], // placeholder
  ];
  if (sessionToken) entries.push(['x-amz-security-token', sessionToken]);
  if (headers) {
    for (const name of Object.keys(headers)) {
      // A duplicate would sign a header twice while the server sees it once.
      if (RESERVED_HEADERS.has(name) || name !== name.toLowerCase()) {
        throw new TypeError(`sign(): header "${name}" must be lower case and not one the signer sets`);
      }
      entries.push([name, canonicalValue(headers[name] ?? '')]);
    }
  }
  entries.sort((x, y) => (x[0] < y[0] ? -1 : 1));
  const at = entries.findIndex(([, v]) => v === undefined);
  const lines = (list: [string, string | undefined][]) => list.map(([n, v]) => `${n}:${v}\n`).join('');
  return {
    headers,
    host,
    sessionToken,
    before: lines(entries.slice(0, at)),
    after: lines(entries.slice(at + 1)),
    signedHeaders: entries.map(([n]) => n).join(';'),
  };
}

/**
 * Creates a SigV4 signer for one service and region.
 *
 * Per request it does two SHA-256 and one HMAC and little else: the date string is rebuilt once a
 * second, the signing key once a day (or when the secret rotates), the canonical header block when
 * the host, session token or a *frozen* `headers` object changes, and the canonical form of the
 * path's directory part when it changes. Signing sits on the hot path of every push: in a fan-out
 * it runs thousands of times a second next to the HTTP stack, so every avoidable allocation counts.
 *
 * @example
 * const signer = createSigner({ service: 'execute-api', region: 'eu-west-1', credentials });
 * const headers = signer.sign({ method: 'POST', host: 'abc.execute-api.eu-west-1.amazonaws.com',
 *   path: '/prod/@connections/abc%3D', body: '{"type":"pong"}' });
 */
export function createSigner({ service, region, credentials }: SignerOptions): Signer {
  let dateSecond = -1;
  let dateValue = '';
  let keyDate = '';
  let keySecret = '';
  let template: HeaderTemplate | undefined;
  let dirPath = '';
  let dirCanonical = '';
  let lastBody = '';
  let lastBodyHash = hash('sha256', '', 'hex');
  const scopeSuffix = `/${region}/${service}/aws4_request`;

  // The final HMAC is computed from its definition, H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)), with two
  // one-shot hashes into scratch buffers that hold the padded key: a `createHmac` per request
  // allocates a native object and an OpenSSL context, which in a busy process costs more than
  // the hashing itself. Safe to reuse because signing is synchronous.
  let inner = Buffer.alloc(0); // (K ⊕ ipad) ‖ string to sign
  const outer = Buffer.alloc(HMAC_BLOCK + 32); // (K ⊕ opad) ‖ inner digest

  const deriveKey = (dateStamp: string, secret: string): void => {
    const kDate = createHmac('sha256', `AWS4${secret}`).update(dateStamp).digest();
    const kRegion = createHmac('sha256', kDate).update(region).digest();
    const kService = createHmac('sha256', kRegion).update(service).digest();
    const key = createHmac('sha256', kService).update('aws4_request').digest(); // 32 bytes < block size
    inner = Buffer.alloc(Math.max(inner.length, HMAC_BLOCK));
    inner.fill(0x36, 0, HMAC_BLOCK);
    outer.fill(0x5c, 0, HMAC_BLOCK);
    for (let i = 0; i < key.length; i++) {
      inner[i] = 0x36 ^ (key[i] ?? 0);
      outer[i] = 0x5c ^ (key[i] ?? 0);
    }
    keyDate = dateStamp;
    keySecret = secret;
  };

  /** HMAC-SHA256 (hex) of an ASCII message under the current signing key. */
  const hmacHex = (message: string): string => {
    const size = HMAC_BLOCK + message.length;
    if (inner.length !== size) {
      const grown = Buffer.alloc(size);
      inner.copy(grown, 0, 0, HMAC_BLOCK);
      inner = grown;
    }
    inner.write(message, HMAC_BLOCK, 'latin1');
    hash('sha256', inner, 'buffer').copy(outer, HMAC_BLOCK);
    return hash('sha256', outer, 'hex');
  };

  /** `canonicalUri`, with the directory part (`/prod/@connections/`) memoised. */
  const uriOf = (path: string): string => {
    const cut = path.lastIndexOf('/');
    const last = path.slice(cut + 1);
    if (last === '.' || last === '..') return canonicalUri(path);
    const dir = path.slice(0, cut + 1);
    if (dir !== dirPath) {
      dirPath = dir;
      dirCanonical = canonicalUri(dir);
    }
    return last === '' ? dirCanonical : dirCanonical + uriEscape(last);
  };

  /** Strings are immutable, so a fan-out of one message hashes it once; Buffers may be reused, so never cached. */
  const payloadHash = (body: string | Buffer): string => {
    if (typeof body !== 'string') return hash('sha256', body, 'hex');
    if (body !== lastBody) {
      lastBodyHash = hash('sha256', body, 'hex');
      lastBody = body;
    }
    return lastBodyHash;
  };

  return {
    sign(request, nowMs = Date.now()) {
      const creds = credentials();
      const second = Math.floor(nowMs / 1000);
      if (second !== dateSecond) {
        dateSecond = second;
        dateValue = amzDate(nowMs);
      }
      const date = dateValue;
      const dateStamp = date.slice(0, 8);

      let t = template;
      if (
        t === undefined ||
        t.host !== request.host ||
        t.sessionToken !== creds.sessionToken ||
        t.headers !== request.headers ||
        (request.headers !== undefined && !Object.isFrozen(request.headers)) // mutable: cannot trust a cache
      ) {
        t = headerTemplate(request.host, creds.sessionToken, request.headers);
        template = t;
      }

      const canonicalRequest = `${request.method}\n${uriOf(request.path)}\n${canonicalQuery(request.query)}\n${t.before}x-amz-date:${date}\n${t.after}\n${t.signedHeaders}\n${payloadHash(request.body)}`;
      const scope = `${dateStamp}${scopeSuffix}`;
      const stringToSign = `${ALGORITHM}\n${date}\n${scope}\n${hash('sha256', canonicalRequest, 'hex')}`;
      if (dateStamp !== keyDate || creds.secretAccessKey !== keySecret) {
        deriveKey(dateStamp, creds.secretAccessKey);
      }
      const signature = hmacHex(stringToSign);

      const authorization = `${ALGORITHM} Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${t.signedHeaders}, Signature=${signature}`;
      return creds.sessionToken
        ? { authorization, 'x-amz-date': date, 'x-amz-security-token': creds.sessionToken }
        : { authorization, 'x-amz-date': date };
    },
  };
}

/** True for `http://127.0.0.1…`, `http://localhost…` and `http://[::1]…`: serverless-offline, never AWS. */
export function isLoopbackEndpoint(endpoint: string): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** Dummy credentials serverless-offline accepts (it does not check signatures). */
export const LOCAL_CREDENTIALS: Credentials = Object.freeze({
  accessKeyId: 'local',
  secretAccessKey: 'local',
});

export interface CredentialsFromEnvOptions {
  /** Defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Allow the dummy `local`/`local` pair when the variables are missing. Pass
   * `isLoopbackEndpoint(endpoint)`: only a serverless-offline endpoint may get it, so a Lambda with
   * missing credentials fails loudly at cold start instead of being rejected by AWS on every push.
   */
  readonly allowDummy: boolean;
}

/**
 * Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` now (Lambda sets them
 * for the container's lifetime) and returns a provider of that snapshot. Throws `CredentialsError`
 * naming the variable when they are missing and `allowDummy` is false.
 *
 * @example
 * const credentials = credentialsFromEnv({ allowDummy: isLoopbackEndpoint(endpoint) });
 */
export function credentialsFromEnv({
  env = process.env,
  allowDummy,
}: CredentialsFromEnvOptions): CredentialsProvider {
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  const sessionToken = env['AWS_SESSION_TOKEN'];
  let credentials: Credentials;
  if (accessKeyId && secretAccessKey) {
    credentials = Object.freeze(
      sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey },
    );
  } else if (allowDummy) {
    credentials = LOCAL_CREDENTIALS;
  } else {
    const missing = accessKeyId ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID';
    throw new CredentialsError(`${missing} is not set; requests to AWS must be signed with real credentials`);
  }
  return () => credentials;
}
