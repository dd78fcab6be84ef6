import { existsSync, readFileSync } from 'node:fs';
import { CHAT_EVENT_CONVERSIONS, CONVERTED_EVENT_TYPES } from '../../../lib/events/convert';
import {
  DEFAULT_CONTRACT,
  DEFAULT_OUTPUT,
  extractCatalogue,
} from '../../../scripts/extract-contract-catalogue';
import {
  eventTypeOf,
  loadContractEventTypes,
  loadEventFixtures,
  payloadTypeOf,
} from '../../support/fixtures';

const contract = loadContractEventTypes();
const fixtures = loadEventFixtures();
const fixtureTypes = new Set(fixtures.map(eventTypeOf));

describe('coverage of the contract', () => {
  it('the extracted catalogue is not empty', () => {
    expect(contract.conversionTable.length).toBe(117);
    expect(contract.backendCatalogue.length).toBe(78);
    expect(contract.eventTypes.length).toBeGreaterThanOrEqual(contract.conversionTable.length);
  });

  it('every contract event type has a conversion', () => {
    expect(contract.eventTypes.filter((t) => !CONVERTED_EVENT_TYPES.has(t))).toEqual([]);
  });

  it('every contract event type has a golden fixture', () => {
    expect(contract.eventTypes.filter((t) => !fixtureTypes.has(t))).toEqual([]);
  });

  it('every chat.event payload type has a conversion and a golden fixture', () => {
    const chatFixtureKinds = new Set(
      fixtures.filter((f) => eventTypeOf(f) === 'chat.event').map(payloadTypeOf),
    );
    expect(contract.chatEventPayloadTypes.filter((t) => !Object.hasOwn(CHAT_EVENT_CONVERSIONS, t))).toEqual(
      [],
    );
    expect(contract.chatEventPayloadTypes.filter((t) => !chatFixtureKinds.has(t))).toEqual([]);
  });

  it('the table converts nothing the contract does not name', () => {
    expect([...CONVERTED_EVENT_TYPES].filter((t) => !contract.eventTypes.includes(t))).toEqual([]);
  });

  // The spec lives outside the repository; on a machine without it the committed JSON is trusted
  // (and must at least be a usable catalogue), so the test runs everywhere and is never skipped.
  it('the committed catalogue matches the contract (re-extracted when the spec is present)', () => {
    const committed = JSON.parse(readFileSync(DEFAULT_OUTPUT, 'utf8')) as { eventTypes: string[] };
    if (!existsSync(DEFAULT_CONTRACT)) {
      expect(committed.eventTypes.length).toBeGreaterThan(100);
      return;
    }
    // Compared as data, so reformatting the JSON file does not make it "stale".
    const fresh = extractCatalogue(readFileSync(DEFAULT_CONTRACT, 'utf8'));
    expect(committed).toStrictEqual(fresh);
  });
});
