/**
 * The fleet-wide push budget: every consumer instance and every Lambda invocation takes its
 * Management API requests from one token bucket in Redis, so the fleet as a whole stays under the
 * account's API Gateway throttle instead of discovering it through 429s (docs/architecture.md,
 * "Fan-out at scale").
 *
 * - **One atomic call per batch of tokens**, not per push: a Lua script refills the bucket (Redis
 *   server time, fractional refill) and grants up to `want` tokens; the caller spends them locally.
 * - **Adaptive**: callers report how many of their requests came back `429 LimitExceededException`
 *   (the account throttle: something else of the account is using it too). When that is at least
 *   1 % of what they sent, the script cuts the fleet's rate by 30 % (at most once a second, down to
 *   10 % of `PUSH_BUDGET_RPS`); it recovers by 5 % of the rate per second without cuts.
 * - **Debits**: a push that must not wait (the welcome of a new connection) takes its token with
 *   `debit`, at once, even from an empty bucket, which then owes it (down to `-burst`): the next
 *   grants wait until the debt is refilled, so the fleet's rate stays under the budget.
 * - **Redis unreachable**: every call has a deadline; on failure the budget degrades to a local
 *   bucket in this process with the same rate, burst and adaptation, and tries Redis again after a
 *   second. Delivery never stops for want of Redis; the fleet may then send more than the budget
 *   (each process assumes all of it), which the 429 adaptation brings back down.
 */
import type { Logger } from '../logger';
import type { RedisClient } from '../redis';

/** Grants tokens for Management API requests. */
export interface PushBudget {
  /**
   * Waits until at least one token is available and takes up to `want` of them.
   * @returns how many were granted (1 … want)
   */
  acquire(want: number): Promise<number>;
  /**
   * Reports requests made with granted tokens and how many of them were throttled by the account
   * (429 LimitExceededException). Sent to Redis with the next `acquire`.
   */
  report(sent: number, throttled: number): void;
  /**
   * Takes `n` tokens now without waiting, even from an empty bucket (it goes into debt, at most
   * `burst`): for pushes that must go at once. One Redis call. Never rejects.
   */
  debit(n: number): Promise<void>;
  /** Where tokens come from right now. */
  readonly mode: 'shared' | 'local';
  /** The fraction of the configured rate in force (1 = `rps`), as last seen. */
  readonly factor: number;
  /** Wakes every waiting `acquire` with 1 token (shutdown: let what is queued finish). */
  close(): void;
}

export interface PushBudgetOptions {
  /** Null: a local bucket only (tests, a single process). */
  readonly redis: RedisClient | null;
  /** The bucket's key (with the deployment's key prefix). */
  readonly key: string;
  /** `PUSH_BUDGET_RPS`: tokens per second for the whole fleet. */
  readonly rps: number;
  /** `PUSH_BUDGET_BURST`: the bucket's size. */
  readonly burst: number;
  readonly logger: Logger;
  /** Deadline of one Redis call, ms. Default 250. */
  readonly timeoutMs?: number;
  /** Called when the mode changes (for a metric). */
  readonly onModeChange?: (mode: 'shared' | 'local') => void;
  /** Milliseconds since some origin; defaults to `performance.now`. Only the local bucket uses it. */
  readonly now?: () => number;
}

/** Adaptation constants, shared by the script and the local bucket. */
const CUT = 0.7;
const MIN_FACTOR = 0.1;
const RECOVER_PER_SEC = 0.05;
const CUT_EVERY_MS = 1000;
/** Throttled share of reported requests that cuts the rate (1 %), and the least count that does. */
const CUT_SHARE = 0.01;
const CUT_MIN = 2;
/** After a Redis failure, the next shared attempt waits this long. */
const RETRY_SHARED_MS = 1000;

/**
 * KEYS[1] bucket hash {tk tokens, ts ms, f factor, fc last cut ms}
 * ARGV rate, burst, want, sent, throttled, least, force
 * Grants `want` tokens or as many as there are, but none below `least` (the caller then waits for
 * `least` to accrue: when the bucket is dry, calls come every few ms rather than once per token).
 * With force = 1 (a debit) it grants `want` whatever is left: the bucket may go down to -burst.
 * Returns {granted, waitMs, factor×1000}.
 */
const GRANT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'tk', 'ts', 'f', 'fc')
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local least = math.min(want, tonumber(ARGV[6]))
local sent = tonumber(ARGV[4])
local throttled = tonumber(ARGV[5])
local tokens = tonumber(h[1]) or burst
local ts = tonumber(h[2]) or now
local f = tonumber(h[3]) or 1
local fc = tonumber(h[4]) or 0
local el = now - ts
if el < 0 then el = 0 end
f = math.min(1, f + el / 1000 * ${RECOVER_PER_SEC})
if throttled >= ${CUT_MIN} and throttled >= sent * ${CUT_SHARE} and now - fc >= ${CUT_EVERY_MS} then
  f = math.max(${MIN_FACTOR}, f * ${CUT})
  fc = now
end
tokens = math.min(burst, tokens + el / 1000 * rate * f)
local granted
local wait = 0
if ARGV[7] == '1' then
  granted = want
  tokens = math.max(-burst, tokens - want)
else
  granted = math.min(want, math.floor(tokens))
  if granted < least then granted = 0 end
  tokens = tokens - granted
  if granted < 1 then wait = math.ceil((least - tokens) * 1000 / (rate * f)) end
