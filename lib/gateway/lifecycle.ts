/**
 * Connections that come and go (docs/decisions.md D10): what a departure means, and what a return
 * undoes.
 *
 * - A connection goes ($disconnect, a 410, a sweep, re-authentication as someone else):
 *   `system.event.user_disconnected` at once; for each room (and spectator set) in which the user
 *   has no other connection, a reconnection record; and — after the grace, unless the user is back —
 *   `games.command.player_disconnected` for those game rooms and `presence.event.user_offline` when
 *   it was the user's last connection.
 * - The user authenticates again: the new connection is put back into the rooms of their records,
 *   and a pending `user_offline` is cancelled — nobody saw them go, so nobody is told they came back.
 * - A due departure is completed by whichever instance claims it first (`completeDueDepartures`).
 */
import type { MembershipHooks } from '../events/deliver';
import type { OutboundRecord } from '../kafka/publisher';
import type { Identity } from '../protocol/envelope';
import type { RedisClient } from '../redis';
import { createDepartureStore, type Departure, type DepartureStore } from '../store/departures';
import { isSpectatorsRoom } from '../store/keys';
import { createMembershipOrder, eventTimeMs, type MembershipOrder } from '../store/membership-order';
import { createReconnectStore, type ReconnectStore } from '../store/reconnect';
import type { CleanupDeps } from './deps';
import { playerDisconnectedCommand, presenceEvent, userConnectionEvent } from './system-events';

/** The Redis state of docs/decisions.md D10, next to the session store. */
export interface LifecycleStores {
  readonly departures: DepartureStore;
  readonly reconnect: ReconnectStore;
  readonly order: MembershipOrder;
}

/** How long the last applied membership change of a (room, user) pair is remembered. */
const MEMBERSHIP_ORDER_TTL_SECS = 86_400;

export interface LifecycleStoresOptions {
  readonly redis: RedisClient;
  /** `WS_RECONNECT_TTL_SECS`. */
  readonly reconnectTtlSecs: number;
  readonly keyPrefix?: string;
}

export function createLifecycleStores({
  redis,
  reconnectTtlSecs,
  keyPrefix = '',
}: LifecycleStoresOptions): LifecycleStores {
  return {
    departures: createDepartureStore({ redis, keyPrefix }),
    reconnect: createReconnectStore({ redis, keyPrefix, ttlSecs: reconnectTtlSecs }),
    order: createMembershipOrder({ redis, keyPrefix, ttlSecs: MEMBERSHIP_ORDER_TTL_SECS }),
  };
}

/** A connection that left a user: what the store reported when it was taken out. */
export interface LeftConnection {
  readonly identity: Identity;
  /** Game rooms it was in. */
  readonly rooms: readonly string[];
  /** Spectator pseudo-rooms (`spectators:<roomId>`) it was in. */
  readonly spectating: readonly string[];
  /** It was the user's last connection. */
  readonly wentOffline: boolean;
}

/** The rooms (game and spectator) the user's remaining connections are in. */
async function roomsOfUser(deps: Pick<CleanupDeps, 'store'>, userId: string): Promise<Set<string>> {
  const conns = await deps.store.connectionsOfUsers([userId]);
  const lists = await Promise.all(conns.map((c) => deps.store.roomsOf(c)));
  return new Set(lists.flat());
}

/**
 * The records a departure publishes now, after recording what waits for the grace. Called once per
 * removed connection, by whoever removed it (cleanup is idempotent, so that is one caller).
 */
export async function departureRecords(
  deps: CleanupDeps,
  connectionId: string,
  left: LeftConnection,
): Promise<OutboundRecord[]> {
  const { identity } = left;
  const { config, lifecycle } = deps;
  const records: OutboundRecord[] = [userConnectionEvent(deps, 'disconnected', identity, connectionId)];
  let lost = [...left.rooms, ...left.spectating];
  try {
    // Other tabs of the user still in a room keep the player there: not a departure from that room.
    const stillIn = left.wentOffline ? new Set<string>() : await roomsOfUser(deps, identity.userId);
    lost = lost.filter((room) => !stillIn.has(room));
    await lifecycle.reconnect.remember(identity.userId, lost);
  } catch (err) {
    deps.logger.warn('reconnection data not recorded', { connectionId, userId: identity.userId, err });
  }
  const due: Departure[] = [];
  if (left.wentOffline) due.push({ kind: 'offline', identity });
  if (config.disconnectNotifyRooms) {
    for (const roomId of lost) if (!isSpectatorsRoom(roomId)) due.push({ kind: 'room', identity, roomId });
  }
  if (config.lifecycle.graceSecs > 0 && due.length > 0) {
    try {
      await lifecycle.departures.schedule(due, config.lifecycle.graceSecs);
      return records;
    } catch (err) {
      // Redis refused the pending departure: announcing it now beats never announcing it.
      deps.logger.warn('departure not deferred: published at once', { connectionId, err });
    }
  }
  records.push(...due.map((d) => departureRecord(deps, d)));
  return records;
}

