import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CHAT_EVENT_CONVERSIONS, EVENT_CONVERSIONS, type EventConversion } from '../../../lib/events/convert';

const DOC = readFileSync(path.resolve(__dirname, '../../../docs/events.md'), 'utf8');

interface Row {
  readonly key: string;
  readonly outputs: string[];
  readonly fields: string[];
}

/** The rows of the first table under `heading`, keyed by the backticked first cell. */
function tableRows(heading: string): Row[] {
  const start = DOC.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`docs/events.md has no "${heading}" section`);
  const rest = DOC.slice(start + heading.length + 2);
  const end = rest.search(/\n#{1,3} /);
  const lines = (end < 0 ? rest : rest.slice(0, end)).split('\n');
  return (
    lines
      // A header row is the one followed by the |---| separator.
      .filter((line, i) => line.startsWith('| `') && !/^\|\s*-/.test(lines[i + 1] ?? ''))
      .map((line) => {
        const cells = line.split('|').map((c) => c.trim());
        return {
          key: (cells[1] ?? '').replace(/`/g, ''),
          outputs: (cells[2] ?? '').split(',').map((o) => o.trim().replace(/`/g, '')),
          fields: (cells[3] ?? '').split(/, (?![^{[]*[}\]])/),
        };
      })
  );
}

function compare(rows: Row[], table: Readonly<Record<string, EventConversion>>) {
  const documented = rows.map((r) => r.key);
  it('documents every table entry', () => {
    expect(Object.keys(table).filter((t) => !documented.includes(t))).toEqual([]);
  });
  it('documents nothing the table lacks, and each entry once', () => {
    expect(documented.filter((t) => !Object.hasOwn(table, t))).toEqual([]);
    expect(new Set(documented).size).toBe(documented.length);
  });
  it('shows the output types and fields of each entry', () => {
    const mismatches = rows
      .filter((r) => Object.hasOwn(table, r.key))
      .filter((r) => {
        const c = table[r.key] as EventConversion;
        return r.outputs.join() !== c.outputs.join() || r.fields.join(', ') !== c.fields.join(', ');
      })
      .map((r) => r.key);
    expect(mismatches).toEqual([]);
  });
}

describe('docs/events.md conversion table', () => {
  compare(tableRows('## Conversion table'), EVENT_CONVERSIONS);
});

describe('docs/events.md chat.event table', () => {
  compare(tableRows('## Chat events'), CHAT_EVENT_CONVERSIONS);
});

describe('docs/events.md', () => {
  it('stands alone (no references to the specification files)', () => {
    expect(DOC).not.toMatch(/\.\.\/shared|contract\.md|decisions\.md|spec\//);
  });
});
