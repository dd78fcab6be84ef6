import { normalizeOrigin, type OriginPolicy } from './auth/origins';

/**
 * Configuration: every environment variable the gateway reads, parsed and validated once.
 *
 * `loadConfig(env)` is pure (tests call it with a plain object); `getConfig()` parses
 * `process.env` once per container / process and freezes the result. A bad value throws a
 * `ConfigError` naming the variable; processes print that one line and exit non-zero.
 */

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type StartPosition = 'latest' | 'earliest';

export interface Config {
  readonly stage: string;
  readonly ws: {
    readonly host: string;
    readonly port: number;
    readonly healthPort: number;
    readonly maxMessageSize: number;
    readonly heartbeatIntervalSecs: number;
    readonly heartbeatTimeoutSecs: number;
    /**
     * A heartbeat refreshes the session keys at most once per this many seconds per connection
     * (later ones within it are acked with the gate alone); 0: every heartbeat.
     */
    readonly heartbeatRefreshSecs: number;
    readonly rateLimitPerSec: number;
    readonly rateLimitBurst: number;
    /** TTL of the per-connection routing keys; refreshed by heartbeats. */
    readonly connectionTtlSecs: number;
    /** Lobby subscriptions one connection may hold (docs/decisions.md D9). */
    readonly maxLobbiesPerConnection: number;
    /** Authenticated connections one user may hold (docs/decisions.md D9). */
    readonly maxConnectionsPerUser: number;
  };
  readonly redis: {
    readonly url: string;
    readonly cluster: boolean;
    /** Prefix for every key the gateway writes (empty in production: the key names are a contract). */
    readonly keyPrefix: string;
    /** Deadline of every Redis command (docs/decisions.md D9). */
    readonly commandTimeoutMs: number;
  };
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly consumerGroup: string;
    readonly startPosition: StartPosition;
    readonly maxWaitMs: number;
    /** Deadline of one publish, kafkajs's own retries included (docs/decisions.md D9). */
    readonly publishTimeoutMs: number;
    readonly ssl: boolean;
    /** SASL with a user and password, or `aws-msk-iam` (OAUTHBEARER tokens signed with the AWS credentials). */
    readonly sasl?:
      | {
          readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
          readonly username: string;
          readonly password: string;
        }
      | { readonly mechanism: 'aws-msk-iam' };
  };
  readonly auth: {
    readonly publicKeyPath: string;
    readonly secret?: string;
    readonly allowUnverified: boolean;
    readonly cookieName: string;
    /** `JWT_ISSUER`: required `iss` of every token, when set. */
    readonly issuer?: string;
    /** `JWT_AUDIENCE`: required `aud` of every token, when set. */
    readonly audience?: string;
    /** `WS_ALLOWED_ORIGINS`, or what an unset list means in this stage (docs/decisions.md D8). */
    readonly origins: OriginPolicy;
  };
  readonly aws: {
    readonly region: string;
    /** Management API endpoint; empty on AWS, where it is derived from the request context. */
    readonly managementEndpoint?: string;
    /** Lambda API endpoint for the async welcome invocation; empty on AWS. */
    readonly lambdaEndpoint?: string;
    readonly welcomeFunctionName: string;
  };
  readonly push: {
    readonly concurrency: number;
    readonly maxRetries: number;
    readonly timeoutMs: number;
    /** Fleet-wide Management API requests per second of the event pipeline; 0: no budget. */
    readonly budgetRps: number;
    /** Size of the fleet-wide bucket (requests above the rate it absorbs). */
    readonly budgetBurst: number;
    /** A connection answering 429 this long in a row is closed. */
    readonly slowClientSecs: number;
  };
  readonly consumer: {
    readonly metricsPort: number;
  };
  readonly disconnectNotifyRooms: boolean;
  /** Connections that come and go (docs/decisions.md D10). */
  readonly lifecycle: {
    /** How long `user_offline` / `player_disconnected` wait for the user to come back; 0 publishes at once. */
    readonly graceSecs: number;
    /** A connection with no client frame for this long is swept (API Gateway's idle limit). */
    readonly staleAfterSecs: number;
    /** A connection open longer than this is swept (API Gateway's 2 h cap). */
    readonly maxAgeSecs: number;
    /** How often a sweeper looks for stale connections and orphaned presence. */
    readonly sweepIntervalSecs: number;
    /** How long a user's rooms are kept for a reconnection (the seed's `reconnect:` records). */
    readonly reconnectTtlSecs: number;
  };
  readonly logLevel: LogLevel;
}

type Env = Readonly<Record<string, string | undefined>>;

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === '' ? fallback : v;
}

