import type { InboundRecord, PreparedRecord, ProcessRecord, RecordOutcome } from './pipeline';

/**
 * Records of one partition in flight at once. On loopback (docs/BENCHMARKS.md) a few already keep
 * the process busy; the window is sized for real round trips to Redis and API Gateway, where one
 * record at a time would leave a partition waiting on the network most of the time.
 */
export const RECORDS_IN_FLIGHT = 16;

/**
 * The two-step form of a pipeline. Without one, a record is "prepared" by doing all of it, and
 * holds the next one back (records then run one at a time).
 */
export function preparerOf(processRecord: ProcessRecord): (record: InboundRecord) => Promise<PreparedRecord> {
  return (
    processRecord.prepare ??
    (async (record) => ({ recipients: [], barrier: true, deliver: () => processRecord(record) }))
  );
}

export interface InOrderOptions {
  /** Records in flight at most (prepared, not yet resolved). */
  readonly window: number;
  /**
   * Runs one step of a record (its preparation or its delivery). Resolves `undefined` when the step
   * was given up (a failure the caller does not retry in place, or stopping): that record and every
   * later one stay unresolved.
   */
  readonly attempt: <T>(offset: string, step: () => Promise<T>) => Promise<{ value: T } | undefined>;
  /** Called in offset order, once a record and every record before it were delivered. */
  readonly resolved: (offset: string, outcome: RecordOutcome) => Promise<void> | void;
  /** Checked before each record is taken; false stops taking more (what is in flight still finishes). */
  readonly proceed?: () => boolean;
}

/**
 * Delivers the records of one partition with up to `window` of them in flight: while earlier ones
 * are being pushed, the next is prepared (its membership changes applied, its recipients read), and
 * its pushes start as soon as nothing earlier is still being pushed to one of its connections.
 * The partition's contract holds:
 * - records are prepared one after another, and a record that changes memberships after its send
 *   (a barrier) is delivered before the next is prepared: every record's recipients are read after
 *   the membership changes of all the records before it;
 * - a delivery starts only once every earlier delivery to one of its recipients has settled (retries
 *   included): each connection gets the partition's events in order;
 * - records are resolved in offset order, each after it was delivered (at-least-once). A step given
 *   up leaves its record and every later one unresolved, and no later delivery to its recipients
 *   starts; what is already in flight finishes before this returns.
 *
 * A push that finds a connection gone (410) cleans it up during the delivery; a later record whose
 * recipients were read before that may still push to it, get 410 again and clean up again (which is
 * idempotent) — exactly as with records of two partitions.
 *
 * @returns false when a step was given up
 * @throws what `resolved` (or `attempt`) threw, once what was in flight has finished; nothing else
 *   is left rejected behind it
 */
export async function deliverInOrder(
  records: Iterable<InboundRecord>,
  prepare: (record: InboundRecord) => Promise<PreparedRecord>,
  { window, attempt, resolved, proceed = () => true }: InOrderOptions,
): Promise<boolean> {
  type Delivered = { value: RecordOutcome } | undefined;
  const inFlight: Array<{ offset: string; delivered: Promise<Delivered> }> = [];
  /** The latest delivery pushing to each connection. */
  const lastTo = new Map<string, Promise<Delivered>>();
  let barrier: Promise<Delivered> | undefined;
  /** False from the first record that was not delivered (or whose resolution failed) on. */
  let complete = true;
  let preparedAll = true;
  let failure: { readonly error: unknown } | undefined;
  /**
   * `attempt` is not expected to reject, but one that does (a bug, a heartbeat thrown at the wrong
   * place) must not leave a rejected promise behind: the delivery chains below would turn it into an
   * unhandled rejection, which ends the process. It counts as given up and is rethrown at the end.
   */
  const attemptSafely = async <T>(offset: string, step: () => Promise<T>) => {
    try {
      return await attempt(offset, step);
    } catch (error) {
      failure ??= { error };
      return undefined;
    }
  };
  const settleHead = async (): Promise<void> => {
    const head = inFlight.shift()!;
    const done = await head.delivered;
    if (!done) complete = false;
    if (!complete || !done) return;
    try {
      await resolved(head.offset, done.value);
    } catch (error) {
      // Rethrown once what is in flight has finished (e.g. a heartbeat that found a rebalance).
      failure ??= { error };
      complete = false;
    }
  };

  for (const record of records) {
    if (!proceed()) break;
    // Given up: it stays in flight, unresolved, and so does everything after it.
    if (barrier && !(await barrier)) break;
    barrier = undefined;
    while (inFlight.length >= window) await settleHead();
    if (!complete) break;
    const { offset } = record;
    const prepared = await attemptSafely(offset, () => prepare(record));
    if (!prepared) {
      preparedAll = false;
      break;
    }
    const { recipients, deliver, barrier: holds } = prepared.value;
    const earlier = new Set<Promise<Delivered>>();
    for (const c of recipients) {
      const p = lastTo.get(c);
      if (p) earlier.add(p);
    }
    const delivered = Promise.all(earlier).then((before) =>
      before.every(Boolean) ? attemptSafely(offset, deliver) : undefined,
    );
    for (const c of recipients) lastTo.set(c, delivered);
    void delivered.then(() => {
      for (const c of recipients) if (lastTo.get(c) === delivered) lastTo.delete(c);
    });
    inFlight.push({ offset, delivered });
    if (holds) barrier = delivered;
  }
  while (inFlight.length > 0) await settleHead();
  if (failure) throw failure.error;
  return complete && preparedAll;
}
