import { type DeliveryCounters, type DeliveryOutcome, executePlan } from '../events/deliver';
import { parseEnvelope } from '../events/parse';
import { planDelivery } from '../events/plan';
import { cleanupConnection } from '../gateway/cleanup';
import type { CleanupDeps } from '../gateway/deps';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { ClientPusher } from '../push/pusher';

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
}

export type RecordOutcome =
  | { status: 'skipped'; reason: string }
  | ({ status: 'delivered'; eventType: string } & DeliveryOutcome);

/**
 * The event pipeline shared by the long-running consumer and the Lambda handler:
 * parse (lenient, once) → plan (pure) → execute (Redis + pushes).
 *
 * Unparseable records are poison: logged with topic/partition/offset and skipped, never retried.
 * Redis failures propagate so the caller retries the record (nothing is committed past it).
 */
export function createPipeline(deps: PipelineDeps) {
  const events = deps.metrics.counter('ws_gateway_events_total', 'Events consumed, by topic and event type');
  const skipped = deps.metrics.counter('ws_gateway_events_skipped_total', 'Records skipped as unparseable');
  const counters: DeliveryCounters = {
    deliveries: deps.metrics.counter('ws_gateway_deliveries_total', 'Pushes to connections, by result'),
    dropped: deps.metrics.counter('ws_gateway_events_dropped_total', 'Events not delivered, by reason'),
  };
  const cleanupLog = deps.logger.child({ component: 'cleanup' });
  const deliveryDeps = {
    store: deps.store,
    pusher: deps.pusher,
    logger: deps.logger,
    counters,
    concurrency: deps.pushConcurrency,
    onGone: (connectionId: string) =>
      cleanupConnection({ ...deps, logger: cleanupLog }, connectionId, 'gone'),
  };

  return async function processRecord(
    record: InboundRecord,
    log: Logger = deps.logger,
  ): Promise<RecordOutcome> {
    const where = { topic: record.topic, partition: record.partition, offset: record.offset };
    const parsed = parseEnvelope(record.value);
    if (!parsed.ok) {
      skipped.inc({ topic: record.topic });
      log.warn('skipping unparseable record', { ...where, reason: parsed.reason });
      return { status: 'skipped', reason: parsed.reason };
    }
    let plan: ReturnType<typeof planDelivery>;
    try {
      plan = planDelivery(parsed.envelope, record.topic);
    } catch (err) {
      // A bug for one shape must not stall the partition: treat it as poison.
      skipped.inc({ topic: record.topic });
      log.error('skipping record: planning failed', { ...where, eventId: parsed.envelope.event_id, err });
      return { status: 'skipped', reason: 'plan failed' };
    }
    events.inc({ topic: record.topic, event_type: plan.eventType });
    const outcome = await executePlan(deliveryDeps, plan);
    return { status: 'delivered', eventType: plan.eventType, ...outcome };
  };
}

export type ProcessRecord = ReturnType<typeof createPipeline>;
