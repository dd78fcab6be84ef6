/**
 * Test support for the push adapters: a loopback HTTP server standing in for the Management API /
 * Lambda (scripted answers, every request recorded), and a SigV4 verifier that recomputes a
 * received request's signature with the AWS SDK's own signer, `@smithy/signature-v4`.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest, SourceData } from '@smithy/types';
import type { Credentials } from '../../../lib/aws/sigv4';

export interface ReceivedRequest {
  readonly method: string;
  /** The raw request target, exactly as sent (still percent-encoded). */
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** Client port: the same value twice means the keep-alive socket was reused. */
  readonly remotePort: number;
}

/** An answer: a status with optional body/headers, a connection reset, or silence. */
export type Answer =
  | { readonly status: number; readonly body?: string; readonly headers?: Readonly<Record<string, string>> }
  | 'reset'
  | 'hang';

export interface StubServer {
  /** `http://127.0.0.1:{port}` */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Highest number of requests the server held at once. */
  readonly maxConcurrent: number;
  close(): Promise<void>;
}

/**
 * Starts the stub. `answer` decides per request; an array is consumed in order and its last entry
 * repeats (`[{ status: 429 }, { status: 200 }]`: throttled once, then fine).
 */
export async function startStubServer(
  answer: readonly Answer[] | ((req: ReceivedRequest, index: number) => Answer),
  options: { readonly delayMs?: number } = {},
): Promise<StubServer> {
  const requests: ReceivedRequest[] = [];
  let current = 0;
  let maxConcurrent = 0;
  const pick = (req: ReceivedRequest, index: number): Answer =>
    typeof answer === 'function'
      ? answer(req, index)
      : (answer[Math.min(index, answer.length - 1)] ?? { status: 200 });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    current++;
    maxConcurrent = Math.max(maxConcurrent, current);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        remotePort: req.socket.remotePort ?? 0,
      };
      const index = requests.push(received) - 1;
      const a = pick(received, index);
      const respond = () => {
        current--;
        if (a === 'reset') {
          req.socket.destroy();
          return;
        }
        if (a === 'hang') return;
        const body = a.body ?? '';
        res.writeHead(a.status, { 'content-length': Buffer.byteLength(body), ...a.headers });
        res.end(body);
      };
      if (options.delayMs) setTimeout(respond, options.delayMs);
      else respond();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get maxConcurrent() {
      return maxConcurrent;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** node:crypto behind the interface `@smithy/signature-v4` hashes with. */
class NodeSha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: SourceData): void {
    this.h.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

function toBytes(d: SourceData): string | Uint8Array {
  if (typeof d === 'string') return d;
  if (ArrayBuffer.isView(d)) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  return new Uint8Array(d);
}

/** `20150830T123600Z` → Date */
export function parseAmzDate(v: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) throw new Error(`bad x-amz-date ${v}`);
  return new Date(
    Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])),
  );
}

/** Signs with `@smithy/signature-v4` (checksum header off: neither execute-api nor lambda needs it). */
export async function smithyAuthorization(
  args: {
    readonly service: string;
    readonly region: string;
    readonly credentials: Credentials;
    readonly date: Date;
  },
  request: {
    readonly method: string;
    readonly host: string;
    readonly path: string;
    readonly query?: Readonly<Record<string, string>>;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body: string | Uint8Array;
  },
): Promise<string> {
  const signer = new SignatureV4({
    service: args.service,
    region: args.region,
    credentials: args.credentials,
    sha256: NodeSha256,
    applyChecksum: false,
  });
  const toSign: HttpRequest = {
    method: request.method,
    protocol: 'https:',
    hostname: request.host,
    path: request.path,
    query: { ...request.query },
    headers: { ...request.headers, host: request.host },
    body: request.body,
  };
  const signed = await signer.sign(toSign, { signingDate: args.date });
  const auth = signed.headers['authorization'];
  if (auth === undefined) throw new Error('smithy produced no authorization header');
  return auth;
}

/**
 * Recomputes the signature of a request the stub received, over exactly the headers it claims to
 * have signed, and returns both for comparison. Fails on a missing or malformed Authorization.
 */
export async function verifySignature(
  req: ReceivedRequest,
  expected: { readonly service: string; readonly region: string; readonly credentials: Credentials },
): Promise<{ received: string; recomputed: string }> {
  const received = req.headers['authorization'];
  if (typeof received !== 'string') throw new Error('no Authorization header');
  const m =
    /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[^/]+\/[^/]+\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$/.exec(
      received,
    );
  if (!m?.[1]) throw new Error(`malformed Authorization: ${received}`);
  const headers: Record<string, string> = {};
  for (const name of m[1].split(';')) {
    const v = req.headers[name];
    if (typeof v !== 'string') throw new Error(`signed header ${name} missing or repeated`);
    if (name !== 'host' && name !== 'x-amz-date' && name !== 'x-amz-security-token') headers[name] = v;
  }
  const [path = '', search = ''] = req.url.split('?');
  const query = Object.fromEntries(new URLSearchParams(search));
  const recomputed = await smithyAuthorization(
    { ...expected, date: parseAmzDate(String(req.headers['x-amz-date'])) },
    {
      method: req.method,
      host: String(req.headers.host),
      path,
      query,
      headers,
      body: new Uint8Array(req.body),
    },
  );
  return { received, recomputed };
}
