/**
 * The fan-out scheduler: every push of the event pipeline goes through it, between the delivery
 * and the Management API pusher (docs/architecture.md, "Fan-out at scale").
 *
 * - **Budget**: each request spends a token of the fleet-wide budget (./budget.ts), taken in
 *   batches; 429s are reported back so the fleet slows down.
 * - **Priorities**: a player's own events (`game`: user-targeted and room events) go first, then
 *   `spectator` (spectators, chat lobbies), then `broadcast`. Nothing is dropped: a broadcast waits
 *   for the budget the others leave over, however long its queue is.
 * - **A reserve for `game`**: a few tokens and request slots are kept for `game` frames: the other
 *   classes may not spend the last `reservedTokens` local tokens nor fill the last
 *   `reservedInFlight` slots, so a player's event never waits for the next budget grant or for a
 *   socket held by a broadcast.
 * - **Order**: one FIFO queue per connection and lane (a Kafka partition), at most one request in
 *   flight per queue, so a connection receives the frames of a lane in the order they were
 *   submitted; lanes do not wait for each other. A connection whose queue
 *   holds a `game` frame behind a broadcast one is served at `game` priority (the broadcast frame
 *   goes first, immediately): priority is inherited, order never changes.
 * - **Retries**: a 429 retries the same frame on that connection only, with its own exponential
 *   backoff — other connections are not held back. 5xx and network failures are retried the same
 *   way, at most `maxRetries` times. 410 settles every frame queued for the connection as `'gone'`.
 * - **Unanswered connections**: a frame whose every attempt got no answer at all (timeouts, resets:
 *   `1 + maxRetries` of them) suspends its connection for `suspendUnansweredMs`: its frames fail at
 *   once, without a request, instead of each waiting for its timeouts. One unanswered attempt alone
 *   suspends nothing, and a suspension holds back no other connection.
 * - **Slow clients**: a connection answering 429 for `slowClientMs` in a row (while other
 *   connections got pushes through, or were not throttled at all — so it is not the account
 *   throttle) is closed with
 *   `DELETE @connections/{id}` and settled as `'gone'`: the caller cleans it up as for a 410.
 */
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { PushBudget } from './budget';
import type { ConnectionCloser } from './closer';
import { type ClientPusher, PushError, type PushResult } from './pusher';

/** What an event's audience is worth to its recipients right now. */
export type PushPriority = 'game' | 'spectator' | 'broadcast';

export const PRIORITIES: readonly PushPriority[] = ['game', 'spectator', 'broadcast'];

const LEVEL: Readonly<Record<PushPriority, number>> = { game: 0, spectator: 1, broadcast: 2 };

/** Per connection, what `submit` resolves: the push result, or its error. */
export type FanoutResults = Map<string, PushResult | Error>;

/** Queues pushes by priority under a budget; see the module comment. */
export interface Fanout {
  /**
   * Queues `data` for each connection (duplicates once) behind what is already queued for it in
   * `lane`, and resolves once every one of them settled. Queueing happens before this returns: a
   * later call for the same connection and lane is delivered after this one. Lanes (a Kafka
   * partition) keep their own order and do not wait for each other; default: one lane.
   */
  submit(
    connectionIds: readonly string[],
    data: string | Buffer,
    priority: PushPriority,
    lane?: string,
  ): Promise<FanoutResults>;
  /** Frames queued or in flight. */
  pending(): number;
  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void>;
  /**
   * Stops taking frames, delivers what is queued (up to `drainMs`), settles the rest as retriable
   * errors, then closes the pusher.
   */
  close(drainMs?: number): Promise<void>;
}

