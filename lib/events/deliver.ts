import { UndeliverableEventError } from '../errors';
import type { Logger } from '../logger';
import type { Counter } from '../metrics';
import { type ClientPusher, MAX_PAYLOAD_BYTES, type PushResult, pushMany } from '../push/pusher';
import type { Fanout, PushPriority } from '../push/scheduler';
import { spectatorsRoom } from '../store/keys';
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
  /** Pushes in flight at once for one event (without a fan-out scheduler). */
  readonly concurrency: number;
  /**
   * The fan-out scheduler (budget, priorities, slow clients: docs/architecture.md, "Fan-out at
   * scale"). Without it, each delivery pushes on its own with `concurrency` in flight.
   */
  readonly fanout?: Fanout;
  /** Orders membership changes and tracks what leaves and room removals void (docs/decisions.md D10). */
  readonly membership: MembershipHooks;
}

/** What a membership change consults and triggers besides the room sets (docs/decisions.md D10). */
export interface MembershipHooks {
  /** False when a newer change for the same (room, user) was applied already: skip this one. */
  admit(op: MembershipOp, timestamp: string): Promise<boolean>;
  /** After a leave was applied (the user left the room for good). */
  left(op: MembershipOp): Promise<void>;
  /** A room was removed. */
  roomRemoved(roomId: string): Promise<void>;
}

/** A player's own game first, then spectators and lobbies, then everyone. */
const PRIORITY: Readonly<Record<Target['kind'], PushPriority>> = {
  users: 'game',
  room: 'game',
  spectators: 'spectator',
  lobby: 'spectator',
  broadcast: 'broadcast',
  none: 'broadcast',
};

export interface DeliveryOutcome {
  readonly recipients: number;
  readonly ok: number;
  readonly gone: number;
  readonly failed: number;
  /**
   * Pushes handed to the fan-out scheduler and still on their way when `send()` resolved (a
   * broadcast, paced over the budget left over; counted in the metrics as they settle).
   */
  readonly queued?: number;
}

const EMPTY: DeliveryOutcome = { recipients: 0, ok: 0, gone: 0, failed: 0 };

async function applyMembership(
  deps: DeliveryDeps,
  plan: DeliveryPlan,
  ops: readonly MembershipOp[],
): Promise<void> {
  const { store, membership } = deps;
  // In order: a join followed by a leave of the same room must end as "left".
  for (const op of ops) {
    // An older change than the last one applied for the pair arrived late: ignored (docs/decisions.md D10).
    if (!(await membership.admit(op, plan.timestamp))) continue;
    if (op.op === 'join') await store.joinRoom(op.userId, op.roomId, { spectator: op.spectator });
    else {
      await store.leaveRoom(op.userId, op.roomId);
      await membership.left(op);
    }
  }
}

async function recipientsOf(store: SessionStore, target: Target): Promise<string[]> {
  switch (target.kind) {
    case 'users':
      return store.connectionsOfUsers(target.userIds);
    case 'room':
      return store.roomConnections(target.roomId);
    case 'spectators':
      return store.roomConnections(spectatorsRoom(target.roomId));
    case 'lobby':
      return store.lobbyConnections(target.lobbyId);
    case 'broadcast':
      return store.allConnections();
    case 'none':
      return [];
  }
}

/**
 * A plan whose recipients are resolved: what remains is the sends and the membership changes that
 * follow them. Produced by {@link prepareDelivery}.
 */
export interface Delivery {
  /** The connections `send()` pushes to (none when nobody is there or nothing is sent). */
  readonly recipients: readonly string[];
  /**
   * True when the plan changes memberships after the send (a room-audience leave): the next event's
   * recipients must not be resolved before `send()` has settled.
   */
  readonly changesMembershipAfterSend: boolean;
  /**
   * Pushes with bounded concurrency (410 → cleanup), then the membership changes that follow.
   * Rejects when Redis fails on the way; called again, it resumes where it stopped: a recipient
   * whose push already settled is not pushed again, a gone connection already cleaned up is not
   * cleaned again, a membership change already applied is not applied again (docs/decisions.md D9).
   * Resolves with the totals of all calls.
   */
  send(): Promise<DeliveryOutcome>;
}

/** Log context of one event, spread into the few lines that are written (no child logger per event). */
interface EventContext {
  readonly eventId: string;
  readonly eventType: string;
  readonly audience: Target['kind'];
  readonly lane: string;
}

/**
 * Executes the first half of a delivery plan: the membership changes that precede the send, chat
 * bookkeeping, the recipients from Redis and the serialisation. The returned delivery does the rest:
 * the pushes (bounded concurrency, 410 → cleanup), then the membership changes that follow them
 * (docs/events.md order). Redis failures throw (the caller retries the event); push failures are
 * counted, never thrown.
 *
 * @example
 * const delivery = await prepareDelivery(deps, plan);
 * const outcome = await delivery.send(); // { recipients, ok, gone, failed }
 */
