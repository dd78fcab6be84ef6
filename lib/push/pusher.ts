/**
 * The ClientPusher port — "send these bytes to that WebSocket connection" — and its adapters:
 *
 * - `createManagementApiPusher`: the production adapter. Signed `POST @connections/{id}` over one
 *   keep-alive agent with a synchronous SigV4 signer; several times the throughput of the SDK
 *   client per CPU (see docs/BENCHMARKS.md, "Push fan-out").
 * - `createSdkPusher` (./sdk-pusher, a separate module so production bundles and cold starts do
 *   not load the SDK): the same contract on `@aws-sdk/client-apigatewaymanagementapi`; the
 *   benchmark baseline and a check that both agree on every status (one shared contract suite).
 *
 * The 410 ⇒ 'gone' mapping lives here and nowhere else: callers get a value, not an error, and
 * decide once what a gone connection means (clean up its rooms and session).
 */
import { types } from 'node:util';
import { createSignedHttpClient, describeError, type HttpReceiver, type HttpResult } from '../aws/http';
import { type CredentialsProvider, createSigner, credentialsFromEnv, isLoopbackEndpoint } from '../aws/sigv4';
import type { Logger } from '../logger';

/** `'gone'`: the connection no longer exists (HTTP 410); the caller should forget it. */
export type PushResult = 'ok' | 'gone';

/** Sends one message to one WebSocket connection. */
export interface ClientPusher {
  /**
   * Delivers `data` as one frame. Resolves `'ok'` or `'gone'`; rejects with `PushError` (or its
   * subclass `PayloadTooLargeError`) after retries are exhausted or on a non-retriable status.
   */
  push(connectionId: string, data: string | Buffer): Promise<PushResult>;
  /** Stops accepting pushes, waits for those in flight, then closes the sockets. */
  close(): Promise<void>;
}

/** API Gateway rejects WebSocket messages over 128 KB; sending one would only earn a 413. */
export const MAX_PAYLOAD_BYTES = 131_072;

/** What a `PushError` knows. */
export interface PushErrorDetails {
  /** HTTP status; absent for network failures and timeouts. */
  readonly statusCode?: number;
  /** Whether trying again later may succeed (429, 5xx, network) or cannot (403, 400, oversize). */
  readonly retriable: boolean;
  readonly connectionId: string;
  /** Requests made, retries included (0: nothing was sent). */
  readonly attempts: number;
  /** AWS error type when the service sent one (e.g. `ForbiddenException`). */
  readonly errorType?: string;
  readonly cause?: unknown;
}

/** A push that failed. `retriable` says whether trying again later may succeed. */
export class PushError extends Error {
  override readonly name: string = 'PushError';
  readonly statusCode: number | undefined;
  readonly retriable: boolean;
  readonly connectionId: string;
  readonly attempts: number;
  readonly errorType: string | undefined;
  constructor(message: string, details: PushErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.statusCode = details.statusCode;
    this.retriable = details.retriable;
    this.connectionId = details.connectionId;
    this.attempts = details.attempts;
    this.errorType = details.errorType;
  }
}

/** The message exceeds API Gateway's 128 KB limit. Never sent, never retriable: log it and count it. */
export class PayloadTooLargeError extends PushError {
  override readonly name = 'PayloadTooLargeError';
  constructor(
    connectionId: string,
    readonly bytes: number,
  ) {
    super(`message of ${bytes} bytes exceeds the ${MAX_PAYLOAD_BYTES}-byte API Gateway limit`, {
      retriable: false,
      connectionId,
      attempts: 0,
    });
  }
}

/** Reported before each retry; for metrics and debugging. */
export interface RetryEvent {
  readonly connectionId: string;
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: PushError;
}

/** Reported once per push, when it settles. */
export interface PushOutcomeEvent {
  readonly connectionId: string;
  readonly outcome: PushResult | 'error';
  readonly attempts: number;
  readonly durationMs: number;
  readonly error?: PushError;
}

export interface PusherHooks {
  readonly onRetry?: (event: RetryEvent) => void;
  readonly onOutcome?: (event: PushOutcomeEvent) => void;
}

