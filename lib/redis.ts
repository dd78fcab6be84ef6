import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger';

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  url: string;
  cluster: boolean;
  logger: Logger;
  /**
   * Deadline of every command (ioredis `commandTimeout`), also while it waits in the offline queue
   * for a connection: a command rejects after this long whatever Redis does (docs/decisions.md D9).
   */
  commandTimeoutMs?: number;
  /** Reconnect attempts a queued command waits for before it fails (ioredis `maxRetriesPerRequest`). */
  maxRetriesPerRequest?: number;
}

/**
 * Creates the one Redis client of a container / process.
 *
 * Auto-pipelining batches every command issued in the same tick into one round trip per node,
 * which is how the store's `Promise.all([...])` calls become pipelines on a single node AND on
 * Redis Cluster (where an explicit MULTI/pipeline across slots is not allowed).
 */
export function createRedisClient({
  url,
  cluster,
  logger,
  commandTimeoutMs = 1000,
  maxRetriesPerRequest = 1,
}: RedisClientOptions): RedisClient {
  const parsed = new URL(url);
  const common: RedisOptions = {
    enableAutoPipelining: true,
    // Every command has a deadline, whether Redis is slow, frozen (no reply on an open socket) or
    // gone (the command waits in the offline queue): see docs/architecture.md, "When Redis fails".
    // The offline queue stays on so a cold container's first commands wait for the connection.
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest,
    // A connect attempt to a black-holed address gives up quickly and is retried.
    connectTimeout: Math.max(1000, 2 * commandTimeoutMs),
    // A command whose caller already got its error must not run later, after a reconnect.
    autoResendUnfulfilledCommands: false,
    // Reconnect quickly after a Redis restart; commands issued meanwhile fail by their deadline.
    retryStrategy: (times) => Math.min(50 * 2 ** times, 1000),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  let client: RedisClient;
  if (cluster) {
    const nodes = url
      .replace(/^rediss?:\/\//, '')
      .split(',')
      .map((hostPort) => {
        const at = hostPort.lastIndexOf('@');
        const [host, port] = hostPort
          .slice(at + 1)
          .split('/')[0]!
          .split(':');
        return { host: host!, port: Number(port ?? 6379) };
      });
    client = new Cluster(nodes, {
      enableAutoPipelining: true,
      redisOptions: {
        ...common,
        username: parsed.username || undefined,
        password: decodeURIComponent(parsed.password) || undefined,
      },
      clusterRetryStrategy: (times) => Math.min(100 * 2 ** times, 2000),
      // ElastiCache cluster endpoints resolve through DNS; keep their hostnames for TLS.
      dnsLookup: (address, cb) => cb(null, address),
    });
  } else {
    client = new Redis(url, common);
  }
  client.on('error', (err: Error) => logger.warn('redis error', { err }));
  return client;
}

/** ioredis's own failures (deadline, connection, cluster state) as opposed to a bug in our code. */
const REDIS_FAILURE =
  /Command timed out|Connection is closed|Stream isn't writeable|Cluster isn't ready|Failed to refresh slots cache|CLUSTERDOWN|LOADING|TRYAGAIN|OOM|MASTERDOWN|READONLY|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE/;

/**
 * True for an error that means "Redis failed or missed its deadline" (the client then gets the
 * safe MESSAGE_ERROR "Service temporarily unavailable", docs/protocol.md), not a bug.
 */
export function isRedisFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ReplyError') return true;
  return REDIS_FAILURE.test(err.message);
}
