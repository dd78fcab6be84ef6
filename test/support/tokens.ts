/**
 * JWTs minted by hand for tests, so that broken ones (alg none, algorithm confusion, truncated,
 * prototype-named algorithms…) can be built as easily as valid ones, and the table of JWT attacks
 * every auth test runs (unit verifier, `$connect`, `system.authenticate`).
 */
import { createHmac, generateKeyPairSync, type KeyObject, randomUUID, sign as rsaSign } from 'node:crypto';

export interface Claims {
  readonly sub?: unknown;
  readonly username?: unknown;
  readonly roles?: unknown;
  readonly exp?: number;
  readonly iat?: number;
  readonly nbf?: number;
  readonly iss?: string;
  readonly aud?: string | string[];
  readonly [claim: string]: unknown;
}

export const nowSecs = () => Math.floor(Date.now() / 1000);

/** Claims valid for 10 minutes for `sub`, plus `extra`. */
export const claimsFor = (sub: unknown, extra: Partial<Claims> = {}): Claims => ({
  sub,
  iat: nowSecs(),
  exp: nowSecs() + 600,
  ...extra,
});

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

export interface TokenKit {
  /** The HS256 secret the gateway under test is given. */
  readonly secret: string;
  /** The RS256 public key (PEM) the gateway under test is given. */
  readonly publicKeyPem: string;
  /** Every token minted, to check none of them ever shows up in a log. */
  readonly issued: Set<string>;
  rs256(claims: Claims, key?: KeyObject): string;
  hs256(claims: Claims, secret?: string): string;
  unsigned(claims: Claims): string;
  /** Any header, signed with HS256 by `secret` (for `alg` values no key exists for). */
  withHeader(header: Record<string, unknown>, claims: Claims, secret?: string): string;
  /** An RS256 key pair the gateway does not know. */
  readonly foreignKey: KeyObject;
}

