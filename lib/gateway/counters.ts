import type { Counter, Metrics } from '../metrics';

/**
 * The gateway's own counters for the faults and limits of docs/decisions.md D9, named once so
 * handlers, dashboards (docs/operations.md) and tests agree.
 */
export interface GatewayCounters {
  /** Frames from connections Redis had no record of; each connection was closed so it reconnects. */
  readonly lostConnectionsClosed: Counter;
  /** Heartbeats answered without their Redis refresh (Redis failed or missed the heartbeat budget). */
  readonly heartbeatRefreshSkipped: Counter;
  /** Frames answered with `system.error` because a dependency failed; label `dependency`. */
  readonly dependencyErrors: Counter;
  /** Frames refused by a limit; label `limit` (`lobbies`, `mark_read_ids`, `connections_per_user`). */
  readonly limitRejections: Counter;
  /** System events that could not be published; label `during` (`authenticate`, `disconnect`, `gone`). */
  readonly systemEventsLost: Counter;
}

export function gatewayCounters(metrics: Metrics): GatewayCounters {
  return {
    lostConnectionsClosed: metrics.counter(
      'ws_gateway_lost_connections_closed_total',
      'Connections closed because Redis had no record of them (state lost)',
    ),
    heartbeatRefreshSkipped: metrics.counter(
      'ws_gateway_heartbeat_refresh_skipped_total',
      'Heartbeats answered without their Redis refresh (Redis failed or was late)',
    ),
    dependencyErrors: metrics.counter(
      'ws_gateway_dependency_errors_total',
      'Client frames answered with system.error because a dependency failed',
    ),
    limitRejections: metrics.counter(
      'ws_gateway_limit_rejections_total',
      'Frames refused by a per-connection or per-user limit',
    ),
    systemEventsLost: metrics.counter(
      'ws_gateway_system_events_lost_total',
      'System events (connected, disconnected, presence) that could not be published',
    ),
  };
}