function optional(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got ${n}`);
  return n;
}

function num(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.trim());
  if (!Number.isFinite(n) || n < min) throw new ConfigError(name, `expected a number ≥ ${min}, got "${raw}"`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.trim().toLowerCase() as T;
  if (!allowed.includes(v))
    throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got "${raw}"`);
  return v;
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a ${protocols.join(' or ')} URL`);
  }
  return raw.replace(/\/+$/, '');
}

/** The Rust gateway used RUST_LOG (`info,ws_gateway=debug`); LOG_LEVEL wins, RUST_LOG's first level is honoured. */
function logLevel(env: Env): LogLevel {
  const levels = ['debug', 'info', 'warn', 'error', 'silent'] as const;
  if (optional(env, 'LOG_LEVEL') !== undefined) return oneOf(env, 'LOG_LEVEL', 'info', levels);
  const rust = optional(env, 'RUST_LOG')?.split(',')[0]?.trim().toLowerCase();
  if (rust === 'trace') return 'debug';
  return (levels as readonly string[]).includes(rust ?? '') ? (rust as LogLevel) : 'info';
}

function redisUrl(env: Env): string {
  const explicit = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  if (explicit) return explicit;
  // The Rust gateway did not URL-encode the password; we do, so passwords with '@' or '/' work.
  const user = str(env, 'REDIS_USER', 'app');
  const password = str(env, 'REDIS_PASSWORD', 'redis_secret_password');
  const host = str(env, 'REDIS_HOST', 'redis');
  const port = int(env, 'REDIS_PORT', 6379, 1, 65535);
  const db = int(env, 'REDIS_DB', 0, 0, 15);
  const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}@` : '';
  return `redis://${auth}${host}:${port}/${db}`;
}

function brokers(env: Env): string[] {
  const explicit = optional(env, 'KAFKA_BROKERS');
  if (explicit) {
    const list = explicit
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean);
    for (const b of list) {
      if (!/^[^\s:]+:\d{1,5}$/.test(b))
        throw new ConfigError('KAFKA_BROKERS', `expected host:port[,host:port…], got "${b}"`);
    }
    if (list.length === 0) throw new ConfigError('KAFKA_BROKERS', 'no broker given');
    return list;
  }
  return [`${str(env, 'KAFKA_HOST', 'kafka')}:${int(env, 'KAFKA_PORT', 9092, 1, 65535)}`];
}

function sasl(env: Env): Config['kafka']['sasl'] {
  const mechanism = optional(env, 'KAFKA_SASL_MECHANISM');
  if (mechanism === undefined) return undefined;
  const m = oneOf(env, 'KAFKA_SASL_MECHANISM', 'plain', [
    'plain',
    'scram-sha-256',
    'scram-sha-512',
    'aws-msk-iam',
  ] as const);
  // IAM needs no password: the token is signed with the process's AWS credentials.
  if (m === 'aws-msk-iam') return { mechanism: m };
  const username = optional(env, 'KAFKA_SASL_USERNAME');
  const password = optional(env, 'KAFKA_SASL_PASSWORD');
  if (!username) throw new ConfigError('KAFKA_SASL_USERNAME', 'required when KAFKA_SASL_MECHANISM is set');
  if (!password) throw new ConfigError('KAFKA_SASL_PASSWORD', 'required when KAFKA_SASL_MECHANISM is set');
  return { mechanism: m, username, password };
}

/**
 * `WS_ALLOWED_ORIGINS` (comma-separated origins). Unset: any origin with cookie binding under stage
 * `local` (`npm start`), and no cookie binding at all in deployed stages (docs/decisions.md D8).
 */
function origins(env: Env, stage: string): OriginPolicy {
  const raw = optional(env, 'WS_ALLOWED_ORIGINS');
  if (raw === undefined) return stage === 'local' ? { kind: 'any' } : { kind: 'unset' };
  const list = new Set<string>();
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const origin = normalizeOrigin(entry);
    if (origin === undefined)
      throw new ConfigError(
        'WS_ALLOWED_ORIGINS',
        `expected origins like https://example.com, got "${entry.trim()}"`,
      );
    list.add(origin);
  }
  if (list.size === 0) throw new ConfigError('WS_ALLOWED_ORIGINS', 'no origin given');
  return { kind: 'list', origins: list };
}