export function createTokenKit(secret = `hs-secret-${randomUUID()}`): TokenKit {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const issued = new Set<string>();
  const mint = (header: Record<string, unknown>, claims: Claims, signature: (input: string) => Buffer) => {
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(signature(input))}`;
    issued.add(token);
    return token;
  };
  const hmac = (key: string) => (input: string) => createHmac('sha256', key).update(input).digest();
  return {
    secret,
    publicKeyPem: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    issued,
    foreignKey: other.privateKey,
    rs256: (claims, key = rsa.privateKey) =>
      mint({ alg: 'RS256', typ: 'JWT' }, claims, (input) => rsaSign('sha256', Buffer.from(input), key)),
    hs256: (claims, key = secret) => mint({ alg: 'HS256', typ: 'JWT' }, claims, hmac(key)),
    unsigned: (claims) => mint({ alg: 'none', typ: 'JWT' }, claims, () => Buffer.alloc(0)),
    withHeader: (header, claims, key = secret) => mint(header, claims, hmac(key)),
  };
}

export interface JwtAttack {
  readonly name: string;
  readonly token: () => string;
  /** The reason the verifier gives ("Authentication failed: Invalid token: <reason>"). */
  readonly reason: string;
}

export interface AttackOptions {
  /** The verifier under test has the HS256 secret too (else RS256 only). */
  readonly hasSecret: boolean;
  /** `JWT_ISSUER` / `JWT_AUDIENCE` of the verifier under test, when configured. */
  readonly issuer?: string;
  readonly audience?: string;
}

/**
 * Tokens that must never verify, each with the reason the verifier gives. Every one of them names
 * a user (`sub`), so accepting one would bind or authenticate a connection.
 */
export function jwtAttacks(kit: TokenKit, opts: AttackOptions): JwtAttack[] {
  const sub = 424242;
  const ok = (extra: Partial<Claims> = {}) =>
    claimsFor(sub, {
      ...(opts.issuer !== undefined ? { iss: opts.issuer } : {}),
      ...(opts.audience !== undefined ? { aud: opts.audience } : {}),
      ...extra,
    });
  const valid = () => kit.rs256(ok());
  const attacks: JwtAttack[] = [
    { name: 'alg none (unsigned)', token: () => kit.unsigned(ok()), reason: 'InvalidAlgorithm' },
    {
      name: 'alg "None" (case variant)',
      token: () => kit.withHeader({ alg: 'None' }, ok()),
      reason: 'InvalidAlgorithm',
    },
    {
      name: 'the RSA public key used as HS256 secret',
      token: () => kit.hs256(ok(), kit.publicKeyPem),
      reason: opts.hasSecret ? 'InvalidSignature' : 'InvalidAlgorithm',
    },
    {
      name: 'HS512 (no key for it)',
      token: () => kit.withHeader({ alg: 'HS512' }, ok()),
      reason: 'InvalidAlgorithm',
    },
    ...['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'].map((alg) => ({
      name: `alg "${alg}" (an Object.prototype name)`,
      token: () => kit.withHeader({ alg, typ: 'JWT' }, ok()),
      reason: 'InvalidAlgorithm',
    })),
    {
      name: 'alg not a string',
      token: () => kit.withHeader({ alg: ['RS256'] }, ok()),
      reason: 'InvalidAlgorithm',
    },
    {
      name: 'expired (past the 60 s leeway)',
      token: () => kit.rs256(ok({ exp: nowSecs() - 3600 })),
      reason: 'ExpiredSignature',
    },
    {
      name: 'not yet valid (nbf in an hour)',
      token: () => kit.rs256(ok({ nbf: nowSecs() + 3600 })),
      reason: 'ImmatureSignature',
    },
    {
      name: 'without exp',
      token: () => kit.rs256(ok({ exp: undefined })),
      reason: 'Missing required claim: exp',
    },
    {
      name: 'RS256 signed by a foreign key',
      token: () => kit.rs256(ok(), kit.foreignKey),
      reason: 'InvalidSignature',
    },
    {
      name: 'HS256 signed by another secret',
      token: () => kit.hs256(ok(), 'not-the-secret'),
      reason: opts.hasSecret ? 'InvalidSignature' : 'InvalidAlgorithm',
    },
    {
      name: 'a valid signature over another payload (sub swapped)',
      token: () => {
        const [h, , s] = valid().split('.');
        const forged = `${h}.${b64url(JSON.stringify(ok({ sub: 1 })))}.${s}`;
        kit.issued.add(forged);
        return forged;
      },
      reason: 'InvalidSignature',
    },
    {
      name: 'truncated: signature removed',
      token: () => `${valid().split('.').slice(0, 2).join('.')}.`,
      reason: 'InvalidSignature',
    },
    { name: 'truncated: cut inside the payload', token: () => valid().slice(0, 60), reason: 'InvalidToken' },
    { name: 'truncated: header only', token: () => valid().split('.')[0]!, reason: 'InvalidToken' },
    {
      name: 'oversized (a 9 KB claim: past the 8 KiB cap, within HTTP header limits)',
      token: () => kit.rs256(ok({ pad: 'x'.repeat(9_000) })),
      reason: 'InvalidToken',
    },
    { name: 'garbage', token: () => 'not.a.jwt', reason: 'InvalidToken' },
    { name: 'sub 0', token: () => kit.rs256(ok({ sub: 0 })), reason: 'InvalidSubject' },
    { name: 'sub -5', token: () => kit.rs256(ok({ sub: -5 })), reason: 'InvalidSubject' },
    { name: 'sub "-5"', token: () => kit.rs256(ok({ sub: '-5' })), reason: 'InvalidSubject' },
    { name: 'sub "0"', token: () => kit.rs256(ok({ sub: '0' })), reason: 'InvalidSubject' },
    { name: 'sub ""', token: () => kit.rs256(ok({ sub: '' })), reason: 'InvalidSubject' },
    { name: 'sub "abc"', token: () => kit.rs256(ok({ sub: 'abc' })), reason: 'InvalidSubject' },
    { name: 'sub "007"', token: () => kit.rs256(ok({ sub: '007' })), reason: 'InvalidSubject' },
    { name: 'sub 1.5', token: () => kit.rs256(ok({ sub: 1.5 })), reason: 'InvalidSubject' },
    {
      name: 'sub "4:admin" (a key separator)',
      token: () => kit.rs256(ok({ sub: '4:admin' })),
      reason: 'InvalidSubject',
    },
    { name: 'sub missing', token: () => kit.rs256(ok({ sub: undefined })), reason: 'InvalidSubject' },
  ];
  if (opts.issuer !== undefined) {
    attacks.push(
      {
        name: 'a foreign issuer',
        token: () => kit.rs256(ok({ iss: 'https://evil.example' })),
        reason: 'InvalidIssuer',
      },
      { name: 'no issuer', token: () => kit.rs256(ok({ iss: undefined })), reason: 'InvalidIssuer' },
    );
  }
  if (opts.audience !== undefined) {
    attacks.push(
      {
        name: 'a foreign audience',
        token: () => kit.rs256(ok({ aud: 'other-app' })),
        reason: 'InvalidAudience',
      },
      { name: 'no audience', token: () => kit.rs256(ok({ aud: undefined })), reason: 'InvalidAudience' },
    );
  }
  return attacks;
}
