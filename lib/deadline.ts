/**
 * Deadlines for calls to dependencies (docs/decisions.md D9): a caller stops waiting after `ms`
 * even when the dependency never answers. The work itself is not cancelled (neither ioredis nor
 * kafkajs can abort a request in flight), so what it writes must be safe to land late.
 */

/** The dependency did not answer within its deadline. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what}: no answer within ${ms} ms`);
  }
}

/** Settles like `work`, or rejects with `onTimeout()` after `ms`; the timer never holds the process. */
export function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref?.();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
