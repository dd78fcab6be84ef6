/**
 * The `ClientPusher`, `ConnectionCloser` and `ConnectionProbe` contracts (lib/push/pusher.ts,
 * closer.ts, connections.ts), one suite for every adapter: the in-memory fakes
 * (test/unit/memory/pusher.test.ts) and the Management API adapters — production and SDK pushers,
 * the closer, the probe — against the Management API
 * stand-in (test/integration/contracts/pusher.contract.test.ts). What a connection received is read
 * back through the harness: the fake's records, or the stand-in's.
 *
 * HTTP-level behaviour (signing, paths, the two shapes of a 410, retry hooks) is the adapters' own
 * and stays in test/unit/push/pusher-http.test.ts.
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject } from '../../../lib/protocol/envelope';
import type { ConnectionCloser } from '../../../lib/push/closer';
import type { ConnectionProbe } from '../../../lib/push/connections';
import {
  type ClientPusher,
  MAX_PAYLOAD_BYTES,
  PayloadTooLargeError,
  PushError,
} from '../../../lib/push/pusher';

/** How a connection misbehaves; both the stand-in and the in-memory API take these. */
export type ContractBehaviour =
  | { readonly kind: 'gone' }
  | { readonly kind: 'fail'; readonly status: number; readonly times?: number }
  | { readonly kind: 'hang'; readonly times?: number };

export interface PushHarness {
  /**
   * A pusher on the connections below, retrying at most `CONTRACT_MAX_RETRIES` times and giving an
   * unanswered attempt a few hundred ms. Fresh for each case.
   */
  pusher(): ClientPusher;
  closer(): ConnectionCloser;
  /** The sweeper's probe (GET / DELETE) on the same connections. */
  probe(): ConnectionProbe;
  /** The frames a connection received, in order, parsed as JSON. */
  delivered(connectionId: string): Promise<JsonObject[]>;
  behave(connectionId: string, behaviour: ContractBehaviour): void;
  /** API Gateway's account throttle: every request answered 429 while on. */
  throttle(on: boolean): void;
  reset?(): Promise<void> | void;
  close?(): Promise<void>;
}

/** What `pusher()` is configured with. */
export const CONTRACT_MAX_RETRIES = 2;
export const CONTRACT_TIMEOUT_MS = 150;

/** An API Gateway-like connection id: base64, so `+`, `/` and `=` occur. */
const newConnectionId = () => `${randomBytes(9).toString('base64')}+/=`;

const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

function withHarness(setup: () => Promise<PushHarness>) {
  const state = {} as { h: PushHarness; pushers: ClientPusher[] };
  beforeAll(async () => {
    state.h = await setup();
  });
  afterAll(async () => {
    await state.h?.close?.();
  });
  beforeEach(async () => {
    state.pushers = [];
    await state.h.reset?.();
  });
  afterEach(async () => {
    state.h.throttle(false);
    await Promise.all(state.pushers.map((p) => p.close()));
  });
  return {
    get h() {
      return state.h;
    },
    pusher() {
      const p = state.h.pusher();
      state.pushers.push(p);
      return p;
    },
  };
}

