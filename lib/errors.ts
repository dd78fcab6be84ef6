/** Codes the gateway itself sends in `system.error` (docs/protocol.md, docs/decisions.md D7). */
export type ClientErrorCode = 'INVALID_FORMAT' | 'MESSAGE_ERROR' | 'RATE_LIMIT' | 'MESSAGE_TOO_LARGE';

/**
 * An error at the edge that knows the frame the client gets. `message` is what the client sees,
 * so it never carries internals; the cause is for logs only.
 */
export class ClientError extends Error {
  override readonly name: string = 'ClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalidFormat = (cause?: unknown) =>
  new ClientError('INVALID_FORMAT', 'Invalid message format', { cause });
export const notAuthenticated = () => new ClientError('MESSAGE_ERROR', 'Connection not authenticated');
export const rateLimited = () => new ClientError('RATE_LIMIT', 'Rate limit exceeded');
export const tooLarge = () => new ClientError('MESSAGE_TOO_LARGE', 'Message too large');

/** A dependency failed (Redis, Kafka). The client sees a generic MESSAGE_ERROR, never the details. */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  constructor(
    readonly dependency: 'redis' | 'kafka' | 'push',
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * An event that can never be delivered as it is: its message cannot be serialised, or its routing
 * fails on data that retrying does not change. Not retriable: the consumer skips the record, logs
 * and counts it (docs/decisions.md D9), rather than stalling its partition.
 */
export class UndeliverableEventError extends Error {
  override readonly name = 'UndeliverableEventError';
  readonly retriable = false;
}
