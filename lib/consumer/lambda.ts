import type { Logger } from '../logger';
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
 * Runs a Lambda Kafka batch through the pipeline: partitions in parallel, records of one partition
 * strictly in order (contract: ordering within a partition must hold). A transient failure throws,
 * so Lambda retries the batch from its first offset (at-least-once); poison records are skipped
 * by the pipeline itself.
 */
export async function processKafkaEvent(
  event: KafkaSourceEvent,
  processRecord: ProcessRecord,
  logger: Logger,
): Promise<BatchOutcome> {
  const partitions = Object.values(event.records ?? {});
  let records = 0;
  let skipped = 0;
  await Promise.all(
    partitions.map(async (list) => {
      for (const r of list) {
        const record: InboundRecord = {
          topic: r.topic,
          partition: r.partition,
          offset: String(r.offset),
          value: r.value ? Buffer.from(r.value, 'base64') : null,
        };
        const outcome = await processRecord(record, logger);
        records++;
        if (outcome.status === 'skipped') skipped++;
      }
    }),
  );
  return { records, skipped };
}