/** Options shared by both adapters. */
export interface PusherOptions {
  /** `http://127.0.0.1:9998` offline; `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` on AWS. */
  readonly endpoint: string;
  readonly region: string;
  readonly logger: Logger;
  /** Upper bound of requests in flight (sockets in the keep-alive pool). Default 64. */
  readonly maxSockets?: number;
  /** Retries after the first attempt for 429, 5xx and network failures. Default 3. */
  readonly maxRetries?: number;
  /** A request with no response bytes for this long fails (retriable). Default 5000 ms. */
  readonly timeoutMs?: number;
  /** First backoff step; attempt n waits a random time in [0, base·2ⁿ⁻¹] (full jitter). Default 25 ms. */
  readonly backoffBaseMs?: number;
  /**
   * Defaults to the environment (`credentialsFromEnv`), with the dummy `local` pair allowed only for
   * a loopback endpoint.
   */
  readonly credentials?: CredentialsProvider;
  /**
   * Resolves once `credentials` can answer (a `CredentialsSource`'s `ready`): the first pushes wait
   * for it, later ones take the synchronous path. Rejecting fails those pushes, not retriable.
   */
  readonly credentialsReady?: () => Promise<void>;
  readonly hooks?: PusherHooks;
  /**
   * A connection whose push got no answer at all, retries included (every attempt timed out or
   * failed on the network), is suspended for this long: pushes to it fail at once (a retriable
   * `PushError` with `errorType` `'Suspended'` and no attempt made) instead of each waiting
   * `(maxRetries + 1) · timeoutMs`. Without it one stuck connection holds back every later event of
   * its rooms — and, once the consumer's window of records in flight is full, of its partition.
   * 429 and 5xx answer quickly and never suspend. 0 disables. Default 10 000 ms.
   */
  readonly suspendUnansweredMs?: number;
}

const MAX_BACKOFF_MS = 2000;
/** Suspended connections remembered at most; expired ones are dropped first, then the oldest. */
const MAX_SUSPENDED = 10_000;

/** What an HTTP status means for a push. The single place that decides it. */
export type Verdict = PushResult | 'retry' | 'fail';

/** Maps an HTTP status to what the push does next. Exported for the adapters only. */
export function verdict(statusCode: number): Verdict {
  if (statusCode >= 200 && statusCode < 300) return 'ok';
  if (statusCode === 410) return 'gone';
  // 429: the account's Management API rate; 5xx: API Gateway hiccup. Both pass with time.
  if (statusCode === 429 || statusCode >= 500) return 'retry';
  return 'fail'; // 400 bad id, 403 signature/permissions, 413 … retrying cannot help
}

/** The environment's credentials; the dummy pair only for a loopback endpoint. */
export function defaultCredentials(endpoint: string): CredentialsProvider {
  return credentialsFromEnv({ allowDummy: isLoopbackEndpoint(endpoint) });
}

/**
 * One push as the transports see it. A transport makes attempt number `attempt` and reports it
 * once: with `complete` (a result, or a PushError whose `retriable` decides whether the retry loop
 * tries again), or — for a raw Management API exchange — with `onHttpResponse` / `onHttpError`,
 * which map the HTTP status (the single place where 410 becomes 'gone').
 */
export interface PushAttempt extends HttpReceiver {
  readonly connectionId: string;
  readonly data: string | Buffer;
  /** From 1. */
  readonly attempt: number;
  complete(outcome: PushResult | PushError): void;
}

/** Makes one attempt of a push. */
export type Transport = (push: PushAttempt) => void;

interface PusherCore {
  readonly transport: Transport;
  readonly maxRetries: number;
  readonly backoffBaseMs: number;
  readonly hooks: PusherHooks | undefined;
  readonly logger: Logger;
  readonly suspendMs: number;
  /** Connection id → until when (`performance.now()`) pushes to it fail at once. */
  readonly suspended: Map<string, number>;
  inFlight: number;
  closed: boolean;
  drained: (() => void) | undefined;
}

/** Remembers that a push to `connectionId` got no answer at all (see `suspendUnansweredMs`). */
function suspend(core: PusherCore, connectionId: string): void {
  const now = performance.now();
  if (core.suspended.size >= MAX_SUSPENDED) {
    for (const [id, until] of core.suspended) if (until <= now) core.suspended.delete(id);
    if (core.suspended.size >= MAX_SUSPENDED) core.suspended.delete(core.suspended.keys().next().value!);
  }
  core.suspended.delete(connectionId);
  core.suspended.set(connectionId, now + core.suspendMs);
  core.logger.warn('push got no answer after its retries; connection suspended', {
    connectionId,
    suspendMs: core.suspendMs,
  });
}

/**
 * One push through the retry loop. A class rather than closures: the production path then makes
 * one object and one promise per push, retries included (see lib/aws/http.ts for why it matters).
 * It is also the HTTP receiver, so the 410 mapping below runs without an intermediate callback.
 */
class PushJob implements PushAttempt {
  attempt = 0;
  constructor(
    private readonly core: PusherCore,
    readonly connectionId: string,
    readonly data: string | Buffer,
    private readonly resolve: (result: PushResult) => void,
    private readonly reject: (error: PushError) => void,
    private readonly started: number,
  ) {}

  start(): void {
    this.attempt++;
    try {
      this.core.transport(this);
    } catch (err) {
      // A transport that throws synchronously (a bug, a signer refusing its input) fails the push.
      this.settle(
        new PushError('push failed', {
          retriable: false,
          connectionId: this.connectionId,
          attempts: this.attempt,
          cause: err,
        }),
      );
    }
  }

