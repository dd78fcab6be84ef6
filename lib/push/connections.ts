/**
 * The `ConnectionProbe` port: asks the Management API whether a connection still exists
 * (`GET @connections/{id}`) and closes one (`DELETE @connections/{id}`). The sweeper uses it to
 * confirm that a silent connection is gone before cleaning it up (docs/decisions.md D10).
 *
 * Low volume (a sweep, not a fan-out): one signed request per call on a small keep-alive agent.
 * Answers map to three values; anything but 2xx / 410 — a stand-in that does not implement the
 * route (serverless-offline answers `GET @connections` with 404), a 403, a 5xx, a timeout — is
 * `'unknown'`, and the caller decides by its own rules (docs/architecture.md, "Sweeping").
 */
import http from 'node:http';
import https from 'node:https';
import { type CredentialsProvider, createSigner } from '../aws/sigv4';
import { defaultCredentials } from './pusher';

/** `'open'`: 2xx; `'gone'`: 410; `'unknown'`: anything else, network failures included. */
export type ProbeResult = 'open' | 'gone' | 'unknown';

export interface ConnectionProbe {
  /** `GET @connections/{id}`. */
  status(connectionId: string): Promise<ProbeResult>;
  /** `DELETE @connections/{id}`: closes the socket; `'open'` means it was open and is now closed. */
  close(connectionId: string): Promise<ProbeResult>;
  destroy(): void;
}

export interface ConnectionProbeOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials?: CredentialsProvider;
  readonly timeoutMs?: number;
}

export function createConnectionProbe({
  endpoint,
  region,
  credentials,
  timeoutMs = 3000,
}: ConnectionProbeOptions): ConnectionProbe {
  const url = new URL(endpoint);
  const secure = url.protocol === 'https:';
  const request = secure ? https.request : http.request;
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: 8 })
    : new http.Agent({ keepAlive: true, maxSockets: 8 });
  const signer = createSigner({
    service: 'execute-api',
    region,
    credentials: credentials ?? defaultCredentials(endpoint),
  });
  const basePath = url.pathname.replace(/\/+$/, '');

  const call = (method: 'GET' | 'DELETE', connectionId: string): Promise<ProbeResult> =>
    new Promise((resolve) => {
      const path = `${basePath}/@connections/${encodeURIComponent(connectionId)}`;
      let signature: ReturnType<typeof signer.sign>;
      try {
        signature = signer.sign({ method, host: url.host, path, body: '' });
      } catch {
        resolve('unknown');
        return;
      }
      const req = request(
        {
          agent,
          hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
          method,
          path,
          headers: { host: url.host, ...signature },
          timeout: timeoutMs,
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 300 ? 'open' : code === 410 ? 'gone' : 'unknown');
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', () => resolve('unknown'));
      req.end();
    });

  return {
    status: (connectionId) => call('GET', connectionId),
    close: (connectionId) => call('DELETE', connectionId),
    destroy: () => agent.destroy(),
  };
}
