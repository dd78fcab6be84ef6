/**
 * Lambda events as AWS delivers them, for invoking the functions of handlers/ directly: API Gateway
 * WebSocket `$connect` / `$default` / `$disconnect` proxy events, the HTTP API (payload 2.0) event
 * of `/health` and `/ready`, an MSK event for the `events` function, the EventBridge schedule of
 * the sweeper, and a Lambda `Context`.
 *
 * The shapes follow what API Gateway sends (docs.aws.amazon.com, "Set up WebSocket API
 * integrations", and the Lambda developer guide for MSK): `requestContext` with `routeKey`,
 * `eventType`, `connectionId`, `domainName`, `stage`, `identity.sourceIp`; headers with the client's
 * spelling (`Origin`, `Cookie`, `Authorization`) and their `multiValueHeaders` twin on `$connect`
 * and `$disconnect`; `queryStringParameters` only when the URL has a query; no headers at all on
 * `$default`. Identifiers are deterministic (a counter), so a failing test reads the same twice.
 *
 * @example
 * const socket = webSocket();
 * await connect(socket.connect({ query: { token } }), lambdaContext('connect'));
 * const reply = await message(socket.message({ type: 'system.heartbeat' }), lambdaContext('default'));
 * await disconnect(socket.disconnect(), lambdaContext('disconnect'));
 */
import type {
  APIGatewayEventIdentity,
  APIGatewayEventWebsocketRequestContextV2,
  APIGatewayProxyEventHeaders,
  APIGatewayProxyEventMultiValueHeaders,
  APIGatewayProxyEventMultiValueQueryStringParameters,
  APIGatewayProxyEventQueryStringParameters,
  APIGatewayProxyEventV2,
  APIGatewayProxyWebsocketEventV2WithRequestContext,
  Context,
  MSKEvent,
  MSKRecord,
  ScheduledEvent,
} from 'aws-lambda';

/** Account, region and API every event belongs to. */
export const ACCOUNT_ID = '123456789012';
export const REGION = 'eu-west-1';
export const API_ID = 'a1b2c3d4e5';
export const DOMAIN_NAME = `${API_ID}.execute-api.${REGION}.amazonaws.com`;
export const STAGE = 'prod';
/** The Management API endpoint the gateway derives from the request context (lib/runtime/endpoint.ts). */
export const MANAGEMENT_ENDPOINT = `https://${DOMAIN_NAME}/${STAGE}`;

/**
 * The request context of a WebSocket proxy event. `messageId` is set on `$default` only; the
 * `@types/aws-lambda` type lacks `identity` and the `$disconnect` status fields, which AWS sends.
 */
export interface WebSocketRequestContext extends Omit<APIGatewayEventWebsocketRequestContextV2, 'messageId'> {
  messageId?: string;
  identity: Pick<APIGatewayEventIdentity, 'sourceIp' | 'userAgent'>;
  /** `$disconnect`: the close code (1000 normal, 1001 going away, 1006 abnormal, …). */
  disconnectStatusCode?: number;
  disconnectReason?: string;
}

/** A WebSocket proxy event; `$connect` and `$disconnect` carry headers, `$default` does not. */
export interface WebSocketProxyEvent
  extends APIGatewayProxyWebsocketEventV2WithRequestContext<WebSocketRequestContext> {
  headers?: APIGatewayProxyEventHeaders;
  multiValueHeaders?: APIGatewayProxyEventMultiValueHeaders;
}

let sequence = 0;
const next = () => ++sequence;

/** An id in API Gateway's form: 11 bytes base64, 16 characters ending in `=` (e.g. `L0SM9cOFvHcCIhw=`). */
function awsId(kind: number, n: number): string {
  const bytes = Buffer.alloc(11);
  bytes.writeUInt8(kind, 0);
  bytes.writeUInt32BE(n, 7);
  return bytes.toString('base64');
}

/** `dd/Mon/yyyy:HH:mm:ss +0000`, API Gateway's `requestTime`. */
function requestTime(at: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (v: number) => String(v).padStart(2, '0');
  return `${p(at.getUTCDate())}/${months[at.getUTCMonth()]}/${at.getUTCFullYear()}:${p(at.getUTCHours())}:${p(at.getUTCMinutes())}:${p(at.getUTCSeconds())} +0000`;
}

/** Each header under its name as given, and the same value as a one-element list. */
function withMultiValue(headers: Record<string, string>) {
  const multi: APIGatewayProxyEventMultiValueHeaders = {};
  for (const [name, value] of Object.entries(headers)) multi[name] = [value];
  return { headers: { ...headers }, multiValueHeaders: multi };
}

export interface WebSocketOptions {
  /** Default: a fresh id in API Gateway's form. */
  readonly connectionId?: string;
  readonly domainName?: string;
  readonly stage?: string;
  readonly sourceIp?: string;
  readonly userAgent?: string;
}

