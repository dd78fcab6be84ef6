/**
 * Asynchronous Lambda invocation (`InvocationType: Event`) without the Lambda SDK client: a signed
 * `POST /2015-03-31/functions/{name}/invocations` on one keep-alive agent. `$connect` uses it to hand
 * the welcome push to a separate invocation, because API Gateway only accepts pushes to a
 * connection after `$connect` has returned.
 *
 * Lambda answers 202 once the event is queued; serverless-offline emulates the same API on port
 * 3002 and answers 202 too, so nothing branches on the environment — only the endpoint differs.
 */
import { createSignedHttpClient, describeError } from '../aws/http';
import { type CredentialsProvider, createSigner, credentialsFromEnv, isLoopbackEndpoint } from '../aws/sigv4';

/** Queues events for one function. */
export interface AsyncInvoker<TPayload = unknown> {
  /** Resolves once Lambda accepted the event (HTTP 202); rejects with `InvokeError` otherwise. */
  invoke(payload: TPayload): Promise<void>;
  /** Closes the pooled sockets. */
  close(): Promise<void>;
}

/** The invocation was not accepted. */
export class InvokeError extends Error {
  override readonly name = 'InvokeError';
  readonly functionName: string;
  /** Absent for network failures and timeouts. */
  readonly statusCode: number | undefined;
  /** Lambda's error type, e.g. `ResourceNotFoundException`, `TooManyRequestsException`. */
  readonly errorType: string | undefined;
  /** 429, 5xx and network failures may pass; 4xx (missing function, no permission) will not. */
  readonly retriable: boolean;
  constructor(
    message: string,
    details: {
      readonly functionName: string;
      readonly statusCode?: number;
      readonly errorType?: string;
      readonly retriable: boolean;
      readonly cause?: unknown;
    },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.functionName = details.functionName;
    this.statusCode = details.statusCode;
    this.errorType = details.errorType;
    this.retriable = details.retriable;
  }
}

export interface AsyncInvokerOptions {
  /** Defaults to `https://lambda.{region}.amazonaws.com`; `http://127.0.0.1:3002` under serverless-offline. */
  readonly endpoint?: string;
  readonly region: string;
  /** Function name, ARN or partial ARN. */
  readonly functionName: string;
  /** Defaults to the environment, with the dummy `local` pair allowed only for a loopback endpoint. */
  readonly credentials?: CredentialsProvider;
  /** Resolves once `credentials` can answer (a `CredentialsSource`'s `ready`); awaited before each invocation. */
  readonly credentialsReady?: () => Promise<void>;
  /** Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Default 16: invocations are one per `$connect`, not a fan-out. */
  readonly maxSockets?: number;
}

/**
 * Creates an invoker for one function. No retries here: the caller ($connect) has a fallback
 * (the first client frame triggers the welcome), and Lambda itself retries failed async runs.
 *
 * @example
 * const invoker = createAsyncInvoker<WelcomeRequest>({ region, functionName: config.aws.welcomeFunctionName,
 *   endpoint: config.aws.lambdaEndpoint });
 * await invoker.invoke({ connectionId, endpoint });
 */
export function createAsyncInvoker<TPayload = unknown>(opts: AsyncInvokerOptions): AsyncInvoker<TPayload> {
  const { region, functionName } = opts;
  const endpoint = opts.endpoint ?? `https://lambda.${region}.amazonaws.com`;
  const client = createSignedHttpClient({
    endpoint,
    signer: createSigner({
      service: 'lambda',
      region,
      credentials: opts.credentials ?? credentialsFromEnv({ allowDummy: isLoopbackEndpoint(endpoint) }),
    }),
    maxSockets: opts.maxSockets ?? 16,
    timeoutMs: opts.timeoutMs,
  });
  const path = `/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`;
  // Frozen: the signer then computes the canonical headers once.
  const headers = Object.freeze({ 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' });

  const invoke = async (payload: TPayload): Promise<void> => {
    // An oversized event is left to Lambda to refuse (413, non-retriable): its limit has changed before.
    const body = JSON.stringify(payload);
    let res: Awaited<ReturnType<typeof client.post>>;
    try {
      await opts.credentialsReady?.();
      res = await client.post(path, body, headers);
    } catch (err) {
      throw new InvokeError(`invoke ${functionName} failed: ${describeError(err)}`, {
        functionName,
        retriable: true,
        cause: err,
      });
    }
    if (res.statusCode === 202) return;
    const what = res.errorType ?? `HTTP ${res.statusCode}`;
    throw new InvokeError(`invoke ${functionName} failed: ${what}${res.message ? `: ${res.message}` : ''}`, {
      functionName,
      statusCode: res.statusCode,
      errorType: res.errorType,
      // A 200 means the event was run synchronously (wrong invocation type) — a bug, not transient.
      retriable: res.statusCode === 429 || res.statusCode >= 500,
    });
  };

  return {
    invoke,
    close: async () => client.destroy(),
  };
}
