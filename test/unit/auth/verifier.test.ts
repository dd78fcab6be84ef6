import { createTokenVerifier, TokenError } from '../../../lib/auth/verifier';
import { claimsFor, createTokenKit, jwtAttacks, nowSecs } from '../../support/tokens';

const kit = createTokenKit();
const ISSUER = 'https://auth.example.com';
const AUDIENCE = 'games-web';

const both = createTokenVerifier({ publicKey: kit.publicKeyPem, secret: kit.secret });
const rsaOnly = createTokenVerifier({ publicKey: kit.publicKeyPem });
const strictClaims = createTokenVerifier({
  publicKey: kit.publicKeyPem,
  secret: kit.secret,
  issuer: ISSUER,
  audience: AUDIENCE,
});

function reasonFor(verify: () => unknown): string {
  try {
    verify();
  } catch (err) {
    if (err instanceof TokenError) return err.reason;
    throw err;
  }
  return 'accepted';
}

describe.each([
  ['RS256 + HS256 keys', both, { hasSecret: true }],
  ['the RS256 key only', rsaOnly, { hasSecret: false }],
  ['issuer and audience configured', strictClaims, { hasSecret: true, issuer: ISSUER, audience: AUDIENCE }],
] as const)('the verifier with %s', (_what, verifier, opts) => {
  it.each(jwtAttacks(kit, opts).map((a) => [a.name, a] as const))('rejects %s', (_name, attack) => {
    expect(reasonFor(() => verifier.verify(attack.token()))).toBe(attack.reason);
  });

  it('accepts a valid RS256 token (the attacks are not rejected for some other reason)', () => {
    const token = kit.rs256(
      claimsFor(77, { iss: ISSUER, aud: AUDIENCE, username: 'Rita', roles: ['admin', 3] }),
    );

    expect(verifier.verify(token)).toEqual({ userId: '77', username: 'Rita', roles: ['admin'] });
  });
});

describe('token claims', () => {
  it.each([
    ['an integer', 4242, '4242'],
    ['a decimal string', '4242', '4242'],
    ['the largest 64-bit id as a string', '9223372036854775807', '9223372036854775807'],
    ['the largest safe integer', Number.MAX_SAFE_INTEGER, String(Number.MAX_SAFE_INTEGER)],
  ])('takes sub as %s', (_what, sub, userId) => {
    expect(both.verify(kit.hs256(claimsFor(sub))).userId).toBe(userId);
  });

  it.each([
    ['beyond 64 bits', '9223372036854775808'],
    ['an unsafe integer', 2 ** 60],
    ['whitespace around digits', ' 42'],
    ['a boolean', true],
    ['an object', { id: 4 }],
  ])('rejects sub %s', (_what, sub) => {
    expect(reasonFor(() => both.verify(kit.hs256(claimsFor(sub))))).toBe('InvalidSubject');
  });

  it('leaves username out when the claim is absent, empty or not a string', () => {
    for (const username of [undefined, '', 7, null]) {
      expect(both.verify(kit.hs256(claimsFor(5, { username }))).username).toBeUndefined();
    }
  });

  it('accepts a token that expired within the 60 s leeway, and nbf within it', () => {
    expect(both.verify(kit.hs256(claimsFor(5, { exp: nowSecs() - 20 }))).userId).toBe('5');
    expect(both.verify(kit.hs256(claimsFor(5, { nbf: nowSecs() + 20 }))).userId).toBe('5');
  });

  it('accepts an audience list containing the configured audience', () => {
    const token = kit.rs256(claimsFor(9, { iss: ISSUER, aud: ['other', AUDIENCE] }));

    expect(strictClaims.verify(token).userId).toBe('9');
  });

  it('never puts the token in the error message', () => {
    const token = kit.rs256(claimsFor(5), kit.foreignKey);
    try {
      both.verify(token);
      throw new Error('accepted');
    } catch (err) {
      expect(String((err as Error).message)).not.toContain(token.split('.')[2]);
      expect(JSON.stringify(err)).not.toContain(token.split('.')[2]);
    }
  });
});
