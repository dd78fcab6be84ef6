/**
 * A Lambda Kafka batch never ends (returns or throws) while another partition is still delivering:
 * the failure of one partition is reported only after every partition settled (docs/decisions.md D6).
 */
import { type KafkaSourceEvent, processKafkaEvent } from '../../../lib/consumer/lambda';
import type { InboundRecord, ProcessRecord, RecordOutcome } from '../../../lib/consumer/pipeline';

const record = (partition: number, offset: number) => ({
  topic: 'games.events',
  partition,
  offset,
  value: Buffer.from('{}').toString('base64'),
});

const event: KafkaSourceEvent = {
  eventSource: 'aws:kafka',
  records: { 'games.events-0': [record(0, 1)], 'games.events-1': [record(1, 7)] },
};

const delivered = (): RecordOutcome => ({
  status: 'delivered',
  eventType: 'x',
  recipients: 1,
  ok: 1,
  gone: 0,
  failed: 0,
});

it('rethrows a partition failure only after the other partitions finished delivering', async () => {
  const timeline: string[] = [];
  let releaseSlow!: () => void;
  const slowHeld = new Promise<void>((resolve) => {
    releaseSlow = resolve;
  });
  const processRecord: ProcessRecord = async (r: InboundRecord) => {
    if (r.partition === 0) {
      timeline.push('partition 0 failed');
      throw new Error('Connection is closed.');
    }
    await slowHeld;
    timeline.push('partition 1 delivered');
    return delivered();
  };

  const batch = processKafkaEvent(event, processRecord, { maxRetries: 0 }).catch((err: Error) => {
    timeline.push(`batch rejected: ${err.message}`);
  });
  // Give the failing partition every chance to end the batch early.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  timeline.push('slow partition released');
  releaseSlow();
  await batch;

  expect(timeline).toEqual([
    'partition 0 failed',
    'slow partition released',
    'partition 1 delivered',
    'batch rejected: Connection is closed.',
  ]);
});

it('resolves with the counts when every partition succeeds', async () => {
  const processRecord: ProcessRecord = async () => delivered();
  await expect(processKafkaEvent(event, processRecord)).resolves.toEqual({ records: 2, skipped: 0 });
});