export async function prepareDelivery(
  deps: DeliveryDeps,
  plan: DeliveryPlan,
  /** The fan-out lane: the record's partition (order is kept within it). */
  lane = '',
): Promise<Delivery> {
  const { counters, logger } = deps;
  const ctx: EventContext = {
    eventId: plan.eventId,
    eventType: plan.eventType,
    audience: plan.target.kind,
    lane,
  };
  if (plan.roomRemoved !== undefined) await deps.membership.roomRemoved(plan.roomRemoved);
  await applyMembership(deps, plan, plan.before);
  let recipients: string[] = [];
  let data: string | null = null;
  if (plan.message === null) {
    // An unknown type is "unmapped"; a known one can still yield nothing (e.g. typing stopped).
    const reason = CONVERTED_EVENT_TYPES.has(plan.eventType) ? 'filtered' : 'unmapped';
    counters.dropped.inc({ reason });
    if (logger.isDebugEnabled()) logger.debug('event not delivered', { ...ctx, reason });
  } else {
    ({ recipients, data } = await resolve(deps, plan, plan.message, ctx));
  }
  const after = plan.after;
  const progress: Progress = {
    settled: new Set(),
    toCleanUp: [],
    ok: 0,
    failed: 0,
    gone: 0,
    afterApplied: 0,
    queued: 0,
  };
  return {
    recipients: data === null ? [] : recipients,
    changesMembershipAfterSend: after.length > 0,
    async send() {
      if (data !== null) await push(deps, recipients, data, ctx, progress);
      // One at a time, in order (a join then a leave of the same room ends as "left"); each counted
      // once applied, so a retry after a failure applies only what is left.
      for (; progress.afterApplied < after.length; progress.afterApplied++)
        await applyMembership(deps, plan, [after[progress.afterApplied]!]);
      if (recipients.length === 0) return EMPTY;
      const { ok, gone, failed, queued } = progress;
      return { recipients: recipients.length, ok, gone, failed, ...(queued > 0 ? { queued } : {}) };
    },
  };
}

/** What the sends of one delivery have done so far, kept across retries of `send()`. */
interface Progress {
  /** Recipients whose push settled (ok, gone or failed after the pusher's own retries). */
  readonly settled: Set<string>;
  /** Gone connections not yet cleaned up, in the order found. */
  toCleanUp: string[];
  ok: number;
  failed: number;
  gone: number;
  /** Membership changes after the send already applied. */
  afterApplied: number;
  /** Recipients handed to the fan-out scheduler without waiting (a broadcast). */
  queued: number;
}

/** JSON of a message; a message that cannot be serialised (nested too deep) is poison, not a retry. */
function serialise(body: Record<string, unknown>, ctx: EventContext): string {
  try {
    return JSON.stringify(body);
  } catch (err) {
    throw new UndeliverableEventError(`message of ${ctx.eventType} cannot be serialised`, { cause: err });
  }
}

/** Recipients and the serialised message (`null` when it is over the API Gateway limit: not sent). */
async function resolve(
  deps: DeliveryDeps,
  plan: DeliveryPlan,
  message: Record<string, unknown>,
  ctx: EventContext,
): Promise<{ recipients: string[]; data: string | null }> {
  const { store, counters, logger } = deps;
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
    if (logger.isDebugEnabled()) logger.debug('no recipients', { ...ctx, target: plan.target.kind });
    return { recipients, data: null };
  }
  const data = serialise(body, ctx);
  if (Buffer.byteLength(data) > MAX_PAYLOAD_BYTES) {
    counters.dropped.inc({ reason: 'oversize' });
    logger.warn('event message over 128 KB not sent', {
      ...ctx,
      bytes: Buffer.byteLength(data),
      recipients: recipients.length,
    });
    return { recipients, data: null };
  }
  return { recipients, data };
}

async function push(
  deps: DeliveryDeps,
  recipients: readonly string[],
  data: string,
  ctx: EventContext,
  progress: Progress,
): Promise<void> {
  const { logger } = deps;
  const pending = recipients.filter((c) => !progress.settled.has(c));
  const { fanout } = deps;
  const priority = PRIORITY[ctx.audience];
  if (pending.length > 0 && fanout && priority === 'broadcast') {
    // Handed off: a broadcast is paced over the budget the game leaves over, which can take
    // seconds; the record (and its partition) does not wait for it. Per-connection order holds
    // (the scheduler's queues are FIFO); a crash loses what was still queued (docs/architecture.md).
    for (const c of pending) progress.settled.add(c);
    progress.queued += pending.length;
    void fanout.submit(pending, data, priority, ctx.lane).then(async (results) => {
      const { gone } = tally(deps, ctx, results);
      for (const id of gone) {
        await deps
          .onGone(id)
          .catch((err: unknown) => logger.warn('cleanup failed', { ...ctx, connectionId: id, err }));
      }
    });
  } else if (pending.length > 0) {
    const results = fanout
      ? await fanout.submit(pending, data, priority, ctx.lane)
      : await pushMany(deps.pusher, pending, data, { concurrency: deps.concurrency });
    for (const connectionId of results.keys()) progress.settled.add(connectionId);
    const { ok, failed, gone } = tally(deps, ctx, results);
    progress.ok += ok;
    progress.failed += failed;
    progress.gone += gone.length;
    progress.toCleanUp.push(...gone);
  }
  while (progress.toCleanUp.length > 0) {
    await deps.onGone(progress.toCleanUp[0]!);
    progress.toCleanUp.shift();
  }
}

/** Counts and logs the results of a send. */
function tally(
  deps: DeliveryDeps,
  ctx: EventContext,
  results: ReadonlyMap<string, PushResult | Error>,
): { ok: number; failed: number; gone: string[] } {
  const { counters, logger } = deps;
  let ok = 0;
  let failed = 0;
  const gone: string[] = [];
  for (const [connectionId, r] of results) {
    if (r === 'ok') ok++;
    else if (r === 'gone') gone.push(connectionId);
    else {
      failed++;
      logger.warn('push failed', { ...ctx, connectionId, err: r });
    }
  }
  counters.deliveries.inc({ result: 'ok' }, ok);
  counters.deliveries.inc({ result: 'gone' }, gone.length);
  counters.deliveries.inc({ result: 'failed' }, failed);
  if (logger.isDebugEnabled())
    logger.debug('delivered', { ...ctx, recipients: results.size, ok, gone: gone.length, failed });
  return { ok, failed, gone };
}
