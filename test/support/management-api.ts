/**
 * A stand-in API Gateway Management API on a loopback port, for tests and benchmarks. It behaves like
 * API Gateway under load:
 *
 * - an **account token bucket** (`rate` requests/s, `burst`) shared by every request it receives,
 *   answering `429 LimitExceededException` beyond it (unlimited by default);
 * - **slow connections** whose outgoing buffer is full answer `429 LimitExceededException` too (as on
 *   AWS: the same status and type, only the message differs), optionally draining `acceptPerSec`;
 * - **gone connections** answer 410 `GoneException` to POST, GET and DELETE;
 * - **fault knobs** per connection: a status (5xx, 403 …) for the next `times` requests or always,
 *   or a hang (the request is never answered, so the client's own timeout decides);
 * - a **round-trip latency** with jitter (`latencyMs` ± `jitterMs`, default 10 ± 3 ms: a TLS round
 *   trip to API Gateway);
 * - `POST`, `GET` and `DELETE @connections/{id}`, every request recorded with its status and time.
 *
 * Tests push through the real `createManagementApiPusher` against it, so the status mapping, retries
 * and 410 handling under test are the production ones, and every delivered frame is recorded per
 * connection, in arrival order.
 *
 * The same server runs in a child process (./management-api-process.ts) so that a benchmark's
 * measured process does not also pay for the stand-in's CPU; it is then driven through the control
 * routes under `/_standin/` (also served in-process, where they are simply unused).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonObject } from '../../lib/protocol/envelope';

/** One `POST @connections/{id}`, recorded when its status was decided. */
export interface RecordedPush {
  readonly connectionId: string;
  /** The frame parsed as JSON. */
  readonly body: JsonObject;
  /** 1 for the first request to this connection, counting every retry. */
  readonly attempt: number;
  /** The status the stand-in answered (0: never answered — a hang). */
  readonly status: number;
  /** `Date.now()` when the status was decided (the answer leaves the round-trip latency later). */
  readonly at: number;
}

/** One `GET` or `DELETE @connections/{id}`. */
export interface RecordedCall {
  readonly method: 'GET' | 'DELETE';
  readonly connectionId: string;
  readonly status: number;
  readonly at: number;
}

/** Decides the status of a request; called with the attempt number of that connection (from 1). */
export type Responder = (attempt: number, body: JsonObject) => number;

/** How one connection misbehaves. */
export type Behaviour =
  /** Answers normally. */
  | { readonly kind: 'normal' }
  /** 410 to everything. */
  | { readonly kind: 'gone' }
  /**
   * Its buffer is full: POSTs get 429 LimitExceededException, except `acceptPerSec` of them per
   * second (0, the default: none).
   */
  | { readonly kind: 'slow'; readonly acceptPerSec?: number }
  /** The next `times` POSTs (default: all) get `status` (e.g. 500, 503, 403). */
  | { readonly kind: 'fail'; readonly status: number; readonly times?: number }
  /** The next `times` POSTs (default: all) are never answered. */
  | { readonly kind: 'hang'; readonly times?: number };

export interface ManagementApiOptions {
  /** Account throttle: requests/s refilled (default: unlimited). */
  readonly rate?: number;
  /** Account throttle: bucket size (default: `rate`, i.e. one second's worth). */
  readonly burst?: number;
  /** Round-trip latency added to every answer, ms. */
  readonly latencyMs?: number;
  /** Uniform jitter around `latencyMs`, ± ms. */
  readonly jitterMs?: number;
  /** Keep the frames of successful pushes (default true; a benchmark may keep only counts). */
  readonly recordBodies?: boolean;
  /** Listen port (default: any free one). */
  readonly port?: number;
}

/** Counts since start (or the last `reset`). */
export interface ManagementApiStats {
  readonly posts: number;
  readonly byStatus: Readonly<Record<string, number>>;
  /** 429s from the account bucket. */
  readonly throttled: number;
  /** 429s from slow connections ("buffer full"). */
  readonly bufferFull: number;
  readonly deletes: number;
  readonly gets: number;
}

/** The settings that can change while running (also over the control routes). */
export interface ManagementApiConfig {
  readonly rate?: number | null;
  readonly burst?: number | null;
  readonly latencyMs?: number;
  readonly jitterMs?: number;
  /** Per-connection behaviours to set (`normal` clears one). */
  readonly connections?: Readonly<Record<string, Behaviour>>;
}

