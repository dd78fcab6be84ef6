/**
 * The ConnectionCloser port — "close that WebSocket connection" — and its Management API adapter:
 * signed `DELETE @connections/{id}` (API Gateway; serverless-offline emulates it: 204, or 410 for an
 * unknown id). The client sees a normal close and reconnects; `$disconnect` follows as usual.
 */
import { createSignedHttpClient } from '../aws/http';
import { type CredentialsProvider, createSigner } from '../aws/sigv4';
import { defaultCredentials } from './pusher';

/** `'gone'`: the connection did not exist any more (HTTP 410). */
export type CloseResult = 'closed' | 'gone';

export interface ConnectionCloser {
  /** Rejects with an Error on any other status or a network failure (no retries: the caller decides). */
  close(connectionId: string): Promise<CloseResult>;
}

export interface ManagementApiCloserOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials?: CredentialsProvider;
  /** Resolves once `credentials` can answer (a provider chain loading); awaited before each close. */
  readonly credentialsReady?: () => Promise<void>;
  readonly timeoutMs?: number;
}

/**
 * @example
 * const closer = createManagementApiCloser({ endpoint: config.aws.managementEndpoint, region: config.aws.region });
 * await closer.close(connectionId);
 */
export function createManagementApiCloser({
  endpoint,
  region,
  credentials,
  credentialsReady,
  timeoutMs = 2000,
}: ManagementApiCloserOptions): ConnectionCloser & { destroy(): void } {
  const client = createSignedHttpClient({
    endpoint,
    signer: createSigner({
      service: 'execute-api',
      region,
      credentials: credentials ?? defaultCredentials(endpoint),
    }),
    maxSockets: 4,
    timeoutMs,
  });
  return {
    async close(connectionId) {
      await credentialsReady?.();
      const { statusCode, errorType } = await client.delete(
        `/@connections/${encodeURIComponent(connectionId)}`,
      );
      if (statusCode >= 200 && statusCode < 300) return 'closed';
      if (statusCode === 410) return 'gone';
      throw new Error(`closing ${connectionId} failed: ${errorType ?? `HTTP ${statusCode}`}`);
    },
    destroy: () => client.destroy(),
  };
}