function departureRecord(deps: CleanupDeps, d: Departure): OutboundRecord {
  return d.kind === 'offline'
    ? presenceEvent(deps, 'offline', d.identity)
    : playerDisconnectedCommand(deps, d.identity, d.roomId);
}

/** What a return undid. */
export interface Return {
  /** Rooms (and spectator sets) the connection was put back into. */
  readonly restoredRooms: readonly string[];
  /** A pending `user_offline` was cancelled: the user never went offline for anyone. */
  readonly resumed: boolean;
}

/**
 * An authenticated connection of `identity`: consumes the user's reconnection records (the
 * connection joins those rooms now, before any `rejoin_room`) and cancels the pending departures
 * it makes moot. Call before the client is told it is authenticated.
 */
export async function welcomeBack(
  deps: Pick<CleanupDeps, 'store' | 'lifecycle'>,
  connectionId: string,
  identity: Identity,
): Promise<Return> {
  const { lifecycle, store } = deps;
  const [rooms, resumed] = await Promise.all([
    lifecycle.reconnect.take(identity.userId),
    lifecycle.departures.cancelOffline(identity.userId),
  ]);
  const restoredRooms = await store.joinConnection(connectionId, rooms);
  const gameRooms = restoredRooms.filter((r) => !isSpectatorsRoom(r));
  if (gameRooms.length > 0) await lifecycle.departures.cancelRooms(identity.userId, gameRooms);
  return { restoredRooms, resumed };
}

/**
 * The user left a room for good (a leave event, a kick, a ban): no reconnection into it, and no
 * `player_disconnected` for it either — the backend already knows.
 */
export async function leftRoom(
  deps: Pick<CleanupDeps, 'lifecycle'>,
  userId: string,
  roomId: string,
): Promise<void> {
  await Promise.all([
    deps.lifecycle.reconnect.forget(userId, roomId),
    deps.lifecycle.departures.cancelRooms(userId, [roomId]),
  ]);
}

/**
 * The delivery pipeline's membership hooks: changes of a (room, user) pair in timestamp order, and
 * a leave or a removed room voids the reconnection into it. An event whose timestamp cannot be
 * read is not ordered (applied as it comes).
 */
export function membershipHooks(deps: Pick<CleanupDeps, 'lifecycle'>): MembershipHooks {
  const { lifecycle } = deps;
  return {
    async admit(op, timestamp) {
      const at = eventTimeMs(timestamp);
      return at === undefined ? true : lifecycle.order.admit(op.roomId, op.userId, at);
    },
    left: (op) => leftRoom(deps, op.userId, op.roomId),
    roomRemoved: (roomId) => lifecycle.reconnect.roomRemoved(roomId),
  };
}

export interface CompletionOutcome {
  readonly published: number;
  /** Room departures dropped because the user is back in that room. */
  readonly dropped: number;
}

/** Departures claimed per round trip. */
const CLAIM_BATCH = 100;
/** A claimed departure whose publish failed is tried again this much later. */
const REPUBLISH_AFTER_SECS = 5;

/**
 * Completes every due departure: claims them (atomically, so each one is completed by exactly one
 * instance) and publishes what is still true. A claimed `offline` departure is always published:
 * a return within the grace cancels it before it is due, and a return that loses the race to the
 * claim is announced as `user_online` by its own authentication, so the pair stays consistent. A
 * claimed room departure is dropped when the user is back in that room.
 */
export async function completeDueDepartures(deps: CleanupDeps): Promise<CompletionOutcome> {
  let published = 0;
  let dropped = 0;
  for (;;) {
    const batch = await deps.lifecycle.departures.claimDue(CLAIM_BATCH);
    if (batch.length === 0) break;
    const records: OutboundRecord[] = [];
    const sent: Departure[] = [];
    const inRooms = new Map<string, Promise<Set<string>>>();
    for (const d of batch) {
      if (d.kind === 'room') {
        const uid = d.identity.userId;
        if (!inRooms.has(uid)) inRooms.set(uid, roomsOfUser(deps, uid));
        if ((await inRooms.get(uid)!).has(d.roomId)) {
          dropped++;
          continue;
        }
      }
      records.push(departureRecord(deps, d));
      sent.push(d);
    }
    if (records.length > 0) {
      try {
        await deps.publisher.publish(records);
        published += records.length;
      } catch (err) {
        deps.logger.error('failed to publish due departures; retrying later', { err, count: records.length });
        await deps.lifecycle.departures.schedule(sent, REPUBLISH_AFTER_SECS);
        break;
      }
    }
    if (batch.length < CLAIM_BATCH) break;
  }
  if (published > 0 || dropped > 0) deps.logger.info('departures completed', { published, dropped });
  return { published, dropped };
}
