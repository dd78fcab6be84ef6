import { convertEnvelope } from '../../../lib/events/convert';
import { parseEnvelope } from '../../../lib/events/parse';
import { planDelivery } from '../../../lib/events/plan';
import type { Envelope } from '../../../lib/protocol/envelope';
import { type EventFixture, loadEventFixtures } from '../../support/fixtures';

const fixtures = loadEventFixtures();

function parsed(fixture: EventFixture): Envelope {
  const result = parseEnvelope(JSON.stringify(fixture.envelope));
  if (!result.ok) throw new Error(`${fixture.name}: envelope rejected: ${result.reason}`);
  return result.envelope;
}

/** What a client receives is JSON text: compare the serialised form, keys and all. */
function onTheWire(value: unknown): unknown {
  return value === null ? null : JSON.parse(JSON.stringify(value));
}

describe('golden event fixtures', () => {
  it('are present', () => {
    expect(fixtures.length).toBeGreaterThan(120);
  });

  describe.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, fixture) => {
    it('converts to the exact client message', () => {
      expect(onTheWire(convertEnvelope(parsed(fixture), fixture.topic))).toStrictEqual(fixture.expected);
    });

    it('plans the expected recipients and membership changes', () => {
      const plan = planDelivery(parsed(fixture), fixture.topic);
      expect(plan.target).toStrictEqual(fixture.target);
      expect(plan.before).toStrictEqual(fixture.before);
      expect(plan.after).toStrictEqual(fixture.after);
      expect(plan.chat).toStrictEqual(fixture.chat);
      expect(onTheWire(plan.message)).toStrictEqual(fixture.expected);
      expect(plan.eventId).toBe(fixture.envelope['event_id']);
      expect(plan.eventType).toBe(fixture.envelope['event_type']);
    });
  });
});
