/**
 * A fake API Gateway Management API on a loopback port: `POST /@connections/{id}` is recorded and
 * answered with a status chosen by the test (200 by default; 410 for a gone connection; 429 / 5xx
 * for throttling and outages). Tests push through the real `createManagementApiPusher` against it,
 * so the status mapping, retries and 410 handling under test are the production ones, and every
 * delivered frame is recorded per connection, in arrival order.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonObject } from '../../lib/protocol/envelope';

/** One request to `@connections/{id}`, recorded when it arrived. */
export interface RecordedPush {
  readonly connectionId: string;
  /** The frame parsed as JSON. */
  readonly body: JsonObject;
  /** 1 for the first request to this connection, counting every retry. */
  readonly attempt: number;
  /** The status the fake answered. */
  readonly status: number;
}

/** Decides the status of a request; called with the attempt number of that connection (from 1). */
export type Responder = (attempt: number, body: JsonObject) => number;

export interface FakeManagementApi {
  /** For `createManagementApiPusher({ endpoint })`. */
  readonly endpoint: string;
  /** Every request, in arrival order, whatever its status. */
  readonly requests: readonly RecordedPush[];
  /** The frames a connection received (2xx answers only), in arrival order. */
  delivered(connectionId: string): JsonObject[];
  /** How many requests a connection got, retries included. */
  attempts(connectionId: string): number;
  /** Answers every request to this connection with `status` (or asks the responder). */
  respond(connectionId: string, status: number | Responder): void;
  /**
   * Runs before a request to a connection is answered: the push stays in flight until it resolves,
   * so a test can inspect state at the moment of the send, or hold a push back.
   */
  onRequest(hook: ((push: Omit<RecordedPush, 'status'>) => Promise<void> | void) | undefined): void;
  stop(): Promise<void>;
}

const ERROR_TYPES: Record<number, string> = {
  410: 'GoneException',
  429: 'LimitExceededException',
  403: 'ForbiddenException',
};

export async function startFakeManagementApi(): Promise<FakeManagementApi> {
  const requests: RecordedPush[] = [];
  const counts = new Map<string, number>();
  const responders = new Map<string, Responder>();
  let hook: ((push: Omit<RecordedPush, 'status'>) => Promise<void> | void) | undefined;

  const server = http.createServer((req, res) => {
    const match = /^\/@connections\/([^/?]+)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      res.writeHead(404).end();
      return;
    }
    const connectionId = decodeURIComponent(match[1]!);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const attempt = (counts.get(connectionId) ?? 0) + 1;
      counts.set(connectionId, attempt);
      const text = Buffer.concat(chunks).toString('utf8');
      let body: JsonObject;
      try {
        body = JSON.parse(text) as JsonObject;
      } catch {
        body = { __unparseable__: text };
      }
      await hook?.({ connectionId, body, attempt });
      const status = responders.get(connectionId)?.(attempt, body) ?? 200;
      requests.push({ connectionId, body, attempt, status });
      if (status >= 200 && status < 300) {
        res.writeHead(status).end();
        return;
      }
      const errorType =
        ERROR_TYPES[status] ?? (status >= 500 ? 'InternalServerErrorException' : 'BadRequest');
      res
        .writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': errorType })
        .end(JSON.stringify({ message: `fake ${status}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    delivered: (connectionId) =>
      requests
        .filter((r) => r.connectionId === connectionId && r.status >= 200 && r.status < 300)
        .map((r) => r.body),
    attempts: (connectionId) => counts.get(connectionId) ?? 0,
    respond(connectionId, status) {
      responders.set(connectionId, typeof status === 'number' ? () => status : status);
    },
    onRequest(h) {
      hook = h;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
