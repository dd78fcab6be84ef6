import type { SweeperDeps } from '../gateway/sweeper';
import { createConnectionProbe } from '../push/connections';
import { createLivenessStore } from '../store/liveness';
import type { Runtime } from './container';

/**
 * What the sweeper needs on top of a runtime's dependencies: the liveness store and a probe of the
 * Management API endpoint the connections belong to. `close()` releases the probe's sockets.
 */
export function createSweeperDeps(runtime: Runtime, endpoint: string): SweeperDeps & { close(): void } {
  const { deps, redis } = runtime;
  const probe = createConnectionProbe({
    endpoint,
    region: deps.config.aws.region,
    timeoutMs: deps.config.push.timeoutMs,
  });
  return {
    ...deps,
    liveness: createLivenessStore({ redis, keyPrefix: deps.config.redis.keyPrefix }),
    probe,
    close: () => probe.destroy(),
  };
}