export interface FanoutOptions {
  /** Makes single attempts (`maxRetries: 0`): the scheduler does the retrying. */
  readonly pusher: ClientPusher;
  /** For closing slow clients; without it they are settled `'gone'` without being closed. */
  readonly closer?: ConnectionCloser & { destroy?(): void };
  /** Null: no budget (every push goes at once, up to `maxInFlight`). */
  readonly budget: PushBudget | null;
  /** Requests in flight at once (`PUSH_CONCURRENCY`). */
  readonly maxInFlight: number;
  /** Retries of a frame after 5xx or network failures (`PUSH_MAX_RETRIES`); 429s are not counted. */
  readonly maxRetries: number;
  /** `PUSH_SLOW_CLIENT_SECS` × 1000. */
  readonly slowClientMs: number;
  /**
   * How long a connection is suspended after a frame got no answer in any of its attempts. 0: never.
   * Default 10 000. (The pusher's own suspension should be off: it would count single attempts.)
   */
  readonly suspendUnansweredMs?: number;
  /** Tokens asked for at once. Default: 50 ms of `rps`, from the budget's owner. */
  readonly tokenBatch?: number;
  /**
   * Local tokens only `game` frames may spend: the others wait for a grant once no more than this
   * many are left. Default: a fifth of `tokenBatch` (10 ms of the budget with the pipeline's batch
   * of 50 ms). Ignored without a budget.
   */
  readonly reservedTokens?: number;
  /** Request slots (of `maxInFlight`) only `game` frames may fill. Default: an eighth, at least 1. */
  readonly reservedInFlight?: number;
  /** First backoff step of a connection, ms. Default 50. */
  readonly backoffBaseMs?: number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Defaults to `performance.now`. */
  readonly now?: () => number;
}

/** One submit: its results, filled as pushes settle. */
class Group {
  left: number;
  readonly results: (PushResult | Error | undefined)[];
  constructor(
    readonly ids: readonly string[],
    readonly data: string | Buffer,
    readonly level: number,
    readonly resolve: (results: FanoutResults) => void,
  ) {
    this.left = ids.length;
    this.results = new Array(ids.length);
  }
}

interface Item {
  readonly group: Group;
  readonly index: number;
  /** Requests made for it that failed with 5xx / network (429s are not counted). */
  failures: number;
  /** Some attempt got an HTTP answer (any status). */
  answered: boolean;
}

class Conn {
  queue: Item[] = [];
  head = 0;
  /** Queued items per level. */
  readonly counts = [0, 0, 0];
  busy = false;
  /** Bit per level: on that level's ready list. */
  enlisted = 0;
  notBefore = 0;
  timer: NodeJS.Timeout | undefined;
  /** Backoff steps taken in a row. */
  backoffs = 0;
  /** When its current run of 429s started (0: none), and the fleet's successes and runs then. */
  streakStart = 0;
  okAtStreakStart = 0;
  streaksAtStart = 0;
  closing = false;
  constructor(
    /** Its key in the map: the lane and the connection id. */
    readonly key: string,
    readonly id: string,
  ) {}

  get size(): number {
    return this.queue.length - this.head;
  }

  best(): number {
    const c = this.counts;
    return c[0]! > 0 ? 0 : c[1]! > 0 ? 1 : 2;
  }