export interface ConnectRequestOptions {
  /** The upgrade URL's query (`?token=…`); absent from the event when empty, as AWS sends it. */
  readonly query?: Record<string, string>;
  /**
   * Headers beyond the upgrade's own, with the client's spelling: `Origin`, `Cookie`,
   * `Authorization`. A header given as `undefined` is left out (e.g. `{ Origin: undefined }` for a
   * non-browser client).
   */
  readonly headers?: Record<string, string | undefined>;
}

export interface DisconnectOptions {
  /** Default 1001 (going away: a tab closed). */
  readonly statusCode?: number;
  readonly reason?: string;
}

/** One client's WebSocket connection: the events API Gateway sends for it share its request context. */
export interface WebSocketClient {
  readonly connectionId: string;
  /** The Management API endpoint for this connection (`https://{domainName}/{stage}`). */
  readonly endpoint: string;
  /** The `$connect` event of the upgrade. */
  connect(request?: ConnectRequestOptions): WebSocketProxyEvent;
  /** A `$default` event: `frame` is sent as given when a string, else as its JSON. */
  message(frame: string | object): WebSocketProxyEvent;
  /** A `$default` event of a binary frame (base64, as an integration converting to binary gets it). */
  binary(bytes: Uint8Array): WebSocketProxyEvent;
  /** The `$disconnect` event. */
  disconnect(options?: DisconnectOptions): WebSocketProxyEvent;
}

/**
 * A client connection and the events API Gateway sends for it.
 *
 * @example
 * const socket = webSocket({ sourceIp: '198.51.100.4' });
 * socket.connect({ headers: { Origin: 'https://app.example.com', Authorization: `Bearer ${token}` } });
 */
export function webSocket({
  connectionId = awsId(1, next()),
  domainName = DOMAIN_NAME,
  stage = STAGE,
  sourceIp = '203.0.113.7',
  userAgent = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
}: WebSocketOptions = {}): WebSocketClient {
  const connectedAt = Date.now();

  const context = (
    routeKey: string,
    eventType: WebSocketRequestContext['eventType'],
    extra: Partial<WebSocketRequestContext> = {},
  ): WebSocketRequestContext => {
    const now = new Date();
    const n = next();
    return {
      routeKey,
      eventType,
      extendedRequestId: awsId(2, n),
      requestTime: requestTime(now),
      messageDirection: 'IN',
      stage,
      connectedAt,
      requestTimeEpoch: now.getTime(),
      identity: eventType === 'MESSAGE' ? { sourceIp, userAgent: null } : { sourceIp, userAgent },
      requestId: awsId(2, n),
      domainName,
      connectionId,
      apiId: domainName.split('.')[0] ?? API_ID,
      ...extra,
    };
  };

  return {
    connectionId,
    endpoint: `https://${domainName}/${stage}`,
    connect({ query, headers = {} } = {}) {
      const given = Object.fromEntries(
        Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined),
      );
      const event: WebSocketProxyEvent = {
        ...withMultiValue({
          Host: domainName,
          'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
          'Sec-WebSocket-Key': Buffer.from(connectionId).toString('base64'),
          'Sec-WebSocket-Version': '13',
          'User-Agent': userAgent,
          'X-Amzn-Trace-Id': `Root=1-${Math.floor(connectedAt / 1000).toString(16)}-${connectionId.replace(/[^A-Za-z0-9]/g, '0')}`,
          'X-Forwarded-For': sourceIp,
          'X-Forwarded-Port': '443',
          'X-Forwarded-Proto': 'https',
          ...given,
        }),
        requestContext: context('$connect', 'CONNECT'),
        isBase64Encoded: false,
      };
      if (query && Object.keys(query).length > 0) {
        const single: APIGatewayProxyEventQueryStringParameters = { ...query };
        const multi: APIGatewayProxyEventMultiValueQueryStringParameters = {};
        for (const [name, value] of Object.entries(query)) multi[name] = [value];
        event.queryStringParameters = single;
        event.multiValueQueryStringParameters = multi;
      }
      return event;
    },
    message(frame) {
      const n = next();
      return {
        requestContext: context('$default', 'MESSAGE', { messageId: awsId(3, n) }),
        body: typeof frame === 'string' ? frame : JSON.stringify(frame),
        isBase64Encoded: false,
      };
    },
    binary(bytes) {
      const n = next();
      return {
        requestContext: context('$default', 'MESSAGE', { messageId: awsId(3, n) }),
        body: Buffer.from(bytes).toString('base64'),
        isBase64Encoded: true,
      };
    },
    disconnect({ statusCode = 1001, reason = 'Client-side close frame status code' } = {}) {
      return {
        ...withMultiValue({
          Host: domainName,
          'x-api-key': '',
          'X-Forwarded-For': '',
          'x-restapi': '',
        }),
        requestContext: context('$disconnect', 'DISCONNECT', {
          disconnectStatusCode: statusCode,
          disconnectReason: reason,
        }),
        isBase64Encoded: false,
      };
    },
  };
}

