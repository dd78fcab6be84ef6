import type { Logger } from '../logger';
import type { Counter } from '../metrics';
import { type ClientPusher, MAX_PAYLOAD_BYTES, pushMany } from '../push/pusher';
import type { SessionStore } from '../store/session-store';
import { CONVERTED_EVENT_TYPES } from './convert';
import type { DeliveryPlan, MembershipOp, Target } from './plan';

export interface DeliveryCounters {
  /** deliveries, label result = ok | gone | failed */
  readonly deliveries: Counter;
  /** events not delivered, label reason = unmapped | filtered | oversize | no_recipients */
  readonly dropped: Counter;
}

export interface DeliveryDeps {
  readonly store: SessionStore;
  readonly pusher: ClientPusher;
  readonly logger: Logger;
  readonly counters: DeliveryCounters;
  /** Called for each connection a push found gone (410): removes it everywhere, as `$disconnect` would. */
  readonly onGone: (connectionId: string) => Promise<void>;
  /** Pushes in flight at once for one event. */
  readonly concurrency: number;
}

export interface DeliveryOutcome {
  readonly recipients: number;
  readonly ok: number;
  readonly gone: number;
  readonly failed: number;
}

const EMPTY: DeliveryOutcome = { recipients: 0, ok: 0, gone: 0, failed: 0 };

async function applyMembership(store: SessionStore, ops: readonly MembershipOp[]): Promise<void> {
  // In order: a join followed by a leave of the same room must end as "left".
  for (const op of ops) {
    if (op.op === 'join') await store.joinRoom(op.userId, op.roomId, { spectator: op.spectator });
    else await store.leaveRoom(op.userId, op.roomId);
  }
}

async function recipientsOf(store: SessionStore, target: Target): Promise<string[]> {
  switch (target.kind) {
    case 'users':
      return store.connectionsOfUsers(target.userIds);
    case 'room':
      return store.roomConnections(target.roomId);
    case 'spectators':
      return store.roomConnections(`spectators:${target.roomId}`);
    case 'lobby':
      return store.lobbyConnections(target.lobbyId);
    case 'broadcast':
      return store.allConnections();
    case 'none':
      return [];
  }
}

/**
 * Executes a delivery plan: membership changes that precede the send, the pushes (bounded
 * concurrency, 410 → cleanup), then the membership changes that follow it (contract §3.3 order).
 * Redis failures throw (the caller retries the event); push failures are counted, never thrown.
 */
export async function executePlan(deps: DeliveryDeps, plan: DeliveryPlan): Promise<DeliveryOutcome> {
  const { store, counters } = deps;
  const log = deps.logger.child({ eventId: plan.eventId, eventType: plan.eventType });
  await applyMembership(store, plan.before);
  let outcome = EMPTY;
  if (plan.message === null) {
    // An unknown type is "unmapped"; a known one can still yield nothing (e.g. typing stopped).
    const reason = CONVERTED_EVENT_TYPES.has(plan.eventType) ? 'filtered' : 'unmapped';
    counters.dropped.inc({ reason });
    log.debug('event not delivered', { reason });
  } else {
    outcome = await send(deps, plan, plan.message, log);
  }
  await applyMembership(store, plan.after);
  return outcome;
}

async function send(
  deps: DeliveryDeps,
  plan: DeliveryPlan,
  message: Record<string, unknown>,
  log: Logger,
): Promise<DeliveryOutcome> {
  const { store, counters } = deps;
  const chat = plan.chat;
  if (chat?.recordMessage)
    await store.recordChatMessage(chat.recordMessage.messageId, chat.recordMessage.senderId);
  let body = message;
  if (chat?.resolveSenderNameOf !== undefined) {
    body = { ...message, sender_name: (await store.usernameOf(chat.resolveSenderNameOf)) ?? '' };
  }
  let recipients = [...new Set(await recipientsOf(store, plan.target))];
  if (chat?.preferConnectionId && recipients.includes(chat.preferConnectionId))
    recipients = [chat.preferConnectionId];
  if (recipients.length === 0) {
    counters.dropped.inc({ reason: 'no_recipients' });
    log.debug('no recipients', { target: plan.target.kind });
    return EMPTY;
  }
  const data = JSON.stringify(body);
  if (Buffer.byteLength(data) > MAX_PAYLOAD_BYTES) {
    counters.dropped.inc({ reason: 'oversize' });
    log.warn('event message over 128 KB not sent', {
      bytes: Buffer.byteLength(data),
      recipients: recipients.length,
    });
    return { recipients: recipients.length, ok: 0, gone: 0, failed: 0 };
  }
  const results = await pushMany(deps.pusher, recipients, data, { concurrency: deps.concurrency });
  let ok = 0;
  let failed = 0;
  const gone: string[] = [];
  for (const [connectionId, r] of results) {
    if (r === 'ok') ok++;
    else if (r === 'gone') gone.push(connectionId);
    else {
      failed++;
      log.warn('push failed', { connectionId, err: r });
    }
  }
  counters.deliveries.inc({ result: 'ok' }, ok);
  counters.deliveries.inc({ result: 'gone' }, gone.length);
  counters.deliveries.inc({ result: 'failed' }, failed);
  for (const id of gone) await deps.onGone(id);
  log.debug('delivered', { recipients: recipients.length, ok, gone: gone.length, failed });
  return { recipients: recipients.length, ok, gone: gone.length, failed };
}
