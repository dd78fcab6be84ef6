/**
 * An in-memory `WelcomeTrigger` (lib/gateway/deps.ts): records each asynchronous welcome
 * invocation `$connect` asks for, and can be made to fail as a refused Lambda `Event` invocation.
 */
import type { WelcomeRequest, WelcomeTrigger } from '../../../lib/gateway/deps';

export interface MemoryWelcomeTrigger extends WelcomeTrigger {
  /** Every request, in order (failed ones included). */
  readonly requests: readonly WelcomeRequest[];
  /** Triggers reject with `error` until `recover()`. */
  fail(error?: Error): void;
  recover(): void;
}

export function createMemoryWelcomeTrigger(): MemoryWelcomeTrigger {
  const requests: WelcomeRequest[] = [];
  let failure: Error | undefined;
  return {
    requests,
    async trigger(request) {
      requests.push({ ...request });
      if (failure) throw failure;
    },
    fail(error = new Error('Lambda invoke failed: HTTP 503')) {
      failure = error;
    },
    recover() {
      failure = undefined;
    },
  };
}
