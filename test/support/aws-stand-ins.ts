/**
 * Stand-ins for the AWS endpoints credentials come from and signed requests go to, on loopback:
 * - a container credentials endpoint (what ECS and EKS Pod Identity serve at
 *   AWS_CONTAINER_CREDENTIALS_FULL_URI), handing out numbered temporary credentials;
 * - a signed-request recorder that answers 200 (or 202) and keeps each request's SigV4 headers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface IssuedCredentials {
  readonly AccessKeyId: string;
  readonly SecretAccessKey: string;
  readonly Token: string;
  readonly Expiration: string;
}

export interface CredentialsEndpoint {
  /** For AWS_CONTAINER_CREDENTIALS_FULL_URI. */
  readonly url: string;
  /** Credentials handed out so far, in order. */
  readonly issued: readonly IssuedCredentials[];
  /** Answers every request with this status instead (e.g. 500), or normally again with undefined. */
  fail(status: number | undefined): void;
  stop(): Promise<void>;
}

/**
 * @param validForMs lifetime of each issued set (Expiration = now + validForMs)
 * @param authorization when set, requests must carry it (AWS_CONTAINER_AUTHORIZATION_TOKEN)
 */
export async function startCredentialsEndpoint({
  validForMs = 6 * 3600_000,
  authorization,
}: {
  validForMs?: number;
  authorization?: string;
} = {}): Promise<CredentialsEndpoint> {
  const issued: IssuedCredentials[] = [];
  let failing: number | undefined;
  const server = http.createServer((req, res) => {
    if (failing !== undefined) {
      res.writeHead(failing).end();
      return;
    }
    if (authorization !== undefined && req.headers.authorization !== authorization) {
      res.writeHead(403).end();
      return;
    }
    const n = issued.length + 1;
    const creds: IssuedCredentials = {
      AccessKeyId: `ASIACONTAINER${n}`,
      SecretAccessKey: `container-secret-${n}`,
      Token: `container-token-${n}`,
      Expiration: new Date(Date.now() + validForMs).toISOString(),
    };
    issued.push(creds);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(creds));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v2/credentials/task`,
    issued,
    fail: (status) => {
      failing = status;
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface SignedRequest {
  readonly method: string;
  readonly path: string;
  /** The access key id of the `Credential=` scope. */
  readonly accessKeyId: string | undefined;
  readonly securityToken: string | undefined;
  readonly authorization: string | undefined;
  readonly body: string;
}

export interface SignedRequestRecorder {
  readonly endpoint: string;
  readonly requests: readonly SignedRequest[];
  stop(): Promise<void>;
}

/** Records every request's SigV4 headers; answers `status` (default 200). */
export async function startSignedRequestRecorder(status = 200): Promise<SignedRequestRecorder> {
  const requests: SignedRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const authorization = req.headers.authorization;
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        accessKeyId: /Credential=([^/]+)\//.exec(authorization ?? '')?.[1],
        securityToken: req.headers['x-amz-security-token'] as string | undefined,
        authorization,
        body,
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
