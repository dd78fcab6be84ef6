/**
 * Keeps tokens out of serverless-offline's own log (local runs only; nothing here reaches a
 * deployment).
 *
 * At debug level (`SLS_LOG_LEVEL=debug`, `--debug`) serverless-offline prints every WebSocket frame
 * as `message:<frame>`, so a `system.authenticate {"token": …}` would land in the log in clear. Its
 * log writer is the one osls hands to the plugin named `serverless-offline` (memoised per plugin
 * name), so this plugin wraps that writer's levels: every argument passes through `redact` first.
 * test/e2e/auth.test.ts runs a gateway at debug level and greps its whole output for every token it
 * presented (query, Bearer, cookie, authenticate frames).
 */
const { inspect } = require('node:util');

const JWT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?/g;
const JSON_SECRET =
  /("(?:token|auth_token|authorization|cookie|password|secret|jwt)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
const QUERY_TOKEN = /([?&](?:token|auth_token)=)[^&\s"']*/gi;
const BEARER = /(Bearer\s+)[^\s"',;]+/gi;
const COOKIE = /(auth_token=)[^;\s"']*/gi;

/** Free text with every token-shaped part replaced. */
function redactText(text) {
  return text
    .replace(JSON_SECRET, '$1"[redacted]"')
    .replace(QUERY_TOKEN, '$1[redacted]')
    .replace(BEARER, '$1[redacted]')
    .replace(COOKIE, '$1[redacted]')
    .replace(JWT, '[redacted-jwt]');
}

function redact(arg) {
  if (typeof arg === 'string') return redactText(arg);
  if (arg === null || arg === undefined || typeof arg === 'number' || typeof arg === 'boolean') return arg;
  return redactText(inspect(arg, { depth: 4, breakLength: Number.POSITIVE_INFINITY }));
}

const LEVELS = ['debug', 'info', 'verbose', 'notice', 'warning', 'warn', 'error'];

function wrapWriter(log) {
  if (!log || log.__wsGatewayRedacted) return;
  for (const level of LEVELS) {
    const original = log[level];
    if (typeof original !== 'function') continue;
    Object.defineProperty(log, level, {
      configurable: true,
      enumerable: true,
      value: (...args) => original(...args.map(redact)),
    });
  }
  Object.defineProperty(log, '__wsGatewayRedacted', { value: true });
}

class RedactOfflineLog {
  constructor() {
    // osls memoises the writers per plugin name: this is the very object serverless-offline logs with.
    const { getPluginWriters } = require('osls/lib/utils/serverless-utils/log');
    wrapWriter(getPluginWriters('serverless-offline').log);
  }
}

module.exports = RedactOfflineLog;
module.exports.redactText = redactText;
