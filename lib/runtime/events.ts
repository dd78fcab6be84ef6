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

/** The client frame of a `$default` event as text (API Gateway base64-encodes binary frames). */
export function frameBody(event: WebSocketEvent): string {
  if (!event.body) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}
