/**
 * The far side of the in-memory `ClientPusher`, `ConnectionCloser` and `ConnectionProbe` (./pusher.ts,
 * ./closer.ts, ./probe.ts):
 * API Gateway's connections, as the loopback stand-in of test/support/management-api.ts models
 * them, without HTTP. Each connection is open unless marked otherwise; it records the frames it
 * received and every request made to it, in order.
 *
 * Behaviours mirror the stand-in's: `gone` (410 to everything), `fail` (a status to the
 * next `times` pushes, or all), `hang` (the next `times` pushes are never answered), and an account
 * throttle (429 to every request). A successful close makes the connection gone.
 *
 * @example
 * const api = createMemoryManagementApi();
 * api.behave('abc=', { kind: 'gone' });
 * const pusher = createMemoryPusher({ api });
 * await pusher.push('abc=', '{}'); // 'gone'
 */
import type { JsonObject } from '../../../lib/protocol/envelope';

/** How one connection answers. */
export type ConnectionBehaviour =
  /** Answers normally (the default). */
  | { readonly kind: 'open' }
  /** 410 to everything: the client went away. */
  | { readonly kind: 'gone' }
  /** The next `times` pushes (default: all) get `status` (500, 503, 429, 403 …). */
  | { readonly kind: 'fail'; readonly status: number; readonly times?: number }
  /** The next `times` pushes (default: all) are never answered: the pusher's timeout decides. */
  | { readonly kind: 'hang'; readonly times?: number };

/** `POST` a frame, `GET` the connection's state (the sweeper's probe), `DELETE` it (close). */
export type Method = 'POST' | 'GET' | 'DELETE';

/** One request as the connection saw it. */
export interface RecordedRequest {
  readonly method: Method;
  readonly connectionId: string;
  /** The HTTP status answered; `'hang'` when none ever was. */
  readonly status: number | 'hang';
  /** The frame of a POST, as UTF-8 text. */
  readonly data?: string;
}

export interface MemoryManagementApi {
  /** The frames a connection received (2xx answers only), in arrival order, as sent. */
  frames(connectionId: string): string[];
  /** The same frames parsed as JSON. */
  delivered(connectionId: string): JsonObject[];
  /** Connection ids with at least one delivered frame, in first-delivery order. */
  recipients(): string[];
  /** Every request, in order, whatever its answer. */
  readonly requests: readonly RecordedRequest[];
  /** Connections closed by a `DELETE` (204), in order. */
  readonly closed: readonly string[];
  behave(connectionId: string, behaviour: ConnectionBehaviour): void;
  /** Shorthand for `behave(id, { kind: 'gone' })`. */
  gone(connectionId: string): void;
  isGone(connectionId: string): boolean;
  /** While on, every request is answered 429, as API Gateway's account throttle. */
  throttle(on: boolean): void;
  /** Forgets frames and requests (behaviours stay). */
  clear(): void;
  /** Decides the answer to one request and records it. For the fake adapters. */
  answer(method: Method, connectionId: string, data?: string): number | 'hang';
}

interface State {
  behaviour: ConnectionBehaviour;
  /** Faults left for `fail` / `hang` with `times`. */
  left: number;
}

export function createMemoryManagementApi(): MemoryManagementApi {
  const states = new Map<string, State>();
  let frames = new Map<string, string[]>();
  let requests: RecordedRequest[] = [];
  let closed: string[] = [];
  let throttled = false;

  const behave = (connectionId: string, behaviour: ConnectionBehaviour) => {
    if (behaviour.kind === 'open') states.delete(connectionId);
    else
      states.set(connectionId, {
        behaviour,
        left: 'times' in behaviour && behaviour.times !== undefined ? behaviour.times : Infinity,
      });
  };

  const decide = (method: Method, connectionId: string): number | 'hang' => {
    const state = states.get(connectionId);
    const b = state?.behaviour;
    if (b?.kind === 'gone') return 410;
    if (throttled) return 429;
    if (method === 'DELETE') return 204;
    if (method === 'GET') return 200;
    if (state && (b?.kind === 'fail' || b?.kind === 'hang') && state.left > 0) {
      state.left--;
      return b.kind === 'hang' ? 'hang' : b.status;
    }
    return 200;
  };

  return {
    frames: (connectionId) => [...(frames.get(connectionId) ?? [])],
    delivered: (connectionId) => (frames.get(connectionId) ?? []).map((f) => JSON.parse(f) as JsonObject),
    recipients: () => [...frames.keys()],
    get requests() {
      return requests;
    },
    get closed() {
      return closed;
    },
    behave,
    gone: (connectionId) => behave(connectionId, { kind: 'gone' }),
    isGone: (connectionId) => states.get(connectionId)?.behaviour.kind === 'gone',
    throttle(on) {
      throttled = on;
    },
    clear() {
      frames = new Map();
      requests = [];
      closed = [];
    },
    answer(method, connectionId, data) {
      const status = decide(method, connectionId);
      requests.push({ method, connectionId, status, ...(data === undefined ? {} : { data }) });
      if (method === 'POST' && typeof status === 'number' && status >= 200 && status < 300) {
        let list = frames.get(connectionId);
        if (!list) {
          list = [];
          frames.set(connectionId, list);
        }
        list.push(data ?? '');
      }
      if (method === 'DELETE' && status === 204) {
        closed.push(connectionId);
        behave(connectionId, { kind: 'gone' });
      }
      return status;
    },
  };
}
