import { TokenError, tokenIdentity } from '../auth/verifier';
import { ClientError, DependencyError, notAuthenticated, tooLarge } from '../errors';
import type { OutboundRecord } from '../kafka/publisher';
import {
  buildCommandRecords,
  type ClientMessage,
  type ForwardedClientMessage,
  parseClientMessage,
  requiresAuthentication,
} from '../protocol/client';
import type { Identity } from '../protocol/envelope';
import { authenticated, clientErrorFrame, heartbeatAck, stateSnapshot } from '../protocol/server';
import { isSpectatorsRoom } from '../store/keys';
import type { MessageGate } from '../store/session-store';
import type { GatewayDeps } from './deps';
import { departureRecords, type Return, welcomeBack } from './lifecycle';
import { presenceEvent, userConnectionEvent } from './system-events';
import { pushWelcome } from './welcome';

export interface MessageInput {
  readonly connectionId: string;
  readonly body: string;
  readonly endpoint: string;
}

/** The reply frame for the client (sent as the route response), or undefined for none. */
export type MessageReply = string | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type AuthenticateMessage = Extract<ClientMessage, { type: 'system.authenticate' }>;

/**
 * `$default`: one client frame. Order: connection gate (rate-limit bucket, identity and welcome
 * claim in one Redis round trip) → size limit → rate limit → one validation pass → local handling
 * or forwarding to Kafka. Every failure becomes exactly one `system.error` frame; nothing throws
 * past this function.
 */
export async function handleMessage(deps: GatewayDeps, input: MessageInput): Promise<MessageReply> {
  try {
    const { config, store } = deps;
    const gate = await store.gateMessage(input.connectionId, {
      burst: config.ws.rateLimitBurst,
      perSec: config.ws.rateLimitPerSec,
    });
    await ensureWelcomed(deps, input, gate);
    if (Buffer.byteLength(input.body, 'utf8') > config.ws.maxMessageSize) throw tooLarge();
    if (!gate.allowed) throw new ClientError('RATE_LIMIT', 'Rate limit exceeded');
    const msg = parseClientMessage(input.body);
    if (!gate.identity && requiresAuthentication(msg.type)) throw notAuthenticated();
    return await dispatch(deps, input, gate, msg);
  } catch (err) {
    if (err instanceof ClientError) {
      deps.logger.debug('client error', {
        connectionId: input.connectionId,
        code: err.code,
        message: err.message,
      });
    } else {
      deps.logger.error('message failed', { connectionId: input.connectionId, err });
    }
    return JSON.stringify(clientErrorFrame(err));
  }
}

async function dispatch(
  deps: GatewayDeps,
  input: MessageInput,
  gate: MessageGate,
  msg: ClientMessage,
): Promise<MessageReply> {
  const { store } = deps;
  switch (msg.type) {
    case 'system.authenticate':
      return authenticate(deps, input, gate, msg);
    case 'system.heartbeat':
      if (gate.identity)
        await store.heartbeat(input.connectionId, gate.identity, deps.now(), gate.connectedAt);
      return JSON.stringify(heartbeatAck(deps.now()));
    case 'system.sync_state': {
      // Allowed before authentication (contract §2), but answered with the error until then.
      if (!gate.identity) throw notAuthenticated();
      const rooms = await store.roomsOf(input.connectionId);
      return JSON.stringify(stateSnapshot(rooms.filter((r) => !isSpectatorsRoom(r))));
    }
    case 'chat.command.join_lobby':
      await store.joinLobby(input.connectionId, String(msg.lobby_id));
      return undefined;
    case 'chat.command.leave_lobby':
      await store.leaveLobby(input.connectionId, String(msg.lobby_id));
      return undefined;
    default:
      return forward(deps, input, gate.identity!, msg);
  }
}

async function forward(
  deps: GatewayDeps,
  input: MessageInput,
  identity: Identity,
  msg: ForwardedClientMessage,
): Promise<MessageReply> {
  const built = await buildCommandRecords(
    msg,
    { identity, connectionId: input.connectionId, eventId: deps.newId, now: deps.now },
    { resolveMessageSenders: (ids) => deps.store.chatMessageSenders(ids) },
  );
  try {
    await deps.publisher.publish(built.records);
  } catch (err) {
    throw new ClientError('MESSAGE_ERROR', 'Kafka error: the command could not be forwarded', { cause: err });
  }
  if (built.joinLobby !== undefined) await deps.store.joinLobby(input.connectionId, built.joinLobby);
  return undefined;
}

/** Longest username taken from a client (docs/decisions.md D8). */
const MAX_CLIENT_USERNAME = 64;
const clip = (text: string, max: number) => {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max).join('');
};

/**
 * docs/decisions.md D2, D8: a token, or the credential form when the connection is bound to that
 * user (identity and roles from the token; the client's username only when the token has none) or
 * unverified credentials are explicitly allowed. A mismatch on a bound connection also ends the
 * binding, so a page holding a bound connection gets one guess at the bound user id, not many.
 */
