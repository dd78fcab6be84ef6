/**
 * `processKafkaEvent`'s retry rule, against a scripted pipeline (no network): a transient failure is
 * retried in place, so the batch is not given back and nothing delivered before it runs again;
 * a failure that persists gives the batch back (Lambda retries it).
 */
import { type KafkaSourceEvent, processKafkaEvent } from '../../../lib/consumer/lambda';
import type { InboundRecord, ProcessRecord, RecordOutcome } from '../../../lib/consumer/pipeline';

const event = (offsets: number[]): KafkaSourceEvent => ({
  eventSource: 'aws:kafka',
  records: {
    'games.events-0': offsets.map((offset) => ({
      topic: 'games.events',
      partition: 0,
      offset,
      value: Buffer.from('{}').toString('base64'),
    })),
  },
});

const delivered = (): RecordOutcome => ({
  status: 'delivered',
  eventType: 'x',
  recipients: 1,
  ok: 1,
  gone: 0,
  failed: 0,
});

/** A pipeline that logs every run of a record and fails offset `failing` the first `times` runs. */
function flaky(failing: string, times: number) {
  const runs: string[] = [];
  let left = times;
  const processRecord: ProcessRecord = async (record: InboundRecord) => {
    runs.push(record.offset);
    if (record.offset === failing && left-- > 0) throw new Error('Connection is closed.');
    return delivered();
  };
  return { runs, processRecord };
}

describe('processKafkaEvent', () => {
  it('retries a transient failure in place: the batch completes and no record runs twice but the failing one', async () => {
    const { runs, processRecord } = flaky('2', 2);

    const outcome = await processKafkaEvent(event([1, 2, 3]), processRecord);

    expect(outcome).toEqual({ records: 3, skipped: 0 });
    expect(runs).toEqual(['1', '2', '2', '2', '3']);
  });

  it('gives the batch back (throws) when the failure outlasts its retries', async () => {
    const { runs, processRecord } = flaky('2', 100);

    await expect(processKafkaEvent(event([1, 2, 3]), processRecord, { maxRetries: 2 })).rejects.toThrow(
      'Connection is closed.',
    );
    expect(runs).toEqual(['1', '2', '2', '2']);
  });

  it('does not retry past the time it was given', async () => {
    const { runs, processRecord } = flaky('1', 100);

    await expect(processKafkaEvent(event([1]), processRecord, { timeLeftMs: () => 50 })).rejects.toThrow();
    expect(runs).toEqual(['1']);
  });
});
