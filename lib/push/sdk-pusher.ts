/**
 * The ClientPusher contract on the AWS SDK client `@aws-sdk/client-apigatewaymanagementapi`.
 *
 * Not used in production: it is the benchmark baseline (bench/push.ts) and the reference the
 * shared contract suite holds `createManagementApiPusher` to. Kept out of ./pusher so importing the
 * port does not load (or bundle) the SDK.
 */
import http from 'node:http';
import https from 'node:https';
import {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { describeError } from '../aws/http';
import {
  type ClientPusher,
  createRetryingPusher,
  defaultCredentials,
  PushError,
  type PusherOptions,
  type PushResult,
  type Transport,
  verdict,
} from './pusher';

interface SdkError {
  readonly name: string;
  readonly message: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function isSdkError(err: unknown): err is SdkError {
  return typeof err === 'object' && err !== null && '$metadata' in err;
}

/**
 * The same contract on the AWS SDK client. Kept as the benchmark baseline and as a reference the
 * contract suite checks the production adapter against. The SDK's own retries are off so both
 * adapters retry by the same rules.
 */
export function createSdkPusher(opts: PusherOptions): ClientPusher {
  const maxSockets = opts.maxSockets ?? 64;
  const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets };
  const secure = opts.endpoint.startsWith('https:');
  const credentials = opts.credentials ?? defaultCredentials(opts.endpoint);
  const client = new ApiGatewayManagementApiClient({
    endpoint: opts.endpoint,
    region: opts.region,
    credentials: async () => credentials(),
    maxAttempts: 1,
    requestHandler: {
      requestTimeout: opts.timeoutMs ?? 5000,
      // Without it the SDK only logs a warning and keeps waiting.
      throwOnRequestTimeout: true,
      ...(secure
        ? { httpsAgent: new https.Agent(agentOptions) }
        : { httpAgent: new http.Agent(agentOptions) }),
    },
  });

  const fail = (connectionId: string, attempt: number, err: unknown): PushResult | PushError => {
    // serverless-offline's empty 410 surfaces as an error named `Unknown`; only the status is reliable.
    const statusCode = isSdkError(err) ? err.$metadata?.httpStatusCode : undefined;
    if (statusCode === undefined) {
      return new PushError(`push to ${connectionId} failed: ${describeError(err)}`, {
        retriable: true,
        connectionId,
        attempts: attempt,
        cause: err,
      });
    }
    const v = verdict(statusCode);
    if (v === 'gone' || v === 'ok') return v;
    const name = isSdkError(err) ? err.name : 'Error';
    return new PushError(`push to ${connectionId} failed: ${name}`, {
      statusCode,
      retriable: v === 'retry',
      connectionId,
      attempts: attempt,
      errorType: name,
      cause: err,
    });
  };

  const transport: Transport = (push) => {
    const { connectionId, data, attempt } = push;
    const command = new PostToConnectionCommand({
      ConnectionId: connectionId,
      Data: typeof data === 'string' ? Buffer.from(data) : data,
    });
    client
      .send(command)
      .then(
        () => 'ok' as const,
        (err: unknown) => fail(connectionId, attempt, err),
      )
      .then((outcome) => push.complete(outcome));
  };

  return createRetryingPusher(opts, transport, () => client.destroy());
}
