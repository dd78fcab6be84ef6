import { types } from 'node:util';
import type { LogLevel } from './config';

/** Structured JSON logger. One line per entry on stdout; child loggers carry context (connectionId, eventId …). */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  isDebugEnabled(): boolean;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Field names whose values never reach a log line. */
const SECRET_KEYS = /^(token|authorization|cookie|password|secret|jwt|auth_token|credentials?|signature)$/i;

/**
 * An error as a log field: name, message, `code` and the error's other own scalar fields
 * (`statusCode`, `retriable` …), the stack, and its cause. Logs only: clients never see it.
 */
function errorFields(err: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  for (const [k, v] of Object.entries(err)) {
    if (k === 'cause' || SECRET_KEYS.test(k)) continue;
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
  }
  if (err.stack) out['stack'] = err.stack;
  if (err.cause !== undefined) out['cause'] = redact(err.cause, depth + 1);
  return out;
}

function redact(value: unknown, depth = 0): unknown {
  // types.isNativeError also holds for errors from another realm (Node internals under jest).
  if (value instanceof Error || types.isNativeError(value)) return errorFields(value as Error, depth);
  if (!value || typeof value !== 'object' || depth > 4) return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEYS.test(k) ? '[redacted]' : redact(v, depth + 1);
  return out;
}

/** The fields of a log entry with secrets replaced and errors expanded (for adapters onto other loggers). */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return redact(fields) as Record<string, unknown>;
}

export interface LoggerOptions {
  level: LogLevel;
  base?: Record<string, unknown>;
  write?: (line: string) => void;
}

export function createLogger({
  level,
  base = {},
  write = (l) => process.stdout.write(l),
}: LoggerOptions): Logger {
  const min = ORDER[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const entry = {
      time: new Date().toISOString(),
      level: lvl,
      msg,
      ...base,
      ...(fields ? (redact(fields) as object) : {}),
    };
    let line: string;
    try {
      line = JSON.stringify(entry);
    } catch {
      line = JSON.stringify({ time: entry.time, level: lvl, msg, ...base, unserializable: true });
    }
    write(`${line}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ level, base: { ...base, ...(redact(fields) as object) }, write }),
    isDebugEnabled: () => min <= ORDER.debug,
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger({ level: 'silent' });
