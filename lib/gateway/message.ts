import { TokenError, tokenIdentity } from '../auth/verifier';
import { DeadlineError, withDeadline } from '../deadline';
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
import { isRedisFailure } from '../redis';
import { isSpectatorsRoom } from '../store/keys';
import { CONNECTION_LIMIT, LOBBY_LIMIT, type MessageGate } from '../store/session-store';
import { gatewayCounters } from './counters';
import type { GatewayDeps } from './deps';
import { departureRecords, type Return, welcomeBack } from './lifecycle';
import { presenceEvent, userConnectionEvent } from './system-events';
import { pushWelcome } from './welcome';

export interface MessageInput {
  readonly connectionId: string;
  /** The frame's text; bytes for a binary frame, which is ignored (docs/protocol.md). */
  readonly body: string | Uint8Array;
  readonly endpoint: string;
}

/** The reply frame for the client (sent as the route response), or undefined for none. */
export type MessageReply = string | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type AuthenticateMessage = Extract<ClientMessage, { type: 'system.authenticate' }>;

/** At most this many `message_ids` in one `chat.command.mark_read` (docs/decisions.md D9). */
export const MAX_MARK_READ_IDS = 100;
/**
 * How long a heartbeat waits for Redis (gate and refresh) before it is answered anyway: the ack
 * must reach the client within 1 s while Redis is unreachable (docs/decisions.md D9).
 */
export const HEARTBEAT_REDIS_BUDGET_MS = 300;

/** What the client sees when Redis failed or missed its deadline: safe, and says "try again". */
export const UNAVAILABLE_MESSAGE = 'Service temporarily unavailable';

/**
 * `$default`: one client frame. Order: size check and one validation pass (pure) → connection gate
 * (rate-limit bucket, identity and welcome claim in one Redis round trip) → errors in the order
 * size, rate, format → local handling or forwarding to Kafka. Every failure becomes exactly one
 * `system.error` frame; nothing throws past this function.
 *
 * A connection Redis has no record of is closed, never served as a new anonymous one; a heartbeat
 * is answered even when Redis is not (docs/decisions.md D9).
 */
export async function handleMessage(deps: GatewayDeps, input: MessageInput): Promise<MessageReply> {
  if (typeof input.body !== 'string') return ignoreBinaryFrame(deps, input.connectionId, input.body);
  const body = input.body;
  const { config, store } = deps;
  const oversized = Buffer.byteLength(body, 'utf8') > config.ws.maxMessageSize;
  let msg: ClientMessage | undefined;
  let invalid: unknown;
  if (!oversized) {
    try {
      msg = parseClientMessage(body);
    } catch (err) {
      invalid = err;
    }
  }
  if (msg?.type === 'system.heartbeat') return heartbeat(deps, input);
  try {
    const gate = await store.gateMessage(input.connectionId, {
      burst: config.ws.rateLimitBurst,
      perSec: config.ws.rateLimitPerSec,
    });
    if (!gate) {
      await closeLostConnection(deps, input);
      return undefined;
    }
    await ensureWelcomed(deps, input, gate);
    if (oversized) throw tooLarge();
    if (!gate.allowed) throw new ClientError('RATE_LIMIT', 'Rate limit exceeded');
    if (!msg) throw invalid;
    if (!gate.identity && requiresAuthentication(msg.type)) throw notAuthenticated();
    return await dispatch(deps, input, gate, msg);
  } catch (err) {
    return errorReply(deps, input, err);
  }
}

/** The one `system.error` frame for a failure, logged and counted. */
function errorReply(deps: GatewayDeps, input: MessageInput, err: unknown): string {
  if (err instanceof ClientError) {
    deps.logger.debug('client error', {
      connectionId: input.connectionId,
      code: err.code,
      message: err.message,
    });
    return JSON.stringify(clientErrorFrame(err));
  }
  if (isRedisFailure(err)) {
    gatewayCounters(deps.metrics).dependencyErrors.inc({ dependency: 'redis' });
    deps.logger.warn('message failed: redis unavailable', { connectionId: input.connectionId, err });
    return JSON.stringify(
      clientErrorFrame(new ClientError('MESSAGE_ERROR', UNAVAILABLE_MESSAGE, { cause: err })),
    );
  }
  deps.logger.error('message failed', { connectionId: input.connectionId, err });
  return JSON.stringify(clientErrorFrame(err));
}

/**
 * `system.heartbeat` → `system.heartbeat_ack`, Redis or not: the gate and the refresh get
 * {@link HEARTBEAT_REDIS_BUDGET_MS}; past that, or on a Redis error, the refresh is skipped and
 * counted and the ack goes out anyway (a late ack makes today's clients reconnect).
 */
async function heartbeat(deps: GatewayDeps, input: MessageInput): Promise<MessageReply> {
  const { config, store } = deps;
  const budget = Math.min(HEARTBEAT_REDIS_BUDGET_MS, config.redis.commandTimeoutMs);
  let gate: MessageGate | null;
  try {
    gate = await withDeadline(
      store.gateMessage(
        input.connectionId,
        { burst: config.ws.rateLimitBurst, perSec: config.ws.rateLimitPerSec },
        config.ws.heartbeatRefreshSecs * 1000,
      ),
      budget,
      () => new DeadlineError('heartbeat gate', budget),
    );
  } catch (err) {
    skippedRefresh(deps, input, err);
    return JSON.stringify(heartbeatAck(deps.now()));
  }
  if (!gate) {
    await closeLostConnection(deps, input);
    return undefined;
  }
  try {
    await ensureWelcomed(deps, input, gate);
    if (!gate.allowed) throw new ClientError('RATE_LIMIT', 'Rate limit exceeded');
    // At most one refresh per connection and WS_HEARTBEAT_REFRESH_SECS: the gate claimed it.
    if (gate.identity && gate.refresh !== false) {
      await withDeadline(
        store.heartbeat(input.connectionId, gate.identity, deps.now(), gate.connectedAt),
        budget,
        () => new DeadlineError('heartbeat refresh', budget),
      );
    }
  } catch (err) {
    if (err instanceof ClientError) return errorReply(deps, input, err);
    skippedRefresh(deps, input, err);
  }
  return JSON.stringify(heartbeatAck(deps.now()));
}

