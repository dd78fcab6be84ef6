import { type ConnectRequest, TokenError, tokenFromConnect } from '../auth/verifier';
import type { Identity } from '../protocol/envelope';
import type { GatewayDeps } from './deps';

export interface ConnectInput {
  readonly connectionId: string;
  readonly request: ConnectRequest;
  /** Management API endpoint for this connection's API / stage. */
  readonly endpoint: string;
}

export interface ConnectResult {
  readonly statusCode: 200 | 401 | 500;
  readonly identity: Identity | null;
}

/**
 * `$connect`: binds the connection to a verified identity when a token is presented (D2), records
 * it in Redis (anonymous connections too: broadcast reaches them), and triggers the welcome.
 * A token that was presented but does not verify rejects the upgrade with 401.
 */
export async function handleConnect(deps: GatewayDeps, input: ConnectInput): Promise<ConnectResult> {
  const log = deps.logger.child({ connectionId: input.connectionId });
  const token = tokenFromConnect(input.request, deps.config.auth.cookieName);
  let bound: Identity | null = null;
  if (token !== undefined) {
    try {
      bound = deps.verifier.verify(token);
    } catch (err) {
      if (err instanceof TokenError) {
        log.info('connect rejected: invalid token', { reason: err.reason });
        return { statusCode: 401, identity: null };
      }
      throw err;
    }
  }
  await deps.store.registerConnection(input.connectionId, { connectedAt: deps.now(), bound });
  try {
    await deps.welcome.trigger({ connectionId: input.connectionId, endpoint: input.endpoint });
  } catch (err) {
    // Not fatal: the first message the client sends makes $default deliver the welcome.
    log.warn('welcome trigger failed', { err });
  }
  log.info('connected', { boundUserId: bound?.userId });
  return { statusCode: 200, identity: bound };
}
