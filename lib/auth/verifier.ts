import { readFileSync } from 'node:fs';
import jwt, { type Algorithm, type JwtPayload } from 'jsonwebtoken';
import type { Identity } from '../protocol/envelope';

/**
 * A token failed verification. `reason` is a short, safe word for the client
 * ("Authentication failed: Invalid token: <reason>"); the token itself is never included.
 */
export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Invalid token: ${reason}`, options);
  }
}

export interface TokenVerifier {
  /** Verifies a JWT and returns the identity it carries; throws `TokenError`. */
  verify(token: string): Identity;
  /** True when at least one key is configured. */
  readonly hasKeys: boolean;
}

export interface VerifierOptions {
  /** RS256 public key (PEM). */
  publicKey?: string;
  /** HS256 shared secret. */
  secret?: string;
  clockToleranceSecs?: number;
}

/**
 * JWT verification (D2): each configured key accepts only its own algorithm (RS256 for the
 * public key, HS256 for the secret); `none` and any algorithm without a key are rejected;
 * `exp` is required (60 s leeway); `sub` may be a string or an integer.
 */
export function createTokenVerifier({
  publicKey,
  secret,
  clockToleranceSecs = 60,
}: VerifierOptions): TokenVerifier {
  const keyFor: Partial<Record<Algorithm, string>> = {};
  if (publicKey) keyFor.RS256 = publicKey;
  if (secret) keyFor.HS256 = secret;

  return {
    hasKeys: Object.keys(keyFor).length > 0,
    verify(token) {
      const decoded = jwt.decode(token, { complete: true });
      if (!decoded || typeof decoded.payload === 'string') throw new TokenError('InvalidToken');
      const alg = decoded.header.alg as Algorithm;
      const key = keyFor[alg];
      if (!key) throw new TokenError('InvalidAlgorithm');
      let claims: JwtPayload;
      try {
        claims = jwt.verify(token, key, {
          algorithms: [alg],
          clockTolerance: clockToleranceSecs,
        }) as JwtPayload;
      } catch (err) {
        const e = err as Error;
        if (e.name === 'TokenExpiredError') throw new TokenError('ExpiredSignature', { cause: err });
        if (/signature/i.test(e.message)) throw new TokenError('InvalidSignature', { cause: err });
        throw new TokenError('InvalidToken', { cause: err });
      }
      if (typeof claims.exp !== 'number') throw new TokenError('Missing required claim: exp');
      const sub: unknown = claims.sub;
      let userId: string;
      if (typeof sub === 'string' && sub !== '') userId = sub;
      else if (typeof sub === 'number' && Number.isSafeInteger(sub)) userId = String(sub);
      else throw new TokenError('InvalidSubject');
      const username = typeof claims.username === 'string' ? claims.username : 'unknown';
      const roles = Array.isArray(claims.roles)
        ? claims.roles.filter((r): r is string => typeof r === 'string')
        : [];
      return { userId, username, roles };
    },
  };
}

/** Reads the RS256 key file if it exists; a missing default path is not an error (HS256 may be used). */
export function readPublicKey(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Where a token can come from at `$connect` (D2). */
export interface ConnectRequest {
  readonly queryStringParameters?: Record<string, string | undefined> | null;
  readonly headers?: Record<string, string | undefined> | null;
}

/**
 * Finds a token presented at connect time: `?token=`, `Authorization: Bearer`, then the session
 * cookie. Returns undefined when none was presented.
 */
export function tokenFromConnect(req: ConnectRequest, cookieName: string): string | undefined {
  const q = req.queryStringParameters?.token;
  if (q) return q;
  const headers = req.headers ?? {};
  let authorization: string | undefined;
  let cookie: string | undefined;
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (n === 'authorization') authorization = value;
    else if (n === 'cookie') cookie = value;
  }
  const bearer = authorization && /^Bearer\s+(.+)$/i.exec(authorization.trim());
  if (bearer?.[1]) return bearer[1].trim();
  if (cookie) {
    for (const part of cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === cookieName) {
        const v = part.slice(eq + 1).trim();
        if (v) return decodeCookieValue(v);
      }
    }
  }
  return undefined;
}

/**
 * Cookie values are usually percent-encoded; one that is not valid percent-encoding is still a
 * presented token (it will fail verification: 401), never a reason to fail the whole `$connect`.
 */
function decodeCookieValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