function skippedRefresh(deps: GatewayDeps, input: MessageInput, err: unknown): void {
  gatewayCounters(deps.metrics).heartbeatRefreshSkipped.inc();
  deps.logger.warn('heartbeat answered without refresh: redis unavailable', {
    connectionId: input.connectionId,
    err: err instanceof Error ? err.message : String(err),
  });
}

/**
 * A frame from a connection past `$connect` that Redis has no record of: its state was lost
 * (restart, failover, eviction). Close it so the client reconnects, re-authenticates and rejoins;
 * never serve it as a new anonymous connection (docs/decisions.md D9). `$connect` writes the record
 * before the upgrade completes, so a brand-new connection always has one.
 */
async function closeLostConnection(deps: GatewayDeps, input: MessageInput): Promise<void> {
  gatewayCounters(deps.metrics).lostConnectionsClosed.inc();
  deps.logger.warn('connection unknown to Redis (state lost): closing it', {
    connectionId: input.connectionId,
  });
  try {
    await deps.closerFor(input.endpoint).close(input.connectionId);
  } catch (err) {
    deps.logger.error('closing a lost connection failed', { connectionId: input.connectionId, err });
  }
}

/**
 * Binary frames are not part of the protocol and are ignored: never decoded as text, no reply, no
 * Redis work (API Gateway itself closes a connection that sends one, with 1003; serverless-offline
 * passes it on as bytes).
 */
function ignoreBinaryFrame(deps: GatewayDeps, connectionId: string, bytes: Uint8Array): MessageReply {
  deps.metrics
    .counter('ws_gateway_frames_ignored_total', 'Client frames ignored, by reason')
    .inc({ reason: 'binary' });
  deps.logger.debug('binary frame ignored', { connectionId, bytes: bytes.byteLength });
  return undefined;
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
      // Answered before the gate (handleMessage); kept for the exhaustive switch.
      return heartbeat(deps, input);
    case 'system.sync_state': {
      // Allowed before authentication (docs/protocol.md), but answered with the error until then.
      if (!gate.identity) throw notAuthenticated();
      const rooms = await store.roomsOf(input.connectionId);
      return JSON.stringify(stateSnapshot(rooms.filter((r) => !isSpectatorsRoom(r))));
    }
    case 'chat.command.join_lobby':
      if ((await store.joinLobby(input.connectionId, String(msg.lobby_id))) === LOBBY_LIMIT)
        throw limitReached(deps, 'lobbies', 'Too many lobby subscriptions');
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
  if (msg.type === 'chat.command.mark_read' && msg.message_ids.length > MAX_MARK_READ_IDS)
    throw limitReached(deps, 'mark_read_ids', `Too many message_ids (at most ${MAX_MARK_READ_IDS})`);
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
  if (built.joinLobby !== undefined) {
    // The message went out; past the lobby limit the connection just does not subscribe.
    if ((await deps.store.joinLobby(input.connectionId, built.joinLobby)) === LOBBY_LIMIT)
      deps.logger.debug('lobby not joined: limit reached', { connectionId: input.connectionId });
  }
  return undefined;
}

/** A limit of docs/decisions.md D9: an error for the client, counted; the connection stays open. */
function limitReached(deps: GatewayDeps, limit: string, message: string): ClientError {
  gatewayCounters(deps.metrics).limitRejections.inc({ limit });
  return new ClientError('MESSAGE_ERROR', message);
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
  if (result === CONNECTION_LIMIT)
    throw limitReached(deps, 'connections_per_user', 'Too many connections for this user');
  if (!result) {
    // $disconnect got there first: nothing was stored, nothing to announce, nobody to answer.
    deps.logger.info('connection gone before authentication completed', { connectionId: input.connectionId });
    return undefined;
  }
  const records: OutboundRecord[] = [];
  if (result.previous) {
    // For the old user this connection is gone: announce it as $disconnect would (docs/decisions.md D2, D7, D10).
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
  // Back within the grace / reconnection window: into the old rooms now, and no flap of presence (docs/decisions.md D10).
  const back = await returning(deps, input.connectionId, identity);
  records.push(userConnectionEvent(deps, 'connected', identity, input.connectionId));
  if (result.cameOnline && !back.resumed) records.push(presenceEvent(deps, 'online', identity));
  try {
    await deps.publisher.publish(records);
  } catch (err) {
    // The session is stored and valid; a lost system event must not turn into a failed login.
    gatewayCounters(deps.metrics).systemEventsLost.inc({ during: 'authenticate' }, records.length);
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
      const result = await pushWelcome(
        deps.pusherFor(input.endpoint),
        input.connectionId,
        deps.now(),
        deps.pushBudget,
      );
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
  for (let waited = 0; waited < 500; waited += 10) {
    await sleep(10);
    if ((await deps.store.welcomeState(input.connectionId)) !== 'pending') return;
  }
}