async function resolveIdentity(
  deps: GatewayDeps,
  input: MessageInput,
  gate: MessageGate,
  msg: AuthenticateMessage,
): Promise<Identity> {
  if (msg.token !== undefined) {
    if (msg.token === '') throw notAuthenticated();
    try {
      return tokenIdentity(deps.verifier.verify(msg.token));
    } catch (err) {
      if (err instanceof TokenError) {
        throw new ClientError('MESSAGE_ERROR', `Authentication failed: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
  const userId = msg.user_id;
  const username = msg.username;
  if (userId === undefined || username === undefined || userId === '' || userId === '0')
    throw notAuthenticated();
  if (gate.bound) {
    if (gate.bound.userId !== userId) {
      await deps.store.dropBinding(input.connectionId);
      deps.metrics
        .counter(
          'ws_gateway_auth_identity_mismatch_total',
          'Credential forms naming another user than the bound one',
        )
        .inc();
      deps.logger.warn('identity mismatch on a bound connection: binding dropped', {
        connectionId: input.connectionId,
        boundUserId: gate.bound.userId,
      });
      throw new ClientError('MESSAGE_ERROR', 'Authentication failed: identity mismatch');
    }
    return {
      userId,
      username: gate.bound.username || clip(username, MAX_CLIENT_USERNAME),
      roles: gate.bound.roles,
    };
  }
  if (!deps.config.auth.allowUnverified) {
    throw new ClientError('MESSAGE_ERROR', 'Authentication failed: a verified token is required');
  }
  return { userId, username, roles: ['user'] };
}

async function authenticate(
  deps: GatewayDeps,
  input: MessageInput,
  gate: MessageGate,
  msg: AuthenticateMessage,
): Promise<MessageReply> {
  const identity = await resolveIdentity(deps, input, gate, msg);
  const result = await deps.store.authenticate(
    input.connectionId,
    identity,
    gate.identity,
    deps.now(),
    gate.connectedAt,
  );
  if (!result) {
    // $disconnect got there first: nothing was stored, nothing to announce, nobody to answer.
    deps.logger.info('connection gone before authentication completed', { connectionId: input.connectionId });
    return undefined;
  }
  const records: OutboundRecord[] = [];
  if (result.previous) {
    // For the old user this connection is gone: announce it as $disconnect would (D2, D7, D10).
    const { identity: old, wentOffline, rooms } = result.previous;
    records.push(
      ...(await departureRecords(deps, input.connectionId, {
        identity: old,
        rooms,
        spectating: [],
        wentOffline,
      })),
    );
  }
  // Back within the grace / reconnection window: into the old rooms now, and no flap of presence (D10).
  const back = await returning(deps, input.connectionId, identity);
  records.push(userConnectionEvent(deps, 'connected', identity, input.connectionId));
  if (result.cameOnline && !back.resumed) records.push(presenceEvent(deps, 'online', identity));
  try {
    await deps.publisher.publish(records);
  } catch (err) {
    // The session is stored and valid; a lost system event must not turn into a failed login.
    deps.logger.error('failed to publish authentication events', {
      connectionId: input.connectionId,
      err: err instanceof DependencyError ? err.message : err,
    });
  }
  deps.logger.info('authenticated', { connectionId: input.connectionId, userId: identity.userId });
  return JSON.stringify(authenticated(identity, deps.now()));
}

/** {@link welcomeBack}, never failing the authentication itself: the session is valid either way. */
async function returning(deps: GatewayDeps, connectionId: string, identity: Identity): Promise<Return> {
  try {
    const back = await welcomeBack(deps, connectionId, identity);
    if (back.restoredRooms.length > 0)
      deps.logger.info('connection put back into its rooms', {
        connectionId,
        rooms: back.restoredRooms.length,
      });
    return back;
  } catch (err) {
    deps.logger.warn('reconnection data not applied', { connectionId, userId: identity.userId, err });
    return { restoredRooms: [], resumed: false };
  }
}

/**
 * The welcome must precede any reply. When the client speaks first (or the async welcome could not
 * be triggered), this invocation sends it; when the welcome invocation holds the claim, wait for it.
 */
async function ensureWelcomed(deps: GatewayDeps, input: MessageInput, gate: MessageGate): Promise<void> {
  if (gate.welcome === 'done') return;
  if (gate.welcome === 'mine') {
    try {
      const result = await pushWelcome(deps.pusherFor(input.endpoint), input.connectionId, deps.now());
      if (result !== 'ok')
        deps.logger.info('welcome not delivered: connection gone', { connectionId: input.connectionId });
    } catch (err) {
      deps.logger.warn('welcome push failed', { connectionId: input.connectionId, err });
    } finally {
      // Settled either way: later frames must never wait for a welcome that will not come.
      await deps.store.markWelcomed(input.connectionId);
    }
    return;
  }
  for (let waited = 0; waited < 500; waited += 5) {
    await sleep(5);
    if ((await deps.store.welcomeState(input.connectionId)) !== 'pending') return;
  }
}
