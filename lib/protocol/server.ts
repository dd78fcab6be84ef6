/**
 * The gateway's own server → client messages (docs/protocol.md, docs/decisions.md D7): welcome, authenticated,
 * heartbeat ack, errors and the state snapshot. Events converted from Kafka live in `lib/events`.
 *
 * Builders return plain objects in the contract's key order; the pusher serialises them.
 */

import { ClientError } from '../errors';
import type { Identity } from './envelope';

/** `{"type":"system.welcome",…}`: the first message of every connection (docs/decisions.md D7). */
export interface WelcomeFrame {
  readonly type: 'system.welcome';
  readonly connection_id: string;
  readonly timestamp: string;
}

/** Sent after a successful `system.authenticate`, once the session is stored (docs/decisions.md D2). */
export interface AuthenticatedFrame {
  readonly type: 'system.authenticated';
  readonly user_id: string;
  readonly username: string;
  readonly roles: readonly string[];
  readonly timestamp: string;
}

/** The reply to every `system.heartbeat`, authenticated or not. */
export interface HeartbeatAckFrame {
  readonly type: 'system.heartbeat_ack';
  readonly timestamp: string;
}

/**
 * `system.error`. `code` is one of the gateway's own codes (INVALID_FORMAT, MESSAGE_ERROR, RATE_LIMIT,
 * MESSAGE_TOO_LARGE) or, for converted backend errors, the backend's code (e.g. `not_your_turn`).
 */
export interface ErrorFrame {
  readonly type: 'system.error';
  readonly code: string;
  readonly message: string;
}

/** The reply to `system.sync_state` on an authenticated connection. */
export interface StateSnapshotFrame {
  readonly type: 'system.state_snapshot';
  readonly active_rooms: readonly string[];
  /** Always `{}`: the gateway keeps no game state (docs/protocol.md). */
  readonly game_states: Readonly<Record<string, never>>;
  /** Always `0`: the gateway does not track unread chat messages (docs/protocol.md). */
  readonly unread_messages: 0;
}

/** Every frame this module builds. */
export type SystemFrame =
  | WelcomeFrame
  | AuthenticatedFrame
  | HeartbeatAckFrame
  | ErrorFrame
  | StateSnapshotFrame;

/** RFC 3339 in UTC with a `Z` suffix, e.g. `2026-01-10T12:00:00.123Z`. */
export const rfc3339 = (date: Date): string => date.toISOString();

/** `system.welcome` for a new connection; `connectionId` is the API Gateway connectionId (docs/decisions.md D1). */
export function welcome(connectionId: string, now: Date = new Date()): WelcomeFrame {
  return { type: 'system.welcome', connection_id: connectionId, timestamp: rfc3339(now) };
}

/** `system.authenticated` echoing the identity the connection is now bound to. */
export function authenticated(identity: Identity, now: Date = new Date()): AuthenticatedFrame {
  return {
    type: 'system.authenticated',
    user_id: identity.userId,
    username: identity.username,
    roles: [...identity.roles],
    timestamp: rfc3339(now),
  };
}

/** `system.heartbeat_ack` stamped with the server time. */
export function heartbeatAck(now: Date = new Date()): HeartbeatAckFrame {
  return { type: 'system.heartbeat_ack', timestamp: rfc3339(now) };
}

/** A `system.error` frame; prefer {@link clientErrorFrame} when you hold an error. */
export function errorFrame(code: string, message: string): ErrorFrame {
  return { type: 'system.error', code, message };
}

/** `system.state_snapshot` listing the rooms the connection is registered in. */
export function stateSnapshot(activeRooms: readonly string[]): StateSnapshotFrame {
  return {
    type: 'system.state_snapshot',
    active_rooms: [...activeRooms],
    game_states: {},
    unread_messages: 0,
  };
}

/** What a client sees for any failure that is not a {@link ClientError}. */
export const INTERNAL_ERROR_MESSAGE = 'Internal error';

/**
 * The single place that turns an error into a client frame. A {@link ClientError} carries its code and a
 * message meant for the client; anything else (dependency failures, bugs) becomes a generic
 * `MESSAGE_ERROR "Internal error"` so no stack, key name or broker address ever reaches a client. Log
 * the original error before calling this.
 */
export function clientErrorFrame(err: unknown): ErrorFrame {
  if (err instanceof ClientError) return errorFrame(err.code, err.message);
  return errorFrame('MESSAGE_ERROR', INTERNAL_ERROR_MESSAGE);
}
