import { deliverInOrder, preparerOf, RECORDS_IN_FLIGHT } from './in-order';
import type { InboundRecord, ProcessRecord } from './pipeline';

/** The Lambda event of an MSK or self-managed Kafka event source (values are base64). */
export interface KafkaSourceEvent {
  readonly eventSource?: string;
  readonly records?: Record<string, ReadonlyArray<KafkaSourceRecord>>;
}

export interface KafkaSourceRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number | string;
  readonly value?: string | null;
}

export interface BatchOutcome {
  readonly records: number;
  readonly skipped: number;
}

export interface KafkaEventOptions {
  /** Records of one partition in flight at once. Default {@link RECORDS_IN_FLIGHT}. */
  readonly recordsInFlight?: number;
  /** Retries of a failing step in place before the batch is given back. Default {@link LAMBDA_STEP_RETRIES}. */
  readonly maxRetries?: number;
  /** Milliseconds left for retrying (the invocation's remaining time less a margin). Default: no limit. */
  readonly timeLeftMs?: () => number;
}

/** In-place retries of a failing step: 100 + 200 + 400 + 800 + 1,600 ms of backoff, a Redis failover's worth. */
export const LAMBDA_STEP_RETRIES = 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a Lambda Kafka batch through the pipeline: partitions in parallel, the records of one
 * partition overlapping as in the long-running consumer (`deliverInOrder`: each connection gets
 * them in order, each record's recipients reflect the membership changes before it). Poison records
 * are skipped by the pipeline itself. A transient failure is retried in place a few times, with
 * backoff, within the invocation's time: a retried delivery resumes without pushing again to the
 * recipients it reached (docs/decisions.md D9), whereas giving the batch back makes Lambda run every
 * record of it again. If it keeps failing, the partition stops (what is in flight finishes) and
 * this throws, so Lambda retries the batch from its first offset (at-least-once).
 */
export async function processKafkaEvent(
  event: KafkaSourceEvent,
  processRecord: ProcessRecord,
  {
    recordsInFlight = RECORDS_IN_FLIGHT,
    maxRetries = LAMBDA_STEP_RETRIES,
    timeLeftMs = () => Number.POSITIVE_INFINITY,
  }: KafkaEventOptions = {},
): Promise<BatchOutcome> {
  const partitions = Object.values(event.records ?? {});
  const prepare = preparerOf(processRecord);
  let records = 0;
  let skipped = 0;
  // allSettled, not all: a failed partition must not end the invocation while others are still
  // pushing (Lambda would freeze or reuse the container mid-delivery), so wait for every one, then
  // give the batch back with the first failure (docs/decisions.md D6).
  const settled = await Promise.allSettled(
    partitions.map(async (list) => {
      let failure: { readonly error: unknown } | undefined;
      await deliverInOrder(
        list.map(
          (r): InboundRecord => ({
            topic: r.topic,
            partition: r.partition,
            offset: String(r.offset),
            value: r.value ? Buffer.from(r.value, 'base64') : null,
          }),
        ),
        prepare,
        {
          window: recordsInFlight,
          attempt: async (_offset, step) => {
            for (let retry = 0; ; retry++) {
              try {
                return { value: await step() };
              } catch (error) {
                const delayMs = 100 * 2 ** retry;
                if (failure || retry >= maxRetries || timeLeftMs() < delayMs) {
                  failure ??= { error };
                  return undefined;
                }
                await sleep(delayMs);
              }
            }
          },
          resolved: (_offset, outcome) => {
            records++;
            if (outcome.status === 'skipped') skipped++;
          },
          // The batch is retried from its start anyway: take no more records after a failure.
          proceed: () => failure === undefined,
        },
      );
      if (failure) throw failure.error;
    }),
  );
  const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return { records, skipped };
}
