import { readFileSync } from 'node:fs';
import type { Algorithm, JwtPayload } from 'jsonwebtoken';
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

/** What a verified token says about its user. */
export interface TokenClaims {
  /** `sub`: a positive integer, as a decimal string. */
  readonly userId: string;
  /** The `username` claim; absent when the token has none (or an empty one). */
  readonly username?: string;
  /** The `roles` claim's strings, `[]` when absent. */
  readonly roles: readonly string[];
}

export interface TokenVerifier {
  /** Verifies a JWT and returns its claims; throws `TokenError`. */
  verify(token: string): TokenClaims;
  /** True when at least one key is configured. */
  readonly hasKeys: boolean;
}

export interface VerifierOptions {
  /** RS256 public key (PEM). */
  publicKey?: string;
  /** HS256 shared secret. */
  secret?: string;
  /** When set, `iss` must equal it (`JWT_ISSUER`). */
  issuer?: string;
  /** When set, `aud` must contain it (`JWT_AUDIENCE`). */
  audience?: string;
  clockToleranceSecs?: number;
  /** Longer tokens are rejected before any decoding (a session JWT is well under 1 KiB). */
  maxTokenLength?: number;
}

/** The largest user id the platform issues (a signed 64-bit integer). */
const MAX_USER_ID = 9223372036854775807n;

/**
 * `sub` as a user id: a JSON integer ≥ 1, or a string of decimal digits without leading zeros
 * (1 … 2^63−1). Anything else (0, negatives, "", "abc", "007", 1.5) names no user.
 */
export function userIdFromSub(sub: unknown): string | undefined {
  if (typeof sub === 'number') return Number.isSafeInteger(sub) && sub >= 1 ? String(sub) : undefined;
  if (typeof sub === 'string' && /^[1-9]\d{0,18}$/.test(sub) && BigInt(sub) <= MAX_USER_ID) return sub;
  return undefined;
}

/**
 * jsonwebtoken, loaded on the first token verified rather than at module load: with semver, which
 * it evaluates on import, it is 20–27 ms of CPU on a cold start, and most functions never see a token
 * (docs/architecture.md, "Cold start"). A synchronous `require`: `verify` is synchronous.
 */
let jwtModule: typeof import('jsonwebtoken') | undefined;
const jwt = (): typeof import('jsonwebtoken') => {
  jwtModule ??= require('jsonwebtoken') as typeof import('jsonwebtoken');
  return jwtModule;
};

/**
 * JWT verification (docs/decisions.md D2): each configured key accepts only its own algorithm
 * (RS256 for the public key, HS256 for the secret); `none` and any algorithm without a key are
 * rejected; `exp` is required (60 s leeway), `nbf` honoured; `sub` is a positive integer user id;
 * `iss` / `aud` are checked when configured.
 */
export function createTokenVerifier({
  publicKey,
  secret,
  issuer,
  audience,
  clockToleranceSecs = 60,
  maxTokenLength = 8192,
}: VerifierOptions): TokenVerifier {
  // A Map, not an object: the algorithm comes from the token, and `keyFor["constructor"]` on a
  // plain object reaches Object.prototype.
  const keyFor = new Map<string, string>();
  if (publicKey) keyFor.set('RS256', publicKey);
  if (secret) keyFor.set('HS256', secret);

  return {
    hasKeys: keyFor.size > 0,
    verify(token) {
      if (token.length > maxTokenLength) throw new TokenError('InvalidToken');
      const decoded = jwt().decode(token, { complete: true });
      if (!decoded || typeof decoded.payload === 'string') throw new TokenError('InvalidToken');
      const alg: unknown = decoded.header.alg;
      const key = typeof alg === 'string' ? keyFor.get(alg) : undefined;
      if (key === undefined) throw new TokenError('InvalidAlgorithm');
      let claims: JwtPayload;
      try {
        claims = jwt().verify(token, key, {
          algorithms: [alg as Algorithm],
          clockTolerance: clockToleranceSecs,
          ...(issuer !== undefined ? { issuer } : {}),
          ...(audience !== undefined ? { audience } : {}),
        }) as JwtPayload;
      } catch (err) {
        throw new TokenError(reasonOf(err as Error), { cause: err });
      }
      if (typeof claims.exp !== 'number') throw new TokenError('Missing required claim: exp');
      const userId = userIdFromSub(claims.sub);
      if (userId === undefined) throw new TokenError('InvalidSubject');
      const username =
        typeof claims.username === 'string' && claims.username !== '' ? claims.username : undefined;
      const roles = Array.isArray(claims.roles)
        ? claims.roles.filter((r): r is string => typeof r === 'string')
        : [];
      return username === undefined ? { userId, roles } : { userId, username, roles };
    },
  };
}

/** The names the Rust gateway's verifier used, so clients see the same reasons. */
function reasonOf(e: Error): string {
  if (e.name === 'TokenExpiredError') return 'ExpiredSignature';
  if (e.name === 'NotBeforeError') return 'ImmatureSignature';
  if (/^jwt issuer invalid/.test(e.message)) return 'InvalidIssuer';
  if (/^jwt audience invalid/.test(e.message)) return 'InvalidAudience';
  if (/signature/i.test(e.message)) return 'InvalidSignature';
  return 'InvalidToken';
}

/** The identity of `system.authenticate`'s token form: `username` defaults to "unknown" (docs/decisions.md D2). */
export function tokenIdentity(claims: TokenClaims): Identity {
  return { userId: claims.userId, username: claims.username ?? 'unknown', roles: claims.roles };
}

/** Reads the RS256 key file if it exists; a missing default path is not an error (HS256 may be used). */
export function readPublicKey(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
