import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../../lib/config';
import { invalidFormat, notAuthenticated, rateLimited, tooLarge } from '../../../lib/errors';
import { MAX_MARK_READ_IDS, UNAVAILABLE_MESSAGE } from '../../../lib/gateway/message';
import {
  CLIENT_MESSAGE_TABLE,
  CLIENT_MESSAGE_TYPES,
  type ClientMessageType,
  chatRequiresNumericUserId,
  isClientMessageType,
  parseClientMessage,
  requiresAuthentication,
} from '../../../lib/protocol/client';
import {
  authenticated,
  errorFrame,
  heartbeatAck,
  INTERNAL_ERROR_MESSAGE,
  stateSnapshot,
  welcome,
} from '../../../lib/protocol/server';
import { loadClientMessageFixtures } from '../../fixtures/load-client-messages';

/**
 * docs/protocol.md is checked against the message table: one `### \`type\`` section per client type,
 * with its fields and kinds, its route, and examples that the parser accepts. Editing the table
 * without the docs (or the other way round) fails here.
 */

const DOC_PATH = path.join(__dirname, '../../../docs/protocol.md');
/** The formatter pads table cells; trimming them lets checks match `| a | b |` literally. */
const normaliseTables = (markdown: string): string =>
  markdown
    .split('\n')
    .map((line) =>
      /^\|.*\|$/.test(line)
        ? `| ${line
            .slice(1, -1)
            .split('|')
            .map((cell) => cell.trim())
            .join(' | ')} |`
        : line,
    )
    .join('\n');

const doc = normaliseTables(readFileSync(DOC_PATH, 'utf8'));
const fixtures = loadClientMessageFixtures();

interface Section {
  readonly type: string;
  readonly body: string;
}

/** Splits the doc at its `### \`type\`` headings; a section ends at the next heading of level 1–3. */
function typeSections(markdown: string): Section[] {
  const sections: Section[] = [];
  let current: { type: string; lines: string[] } | undefined;
  const close = () => {
    if (current) sections.push({ type: current.type, body: current.lines.join('\n') });
    current = undefined;
  };
  for (const line of markdown.split('\n')) {
    const typeHeading = /^### `([^`]+)`\s*$/.exec(line);
    if (typeHeading) {
      close();
      current = { type: typeHeading[1]!, lines: [] };
    } else if (/^#{1,3} /.test(line)) {
      close();
    } else {
      current?.lines.push(line);
    }
  }
  close();
  return sections;
}

const jsonBlocks = (body: string): string[] =>
  [...body.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => m[1]!);

/** `| \`field\` | \`kind\` | …` rows of a section's field table. */
const fieldRows = (body: string): Array<[string, string]> =>
  [...body.matchAll(/^\| `([^`]+)` \| `([^`]+)` \|/gm)].map((m) => [m[1]!, m[2]!]);

const sections = typeSections(doc);
const rowOf = (type: ClientMessageType) => CLIENT_MESSAGE_TABLE.find((r) => r.type === type)!;

