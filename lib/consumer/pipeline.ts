import { type DeliveryCounters, type DeliveryOutcome, prepareDelivery } from '../events/deliver';
import { parseEnvelope } from '../events/parse';
import { planDelivery } from '../events/plan';
import { cleanupConnection } from '../gateway/cleanup';
import type { CleanupDeps } from '../gateway/deps';
import { membershipHooks } from '../gateway/lifecycle';
import type { Metrics } from '../metrics';
import type { ClientPusher } from '../push/pusher';
import type { Fanout } from '../push/scheduler';
import { isRetriable } from './retriable';

/** One Kafka record as both the kafkajs consumer and the Lambda Kafka event source see it. */
export interface InboundRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly value: Buffer | string | null;
}

export interface PipelineDeps extends CleanupDeps {
  readonly pusher: ClientPusher;
  readonly metrics: Metrics;
  readonly pushConcurrency: number;
  /** The fan-out scheduler (lib/push/scheduler.ts); without it each record pushes on its own. */
  readonly fanout?: Fanout;
}

export type RecordOutcome =
  | { status: 'skipped'; reason: string }
  | ({ status: 'delivered'; eventType: string } & DeliveryOutcome);

/**
 * A record whose membership changes that precede the send are applied and whose recipients are
 * resolved; `deliver()` pushes, then applies the membership changes that follow. When it rejects
 * (a transient failure) it may be called again, and resumes without pushing twice to anyone.
 */
export interface PreparedRecord {
  /** The connections `deliver()` pushes to. */
  readonly recipients: readonly string[];
  /**
   * True when `deliver()` changes memberships (a room-audience leave, applied after the send): the
   * next record of the partition must not be prepared before it settled.
   */
  readonly barrier: boolean;
  deliver(): Promise<RecordOutcome>;
}

/** Processes one record: parse, plan, deliver. Redis failures reject (retry the record). */
export interface ProcessRecord {
  (record: InboundRecord): Promise<RecordOutcome>;
  /**
   * The same work in two steps, so that the next record of a partition can be prepared while this
   * one's pushes are in flight (lib/consumer/in-order.ts). Without it, records run one at a time.
   */
  readonly prepare?: (record: InboundRecord) => Promise<PreparedRecord>;
}

const whereOf = ({ topic, partition, offset }: InboundRecord) => ({ topic, partition, offset });

/**
 * The event pipeline shared by the long-running consumer and the Lambda handler:
 * parse (lenient, once) → plan (pure) → execute (Redis + pushes).
 *
 * Poison — a record that cannot be parsed, planned, serialised or routed for a reason retrying
 * cannot fix (lib/consumer/retriable.ts) — is logged with topic/partition/offset, counted and
 * skipped, never retried. Transient failures (Redis unreachable) reject, so the caller retries the
 * step in place (nothing is committed past it); a retried `deliver()` resumes without pushing again
 * to the recipients already reached.
 */
export function createPipeline(deps: PipelineDeps): ProcessRecord {
  const events = deps.metrics.counter('ws_gateway_events_total', 'Events consumed, by topic and event type');
  const skipped = deps.metrics.counter(
    'ws_gateway_events_skipped_total',
    'Records skipped as poison, by reason = unparseable | plan_failed | undeliverable',
  );
  const counters: DeliveryCounters = {
    deliveries: deps.metrics.counter('ws_gateway_deliveries_total', 'Pushes to connections, by result'),
    dropped: deps.metrics.counter('ws_gateway_events_dropped_total', 'Events not delivered, by reason'),
  };
  const latency = deps.metrics.histogram(
    'ws_gateway_delivery_latency_seconds',
    "From the event's timestamp (produced) to the end of its pushes, for events pushed to someone",
  );
  const cleanupLog = deps.logger.child({ component: 'cleanup' });
  const deliveryDeps = {
    store: deps.store,
    pusher: deps.pusher,
    logger: deps.logger,
    counters,
    concurrency: deps.pushConcurrency,
    fanout: deps.fanout,
    membership: membershipHooks(deps),
    onGone: (connectionId: string) =>
      cleanupConnection({ ...deps, logger: cleanupLog }, connectionId, 'gone'),
  };
  const skip = (reason: string): PreparedRecord => ({
    recipients: [],
    barrier: false,
    deliver: async () => ({ status: 'skipped', reason }),
  });

  const log = deps.logger;
  async function prepare(record: InboundRecord): Promise<PreparedRecord> {
    const parsed = parseEnvelope(record.value);
    if (!parsed.ok) {
      skipped.inc({ topic: record.topic, reason: 'unparseable' });
      log.warn('skipping unparseable record', { ...whereOf(record), reason: parsed.reason });
      return skip(parsed.reason);
    }
    let plan: ReturnType<typeof planDelivery>;
    try {
      plan = planDelivery(parsed.envelope, record.topic);
    } catch (err) {
      // A bug for one shape must not stall the partition: treat it as poison.
      skipped.inc({ topic: record.topic, reason: 'plan_failed' });
      log.error('skipping record: planning failed', {
        ...whereOf(record),
        eventId: parsed.envelope.event_id,
        err,
      });
      return skip('plan failed');
    }
    events.inc({ topic: record.topic, event_type: plan.eventType });
    const { eventType, eventId } = plan;
    const producedAt = Date.parse(parsed.envelope.timestamp);
    /**
     * A failure retrying cannot fix (a message that cannot be serialised, a Redis error reply such as
     * WRONGTYPE) makes the record poison: skipped, logged, counted, never retried (docs/decisions.md
     * docs/decisions.md D9). Anything else (Redis unreachable) rejects, and the caller retries the step.
     */
    const poisonOr = (err: unknown, step: 'prepare' | 'send'): RecordOutcome => {
      if (isRetriable(err)) throw err;
      skipped.inc({ topic: record.topic, reason: 'undeliverable' });
      log.error('skipping record: it cannot be delivered', {
        ...whereOf(record),
        eventId,
        eventType,
        step,
        err,
      });
      return { status: 'skipped', reason: 'undeliverable' };
    };
    let delivery: Awaited<ReturnType<typeof prepareDelivery>>;
    try {
      delivery = await prepareDelivery(deliveryDeps, plan, `${record.topic}/${record.partition}`);
    } catch (err) {
      const outcome = poisonOr(err, 'prepare');
      return { recipients: [], barrier: false, deliver: async () => outcome };
    }
    return {
      recipients: delivery.recipients,
      barrier: delivery.changesMembershipAfterSend,
      deliver: async () => {
        try {
          const outcome = await delivery.send();
          // Clamped: a producer's clock ahead of ours must not record a negative latency.
          if (outcome.ok > 0 && Number.isFinite(producedAt))
            latency.observe({ topic: record.topic }, Math.max(0, Date.now() - producedAt) / 1000);
          return { status: 'delivered', eventType, ...outcome };
        } catch (err) {
          return poisonOr(err, 'send');
        }
      },
    };
  }

  const processRecord = async (record: InboundRecord): Promise<RecordOutcome> =>
    (await prepare(record)).deliver();
  return Object.assign(processRecord, { prepare });
}