export function loadConfig(env: Env): Config {
  const stage = str(env, 'STAGE', 'dev');
  const config: Config = {
    stage,
    ws: {
      host: str(env, 'WS_HOST', '0.0.0.0'),
      port: int(env, 'WS_PORT', 9998, 1, 65535),
      healthPort: int(env, 'WS_HEALTH_PORT', 9997, 1, 65535),
      maxMessageSize: int(env, 'WS_MAX_MESSAGE_SIZE', 65536, 1, 10 * 1024 * 1024),
      heartbeatIntervalSecs: int(env, 'WS_HEARTBEAT_INTERVAL_SECS', 15, 1, 86400),
      heartbeatTimeoutSecs: int(env, 'WS_HEARTBEAT_TIMEOUT_SECS', 45, 1, 86400),
      // Below the presence key's 120 s TTL with room to spare: a refresh skipped is never the one
      // that would have kept the user online.
      heartbeatRefreshSecs: int(env, 'WS_HEARTBEAT_REFRESH_SECS', 10, 0, 60),
      rateLimitPerSec: num(env, 'WS_RATE_LIMIT_PER_SEC', 50, 0),
      rateLimitBurst: int(env, 'WS_RATE_LIMIT_BURST', 100, 1, 1_000_000),
      connectionTtlSecs: int(env, 'WS_CONNECTION_TTL_SECS', 86400, 60, 30 * 86400),
      maxLobbiesPerConnection: int(env, 'WS_MAX_LOBBIES_PER_CONNECTION', 8, 1, 10_000),
      maxConnectionsPerUser: int(env, 'WS_MAX_CONNECTIONS_PER_USER', 16, 1, 100_000),
    },
    redis: {
      url: redisUrl(env),
      cluster: bool(env, 'REDIS_CLUSTER', false),
      keyPrefix: str(env, 'REDIS_KEY_PREFIX', ''),
      commandTimeoutMs: int(env, 'REDIS_COMMAND_TIMEOUT_MS', 1000, 50, 60_000),
    },
    kafka: {
      brokers: brokers(env),
      clientId: str(env, 'KAFKA_CLIENT_ID', 'ws_gateway'),
      consumerGroup: str(env, 'KAFKA_CONSUMER_GROUP', 'ws_gateway'),
      startPosition: oneOf(env, 'KAFKA_START_POSITION', 'latest', ['latest', 'earliest'] as const),
      maxWaitMs: int(env, 'KAFKA_MAX_WAIT_MS', 100, 1, 30000),
      publishTimeoutMs: int(env, 'KAFKA_PUBLISH_TIMEOUT_MS', 3000, 100, 60_000),
      ssl: bool(env, 'KAFKA_SSL', false),
      sasl: sasl(env),
    },
    auth: {
      publicKeyPath: str(env, 'JWT_PUBLIC_KEY_PATH', '/keys/jwt_public.pem'),
      secret: optional(env, 'JWT_SECRET'),
      allowUnverified: bool(env, 'AUTH_ALLOW_UNVERIFIED', false),
      cookieName: str(env, 'AUTH_COOKIE_NAME', 'auth_token'),
      issuer: optional(env, 'JWT_ISSUER'),
      audience: optional(env, 'JWT_AUDIENCE'),
      origins: origins(env, stage),
    },
    aws: {
      region: str(env, 'AWS_REGION', 'us-east-1'),
      managementEndpoint: url(env, 'WS_MANAGEMENT_ENDPOINT', ['http:', 'https:']),
      lambdaEndpoint: url(env, 'LAMBDA_ENDPOINT', ['http:', 'https:']),
      welcomeFunctionName: str(env, 'WELCOME_FUNCTION_NAME', `ws-gateway-${stage}-welcome`),
    },
    push: {
      concurrency: int(env, 'PUSH_CONCURRENCY', 64, 1, 4096),
      maxRetries: int(env, 'PUSH_MAX_RETRIES', 3, 0, 20),
      timeoutMs: int(env, 'PUSH_TIMEOUT_MS', 5000, 100, 60000),
      budgetRps: int(env, 'PUSH_BUDGET_RPS', 5000, 0, 1_000_000),
      budgetBurst: int(env, 'PUSH_BUDGET_BURST', 2500, 1, 1_000_000),
      slowClientSecs: int(env, 'PUSH_SLOW_CLIENT_SECS', 30, 1, 3600),
    },
    consumer: {
      metricsPort: int(env, 'CONSUMER_METRICS_PORT', 9996, 0, 65535),
    },
    disconnectNotifyRooms: bool(env, 'DISCONNECT_NOTIFY_ROOMS', true),
    lifecycle: {
      graceSecs: int(env, 'DISCONNECT_GRACE_SECS', 10, 0, 3600),
      staleAfterSecs: int(env, 'WS_STALE_AFTER_SECS', 600, 1, 86400),
      maxAgeSecs: int(env, 'WS_MAX_CONNECTION_AGE_SECS', 7200, 1, 30 * 86400),
      sweepIntervalSecs: int(env, 'WS_SWEEP_INTERVAL_SECS', 60, 1, 3600),
      reconnectTtlSecs: int(env, 'WS_RECONNECT_TTL_SECS', 300, 1, 86400),
    },
    logLevel: logLevel(env),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

let cached: Config | undefined;

/** The process-wide configuration, parsed from `process.env` on first use. */
export function getConfig(): Config {
  cached ??= loadConfig(process.env);
  return cached;
}

/**
 * The Management API endpoint for processes without a WebSocket request context (the consumer,
 * the events function), where it must be configured.
 */
export function requireManagementEndpoint(config: Config): string {
  const endpoint = config.aws.managementEndpoint;
  if (!endpoint) {
    throw new ConfigError(
      'WS_MANAGEMENT_ENDPOINT',
      'required here (e.g. https://{api-id}.execute-api.{region}.amazonaws.com/{stage})',
    );
  }
  return endpoint;
}

/** For long-running processes: run `read`, or print one line naming the bad variable and exit 1. */
export function orExit<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ws-gateway: invalid configuration: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** The process configuration, or one line naming the bad variable and exit 1. */
export const getConfigOrExit = (): Config => orExit(getConfig);