/** Declares the ClientPusher contract's cases for one adapter. */
export function pusherContract(name: string, setup: () => Promise<PushHarness>): void {
  describe(`ClientPusher contract: ${name}`, () => {
    const t = withHarness(setup);

    it("resolves 'ok' and delivers each frame unchanged, in push order, to its connection only", async () => {
      const pusher = t.pusher();
      const [a, b] = [newConnectionId(), newConnectionId()];
      const frames = [
        { type: 'chat.message', text: 'héllo ✓' },
        { type: 'n', n: 2 },
        { type: 'n', n: 3 },
      ];

      for (const f of frames) await expect(pusher.push(a, JSON.stringify(f))).resolves.toBe('ok');
      await expect(pusher.push(b, JSON.stringify({ type: 'other' }))).resolves.toBe('ok');

      expect(await t.h.delivered(a)).toEqual(frames);
      expect(await t.h.delivered(b)).toEqual([{ type: 'other' }]);
    });

    it('delivers a Buffer payload as its bytes', async () => {
      const id = newConnectionId();
      await expect(t.pusher().push(id, Buffer.from('{"type":"bytes","v":"é"}'))).resolves.toBe('ok');
      expect(await t.h.delivered(id)).toEqual([{ type: 'bytes', v: 'é' }]);
    });

    it("resolves 'gone' for a connection that went away (410), every time, delivering nothing", async () => {
      const pusher = t.pusher();
      const id = newConnectionId();
      t.h.behave(id, { kind: 'gone' });

      await expect(pusher.push(id, '{"type":"a"}')).resolves.toBe('gone');
      await expect(pusher.push(id, '{"type":"b"}')).resolves.toBe('gone');

      expect(await t.h.delivered(id)).toEqual([]);
    });

    it.each([
      ['a 503', 503, 1],
      ['two 429s', 429, 2],
    ])("rides out %s within its retries: 'ok', delivered once", async (_what, status, times) => {
      const id = newConnectionId();
      t.h.behave(id, { kind: 'fail', status, times });

      await expect(t.pusher().push(id, '{"type":"once"}')).resolves.toBe('ok');

      expect(await t.h.delivered(id)).toEqual([{ type: 'once' }]);
    });

    it('rejects a persistent 500 with a retriable PushError naming the status and connection', async () => {
      const id = newConnectionId();
      t.h.behave(id, { kind: 'fail', status: 500 });

      const err = await rejection(t.pusher().push(id, '{"type":"x"}'));

      expect(err).toBeInstanceOf(PushError);
      expect(err).toMatchObject({ name: 'PushError', statusCode: 500, retriable: true, connectionId: id });
      expect(await t.h.delivered(id)).toEqual([]);
    });

    it.each([403, 400])('rejects a %i with a non-retriable PushError after one attempt', async (status) => {
      const id = newConnectionId();
      t.h.behave(id, { kind: 'fail', status, times: 1 });

      const err = await rejection(t.pusher().push(id, '{"type":"x"}'));

      expect(err).toBeInstanceOf(PushError);
      expect(err).toMatchObject({ statusCode: status, retriable: false, attempts: 1, connectionId: id });
      // Not retried: the fault was for one request only, and nothing was delivered.
      expect(await t.h.delivered(id)).toEqual([]);
    });

    it('rejects a push nobody answers with a retriable PushError without a status', async () => {
      const id = newConnectionId();
      t.h.behave(id, { kind: 'hang' });

      const err = await rejection(t.pusher().push(id, '{"type":"x"}'));

      expect(err).toBeInstanceOf(PushError);
      expect(err).toMatchObject({ retriable: true, statusCode: undefined, connectionId: id });
    });

    it('rejects while the account is throttled with a retriable 429 PushError', async () => {
      const id = newConnectionId();
      t.h.throttle(true);

      const err = await rejection(t.pusher().push(id, '{"type":"x"}'));

      expect(err).toMatchObject({ name: 'PushError', statusCode: 429, retriable: true });
      t.h.throttle(false);
      expect(await t.h.delivered(id)).toEqual([]);
    });

    it('refuses a frame over 128 KB, counted in bytes, with PayloadTooLargeError and sends exactly 128 KB', async () => {
      const pusher = t.pusher();
      const id = newConnectionId();
      const exactly = JSON.stringify({ p: 'x'.repeat(MAX_PAYLOAD_BYTES - 8) });
      expect(Buffer.byteLength(exactly)).toBe(MAX_PAYLOAD_BYTES);
      // Under the limit in characters, over it in bytes (three bytes each).
      const wide = JSON.stringify({ p: '✓'.repeat(43_690) });

      const err = await rejection(pusher.push(id, wide));
      await expect(pusher.push(id, exactly)).resolves.toBe('ok');

      expect(err).toBeInstanceOf(PayloadTooLargeError);
      expect(err).toMatchObject({ retriable: false, bytes: Buffer.byteLength(wide), connectionId: id });
      expect((await t.h.delivered(id)).map((f) => (f['p'] as string).length)).toEqual([
        MAX_PAYLOAD_BYTES - 8,
      ]);
    });

    it('close() waits for the pushes in flight, then refuses new ones with a non-retriable PushError', async () => {
      const pusher = t.pusher();
      const id = newConnectionId();
      const inFlight = pusher.push(id, '{"type":"in-flight"}');

      await pusher.close();

      await expect(inFlight).resolves.toBe('ok');
      const err = await rejection(pusher.push(id, '{"type":"late"}'));
      expect(err).toMatchObject({ name: 'PushError', retriable: false });
      expect(await t.h.delivered(id)).toEqual([{ type: 'in-flight' }]);
    });
  });
}

/** Declares the ConnectionCloser contract's cases for one adapter. */
export function closerContract(name: string, setup: () => Promise<PushHarness>): void {
  describe(`ConnectionCloser contract: ${name}`, () => {
    const t = withHarness(setup);

    it("closes an open connection ('closed'), after which it is gone for closes and pushes", async () => {
      const id = newConnectionId();
      const closer = t.h.closer();

      await expect(closer.close(id)).resolves.toBe('closed');
      await expect(closer.close(id)).resolves.toBe('gone');
      await expect(t.pusher().push(id, '{"type":"x"}')).resolves.toBe('gone');
    });

    it("reports a connection that was already gone as 'gone'", async () => {
      const id = newConnectionId();
      t.h.behave(id, { kind: 'gone' });

      await expect(t.h.closer().close(id)).resolves.toBe('gone');
    });

    it('rejects on any other answer (the account throttle), naming the connection', async () => {
      const id = newConnectionId();
      t.h.throttle(true);

      await expect(t.h.closer().close(id)).rejects.toThrow(`closing ${id} failed`);

      t.h.throttle(false);
      await expect(t.h.closer().close(id)).resolves.toBe('closed');
    });
  });
}

/** Declares the ConnectionProbe contract's cases for one adapter. */
export function probeContract(name: string, setup: () => Promise<PushHarness>): void {
  describe(`ConnectionProbe contract: ${name}`, () => {
    const t = withHarness(setup);

    it("reports an existing connection 'open' and a gone one 'gone'", async () => {
      const [open, gone] = [newConnectionId(), newConnectionId()];
      t.h.behave(gone, { kind: 'gone' });
      const probe = t.h.probe();

      expect([await probe.status(open), await probe.status(gone)]).toEqual(['open', 'gone']);
    });

    it("closes an open connection ('open'), which is gone from then on", async () => {
      const id = newConnectionId();
      const probe = t.h.probe();

      expect(await probe.close(id)).toBe('open');
      expect(await probe.status(id)).toBe('gone');
      expect(await probe.close(id)).toBe('gone');
      await expect(t.pusher().push(id, '{"type":"x"}')).resolves.toBe('gone');
    });

    it("cannot tell while the account is throttled: 'unknown'", async () => {
      const id = newConnectionId();
      t.h.throttle(true);
      const probe = t.h.probe();

      expect([await probe.status(id), await probe.close(id)]).toEqual(['unknown', 'unknown']);
    });
  });
}
