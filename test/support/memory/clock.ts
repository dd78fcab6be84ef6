/**
 * Time for the in-memory stores: the "Redis server time" of their token buckets, TTLs and due
 * departures. A manual clock moves only when a test says so, which makes rate limits, expiry and
 * graces deterministic without fake timers.
 *
 * @example
 * const clock = createManualClock();
 * const store = createMemorySessionStore({ clock, connectionTtlSecs: 86400 });
 * clock.advance(500); // half a second later, for the rate-limit bucket
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface ManualClock extends Clock {
  /** The current time as a Date (for `GatewayDeps.now`). */
  date(): Date;
  advance(ms: number): void;
  set(ms: number): void;
}

/** The machine's clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that starts at `startMs` (default 2026-01-10T12:00:00Z) and moves only when told. */
export function createManualClock(startMs = Date.UTC(2026, 0, 10, 12, 0, 0)): ManualClock {
  let t = startMs;
  return {
    now: () => t,
    date: () => new Date(t),
    advance(ms) {
      if (!(ms >= 0)) throw new RangeError(`a clock only moves forward (advance(${ms}))`);
      t += ms;
    },
    set(ms) {
      t = ms;
    },
  };
}

/**
 * A map whose entries expire like Redis keys with a TTL: an expired entry reads as absent. Entries
 * without a TTL never expire.
 */
export class ExpiringMap<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAt: number }>();
  constructor(private readonly clock: Clock) {}

  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** Sets the value; `ttlSecs` undefined keeps no TTL (Redis SET without EX clears it too). */
  set(key: K, value: V, ttlSecs?: number): void {
    this.entries.set(key, { value, expiresAt: this.expiry(ttlSecs) });
  }

  /** EXPIRE: a new TTL for a live entry; false when there is none. */
  expire(key: K, ttlSecs: number): boolean {
    const value = this.get(key);
    if (value === undefined) return false;
    this.entries.set(key, { value, expiresAt: this.expiry(ttlSecs) });
    return true;
  }

  /** Seconds left, -1 without a TTL, -2 when absent (as Redis TTL). */
  ttl(key: K): number {
    if (this.get(key) === undefined) return -2;
    const at = this.entries.get(key)!.expiresAt;
    return at === Number.POSITIVE_INFINITY ? -1 : Math.ceil((at - this.clock.now()) / 1000);
  }

  delete(key: K): boolean {
    const had = this.has(key);
    this.entries.delete(key);
    return had;
  }

  /** The live entries. */
  *[Symbol.iterator](): IterableIterator<[K, V]> {
    for (const key of [...this.entries.keys()]) {
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  keys(): K[] {
    return [...this].map(([k]) => k);
  }

  private expiry(ttlSecs: number | undefined): number {
    return ttlSecs === undefined ? Number.POSITIVE_INFINITY : this.clock.now() + ttlSecs * 1000;
  }
}
