import { readFileSync } from 'node:fs';
import path from 'node:path';

const compose = readFileSync(path.resolve(__dirname, '..', '..', '..', 'docker-compose.yml'), 'utf8');

/** Every entry of every `ports:` list (short syntax, one per line). */
function publishedPorts(text: string): string[] {
  const entries: string[] = [];
  let inPorts = false;
  for (const line of text.split('\n')) {
    if (/^\s+ports:\s*$/.test(line)) {
      inPorts = true;
      continue;
    }
    const entry = /^\s+-\s+"?([^"\s]+)"?\s*$/.exec(line);
    if (inPorts && entry) entries.push(entry[1]!);
    else inPorts = false;
  }
  return entries;
}

describe('docker-compose.yml', () => {
  it('publishes the gateway, Redis, Kafka and the consumer', () => {
    expect(publishedPorts(compose).map((p) => p.split(':').pop())).toEqual(
      expect.arrayContaining(['9998', '9997', '6379', '9092', '9996']),
    );
  });

  it('publishes every port on the loopback interface only (unverified auth and a password-less Redis inside)', () => {
    expect(publishedPorts(compose).filter((p) => !p.startsWith('127.0.0.1:'))).toEqual([]);
  });
});
