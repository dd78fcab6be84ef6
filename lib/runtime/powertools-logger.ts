import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { type Logger, redactFields } from '../logger';

/**
 * The `Logger` port on a Powertools logger. Child loggers only add fields: every entry goes through
 * the one Powertools instance the `injectLambdaContext` middleware decorates, so entries of loggers
 * created before the first invocation (the pusher's, the store's) still carry the request id, cold
 * start and function name. Fields are redacted and errors expanded exactly as by `createLogger`.
 */
export function loggerOnPowertools(
  pt: PowertoolsLogger,
  base: Readonly<Record<string, unknown>> = {},
): Logger {
  const fieldsOf = (fields: Record<string, unknown> | undefined) =>
    fields ? { ...base, ...redactFields(fields) } : base;
  return {
    debug: (msg, fields) => pt.debug(msg, fieldsOf(fields)),
    info: (msg, fields) => pt.info(msg, fieldsOf(fields)),
    warn: (msg, fields) => pt.warn(msg, fieldsOf(fields)),
    error: (msg, fields) => pt.error(msg, fieldsOf(fields)),
    child: (fields) => loggerOnPowertools(pt, { ...base, ...redactFields(fields) }),
    isDebugEnabled: () => ['TRACE', 'DEBUG'].includes(pt.getLevelName()),
  };
}
