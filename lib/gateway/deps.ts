import type { TokenVerifier } from '../auth/verifier';
import type { Config } from '../config';
import type { EventPublisher } from '../kafka/publisher';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { PushBudget } from '../push/budget';
import type { ConnectionCloser } from '../push/closer';
import type { ClientPusher } from '../push/pusher';
import type { SessionStore } from '../store/session-store';
import type { LifecycleStores } from './lifecycle';
import type { EnvelopeContext } from './system-events';

/** Triggers the asynchronous welcome (an `Event` invocation of the welcome function on AWS and offline). */
export interface WelcomeTrigger {
  trigger(request: WelcomeRequest): Promise<void>;
}

export interface WelcomeRequest {
  readonly connectionId: string;
  /** Management API endpoint the welcome must be pushed through. */
  readonly endpoint: string;
}

/**
 * Everything the gateway functions need, created once per container (lib/runtime/container.ts)
 * and passed in. Tests build their own from real adapters or fakes.
 */
export interface GatewayDeps extends EnvelopeContext {
  readonly config: Config;
  readonly store: SessionStore;
  /** Pending departures, reconnection records, membership order (docs/decisions.md D10). */
  readonly lifecycle: LifecycleStores;
  readonly publisher: EventPublisher;
  readonly verifier: TokenVerifier;
  /** The pusher for a Management API endpoint (one per endpoint, reused). */
  readonly pusherFor: (endpoint: string) => ClientPusher;
  /** Closes connections through the Management API endpoint (one per endpoint, reused). */
  readonly closerFor: (endpoint: string) => ConnectionCloser;
  readonly welcome: WelcomeTrigger;
  /**
   * The fleet-wide push budget (lib/push/budget.ts), `PUSH_BUDGET_RPS`: each welcome push is debited
   * from it. Absent (tests, `PUSH_BUDGET_RPS=0`): not counted.
   */
  readonly pushBudget?: PushBudget | null;
  readonly logger: Logger;
  /** Counters of what the gateway refused or ignored (auth, origins), named like the consumer's. */
  readonly metrics: Metrics;
}

/** The subset needed to clean a connection up (shared by `$disconnect` and the consumer's 410 path). */
export type CleanupDeps = Pick<
  GatewayDeps,
  'config' | 'store' | 'lifecycle' | 'publisher' | 'logger' | 'newId' | 'now' | 'metrics'
>;
