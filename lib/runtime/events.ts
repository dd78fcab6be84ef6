/** The parts of an API Gateway WebSocket event the handlers read ($connect adds headers and query). */
export interface WebSocketEvent {
  readonly requestContext: {
    readonly connectionId: string;
    readonly routeKey?: string;
    readonly domainName?: string;
    readonly stage?: string;
    readonly eventType?: string;
  };
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
  readonly headers?: Record<string, string | undefined> | null;
  readonly queryStringParameters?: Record<string, string | undefined> | null;
}

/**
 * The client frame of a `$default` event: its text, or its bytes when it is binary, which the
 * protocol ignores (docs/protocol.md). serverless-offline hands a binary frame over as a Buffer (a
 * Uint8Array across a worker thread) with `isBase64Encoded: false`; API Gateway closes a connection
 * that sends one (1003) and only base64-encodes a payload (`isBase64Encoded: true`) when an
 * integration converts it to binary. Neither is ever decoded as text.
 */
export function frameBody(event: WebSocketEvent): string | Uint8Array {
  const body: unknown = event.body;
  if (body === undefined || body === null) return '';
  if (body instanceof Uint8Array) return body;
  if (typeof body !== 'string') return new Uint8Array(0);
  return event.isBase64Encoded ? Buffer.from(body, 'base64') : body;
}
