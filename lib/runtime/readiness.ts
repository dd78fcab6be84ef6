import type { GatewayDeps } from '../gateway/deps';

export interface ReadinessReport {
  readonly status: 'ready' | 'unavailable';
  readonly redis: 'ok' | 'down';
  readonly kafka: 'ok' | 'down';
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Checks the two dependencies the handlers cannot work without. */
export async function checkReadiness(
  deps: Pick<GatewayDeps, 'store' | 'publisher' | 'logger'>,
  timeoutMs = 2000,
): Promise<ReadinessReport> {
  const [redis, kafka] = await Promise.allSettled([
    within(deps.store.ping(), timeoutMs),
    within(deps.publisher.ping(), timeoutMs),
  ]);
  if (redis.status === 'rejected') deps.logger.warn('readiness: redis down', { err: redis.reason });
  if (kafka.status === 'rejected') deps.logger.warn('readiness: kafka down', { err: kafka.reason });
  const ok = redis.status === 'fulfilled' && kafka.status === 'fulfilled';
  return {
    status: ok ? 'ready' : 'unavailable',
    redis: redis.status === 'fulfilled' ? 'ok' : 'down',
    kafka: kafka.status === 'fulfilled' ? 'ok' : 'down',
  };
}