export interface FakeManagementApi {
  /** For `createManagementApiPusher({ endpoint })`. */
  readonly endpoint: string;
  /** Every POST, in answer order, whatever its status. */
  readonly requests: readonly RecordedPush[];
  /** Every GET and DELETE, in answer order. */
  readonly calls: readonly RecordedCall[];
  /** The frames a connection received (2xx answers only), in arrival order. */
  delivered(connectionId: string): JsonObject[];
  /** How many POSTs a connection got, retries included. */
  attempts(connectionId: string): number;
  /** Answers every POST to this connection with `status` (or asks the responder). */
  respond(connectionId: string, status: number | Responder): void;
  /** Sets how a connection misbehaves (see {@link Behaviour}). */
  behave(connectionId: string, behaviour: Behaviour): void;
  /** Changes the throttle, latency or connection behaviours while running. */
  configure(config: ManagementApiConfig): void;
  stats(): ManagementApiStats;
  /** Forgets what was recorded and counted (behaviours and settings stay). */
  reset(): void;
  /**
   * Runs before a request to a connection is answered: the push stays in flight until it resolves,
   * so a test can inspect state at the moment of the send, or hold a push back.
   */
  onRequest(hook: ((push: Omit<RecordedPush, 'status' | 'at'>) => Promise<void> | void) | undefined): void;
  stop(): Promise<void>;
}

const ERROR_TYPES: Record<number, string> = {
  410: 'GoneException',
  429: 'LimitExceededException',
  403: 'ForbiddenException',
};

/** A token bucket refilled continuously; `take` spends one token if there is one. */
class Bucket {
  private tokens: number;
  private last = performance.now();
  constructor(
    private rate: number,
    private burst: number,
  ) {
    this.tokens = burst;
  }

