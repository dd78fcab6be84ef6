import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

describe('README configuration table', () => {
  // Every variable lib/config.ts reads, taken from its source so a new one cannot be forgotten.
  const source = readFileSync(path.join(root, 'lib', 'config.ts'), 'utf8');
  const variables = [
    ...new Set([...source.matchAll(/'([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)'/g)].map((m) => m[1]!)),
  ];
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

  it('finds the variables the config module reads', () => {
    expect(variables).toEqual(
      expect.arrayContaining(['WS_PORT', 'REDIS_URL', 'KAFKA_BROKERS', 'AUTH_ALLOW_UNVERIFIED']),
    );
  });

  it.each(variables)('documents %s', (variable) => {
    expect(readme).toContain(`\`${variable}\``);
  });
});