  shift(): void {
    this.head++;
    if (this.head > 32 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}

/** A FIFO of connections with O(1) shift. */
class Ready {
  private items: Conn[] = [];
  private head = 0;
  push(c: Conn): void {
    this.items.push(c);
  }
  peek(): Conn | undefined {
    return this.items[this.head];
  }
  shift(): Conn | undefined {
    if (this.head >= this.items.length) return undefined;
    const c = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return c;
  }
}

const MAX_BACKOFF_MS = 5000;
/** Suspended connections remembered at most; expired ones are dropped first, then the oldest. */
const MAX_SUSPENDED = 10_000;

/** A failure without any HTTP answer (timeout, reset, refused), not a refusal to try. */
const unanswered = (e: Error): boolean =>
  e instanceof PushError && e.retriable && e.statusCode === undefined && e.attempts > 0;

/**
 * Creates the scheduler.
 *
 * @example
 * const fanout = createFanout({ pusher, closer, budget, maxInFlight: 64, maxRetries: 3, slowClientMs: 30_000, logger });
 * const results = await fanout.submit(roomMembers, frame, 'game');
 */
export function createFanout(opts: FanoutOptions): Fanout {
  const { pusher, closer, budget, maxInFlight, maxRetries, slowClientMs, logger } = opts;
  const now = opts.now ?? (() => performance.now());
  const log = logger.child({ component: 'fanout' });
  const backoffBase = opts.backoffBaseMs ?? 50;
  const maxBackoff = Math.max(backoffBase, Math.min(MAX_BACKOFF_MS, slowClientMs / 4));
  const tokenBatch = Math.max(1, opts.tokenBatch ?? 100);
  const suspendMs = Math.max(0, opts.suspendUnansweredMs ?? 10_000);
  const reservedTokens = budget ? Math.max(0, Math.floor(opts.reservedTokens ?? tokenBatch / 5)) : 0;
  const reservedInFlight = Math.min(
    maxInFlight - 1,
    Math.max(0, Math.floor(opts.reservedInFlight ?? Math.max(1, maxInFlight / 8))),
  );
  const throttledTotal = opts.metrics?.counter(
    'ws_gateway_push_throttled_total',
    'Pushes answered 429 LimitExceededException (account throttle or a full client buffer)',
  );
  const slowClosed = opts.metrics?.counter(
    'ws_gateway_slow_clients_closed_total',
    'Connections closed after answering 429 for PUSH_SLOW_CLIENT_SECS in a row',
  );
  const conns = new Map<string, Conn>();
  const ready = [new Ready(), new Ready(), new Ready()];
  let tokens = budget ? 0 : Number.POSITIVE_INFINITY;
  let acquiring = false;
  let inFlight = 0;
  let queued = 0;
  let okCount = 0;
  /** Runs of 429s started, over all connections. */
  let streaks = 0;
  let closed = false;
  /** Connection id → until when (`now()`) its frames fail without a request. */
  const suspended = new Map<string, number>();
  let idleWaiters: Array<() => void> = [];

  const enlist = (c: Conn, level: number) => {
    const bit = 1 << level;
    if (c.enlisted & bit) return;
    c.enlisted |= bit;
    ready[level]!.push(c);
  };

  /** Puts a connection that can send on the ready list of its best level, or forgets an empty one. */
  const schedule = (c: Conn) => {
    if (c.busy || c.timer) return;
    if (c.size === 0) {
      if (c.streakStart === 0 && !c.closing) conns.delete(c.key);
      return;
    }
    enlist(c, c.best());
  };

  /**
   * The best level with a connection that can send now, its list's head being that connection;
   * -1: none. Drops stale entries (busy, backing off, emptied) and moves a connection whose best
   * frame is now of a lower class to that class's list.
   */
  const readyLevel = (): number => {
    for (let level = 0; level < 3; level++) {
      const list = ready[level]!;
      for (let c = list.peek(); c; c = list.peek()) {
        if (!c.busy && !c.timer && c.size > 0 && !c.closing && c.best() <= level) return level;
        list.shift();
        c.enlisted &= ~(1 << level);
        if (!c.busy && !c.timer && c.size > 0 && !c.closing) enlist(c, c.best());
      }
    }
    return -1;
  };

  const takeReady = (level: number): Conn => {
    const c = ready[level]!.shift()!;
    c.enlisted &= ~(1 << level);
    return c;
  };

  const checkIdle = () => {
    if (queued > 0 || inFlight > 0 || idleWaiters.length === 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  const finish = (c: Conn, result: PushResult | Error) => {
    const item = c.queue[c.head]!;
    c.queue[c.head] = undefined as unknown as Item;
    c.shift();
    const { group } = item;
    c.counts[group.level]!--;
    queued--;
    group.results[item.index] = result;
    if (--group.left === 0) {
      group.resolve(new Map(group.ids.map((id, i) => [id, group.results[i]!])));
    }
  };

  /** Settles every frame queued for a connection as `result` (gone, closed). */
  const finishAll = (c: Conn, result: PushResult | Error) => {
    while (c.size > 0) finish(c, result);
  };

  const requestTokens = () => {
    if (!budget || acquiring || closed) return;
    acquiring = true;
    budget.acquire(Math.min(tokenBatch, Math.max(1, queued))).then(
      (n) => {
        acquiring = false;
        tokens += n;
        pump();
      },
      (err: unknown) => {
        // The budget degrades by itself; a rejection is a bug. Do not stall delivery over it.
        acquiring = false;
        log.error('push budget failed; sending without it', { err });
        tokens += tokenBatch;
        pump();
      },
    );
  };

  const suspendedError = (id: string) =>
    new PushError(`push to ${id} not sent: suspended after pushes that got no answer`, {
      retriable: true,
      connectionId: id,
      attempts: 0,
      errorType: 'Suspended',
    });

  const suspend = (c: Conn) => {
    const t = now();
    if (suspended.size >= MAX_SUSPENDED) {
      for (const [id, until] of suspended) if (until <= t) suspended.delete(id);
      if (suspended.size >= MAX_SUSPENDED) suspended.delete(suspended.keys().next().value!);
    }
    suspended.delete(c.id);
    suspended.set(c.id, t + suspendMs);
    log.warn('push got no answer after its retries; connection suspended', {
      connectionId: c.id,
      suspendMs,
      queued: c.size,
    });
  };

  /** Whether the connection's frames fail at once now; forgets an expired suspension. */
  const isSuspended = (id: string): boolean => {
    if (suspended.size === 0) return false;
    const until = suspended.get(id);
    if (until === undefined) return false;
    if (now() < until) return true;
    suspended.delete(id);
    return false;
  };

  const backOff = (c: Conn) => {
    c.backoffs++;
    const step = Math.min(maxBackoff, backoffBase * 2 ** (c.backoffs - 1));
    const delay = Math.round(step / 2 + (Math.random() * step) / 2);
    c.notBefore = now() + delay;
    c.timer = setTimeout(() => {
      c.timer = undefined;
      schedule(c);
      pump();
    }, delay);
  };

  const closeSlow = (c: Conn) => {
    c.closing = true;
    slowClosed?.inc();
    log.warn('closing a slow client: its buffer stayed full', {
      connectionId: c.id,
      failingForMs: Math.round(now() - c.streakStart),
      queued: c.size,
    });
    const done = () => {
      c.closing = false;
      c.streakStart = 0;
      finishAll(c, 'gone');
      conns.delete(c.key);
      checkIdle();
      pump();
    };
    if (!closer) {
      done();
      return;
    }
    closer.close(c.id).then(done, (err: unknown) => {
      // Cleaned up anyway: its state goes, and the connection finds out on its next frame.
      log.warn('closing a slow client failed', { connectionId: c.id, err });
      done();
    });
  };

  const onSettled = (c: Conn, outcome: PushResult | unknown) => {
    inFlight--;
    c.busy = false;
    const t = now();
    if (outcome === 'ok') {
      okCount++;
      c.streakStart = 0;
      c.backoffs = 0;
      budget?.report(1, 0);
      finish(c, 'ok');
    } else if (outcome === 'gone') {
      budget?.report(1, 0);
      c.streakStart = 0;
      finishAll(c, 'gone');
    } else if (closed) {
      // Closing: no more retries, whatever the failure.
      budget?.report(1, 0);
      finish(c, outcome instanceof Error ? outcome : new Error(String(outcome)));
    } else if (outcome instanceof PushError && outcome.statusCode === 429) {
      throttledTotal?.inc();
      // Only the first 429 of a connection's run counts as throttling: a slow client's repeated
      // 429s say nothing about the account.
      c.queue[c.head]!.answered = true;
      const fresh = c.streakStart === 0;
      budget?.report(1, fresh ? 1 : 0);
      if (fresh) {
        streaks++;
        c.streakStart = t;
        c.okAtStreakStart = okCount;
        c.streaksAtStart = streaks;
      }
      // Its own buffer, not the account: others got pushes through meanwhile, or nobody else was
      // throttled at all.
      const alone = okCount > c.okAtStreakStart || streaks === c.streaksAtStart;
      if (t - c.streakStart >= slowClientMs && alone) {
        closeSlow(c);
        return;
      }
      backOff(c);
    } else {
      budget?.report(1, 0);
      const item = c.queue[c.head]!;
      const error = outcome instanceof Error ? outcome : new Error(String(outcome));
      const retriable = error instanceof PushError && error.retriable;
      if (error instanceof PushError && error.statusCode !== undefined) item.answered = true;
      if (retriable && item.failures < maxRetries) {
        item.failures++;
        backOff(c);
      } else {
        c.backoffs = 0;
        finish(c, error);
        // Every attempt unanswered: the connection's later frames fail at once for a while.
        if (suspendMs > 0 && !item.answered && unanswered(error)) {
          suspend(c);
          finishAll(c, suspendedError(c.id));
        }
      }
    }
    schedule(c);
    checkIdle();
    pump();
  };

  const dispatch = (c: Conn) => {
    c.busy = true;
    inFlight++;
    const item = c.queue[c.head]!;
    pusher.push(c.id, item.group.data).then(
      (r) => onSettled(c, r),
      (err: unknown) => onSettled(c, err),
    );
  };

  let pumping = false;
  function pump(): void {
    if (pumping) return;
    pumping = true;
    try {
      while (inFlight < maxInFlight) {
        const level = readyLevel();
        if (level < 0) break;
        // The other classes leave the reserve to `game`: the last tokens and the last slots.
        if (level > 0 && inFlight >= maxInFlight - reservedInFlight) break;
        if (tokens < (level === 0 ? 1 : reservedTokens + 1)) {
          requestTokens();
          break;
        }
        const c = takeReady(level);
        if (isSuspended(c.id)) {
          // No request, no token: its frames fail in order, now.
          finishAll(c, suspendedError(c.id));
          schedule(c);
          checkIdle();
          continue;
        }
        tokens--;
        dispatch(c);
      }
    } finally {
      pumping = false;
    }
  }

  const idle = (): Promise<void> =>
    queued === 0 && inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r));

  return {
    submit(connectionIds, data, priority, lane = '') {
      const level = LEVEL[priority];
      const ids = [...new Set(connectionIds)];
      if (ids.length === 0) return Promise.resolve(new Map());
      return new Promise<FanoutResults>((resolve) => {
        const group = new Group(ids, data, level, resolve);
        for (let i = 0; i < ids.length; i++) {
          const id = ids[i]!;
          if (closed) {
            group.results[i] = new PushError('fan-out is closed', {
              retriable: true,
              connectionId: id,
              attempts: 0,
            });
            group.left--;
            continue;
          }
          const key = lane === '' ? id : `${lane}\n${id}`;
          let c = conns.get(key);
          if (!c) {
            c = new Conn(key, id);
            conns.set(key, c);
          }
          c.queue.push({ group, index: i, failures: 0, answered: false });
          c.counts[level]!++;
          queued++;
          if (!c.busy && !c.timer && !c.closing) enlist(c, level);
        }
        if (group.left === 0) resolve(new Map(ids.map((id, i) => [id, group.results[i]!])));
        pump();
      });
    },
    pending: () => queued,
    idle,
    async close(drainMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        idle(),
        new Promise<void>((r) => {
          timer = setTimeout(r, drainMs);
        }),
      ]);
      clearTimeout(timer);
      closed = true;
      budget?.close();
      for (const c of conns.values()) {
        if (c.timer) clearTimeout(c.timer);
        c.timer = undefined;
        if (!c.busy) {
          finishAll(
            c,
            new PushError('fan-out closed before this push', {
              retriable: true,
              connectionId: c.id,
              attempts: 0,
            }),
          );
        }
      }
      await pusher.close();
      closer?.destroy?.();
    },
  };
}
