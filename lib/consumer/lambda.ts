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

/**
 * Runs a Lambda Kafka batch through the pipeline: partitions in parallel, the records of one
 * partition overlapping as in the long-running consumer (`deliverInOrder`: each connection gets
 * them in order, each record's recipients reflect the membership changes before it). A transient
 * failure stops the partition (what is in flight finishes) and throws, so Lambda retries the batch
 * from its first offset (at-least-once); poison records are skipped by the pipeline itself.
 */
export async function processKafkaEvent(
  event: KafkaSourceEvent,
  processRecord: ProcessRecord,
  recordsInFlight = RECORDS_IN_FLIGHT,
): Promise<BatchOutcome> {
  const partitions = Object.values(event.records ?? {});
  const prepare = preparerOf(processRecord);
  let records = 0;
  let skipped = 0;
  await Promise.all(
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
            try {
              return { value: await step() };
            } catch (error) {
              failure ??= { error };
              return undefined;
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
  return { records, skipped };
}