end
redis.call('HSET', KEYS[1], 'tk', tostring(tokens), 'ts', tostring(now), 'f', tostring(f), 'fc', tostring(fc))
redis.call('PEXPIRE', KEYS[1], 60000)
return {granted, wait, math.floor(f * 1000)}
`;

/** The same bucket and adaptation as the script, in this process. */
class LocalBucket {
  private tokens: number;
  private ts: number;
  factor = 1;
  private cutAt = Number.NEGATIVE_INFINITY;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.ts = now();
  }

  grant(
    want: number,
    least: number,
    sent: number,
    throttled: number,
    force = false,
  ): { granted: number; waitMs: number } {
    const now = this.now();
    const el = Math.max(0, now - this.ts);
    this.ts = now;
    this.factor = Math.min(1, this.factor + (el / 1000) * RECOVER_PER_SEC);
    if (throttled >= CUT_MIN && throttled >= sent * CUT_SHARE && now - this.cutAt >= CUT_EVERY_MS) {
      this.factor = Math.max(MIN_FACTOR, this.factor * CUT);
      this.cutAt = now;
    }
    const rate = this.rate * this.factor;
    this.tokens = Math.min(this.burst, this.tokens + (el / 1000) * rate);
    if (force) {
      this.tokens = Math.max(-this.burst, this.tokens - want);
      return { granted: want, waitMs: 0 };
    }
    let granted = Math.max(0, Math.min(want, Math.floor(this.tokens)));
    if (granted < Math.min(want, least)) granted = 0;
    this.tokens -= granted;
    const need = Math.min(want, least) - this.tokens;
    return { granted, waitMs: granted < 1 ? Math.ceil((need * 1000) / rate) : 0 };
  }
}

class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DeadlineError(`push budget: no answer from Redis within ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Creates the budget.
 *
 * @example
 * const budget = createPushBudget({ redis, key: 'gw:push:budget', rps: 8000, burst: 4000, logger });
 * const n = await budget.acquire(100); // spend n pushes, then budget.report(n, throttled)
 */
export function createPushBudget(opts: PushBudgetOptions): PushBudget {
  const { redis, key, rps, burst, logger } = opts;
  if (!(rps > 0) || !(burst >= 1)) throw new RangeError('push budget: rps > 0 and burst ≥ 1 required');
  const timeoutMs = opts.timeoutMs ?? 250;
  /** 10 ms worth of tokens: the least a call grants once the bucket ran dry. */
  const least = Math.max(1, Math.round(rps / 100));
  const now = opts.now ?? (() => performance.now());
  const log = logger.child({ component: 'push-budget' });
  const local = new LocalBucket(rps, burst, now);
  let mode: 'shared' | 'local' = redis ? 'shared' : 'local';
  let sharedRetryAt = 0;
  let factor = 1;
  let sent = 0;
  let throttled = 0;
  let closed = false;
  const wakers = new Set<() => void>();
  if (redis) redis.defineCommand('wsGatewayPushGrant', { numberOfKeys: 1, lua: GRANT_SCRIPT });

  const setMode = (m: 'shared' | 'local', err?: unknown) => {
    if (m === mode) return;
    mode = m;
    if (m === 'local') log.warn('push budget: Redis unreachable, using a local budget', { err });
    else log.info('push budget: shared budget in Redis again');
    opts.onModeChange?.(m);
  };

  const grantShared = async (want: number, s: number, t: number, force = false) => {
    const call = (redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)
      .wsGatewayPushGrant!;
    const reply = (await withDeadline(
      call.call(redis, key, rps, burst, want, s, t, least, force ? 1 : 0),
      timeoutMs,
    )) as [number, number, number];
    factor = reply[2] / 1000;
    return { granted: Number(reply[0]), waitMs: Number(reply[1]) };
  };

  let probing = false;
  /** In local mode: asks Redis (for nothing) in the background; back to shared once it answers. */
  const probe = () => {
    if (probing || now() < sharedRetryAt) return;
    probing = true;
    grantShared(0, 0, 0).then(
      () => {
        probing = false;
        setMode('shared');
      },
      () => {
        probing = false;
        sharedRetryAt = now() + RETRY_SHARED_MS;
      },
    );
  };

  const grantOnce = async (want: number, force = false): Promise<{ granted: number; waitMs: number }> => {
    const s = sent;
    const t = throttled;
    sent = 0;
    throttled = 0;
    if (redis && mode === 'shared') {
      try {
        return await grantShared(want, s, t, force);
      } catch (err) {
        sharedRetryAt = now() + RETRY_SHARED_MS;
        setMode('local', err);
      }
    } else if (redis) probe();
    const r = local.grant(want, least, s, t, force);
    factor = local.factor;
    return r;
  };

  return {
    async acquire(want) {
      const n = Math.max(1, Math.floor(want));
      for (;;) {
        if (closed) return 1;
        const { granted, waitMs } = await grantOnce(n);
        if (granted >= 1) return granted;
        // Wait for the next token (a little more, so the next call finds it), or for close().
        await new Promise<void>((resolve) => {
          const wake = () => {
            wakers.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(wake, Math.min(1000, Math.max(1, waitMs)));
          wakers.add(wake);
        });
      }
    },
    report(s, t) {
      sent += s;
      throttled += t;
    },
    async debit(n) {
      // grantOnce falls back to the local bucket by itself; nothing is left to reject.
      if (!closed && n > 0) await grantOnce(Math.floor(n), true);
    },
    get mode() {
      return mode;
    },
    get factor() {
      return factor;
    },
    close() {
      closed = true;
      for (const wake of [...wakers]) wake();
    },
  };
}
