import type { Identity } from '../protocol/envelope';
import { type OriginPolicy, originAllowed, originBindsCookie } from './origins';
import { TokenError, type TokenVerifier } from './verifier';

/** The parts of the upgrade request `$connect` reads (docs/decisions.md D2, D8). */
export interface ConnectRequest {
  readonly queryStringParameters?: Record<string, string | undefined> | null;
  readonly headers?: Record<string, string | undefined> | null;
}

/** Where a token presented at `$connect` came from. */
export type CredentialSource = 'query' | 'bearer' | 'cookie';

export interface PresentedToken {
  readonly token: string;
  readonly source: CredentialSource;
}

/** Header lookup by case-insensitive name (API Gateway keeps the client's spelling). */
function header(req: ConnectRequest, name: string): string | undefined {
  for (const [n, value] of Object.entries(req.headers ?? {})) {
    if (n.toLowerCase() === name && typeof value === 'string') return value;
  }
  return undefined;
}

/**
 * Finds a token presented at connect time: `?token=`, `Authorization: Bearer`, then the session
 * cookie. Returns undefined when none was presented.
 */
export function tokenFromConnect(req: ConnectRequest, cookieName: string): PresentedToken | undefined {
  const q = req.queryStringParameters?.token;
  if (q) return { token: q, source: 'query' };
  const bearer = /^Bearer\s+(.+)$/i.exec(header(req, 'authorization')?.trim() ?? '');
  if (bearer?.[1]) return { token: bearer[1].trim(), source: 'bearer' };
  const cookie = header(req, 'cookie');
  if (cookie) {
    for (const part of cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === cookieName) {
        const v = part.slice(eq + 1).trim();
        if (v) return { token: decodeCookieValue(v), source: 'cookie' };
      }
    }
  }
  return undefined;
}

/**
 * Cookie values are usually percent-encoded; one that is not valid percent-encoding is still a
 * presented token (it fails verification), never a reason to fail the whole `$connect`.
 */
function decodeCookieValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Why a presented session cookie did not bind the connection (logged and counted). */
export type CookieIgnoredReason = 'invalid' | 'origin';

/** What `$connect` does with an upgrade. */
export type UpgradeDecision =
  | { readonly status: 401; readonly source: 'query' | 'bearer'; readonly reason: string }
  | { readonly status: 403; readonly origin: string }
  | {
      readonly status: 200;
      /** The verified identity the connection is bound to, or null (anonymous). */
      readonly bound: Identity | null;
      readonly source?: CredentialSource;
      /** Set when a session cookie was presented and ignored. */
      readonly cookieIgnored?: { readonly reason: CookieIgnoredReason; readonly detail: string };
    };

export interface UpgradeAuthOptions {
  readonly verifier: TokenVerifier;
  readonly origins: OriginPolicy;
  readonly cookieName: string;
}

/**
 * The authentication decision of `$connect` (docs/decisions.md D2, D8), pure:
 * - an `Origin` that is present and not allowed → 403, before any token is looked at;
 * - an invalid `?token=` or `Authorization: Bearer` token → 401;
 * - a session cookie binds only from a listed origin, and an invalid, expired or unverifiable one is
 *   ignored (the connection opens unbound), because browsers send it on every upgrade;
 * - a valid token binds the connection (username `""` when the token has no `username` claim:
 *   the client's value is used then, docs/protocol.md).
 */
export function authorizeUpgrade(opts: UpgradeAuthOptions, req: ConnectRequest): UpgradeDecision {
  const origin = header(req, 'origin');
  if (origin !== undefined && !originAllowed(opts.origins, origin)) return { status: 403, origin };
  const presented = tokenFromConnect(req, opts.cookieName);
  if (presented === undefined) return { status: 200, bound: null };
  const { token, source } = presented;
  if (source === 'cookie' && !originBindsCookie(opts.origins, origin)) {
    return {
      status: 200,
      bound: null,
      source,
      cookieIgnored: { reason: 'origin', detail: origin === undefined ? 'no origin' : 'origin not listed' },
    };
  }
  try {
    const claims = opts.verifier.verify(token);
    return {
      status: 200,
      bound: { userId: claims.userId, username: claims.username ?? '', roles: claims.roles },
      source,
    };
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    if (source === 'cookie')
      return { status: 200, bound: null, source, cookieIgnored: { reason: 'invalid', detail: err.reason } };
    return { status: 401, source, reason: err.reason };
  }
}
