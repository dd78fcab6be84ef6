import middy from '@middy/core';
import { requireManagementEndpoint } from '../lib/config';
import { type BatchOutcome, type KafkaSourceEvent, processKafkaEvent } from '../lib/consumer/lambda';
import { createPipeline, type ProcessRecord } from '../lib/consumer/pipeline';
import type { Fanout } from '../lib/push/scheduler';
import { createPipelineFanout } from '../lib/runtime/fanout';
import { getRuntime, observability } from '../lib/runtime/lambda';

let processRecord: ProcessRecord | undefined;
let fanout: Fanout | undefined;

/** Time kept back from in-place retries for what is in flight to finish before the Lambda timeout. */
const RETRY_MARGIN_MS = 15_000;

/**
 * The event pipeline behind a Lambda Kafka event source (MSK or self-managed Kafka), for deployed
 * stages. The same pipeline as consumers/events.ts; the Management API endpoint comes from
 * WS_MANAGEMENT_ENDPOINT (there is no WebSocket request context here).
 */
export const handler = middy<KafkaSourceEvent, BatchOutcome>()
  .use(observability())
  .handler(async (event, context) => {
    const runtime = getRuntime();
    const { deps, metrics, redis } = runtime;
    const endpoint = requireManagementEndpoint(deps.config);
    if (!processRecord || !fanout) {
      fanout = createPipelineFanout({
        config: deps.config,
        endpoint,
        redis,
        logger: deps.logger,
        metrics,
        credentials: runtime.credentialsFor(endpoint),
        closer: deps.closerFor(endpoint),
      });
      processRecord = createPipeline({
        ...deps,
        pusher: deps.pusherFor(endpoint),
        fanout,
        metrics,
        pushConcurrency: deps.config.push.concurrency,
      });
    }
    // Retries in place stop well before the timeout, so a batch that keeps failing is given back
    // (and retried by Lambda) rather than cut off mid-delivery.
    const outcome = await processKafkaEvent(event, processRecord, {
      timeLeftMs: () => context.getRemainingTimeInMillis() - RETRY_MARGIN_MS,
    });
    // A frozen container sends nothing: the broadcasts handed off must go out before returning.
    await fanout.idle();
    return outcome;
  });