  set(rate: number, burst: number): void {
    this.refill();
    this.rate = rate;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}

interface ConnectionState {
  behaviour: Behaviour;
  /** Remaining fault count for `fail` / `hang` with `times`. */
  left: number;
  /** Drain of a slow connection. */
  drain: Bucket | undefined;
}

const CONTROL = '/_standin/';

/**
 * Starts the stand-in in this process. Defaults: unlimited account rate, latency 10 ± 3 ms.
 *
 * @example
 * const api = await startManagementApi({ rate: 2000, burst: 500 });
 * api.behave('slow-1', { kind: 'slow' });
 * const pusher = createManagementApiPusher({ endpoint: api.endpoint, region: 'us-east-1', logger });
 */
export async function startManagementApi(options: ManagementApiOptions = {}): Promise<FakeManagementApi> {
  const recordBodies = options.recordBodies ?? true;
  let latencyMs = options.latencyMs ?? 10;
  let jitterMs = options.jitterMs ?? (options.latencyMs === undefined ? 3 : 0);
  let account: Bucket | undefined;
  const setAccount = (rate: number | null | undefined, burst: number | null | undefined) => {
    if (rate === undefined || rate === null || !Number.isFinite(rate)) {
      account = undefined;
      return;
    }
    const b = burst ?? rate;
    if (account) account.set(rate, b);
    else account = new Bucket(rate, b);
  };
  setAccount(options.rate, options.burst);

  let requests: RecordedPush[] = [];
  let calls: RecordedCall[] = [];
  const counts = new Map<string, number>();
  const responders = new Map<string, Responder>();
  const connections = new Map<string, ConnectionState>();
  const byStatus = new Map<number, number>();
  let throttled = 0;
  let bufferFull = 0;
  let hook: ((push: Omit<RecordedPush, 'status' | 'at'>) => Promise<void> | void) | undefined;
  const hanging = new Set<http.ServerResponse>();

  const behave = (connectionId: string, behaviour: Behaviour): void => {
    if (behaviour.kind === 'normal') {
      connections.delete(connectionId);
      return;
    }
    const drainRate = behaviour.kind === 'slow' ? (behaviour.acceptPerSec ?? 0) : 0;
    connections.set(connectionId, {
      behaviour,
      left:
        'times' in behaviour && behaviour.times !== undefined ? behaviour.times : Number.POSITIVE_INFINITY,
      drain: drainRate > 0 ? new Bucket(drainRate, 1) : undefined,
    });
  };

  const configure = (config: ManagementApiConfig): void => {
    if ('rate' in config || 'burst' in config) setAccount(config.rate, config.burst);
    if (config.latencyMs !== undefined) latencyMs = config.latencyMs;
    if (config.jitterMs !== undefined) jitterMs = config.jitterMs;
    for (const [id, b] of Object.entries(config.connections ?? {})) behave(id, b);
  };

  const stats = (): ManagementApiStats => ({
    posts: requests.length,
    byStatus: Object.fromEntries([...byStatus].map(([s, n]) => [String(s), n])),
    throttled,
    bufferFull,
    deletes: calls.filter((c) => c.method === 'DELETE').length,
    gets: calls.filter((c) => c.method === 'GET').length,
  });

  const reset = (): void => {
    requests = [];
    calls = [];
    counts.clear();
    byStatus.clear();
    throttled = 0;
    bufferFull = 0;
  };

  const delay = (): number =>
    Math.max(0, latencyMs + (jitterMs > 0 ? (Math.random() * 2 - 1) * jitterMs : 0));

  /** Sends the answer after the round-trip latency. */
  const answer = (res: http.ServerResponse, status: number, message: string, body?: string): void => {
    const send = () => {
      if (res.destroyed) return;
      if (status >= 200 && status < 300) {
        if (body === undefined) res.writeHead(status, { 'content-length': 0 }).end();
        else res.writeHead(status, { 'content-type': 'application/json' }).end(body);
        return;
      }
      const errorType =
        ERROR_TYPES[status] ?? (status >= 500 ? 'InternalServerErrorException' : 'BadRequestException');
      res
        .writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': errorType })
        .end(JSON.stringify({ message }));
    };
    const ms = delay();
    if (ms > 0) setTimeout(send, ms);
    else send();
  };

  const count = (status: number) => byStatus.set(status, (byStatus.get(status) ?? 0) + 1);

  /** Status of a POST to a connection, from the account bucket, its behaviour and the responder. */
  const postStatus = (connectionId: string, attempt: number, body: JsonObject): [number, string] => {
    const state = connections.get(connectionId);
    const b = state?.behaviour;
    if (b?.kind === 'gone') return [410, 'Gone'];
    if (account && !account.take()) {
      throttled++;
      return [429, 'Rate exceeded'];
    }
    if (state && b?.kind === 'slow') {
      if (!state.drain?.take()) {
        bufferFull++;
        return [429, 'Too Many Requests: the client buffer is full'];
      }
    } else if (state && (b?.kind === 'fail' || b?.kind === 'hang') && state.left > 0) {
      state.left--;
      if (b.kind === 'hang') return [0, 'hang'];
      return [b.status, `stand-in fault ${b.status}`];
    }
    const responder = responders.get(connectionId);
    return [responder ? responder(attempt, body) : 200, responder ? `stand-in ${attempt}` : ''];
  };

  const onControl = (req: http.IncomingMessage, res: http.ServerResponse, text: string): void => {
    const route = (req.url ?? '').slice(CONTROL.length);
    const json = (value: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    try {
      if (route === 'configure' && req.method === 'POST') {
        configure(JSON.parse(text) as ManagementApiConfig);
        json({ ok: true });
      } else if (route === 'stats') json(stats());
      else if (route === 'requests') json(requests);
      else if (route === 'calls') json(calls);
      else if (route === 'reset' && req.method === 'POST') {
        reset();
        json({ ok: true });
      } else res.writeHead(404).end();
    } catch (err) {
      res.writeHead(400).end(String(err));
    }
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (url.startsWith(CONTROL)) {
        onControl(req, res, text);
        return;
      }
      const match = /^\/@connections\/([^/?]+)$/.exec(url);
      if (!match) {
        res.writeHead(404).end();
        return;
      }
      const connectionId = decodeURIComponent(match[1]!);
      if (req.method === 'GET' || req.method === 'DELETE') {
        const method = req.method;
        let status: number;
        if (connections.get(connectionId)?.behaviour.kind === 'gone') status = 410;
        else if (account && !account.take()) {
          throttled++;
          status = 429;
        } else status = method === 'DELETE' ? 204 : 200;
        // A deleted connection is gone from then on.
        if (method === 'DELETE' && status === 204) behave(connectionId, { kind: 'gone' });
        calls.push({ method, connectionId, status, at: Date.now() });
        count(status);
        const info =
          method === 'GET' && status === 200
            ? JSON.stringify({
                ConnectedAt: new Date(0).toISOString(),
                Identity: { SourceIp: '127.0.0.1', UserAgent: 'stand-in' },
                LastActiveAt: new Date().toISOString(),
              })
            : undefined;
        answer(res, status, status === 410 ? 'Gone' : 'Rate exceeded', info);
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const attempt = (counts.get(connectionId) ?? 0) + 1;
      counts.set(connectionId, attempt);
      let body: JsonObject = {};
      // Without a reader of the body (a benchmark keeping counts only), it is not parsed at all.
      if (recordBodies || hook || responders.size > 0) {
        try {
          body = JSON.parse(text) as JsonObject;
        } catch {
          body = { __unparseable__: text };
        }
      }
      await hook?.({ connectionId, body, attempt });
      const [status, message] = postStatus(connectionId, attempt, body);
      const ok = status >= 200 && status < 300;
      requests.push({
        connectionId,
        body: ok && !recordBodies ? {} : body,
        attempt,
        status,
        at: Date.now(),
      });
      count(status);
      if (status === 0) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      answer(res, status, message);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get calls() {
      return calls;
    },
    delivered: (connectionId) =>
      requests
        .filter((r) => r.connectionId === connectionId && r.status >= 200 && r.status < 300)
        .map((r) => r.body),
    attempts: (connectionId) => counts.get(connectionId) ?? 0,
    respond(connectionId, status) {
      responders.set(connectionId, typeof status === 'number' ? () => status : status);
    },
    behave,
    configure,
    stats,
    reset,
    onRequest(h) {
      hook = h;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The stand-in as the older tests know it: answers at once (no latency), no account throttle.
 * Statuses per connection come from `respond` / `behave`.
 */
export function startFakeManagementApi(options: ManagementApiOptions = {}): Promise<FakeManagementApi> {
  return startManagementApi({ latencyMs: 0, jitterMs: 0, ...options });
}
