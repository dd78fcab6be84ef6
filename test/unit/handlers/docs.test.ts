/**
 * docs/architecture.md, "Testing a handler directly", shows test/unit/handlers/example.test.ts:
 * the example a user copies is one that compiles and passes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

describe('docs/architecture.md, "Testing a handler directly"', () => {
  it('shows exactly test/unit/handlers/example.test.ts', () => {
    const doc = read('docs/architecture.md');
    const start = doc.indexOf('\n## Testing a handler directly\n');
    expect(start).toBeGreaterThan(0);
    const end = doc.indexOf('\n## ', start + 1);
    const section = doc.slice(start, end < 0 ? undefined : end);
    const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];

    expect(example).toBe(read('test/unit/handlers/example.test.ts'));
  });
});
