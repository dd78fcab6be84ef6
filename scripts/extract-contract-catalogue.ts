/**
 * Extracts the event types the contract names, so coverage of the conversion table and of the golden
 * fixtures can be checked against the contract itself rather than against a hand-kept list.
 *
 *   npx tsx scripts/extract-contract-catalogue.ts [path/to/contract.md] [output.json]
 *
 * Defaults: `../shared/spec/contract.md` (relative to the repository root) and
 * `test/fixtures/contract-event-types.json`. `--check` compares instead of writing and exits 1 when
 * the JSON is stale. The extraction itself is exported for the coverage test.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** What the JSON file holds. */
export interface ContractCatalogue {
  /** §4.2: every event_type string the Rust gateway converted (`{G}` expanded). */
  readonly conversionTable: readonly string[];
  /** §9: every event type the backend emits (`{gt}` expanded). */
  readonly backendCatalogue: readonly string[];
  /** §13.3: the `payload.type` values of `chat.event`. */
  readonly chatEventPayloadTypes: readonly string[];
  /** Union of `conversionTable` and `backendCatalogue`, sorted: every type the gateway must convert. */
  readonly eventTypes: readonly string[];
}

export const REPO_ROOT = path.resolve(__dirname, '..');
export const DEFAULT_CONTRACT = path.resolve(REPO_ROOT, '..', 'shared', 'spec', 'contract.md');
export const DEFAULT_OUTPUT = path.join(REPO_ROOT, 'test', 'fixtures', 'contract-event-types.json');

/** `{G}` in §4.2: "each of `games.event.`, `games.event.tic_tac_toe.`, `games.event.bigger_dice.`". */
const G_PREFIXES = ['games.event.', 'games.event.tic_tac_toe.', 'games.event.bigger_dice.'];
/** `{gt}` in §9: the room's game type. */
const GAME_TYPES = ['bigger_dice', 'tic_tac_toe'];

/** The lines of the section whose heading starts with `heading`, up to the next heading of that level or higher. */
function section(markdown: string, heading: string): string[] {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) throw new Error(`contract has no section "${heading}"`);
  const level = /^#+/.exec(heading)?.[0].length ?? 2;
  const end = lines.findIndex(
    (l, i) => i > start && /^#+ /.test(l) && (/^#+/.exec(l)?.[0].length ?? 9) <= level,
  );
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** First cells of the table rows in `lines` (skipping header and separator rows). */
function firstCells(lines: readonly string[]): string[] {
  return lines
    .filter((l) => l.startsWith('|') && !/^\|\s*-/.test(l))
    .map((l) => l.split(/(?<!\\)\|/)[1]?.trim() ?? '')
    .filter((cell) => cell.includes('`'));
}

/** Expands `{a,b,c}` alternatives (one group per token is all the contract uses, but any number works). */
function expandBraces(token: string, placeholders: Readonly<Record<string, readonly string[]>>): string[] {
  const m = /\{([^}]*)\}/.exec(token);
  if (!m) return [token];
  const inner = m[1] ?? '';
  const alternatives = placeholders[inner] ?? inner.split(',').map((s) => s.trim());
  return alternatives.flatMap((alt) =>
    expandBraces(token.slice(0, m.index) + alt + token.slice(m.index + m[0].length), placeholders),
  );
}

/**
 * Resolves the shorthand tokens of a cell against the previous full type:
 * `_offline` after `presence.event.user_online` is `presence.event.user_offline` (replace the last
 * `_word`); a bare `player_banned` after `games.event.{gt}.player_kicked` replaces the last segment.
 */
function resolveShorthand(token: string, previous: string | undefined): string {
  if (previous === undefined || token.includes('.') || token.startsWith('{')) return token;
  if (token.startsWith('_')) return previous.replace(/_[^_.]+$/, token);
  return previous.replace(/[^.]+$/, token);
}

/** Event types named in one first cell. */
function typesOfCell(cell: string, placeholders: Readonly<Record<string, readonly string[]>>): string[] {
  // Parenthesised remarks such as "(topic `chat.events`)" or "(generic only)" name no event type.
  const withoutRemarks = cell.replace(/\([^)]*\)/g, '');
  const tokens = [...withoutRemarks.matchAll(/`([^`]+)`/g)].flatMap((m) => (m[1] ?? '').split('/'));
  const out: string[] = [];
  let previous: string | undefined;
  for (const raw of tokens) {
    const token = resolveShorthand(raw.trim(), previous);
    previous = token;
    out.push(...expandBraces(token, placeholders));
  }
  return out;
}

function sortedUnique(types: Iterable<string>): string[] {
  return [...new Set(types)].sort();
}

/** Extracts the catalogue from the contract's markdown. Throws when a section is missing. */
export function extractCatalogue(markdown: string): ContractCatalogue {
  const conversionTable = firstCells(section(markdown, '### 4.2')).flatMap((cell) =>
    typesOfCell(cell, { G: G_PREFIXES }),
  );
  const backendCatalogue = firstCells(section(markdown, '## 9.')).flatMap((cell) =>
    typesOfCell(cell, { gt: GAME_TYPES }),
  );
  const chatEventPayloadTypes = section(markdown, '### 13.3')
    .map((l) => /^#### 13\.3\.\d+ `([a-z_]+)`/.exec(l)?.[1])
    .filter((t): t is string => t !== undefined);
  return {
    conversionTable: sortedUnique(conversionTable),
    backendCatalogue: sortedUnique(backendCatalogue),
    chatEventPayloadTypes: sortedUnique(chatEventPayloadTypes),
    eventTypes: sortedUnique([...conversionTable, ...backendCatalogue]),
  };
}

/** The JSON text written for a catalogue. */
export function renderCatalogue(catalogue: ContractCatalogue): string {
  return `${JSON.stringify(catalogue, null, 2)}\n`;
}

function main(argv: readonly string[]): number {
  const args = argv.filter((a) => a !== '--check');
  const check = argv.includes('--check');
  const contract = path.resolve(args[0] ?? DEFAULT_CONTRACT);
  const output = path.resolve(args[1] ?? DEFAULT_OUTPUT);
  const rendered = renderCatalogue(extractCatalogue(readFileSync(contract, 'utf8')));
  const c = JSON.parse(rendered) as ContractCatalogue;
  const summary = `§4.2 ${c.conversionTable.length}, §9 ${c.backendCatalogue.length}, chat.event kinds ${c.chatEventPayloadTypes.length}, union ${c.eventTypes.length}`;
  if (check) {
    let current: unknown;
    try {
      current = JSON.parse(readFileSync(output, 'utf8'));
    } catch {
      // a missing or unreadable file is simply stale
    }
    // Compared as data, so reformatting the JSON file does not make it stale.
    if (JSON.stringify(current) !== JSON.stringify(c)) {
      process.stderr.write(
        `${path.relative(REPO_ROOT, output)} is stale (${summary}); run without --check\n`,
      );
      return 1;
    }
    process.stdout.write(`${path.relative(REPO_ROOT, output)} is current (${summary})\n`);
    return 0;
  }
  writeFileSync(output, rendered);
  process.stdout.write(`wrote ${path.relative(REPO_ROOT, output)} (${summary})\n`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