  complete(outcome: PushResult | PushError): void {
    const { core } = this;
    // Once closing, a retriable failure is handed back at once rather than holding close() up.
    if (
      !(outcome instanceof PushError) ||
      !outcome.retriable ||
      this.attempt > core.maxRetries ||
      core.closed
    ) {
      this.settle(outcome);
      return;
    }
    const delayMs = Math.round(
      Math.random() * Math.min(MAX_BACKOFF_MS, core.backoffBaseMs * 2 ** (this.attempt - 1)),
    );
    const onRetry = core.hooks?.onRetry;
    if (onRetry) {
      guard(core, 'onRetry', () =>
        onRetry({ connectionId: this.connectionId, attempt: this.attempt, delayMs, error: outcome }),
      );
    }
    if (core.logger.isDebugEnabled()) {
      core.logger.debug('push retry', {
        connectionId: this.connectionId,
        attempt: this.attempt,
        delayMs,
        statusCode: outcome.statusCode,
        error: outcome,
      });
    }
    setTimeout(startJob, delayMs, this);
  }

  /** The Management API's answer, mapped: the single place where 410 becomes 'gone'. */
  onHttpResponse({ statusCode, errorType, message }: HttpResult): void {
    const v = verdict(statusCode);
    if (v === 'ok' || v === 'gone') {
      this.complete(v);
      return;
    }
    const { connectionId, attempt } = this;
    const what = errorType ?? `HTTP ${statusCode}`;
    this.complete(
      new PushError(`push to ${connectionId} failed: ${what}${message ? `: ${message}` : ''}`, {
        statusCode,
        retriable: v === 'retry',
        connectionId,
        attempts: attempt,
        errorType,
      }),
    );
  }

  /** No response at all (reset, refused, timeout): the message may or may not have arrived. */
  onHttpError(error: Error): void {
    const { connectionId, attempt } = this;
    this.complete(
      new PushError(`push to ${connectionId} failed: ${describeError(error)}`, {
        retriable: true,
        connectionId,
        attempts: attempt,
        cause: error,
      }),
    );
  }

  private settle(outcome: PushResult | PushError): void {
    const { core } = this;
    if (--core.inFlight === 0) core.drained?.();
    if (
      outcome instanceof PushError &&
      outcome.retriable &&
      outcome.statusCode === undefined &&
      core.suspendMs > 0 &&
      !core.closed
    )
      suspend(core, this.connectionId);
    const onOutcome = core.hooks?.onOutcome;
    if (onOutcome) {
      const durationMs = performance.now() - this.started;
      const { connectionId, attempt: attempts } = this;
      const event: PushOutcomeEvent =
        outcome instanceof PushError
          ? { connectionId, outcome: 'error', attempts, durationMs, error: outcome }
          : { connectionId, outcome, attempts, durationMs };
      guard(core, 'onOutcome', () => onOutcome(event));
    }
    if (outcome instanceof PushError) this.reject(outcome);
    else this.resolve(outcome);
  }
}

/**
 * Runs a metrics hook. A throwing hook is logged and ignored: it runs inside socket callbacks,
 * where an exception would either crash the process or leave the push unsettled.
 */
function guard(core: PusherCore, hook: string, call: () => void): void {
  try {
    call();
  } catch (err) {
    core.logger.error('pusher hook threw', { hook, err });
  }
}

function startJob(job: PushJob): void {
  job.start();
}

/**
 * Builds a ClientPusher from a single-attempt transport: the size check, retry loop, hooks,
 * in-flight tracking and close semantics both adapters share, so they cannot differ in anything
 * but the transport.
 */
export function createRetryingPusher(
  opts: PusherOptions,
  transport: Transport,
  shutdown: () => void,
): ClientPusher {
  const core: PusherCore = {
    transport,
    maxRetries: opts.maxRetries ?? 3,
    backoffBaseMs: opts.backoffBaseMs ?? 25,
    hooks: opts.hooks,
    logger: opts.logger.child({ component: 'pusher' }),
    suspendMs: opts.suspendUnansweredMs ?? 10_000,
    suspended: new Map(),
    inFlight: 0,
    closed: false,
    drained: undefined,
  };
  let closing: Promise<void> | undefined;

  const push = (connectionId: string, data: string | Buffer): Promise<PushResult> => {
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (bytes > MAX_PAYLOAD_BYTES) return Promise.reject(new PayloadTooLargeError(connectionId, bytes));
    if (core.closed) {
      return Promise.reject(
        new PushError('pusher is closed', { retriable: false, connectionId, attempts: 0 }),
      );
    }
    if (core.suspended.size > 0) {
      const until = core.suspended.get(connectionId);
      if (until !== undefined) {
        if (performance.now() < until) {
          return Promise.reject(
            new PushError(`push to ${connectionId} not sent: suspended after pushes that got no answer`, {
              retriable: true,
              connectionId,
              attempts: 0,
              errorType: 'Suspended',
            }),
          );
        }
        core.suspended.delete(connectionId);
      }
    }
    core.inFlight++;
    const started = core.hooks?.onOutcome ? performance.now() : 0;
    return new Promise<PushResult>((resolve, reject) =>
      new PushJob(core, connectionId, data, resolve, reject, started).start(),
    );
  };

  const close = (): Promise<void> => {
    core.closed = true;
    closing ??= (async () => {
      if (core.inFlight > 0) await new Promise<void>((r) => (core.drained = r));
      shutdown();
    })();
    return closing;
  };

  return { push, close };
}

