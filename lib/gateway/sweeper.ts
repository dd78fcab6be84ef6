/**
 * The process that wakes up without a client event (docs/decisions.md D10): it completes due
 * departures every second, and every `WS_SWEEP_INTERVAL_SECS` it sweeps — connections silent for
 * `WS_STALE_AFTER_SECS` or open longer than `WS_MAX_CONNECTION_AGE_SECS` are cleaned up exactly as
 * `$disconnect` would once the Management API confirms they are gone, and users left in
 * `presence:online` without a live connection are taken out of it.
 *
 * Run by the long-running consumer (consumers/events.ts) and, for Lambda-only deployments, by the
 * scheduled `sweeper` function (handlers/sweeper.ts). Any number may run: departures are claimed
 * atomically and a sweep takes a lock for its interval.
 */
import type { ConnectionProbe } from '../push/connections';
import type { LivenessStore } from '../store/liveness';
import { cleanupConnection } from './cleanup';
import type { CleanupDeps } from './deps';
import { completeDueDepartures } from './lifecycle';
import { presenceEvent } from './system-events';

export interface SweeperDeps extends CleanupDeps {
  readonly liveness: LivenessStore;
  /** Asks the Management API about a connection; null where there is no endpoint to ask. */
  readonly probe: ConnectionProbe | null;
}

export interface SweepOutcome {
  readonly scanned: number;
  /** Stale connections cleaned up. */
  readonly cleaned: number;
  /** Stale by our clock, but the Management API says open: kept. */
  readonly kept: number;
  /** Users taken out of `presence:online` with no live connection. */
  readonly presenceDropped: number;
}

const PAGE = 500;
/** Stale connections probed and cleaned at once. */
const CONCURRENCY = 16;

async function inParallel<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * One sweep over every open connection and `presence:online`. A stale connection is cleaned up
 * when the Management API answers 410, or when it cannot tell (serverless-offline does not
 * implement `GET @connections`; a 403 or an outage on AWS): then the staleness rule alone decides,
 * and the socket, if it still exists, is closed (`DELETE @connections`) so its client reconnects.
 * It is kept when the Management API says it is open.
 */
export async function sweep(deps: SweeperDeps, nowMs = Date.now()): Promise<SweepOutcome> {
  const { liveness, probe, config, logger } = deps;
  const staleBefore = nowMs - config.lifecycle.staleAfterSecs * 1000;
  const openedBefore = nowMs - config.lifecycle.maxAgeSecs * 1000;
  let scanned = 0;
  let cleaned = 0;
  let kept = 0;
  let cursor = '0';
  do {
    const res = await liveness.scanConnections(cursor, PAGE);
    cursor = res.cursor;
    scanned += res.page.length;
    const stale = res.page.filter(
      (c) =>
        c.lastFrameMs === undefined ||
        c.lastFrameMs < staleBefore ||
        (c.connectedAtMs !== undefined && c.connectedAtMs < openedBefore),
    );
    await inParallel(stale, CONCURRENCY, async ({ connectionId }) => {
      const status = probe ? await probe.status(connectionId) : 'unknown';
      if (status === 'open') {
        kept++;
        return;
      }
      await cleanupConnection(deps, connectionId, 'stale');
      cleaned++;
      if (status === 'unknown' && probe) await probe.close(connectionId);
    });
  } while (cursor !== '0');

  let presenceDropped = 0;
  cursor = '0';
  do {
    const res = await liveness.scanOrphanedPresence(cursor, PAGE);
    cursor = res.cursor;
    for (const userId of res.orphans) {
      if (!(await liveness.dropPresence(userId))) continue;
      presenceDropped++;
      // Their connections vanished without a cleanup (expired): nobody announced the departure.
      const identity = { userId, username: (await deps.store.usernameOf(userId)) ?? '', roles: [] };
      try {
        await deps.publisher.publish([presenceEvent(deps, 'offline', identity)]);
      } catch (err) {
        logger.error('failed to publish user_offline for orphaned presence', { userId, err });
      }
    }
  } while (cursor !== '0');

  const outcome = { scanned, cleaned, kept, presenceDropped };
  if (cleaned > 0 || presenceDropped > 0) logger.info('sweep', outcome);
  return outcome;
}

export interface SweeperLoopOptions {
  /** Aborting it ends the loop after the step in progress. */
  readonly signal: AbortSignal;
  /** How often due departures are looked for. Default 1000 ms. */
  readonly pollMs?: number;
  /** Returns false to end the loop (a scheduled function running out of time). */
  readonly proceed?: () => boolean;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Completes due departures every `pollMs` and sweeps once per `WS_SWEEP_INTERVAL_SECS` (across all
 * instances), until `signal` aborts or `proceed` says stop. Never rejects: a failed step (Redis or
 * Kafka unreachable) is logged and tried again on the next tick.
 */
export async function runSweeper(deps: SweeperDeps, opts: SweeperLoopOptions): Promise<void> {
  const { signal } = opts;
  const pollMs = opts.pollMs ?? 1000;
  const intervalMs = deps.config.lifecycle.sweepIntervalSecs * 1000;
  const log = deps.logger.child({ component: 'sweeper' });
  const stepDeps = { ...deps, logger: log };
  let lastSweep = 0;
  while (!signal.aborted && (opts.proceed?.() ?? true)) {
    try {
      await completeDueDepartures(stepDeps);
      if (Date.now() - lastSweep >= intervalMs) {
        lastSweep = Date.now();
        // The lock is a little shorter than the interval, so the next sweep is never skipped.
        if (await deps.liveness.claimSweep(intervalMs * 0.9)) await sweep(stepDeps);
      }
    } catch (err) {
      log.warn('sweeper step failed', { err });
    }
    await sleep(pollMs, signal);
  }
}
