import { authorizeUpgrade, type ConnectRequest } from '../auth/upgrade';
import type { Identity } from '../protocol/envelope';
import type { GatewayDeps } from './deps';

export interface ConnectInput {
  readonly connectionId: string;
  readonly request: ConnectRequest;
  /** Management API endpoint for this connection's API / stage. */
  readonly endpoint: string;
}

export interface ConnectResult {
  readonly statusCode: 200 | 401 | 403 | 500;
  readonly identity: Identity | null;
}

/**
 * `$connect`: refuses foreign browser origins (403), binds the connection to a verified identity
 * when a token is presented (docs/decisions.md D2, D8), records it in Redis (anonymous connections
 * too: broadcast reaches them), and triggers the welcome. An invalid `?token=` or Bearer token
 * rejects the upgrade with 401; an invalid session cookie is ignored (logged and counted).
 */
export async function handleConnect(deps: GatewayDeps, input: ConnectInput): Promise<ConnectResult> {
  const log = deps.logger.child({ connectionId: input.connectionId });
  const { auth } = deps.config;
  const decision = authorizeUpgrade(
    { verifier: deps.verifier, origins: auth.origins, cookieName: auth.cookieName },
    input.request,
  );
  if (decision.status === 403) {
    deps.metrics.counter('ws_gateway_connect_refused_total', 'Upgrades refused, by reason').inc({
      reason: 'origin',
    });
    log.info('connect refused: origin not allowed', { origin: decision.origin.slice(0, 200) });
    return { statusCode: 403, identity: null };
  }
  if (decision.status === 401) {
    deps.metrics.counter('ws_gateway_connect_refused_total', 'Upgrades refused, by reason').inc({
      reason: `invalid_${decision.source}_token`,
    });
    log.info('connect rejected: invalid token', { source: decision.source, reason: decision.reason });
    return { statusCode: 401, identity: null };
  }
  if (decision.cookieIgnored) {
    deps.metrics
      .counter('ws_gateway_connect_cookie_ignored_total', 'Session cookies that did not bind, by reason')
      .inc({ reason: decision.cookieIgnored.reason });
    log.info('session cookie ignored', {
      reason: decision.cookieIgnored.reason,
      detail: decision.cookieIgnored.detail,
    });
  }
  const bound = decision.bound;
  await deps.store.registerConnection(input.connectionId, { connectedAt: deps.now(), bound });
  try {
    await deps.welcome.trigger({ connectionId: input.connectionId, endpoint: input.endpoint });
  } catch (err) {
    // Not fatal: the first message the client sends makes $default deliver the welcome.
    log.warn('welcome trigger failed', { err });
  }
  log.info('connected', { boundUserId: bound?.userId, boundBy: bound ? decision.source : undefined });
  return { statusCode: 200, identity: bound };
}
