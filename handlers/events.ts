import middy from '@middy/core';
import { requireManagementEndpoint } from '../lib/config';
import { type BatchOutcome, type KafkaSourceEvent, processKafkaEvent } from '../lib/consumer/lambda';
import { createPipeline, type ProcessRecord } from '../lib/consumer/pipeline';
import type { GatewayDeps } from '../lib/gateway/deps';
import type { Fanout } from '../lib/push/scheduler';
import type { Runtime } from '../lib/runtime/container';
import { createPipelineFanout } from '../lib/runtime/fanout';
import { type FunctionWiring, inContainer } from '../lib/runtime/lambda';

/** Time kept back from in-place retries for what is in flight to finish before the Lambda timeout. */
const RETRY_MARGIN_MS = 15_000;

export interface EventsDeps extends GatewayDeps {
  /**
   * The fan-out scheduler pushing through a Management API endpoint (lib/push/scheduler.ts), asked
   * for once, on the first invocation: in a container the one of lib/runtime/fanout.ts.
   */
  readonly createFanout: (endpoint: string) => Fanout;
}

/**
 * The event pipeline behind a Lambda Kafka event source (MSK or self-managed Kafka), for deployed
 * stages. The same pipeline as consumers/events.ts; the Management API endpoint comes from
 * WS_MANAGEMENT_ENDPOINT (there is no WebSocket request context here).
 */
export function createEventsHandler({ deps, observability }: FunctionWiring<EventsDeps>) {
  let processRecord: ProcessRecord | undefined;
  let fanout: Fanout | undefined;
  return middy<KafkaSourceEvent, BatchOutcome>()
    .use(observability.middlewares())
    .handler(async (event, context) => {
      const gateway = deps();
      const endpoint = requireManagementEndpoint(gateway.config);
      if (!processRecord || !fanout) {
        fanout = gateway.createFanout(endpoint);
        processRecord = createPipeline({
          ...gateway,
          pusher: gateway.pusherFor(endpoint),
          fanout,
          metrics: gateway.metrics,
          pushConcurrency: gateway.config.push.concurrency,
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
}

let containerDeps: EventsDeps | undefined;

/** The container's runtime with the pipeline's fan-out: the budget in Redis, signed pushes. */
function eventsDepsOf(runtime: Runtime): EventsDeps {
  containerDeps ??= {
    ...runtime.deps,
    createFanout: (endpoint) =>
      createPipelineFanout({
        config: runtime.deps.config,
        endpoint,
        redis: runtime.redis,
        logger: runtime.deps.logger,
        metrics: runtime.metrics,
        credentials: runtime.credentialsFor(endpoint),
        closer: runtime.deps.closerFor(endpoint),
      }),
  };
  return containerDeps;
}

export const handler = createEventsHandler(inContainer(eventsDepsOf));
