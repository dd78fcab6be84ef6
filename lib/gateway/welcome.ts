import { welcome } from '../protocol/server';
import type { PushBudget } from '../push/budget';
import type { ClientPusher } from '../push/pusher';
import type { GatewayDeps, WelcomeRequest } from './deps';

export interface WelcomeOptions {
  /** How long to keep retrying while the connection is not yet open (410 during `$connect`). */
  readonly deadlineMs?: number;
  /** First retry delay; it doubles up to `maxRetryEveryMs`. */
  readonly retryEveryMs?: number;
  readonly maxRetryEveryMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Pushes `system.welcome` as the connection's first message (docs/decisions.md D7).
 *
 * API Gateway refuses pushes until `$connect` has returned (410), so this runs asynchronously
 * after it and retries a 410 for a short while, backing off. The welcome is claimed in Redis first:
 * exactly one of this function and `$default` (when the client speaks before the welcome arrived)
 * sends it. The claim never re-creates a removed connection, and the retries stop as soon as Redis
 * says the connection is gone (`$disconnect` ran): a 410 then means closed, not "not open yet".
 */
export async function deliverWelcome(
  deps: Pick<GatewayDeps, 'store' | 'pusherFor' | 'logger' | 'now' | 'pushBudget'>,
  req: WelcomeRequest,
  { deadlineMs = 3000, retryEveryMs = 10, maxRetryEveryMs = 200 }: WelcomeOptions = {},
): Promise<'sent' | 'claimed-elsewhere' | 'gone'> {
  const log = deps.logger.child({ connectionId: req.connectionId });
  if (!(await deps.store.claimWelcome(req.connectionId))) return 'claimed-elsewhere';
  const pusher = deps.pusherFor(req.endpoint);
  const started = Date.now();
  let delay = retryEveryMs;
  for (;;) {
    const result = await pushWelcome(pusher, req.connectionId, deps.now(), deps.pushBudget);
    if (result === 'ok') {
      await deps.store.markWelcomed(req.connectionId);
      log.debug('welcome sent', { ms: Date.now() - started });
      return 'sent';
    }
    if (Date.now() - started >= deadlineMs || (await deps.store.welcomeState(req.connectionId)) === 'none') {
      log.info('welcome not delivered: connection gone');
      return 'gone';
    }
    await sleep(delay);
    delay = Math.min(maxRetryEveryMs, delay * 2);
  }
}

/**
 * One welcome push. With a budget, its token is debited at the same time, not waited for: a new
 * client must not wait behind a paced broadcast, and the debt makes the event pipeline's next grants
 * wait instead, so the fleet stays under the budget (docs/architecture.md, "Fan-out at scale").
 */
export async function pushWelcome(
  pusher: ClientPusher,
  connectionId: string,
  now: Date,
  budget?: PushBudget | null,
) {
  const push = pusher.push(connectionId, JSON.stringify(welcome(connectionId, now)));
  if (!budget) return push;
  const [, result] = await Promise.all([budget.debit(1), push]);
  return result;
}
