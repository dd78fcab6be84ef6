import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger';

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  url: string;
  cluster: boolean;
  logger: Logger;
  /** Fail commands instead of queueing them forever while Redis is down. */
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
  maxRetriesPerRequest = 2,
}: RedisClientOptions): RedisClient {
  const parsed = new URL(url);
  const common: RedisOptions = {
    enableAutoPipelining: true,
    maxRetriesPerRequest,
    connectTimeout: 5000,
    // Reconnect quickly after a Redis restart; commands issued meanwhile fail fast (above).
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
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
