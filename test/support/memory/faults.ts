/**
 * Makes an in-memory port fail like its real dependency: every method (or the named ones) rejects
 * with an error, or never answers and rejects once the caller's command deadline passes — what
 * ioredis does with `commandTimeout` against a frozen Redis. The defaults are ioredis's own
 * messages, which lib/redis.ts `isRedisFailure` recognises.
 *
 * @example
 * const store = createMemorySessionStore({ connectionTtlSecs: 86400 });
 * store.faults.fail(); // Redis unreachable: every call rejects with "Connection is closed."
 * store.faults.hang(['gateMessage']); // the gate times out, everything else answers
 */
export interface FaultControls {
  /** Calls (all, or those named) reject with `error` until `recover()`. */
  fail(methods?: readonly string[], error?: Error): void;
  /** Calls (all, or those named) never answer; each rejects after the command timeout. */
  hang(methods?: readonly string[]): void;
  recover(): void;
}

type Mode = { kind: 'fail'; error: Error } | { kind: 'hang' };

export interface FaultOptions {
  /** How long a hung call waits before rejecting (ioredis `commandTimeout`; default 1000 ms). */
  readonly timeoutMs?: number;
  /** The error a hung call rejects with (default "Command timed out"). */
  readonly timeoutError?: () => Error;
  /** Methods that are the test's own readings, not the port's: never failed. */
  readonly skip?: readonly string[];
}

/**
 * Wraps every function property of `target` (in place, so getters and other fields stay) and
 * returns the controls.
 */
export function injectFaults<T extends object>(
  target: T,
  { timeoutMs = 1000, timeoutError = () => new Error('Command timed out'), skip = [] }: FaultOptions = {},
): FaultControls {
  const modes = new Map<string, Mode>();
  let all: Mode | undefined;
  const record = target as Record<string, unknown>;
  for (const name of Object.keys(target)) {
    const fn = record[name];
    if (typeof fn !== 'function' || skip.includes(name)) continue;
    record[name] = (...args: unknown[]) => {
      const mode = modes.get(name) ?? all;
      if (!mode) return (fn as (...a: unknown[]) => unknown).apply(target, args);
      if (mode.kind === 'fail') return Promise.reject(mode.error);
      return new Promise((_, reject) => setTimeout(() => reject(timeoutError()), timeoutMs).unref?.());
    };
  }
  const set = (methods: readonly string[] | undefined, mode: Mode) => {
    if (!methods) all = mode;
    else for (const m of methods) modes.set(m, mode);
  };
  return {
    fail: (methods, error = new Error('Connection is closed.')) => set(methods, { kind: 'fail', error }),
    hang: (methods) => set(methods, { kind: 'hang' }),
    recover() {
      modes.clear();
      all = undefined;
    },
  };
}