/** `GET {path}` on the HTTP API (payload format 2.0), as `/health` and `/ready` receive it. */
export function httpApiEvent(path: string, method = 'GET'): APIGatewayProxyEventV2 {
  const now = new Date();
  const n = next();
  return {
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: {
      accept: '*/*',
      host: `h1t2t3p4a5.execute-api.${REGION}.amazonaws.com`,
      'user-agent': 'ELB-HealthChecker/2.0',
      'x-amzn-trace-id': `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${String(n).padStart(24, '0')}`,
      'x-forwarded-for': '198.51.100.20',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
    },
    requestContext: {
      accountId: ACCOUNT_ID,
      apiId: 'h1t2t3p4a5',
      domainName: `h1t2t3p4a5.execute-api.${REGION}.amazonaws.com`,
      domainPrefix: 'h1t2t3p4a5',
      http: {
        method,
        path,
        protocol: 'HTTP/1.1',
        sourceIp: '198.51.100.20',
        userAgent: 'ELB-HealthChecker/2.0',
      },
      requestId: awsId(4, n),
      routeKey: `${method} ${path}`,
      stage: '$default',
      time: requestTime(now),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
}

/**
 * One record of an MSK event as the Lambda event source delivers it: `value` base64 (null for a
 * tombstone), `key` base64 and absent when the record has none — which `@types/aws-lambda`'s
 * `MSKRecord` does not allow for.
 */
export type MskRecord = Omit<MSKRecord, 'key' | 'value'> & { key?: string; value: string | null };
export type MskEvent = Omit<MSKEvent, 'records'> & { records: Record<string, MskRecord[]> };

export interface KafkaRecordInput {
  readonly topic: string;
  /** Default 0. */
  readonly partition?: number;
  readonly key?: string;
  /** An envelope (serialised as JSON), raw text, or null for a tombstone. */
  readonly value: object | string | null;
}

const offsets = new Map<string, number>();

/**
 * An MSK event: the records grouped under `"{topic}-{partition}"` in the order given, offsets
 * increasing per partition across calls (as a real topic's do).
 *
 * @example
 * mskEvent([{ topic: 'games.events', partition: 1, value: envelope }, { topic: 'games.events', value: 'not json' }]);
 */
export function mskEvent(records: readonly KafkaRecordInput[]): MskEvent {
  const grouped: Record<string, MskRecord[]> = {};
  for (const { topic, partition = 0, key, value } of records) {
    const where = `${topic}-${partition}`;
    const offset = offsets.get(where) ?? 0;
    offsets.set(where, offset + 1);
    const raw = value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);
    const record: MskRecord = {
      topic,
      partition,
      offset,
      timestamp: Date.now(),
      timestampType: 'CREATE_TIME',
      value: raw === null ? null : Buffer.from(raw).toString('base64'),
      headers: [],
    };
    if (key !== undefined) record.key = Buffer.from(key).toString('base64');
    grouped[where] ??= [];
    grouped[where].push(record);
  }
  return {
    eventSource: 'aws:kafka',
    eventSourceArn: `arn:aws:kafka:${REGION}:${ACCOUNT_ID}:cluster/platform/7f6b2c3e-1111-2222-3333-444455556666-2`,
    bootstrapServers: `b-1.platform.abc123.c2.kafka.${REGION}.amazonaws.com:9098,b-2.platform.abc123.c2.kafka.${REGION}.amazonaws.com:9098`,
    records: grouped,
  };
}

/** The EventBridge schedule event that starts the sweeper (`rate(1 minute)`). */
export function scheduledEvent(): ScheduledEvent {
  const n = next();
  return {
    version: '0',
    id: `cdc73f9d-aea9-11e3-9d5a-${String(n).padStart(12, '0')}`,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: ACCOUNT_ID,
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: REGION,
    resources: [`arn:aws:events:${REGION}:${ACCOUNT_ID}:rule/ws-gateway-prod-sweeper-rule-1`],
    detail: {},
  };
}

export interface ContextOptions {
  /** Time until the function's timeout, counted down from now. Default 29 s (an API Gateway integration). */
  readonly remainingMs?: number;
  readonly memoryMb?: number;
}

/**
 * The Lambda `Context` of one invocation of `ws-gateway-prod-{fn}`: a fresh request id, and
 * `getRemainingTimeInMillis` counting down to the deadline as on Lambda.
 */
export function lambdaContext(
  fn: string,
  { remainingMs = 29_000, memoryMb = 1024 }: ContextOptions = {},
): Context {
  const deadline = Date.now() + remainingMs;
  const functionName = `ws-gateway-${STAGE}-${fn}`;
  const n = next();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: String(memoryMb),
    awsRequestId: `c6af9ac6-7b61-11e6-9a41-${String(n).padStart(12, '0')}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `2026/12/02/[$LATEST]${String(n).padStart(32, '0')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