describe('docs/protocol.md against the client message table', () => {
  it('has one section per client type and none for anything else', () => {
    const documented = sections.map((s) => s.type);
    expect(documented.filter((t) => !isClientMessageType(t))).toEqual([]);
    expect(CLIENT_MESSAGE_TYPES.filter((t) => !documented.includes(t))).toEqual([]);
    expect(documented).toHaveLength(new Set(documented).size);
  });

  it('mentions no command type that does not exist', () => {
    // The gateway publishes player_disconnected itself; clients cannot send it.
    const gatewayOwn = new Set(['games.command.player_disconnected']);
    const mentioned = [...doc.matchAll(/`((?:chat|games|system)\.command\.[a-z_.]+)`/g)].map((m) => m[1]!);
    const unknown = mentioned.filter((t) => !isClientMessageType(t) && !gatewayOwn.has(t));
    expect(unknown).toEqual([]);
  });

  describe.each(CLIENT_MESSAGE_TYPES)('%s', (type) => {
    // A missing section is reported by the first test; the others then see an empty body.
    const body = sections.find((s) => s.type === type)?.body ?? '';
    const row = rowOf(type);

    it('shows the fixture as its first example', () => {
      const [first] = jsonBlocks(body);
      expect(first).toBeDefined();
      expect(JSON.parse(first!)).toEqual(fixtures.get(type)!.frame);
    });

    it('has examples that parse as this type', () => {
      for (const block of jsonBlocks(body)) expect(parseClientMessage(block).type).toBe(type);
    });

    it('lists exactly the fields of the table, with their kinds', () => {
      expect(Object.fromEntries(fieldRows(body))).toEqual(row.fields);
      if (Object.keys(row.fields).length === 0) expect(body).toContain('No fields.');
    });

    it('says where the message goes', () => {
      if (row.route.kind === 'local') expect(body).toContain('Handled by the gateway');
      else expect(body).toContain(`Forwarded to \`${row.route.topic}\``);
    });
  });

  it('indexes every type with its route, key and authentication', () => {
    const index = [...doc.matchAll(/^\| `([^`]+)` \| (gateway|`[a-z.]+`) \| ([^|]+) \| (yes|no) \|$/gm)];
    expect(index.map((m) => m[1])).toEqual([...CLIENT_MESSAGE_TYPES]);
    for (const [, type, route, key, auth] of index) {
      const row = rowOf(type as ClientMessageType);
      const fields: Readonly<Record<string, string>> = row.fields;
      const expectedKey =
        row.route.kind === 'local'
          ? '—'
          : row.route.key === 'actor' || fields.room_id === undefined
            ? 'user id'
            : fields.room_id === 'str'
              ? '`room_id`'
              : '`room_id`, else user id';
      expect({ type, route, key: key!.trim(), auth }).toEqual({
        type,
        route: row.route.kind === 'local' ? 'gateway' : `\`${row.route.topic}\``,
        key: expectedKey,
        auth: requiresAuthentication(row.type) ? 'yes' : 'no',
      });
    }
  });
});

describe('docs/protocol.md against the server frames, errors and limits', () => {
  const builders: Record<string, object> = {
    'system.welcome': welcome('c'),
    'system.authenticated': authenticated({ userId: '4', username: 'John', roles: [] }),
    'system.heartbeat_ack': heartbeatAck(),
    'system.state_snapshot': stateSnapshot([]),
    'system.error': errorFrame('X', 'y'),
  };

  it.each(Object.keys(builders))('shows %s with the keys the builder produces', (type) => {
    const examples = [...doc.matchAll(/`(\{"type":"system\.[a-z_]+".*?\})`/g)]
      .map((m) => JSON.parse(m[1]!) as Record<string, unknown>)
      .filter((frame) => frame.type === type);
    expect(examples.length).toBeGreaterThan(0);
    for (const example of examples) expect(Object.keys(example)).toEqual(Object.keys(builders[type]!));
  });

  it('documents every error code and fixed message the gateway sends', () => {
    for (const err of [
      invalidFormat(),
      notAuthenticated(),
      rateLimited(),
      tooLarge(),
      chatRequiresNumericUserId(),
    ]) {
      expect(doc).toContain(`| \`${err.code}\` | \`${err.message}\` |`);
    }
    expect(doc).toContain(`| \`MESSAGE_ERROR\` | \`${INTERNAL_ERROR_MESSAGE}\` |`);
    expect(doc).toContain('| `MESSAGE_ERROR` | `Authentication failed: identity mismatch` |');
    for (const message of [
      UNAVAILABLE_MESSAGE,
      'Too many connections for this user',
      'Too many lobby subscriptions',
      `Too many message_ids (at most ${MAX_MARK_READ_IDS})`,
    ])
      expect(doc).toContain(`| \`MESSAGE_ERROR\` | \`${message}\` |`);
  });

  it('states the default limits of the configuration', () => {
    const { ws } = loadConfig({});
    expect(doc).toContain(`\`WS_MAX_MESSAGE_SIZE\`) | ${ws.maxMessageSize} bytes`);
    expect(doc).toContain(`\`WS_RATE_LIMIT_BURST\` = ${ws.rateLimitBurst} messages`);
    expect(doc).toContain(`\`WS_RATE_LIMIT_PER_SEC\` = ${ws.rateLimitPerSec} per second`);
    expect(doc).toContain('ws://127.0.0.1:9998');
    expect(doc).toContain(`(\`WS_MAX_LOBBIES_PER_CONNECTION\`) | ${ws.maxLobbiesPerConnection} |`);
    expect(doc).toContain(`(\`WS_MAX_CONNECTIONS_PER_USER\`) | ${ws.maxConnectionsPerUser} |`);
  });

  it('stands on its own: no references to internal specification files', () => {
    expect(doc).not.toMatch(/\.\.\/shared|contract\.md|decisions\.md|\bspec\b|§/i);
  });
});
