/**
 * Every environment variable the deploy configuration reads (serverless.yml, deploy/*) is documented:
 * deploy-time ones in docs/deploy.md, runtime ones in the README's configuration table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

function variablesReadBy(file: string): string[] {
  const text = read(file);
  const names = [
    ...text.matchAll(/\$\{env:([A-Z0-9_]+)/g), // osls variables
    ...text.matchAll(/\benv\('([A-Z0-9_]+)'\)/g), // deploy/kafka-source-kafka.js
  ].map((m) => m[1]!);
  return [...new Set(names)].sort();
}

const deployFiles = [
  'serverless.yml',
  ...readdirSync(path.join(root, 'deploy'))
    .filter((f) => /\.(ya?ml|js)$/.test(f))
    .map((f) => `deploy/${f}`),
];

describe('deploy configuration variables', () => {
  const documented = `${read('docs/deploy.md')}\n${read('README.md')}`;

  it('finds the variables (the patterns match how the files read them)', () => {
    const all = deployFiles.flatMap(variablesReadBy);

    expect(all).toEqual(expect.arrayContaining(['KAFKA_SOURCE', 'MSK_CLUSTER_ARN', 'KAFKA_SASL_SECRET_ARN']));
  });

  it.each(deployFiles)('%s reads only documented variables', (file) => {
    const undocumented = variablesReadBy(file).filter((name) => !documented.includes(`\`${name}\``));

    expect(undocumented).toEqual([]);
  });
});
