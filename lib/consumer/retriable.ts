/**
 * Whether a failure while processing a record can pass with time (retry the record in place) or
 * cannot (the record is poison: skip it, log it, count it — docs/decisions.md D9).
 */

/**
 * Error replies that Redis gives while it is starting, failing over, out of memory or busy: the
 * same command succeeds later. Every other error reply (WRONGTYPE, a syntax or argument error, a
 * script error) is Redis's verdict on the command and its data, and repeats on every retry.
 */
const TRANSIENT_REPLIES =
  /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|OOM|NOREPLICAS|MISCONF|MOVED|ASK|ERR max number of clients)\b/;

/** Errors of JavaScript itself: a bug or an input our code cannot handle, the same on every retry. */
const DETERMINISTIC: ReadonlySet<string> = new Set([
  'TypeError',
  'RangeError',
  'SyntaxError',
  'ReferenceError',
  'URIError',
]);

/**
 * Classifies a failure. In order:
 * 1. an error that carries its own decision (`retriable: boolean` — the gateway's errors, PushError,
 *    kafkajs errors) is taken at its word;
 * 2. a Redis error reply (ioredis `ReplyError`) is retriable only when it is one of the transient
 *    replies above;
 * 3. `TypeError`, `RangeError` (JSON.stringify of something nested too deep), … are not;
 * 4. anything else — a closed connection, a command timeout, ioredis giving up on a request while
 *    Redis is down — is retriable: losing an event to an outage is worse than waiting for it.
 */
export function isRetriable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return true;
  const decision = (err as { retriable?: unknown }).retriable;
  if (typeof decision === 'boolean') return decision;
  const name = (err as { name?: unknown }).name;
  if (name === 'ReplyError') return TRANSIENT_REPLIES.test(String((err as { message?: unknown }).message));
  return !(typeof name === 'string' && DETERMINISTIC.has(name));
}
