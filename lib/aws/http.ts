/**
 * A minimal SigV4-signed HTTP client over one keep-alive agent, shared by the Management API pusher
 * and the async Lambda invoker. It knows nothing about either API: it posts, signs and reports the
 * status; the adapters decide what a status means.
 *
 * Why not the AWS SDK: its middleware stack (serialisation, endpoint resolution, retries, user-agent,
 * checksums, async signing) costs several times more CPU per call than the HTTP round trip, which
 * is what limits a fan-out of one message to thousands of connections.
 *
 * The per-request path allocates little on purpose: listeners are shared module functions that find
 * their request's state on the request object, and the caller receives the outcome through a method
 * of an object it already has instead of a fresh closure or promise. Measured: see
 * docs/BENCHMARKS.md, "Push fan-out".
 */
import http from 'node:http';
import https from 'node:https';
import { types } from 'node:util';
import type { Signer } from './sigv4';

/** The outcome of one HTTP exchange. Network failures are reported as an `Error` instead. */
export interface HttpResult {
  readonly statusCode: number;
  /** AWS error type (`x-amzn-errortype` or the JSON body's `__type`), for non-2xx only. */
  readonly errorType?: string;
  /** Error message from the body, for non-2xx only; empty when the body was empty (serverless-offline). */
  readonly message?: string;
}

/** No response within the timeout. Retriable, like any other network failure. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(timeoutMs: number) {
    super(`no response within ${timeoutMs} ms`);
  }
}

/**
 * Receives the outcome of `send` exactly once: the response, or the network error (reset, refused,
 * timeout). Two methods rather than an `instanceof Error` test: errors raised inside Node's
 * internals may come from another realm (jest's sandbox, vm contexts) and fail that test.
 */
export interface HttpReceiver {
  onHttpResponse(result: HttpResult): void;
  onHttpError(error: Error): void;
}

export interface SignedHttpClientOptions {
  /** Base URL; its path (e.g. the API Gateway stage `/prod`) is kept as a prefix of every request. */
  readonly endpoint: string;
  readonly signer: Signer;
  /** Sockets kept open to the endpoint; bounds the number of requests in flight. Default 64. */
  readonly maxSockets?: number;
  /** A request whose socket stays silent this long fails; idle pooled sockets close after it too. Default 5000 ms. */
  readonly timeoutMs?: number;
}

export interface SignedHttpClient {
  /**
   * Signs and POSTs `body` to `endpoint + path`. Rejects on network failures only.
   * @param path already percent-encoded, starting with `/`
   * @param headers extra headers to send and sign (lower-case names); pass a frozen constant
   */
  post(path: string, body: string | Buffer, headers?: Readonly<Record<string, string>>): Promise<HttpResult>;
  /** `post` for the hot path: the outcome goes to `receiver.onHttpOutcome`, no promise is made. */
  send(
    path: string,
    body: string | Buffer,
    headers: Readonly<Record<string, string>> | undefined,
    receiver: HttpReceiver,
  ): void;
  /** Signs and sends `DELETE endpoint + path` (no body). Rejects on network failures only. */
  delete(path: string): Promise<HttpResult>;
  /** Closes the pooled sockets. Requests in flight are aborted. */
  destroy(): void;
}

/**
 * `ECONNRESET socket hang up`: message and code of a network error for PushError/InvokeError
 * messages. Checked with `types.isNativeError`, which, unlike `instanceof Error`, also holds for
 * errors from another realm (Node's internals seen from jest's sandbox).
 */
export function describeError(err: unknown): string {
  if (!types.isNativeError(err)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${code} ${err.message}` : err.message;
}

/** Error bodies are small JSON documents; anything past this is not worth buffering. */
const MAX_ERROR_BODY = 4096;

function errorDetails(
  headerType: string | string[] | undefined,
  body: string,
): { errorType?: string; message: string } {
  // `x-amzn-errortype: GoneException:http://internal.amazon.com/coral/…`
  let errorType = typeof headerType === 'string' ? headerType.split(':')[0] : undefined;
  let message = body;
  if (body.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(body);
      if (parsed && typeof parsed === 'object') {
        const o = parsed as Record<string, unknown>;
        const m = o['message'] ?? o['Message'];
        if (typeof m === 'string') message = m;
        const t = o['__type'];
        if (errorType === undefined && typeof t === 'string') errorType = t.split('#').pop();
      }
    } catch {
      // A truncated or non-JSON body is kept verbatim as the message.
    }
  }
  return errorType === undefined ? { message } : { errorType, message };
}

/** Per-request state, kept on the request so the listeners below can be shared functions. */
class Exchange {
  settled = false;
  errorBody = '';
  constructor(
    readonly receiver: HttpReceiver,
    readonly timeoutMs: number,
  ) {}

  // `settled` guards against e.g. a socket error after the response was already taken.
  respond(result: HttpResult): void {
    if (this.settled) return;
    this.settled = true;
    this.receiver.onHttpResponse(result);
  }

  fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.receiver.onHttpError(error);
  }
}

const kExchange = Symbol('exchange');
type TrackedRequest = http.ClientRequest & { [kExchange]: Exchange };
type TrackedResponse = http.IncomingMessage & { [kExchange]: Exchange };

function onResponse(this: TrackedRequest, res: http.IncomingMessage): void {
  const exchange = this[kExchange];
  const statusCode = res.statusCode ?? 0;
  if (statusCode >= 200 && statusCode < 300) {
    // The body is irrelevant but must be drained for the socket to go back to the pool.
    res.resume();
    exchange.respond({ statusCode });
    return;
  }
  // Error path: rare, so closures are fine here.
  const tracked = Object.assign(res, { [kExchange]: exchange }) as TrackedResponse;
  tracked.setEncoding('utf8');
  tracked.on('data', onErrorBodyChunk);
  const complete = (body: string) =>
    exchange.respond({
      statusCode,
      ...errorDetails(res.headers['x-amzn-errortype'], body.slice(0, MAX_ERROR_BODY)),
    });
  tracked.on('end', () => complete(exchange.errorBody));
  // A connection lost mid-body still tells us the status, which is what decides.
  tracked.on('error', () => complete(''));
}

function onErrorBodyChunk(this: TrackedResponse, chunk: string): void {
  const exchange = this[kExchange];
  if (exchange.errorBody.length < MAX_ERROR_BODY) exchange.errorBody += chunk;
}

function onRequestTimeout(this: TrackedRequest): void {
  this.destroy(new RequestTimeoutError(this[kExchange].timeoutMs));
}

function onRequestError(this: TrackedRequest, err: Error): void {
  this[kExchange].fail(err);
}

/**
 * Creates the client: one keep-alive agent, created here and reused for every request.
 *
 * @example
 * const client = createSignedHttpClient({ endpoint: 'https://lambda.eu-west-1.amazonaws.com', signer });
 * const { statusCode } = await client.post('/2015-03-31/functions/f/invocations', '{}', headers);
 */
export function createSignedHttpClient({
  endpoint,
  signer,
  maxSockets = 64,
  timeoutMs = 5000,
}: SignedHttpClientOptions): SignedHttpClient {
  const url = new URL(endpoint);
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') throw new TypeError(`endpoint must be http(s): ${endpoint}`);
  const request = secure ? https.request : http.request;
  const agentOptions = {
    keepAlive: true,
    maxSockets,
    maxFreeSockets: maxSockets,
    // LIFO reuse keeps the busiest sockets warm and lets the rest idle out instead of all going stale.
    scheduling: 'lifo' as const,
    // Set on the socket once, not per request: a request whose socket is silent this long emits
    // 'timeout' (destroyed by onRequestTimeout), and an idle pooled socket is closed after it.
    timeout: timeoutMs,
  };
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const host = url.host; // what goes in Host (no default port), hence what is signed
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const basePath = url.pathname.replace(/\/+$/, '');

  const exchange = (
    method: 'POST' | 'DELETE',
    path: string,
    body: string | Buffer,
    extra: Readonly<Record<string, string>> | undefined,
    receiver: HttpReceiver,
  ): void => {
    const fullPath = basePath + path;
    const signature = signer.sign({ method, host, path: fullPath, body, headers: extra });
    // A flat [name, value, …] list goes straight into the header block, skipping the per-header
    // setHeader bookkeeping; Host must then be given explicitly (it is the signed one anyway).
    const headers: string[] = [
      'host',
      host,
      'content-length',
      String(typeof body === 'string' ? Buffer.byteLength(body) : body.length),
      'x-amz-date',
      signature['x-amz-date'],
      'authorization',
      signature.authorization,
    ];
    const token = signature['x-amz-security-token'];
    if (token !== undefined) headers.push('x-amz-security-token', token);
    if (extra) for (const name of Object.keys(extra)) headers.push(name, extra[name] ?? '');

    const req = request(
      { agent, hostname, port, method, path: fullPath, headers },
      onResponse,
    ) as TrackedRequest;
    req[kExchange] = new Exchange(receiver, timeoutMs);
    req.on('timeout', onRequestTimeout);
    req.on('error', onRequestError);
    req.end(body);
  };

  const send = (
    path: string,
    body: string | Buffer,
    extra: Readonly<Record<string, string>> | undefined,
    receiver: HttpReceiver,
  ): void => exchange('POST', path, body, extra, receiver);

  return {
    send,
    post: (path, body, headers) =>
      new Promise((resolve, reject) =>
        send(path, body, headers, { onHttpResponse: resolve, onHttpError: reject }),
      ),
    delete: (path) =>
      new Promise((resolve, reject) =>
        exchange('DELETE', path, '', undefined, { onHttpResponse: resolve, onHttpError: reject }),
      ),
    destroy: () => agent.destroy(),
  };
}