/**
 * The production adapter: signed `POST {endpoint}/@connections/{id}` on one keep-alive agent.
 *
 * 2xx ⇒ `'ok'`; 410 ⇒ `'gone'`; 429, 5xx, timeouts and connection errors are retried with
 * exponential backoff and full jitter, at most `maxRetries` times, then rejected as a retriable
 * `PushError`; any other status is rejected at once as non-retriable. A connection whose push got
 * no answer at all is suspended for a while (`suspendUnansweredMs`). A retry after a network error
 * may deliver a message twice: delivery is at-least-once.
 *
 * @example
 * const pusher = createManagementApiPusher({ endpoint: config.aws.managementEndpoint, region: config.aws.region, logger });
 * if ((await pusher.push(connectionId, JSON.stringify(frame))) === 'gone') await sessions.remove(connectionId);
 */
export function createManagementApiPusher(opts: PusherOptions): ClientPusher {
  const client = createSignedHttpClient({
    endpoint: opts.endpoint,
    signer: createSigner({
      service: 'execute-api',
      region: opts.region,
      credentials: opts.credentials ?? defaultCredentials(opts.endpoint),
    }),
    maxSockets: opts.maxSockets,
    timeoutMs: opts.timeoutMs,
  });
  // What the SDK sends for a Blob body; signed so it cannot be altered in transit. Frozen, so the
  // signer computes its canonical form once.
  const headers = Object.freeze({ 'content-type': 'application/octet-stream' });

  const send: Transport = (push) => {
    // The attempt itself receives the HTTP outcome (onHttpResponse / onHttpError map it).
    client.send(`/@connections/${encodeURIComponent(push.connectionId)}`, push.data, headers, push);
  };
  // Until the credentials are loaded, attempts wait for them; after that, no wait and no I/O per push.
  let transport = send;
  const loading = opts.credentialsReady?.();
  if (loading) {
    transport = (push) => {
      loading.then(
        () => send(push),
        (err: unknown) =>
          push.complete(
            new PushError(`push to ${push.connectionId} failed: ${describeError(err)}`, {
              retriable: false,
              connectionId: push.connectionId,
              attempts: push.attempt,
              cause: err,
            }),
          ),
      );
    };
    loading.then(
      () => {
        transport = send;
      },
      () => undefined, // reported per push above
    );
  }

  return createRetryingPusher(
    opts,
    (push) => transport(push),
    () => client.destroy(),
  );
}

/** Options of `pushMany`. */
export interface PushManyOptions {
  /** Pushes in flight at once. Match it to the pusher's `maxSockets`. */
  readonly concurrency: number;
}

/**
 * Pushes one message to many connections with at most `concurrency` in flight, never an unbounded
 * `Promise.all`. Duplicate ids are pushed once. Never rejects: each id maps (in the order given)
 * to its result or its error, so one failing connection does not hide the others.
 *
 * @example
 * const results = await pushMany(pusher, members, frame, { concurrency: config.push.concurrency });
 * const gone = [...results].filter(([, r]) => r === 'gone').map(([id]) => id);
 */
export async function pushMany(
  pusher: ClientPusher,
  connectionIds: Iterable<string>,
  data: string | Buffer,
  { concurrency }: PushManyOptions,
): Promise<Map<string, PushResult | Error>> {
  const ids = [...new Set(connectionIds)];
  // A string is passed through as is: the signer hashes an identical string once per fan-out, and
  // Node writes a string body together with the headers in one write.
  const outcomes = new Array<PushResult | Error>(ids.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const i = next++;
      try {
        outcomes[i] = await pusher.push(ids[i]!, data);
      } catch (err) {
        outcomes[i] = types.isNativeError(err) ? err : new Error(String(err));
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(Math.max(1, concurrency), ids.length); w++) workers.push(worker());
  await Promise.all(workers);
  // In the order given, whatever order the pushes finished in.
  return new Map(ids.map((id, i) => [id, outcomes[i]!]));
}
