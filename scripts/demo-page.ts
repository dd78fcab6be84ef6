/**
 * The local demo page's HTTP side (served by the `demo` function, which exists in the `local`
 * stage only — see serverless.yml): the static files under `demo/`, the WebSocket address the page
 * connects to, and a dev token minted with the local HS256 secret (`.dev/jwt-secret` under
 * `npm start`), so the page can sign in the way the platform's clients do (`system.authenticate`
 * with a `token`). Never part of a deployed stage.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import jwt from 'jsonwebtoken';

export interface PageRequest {
  readonly method: string;
  readonly path: string;
  readonly body?: string | null;
}

export interface PageResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface DemoPageOptions {
  /** The folder with index.html, app.js, style.css. */
  readonly root: string;
  /** The WebSocket port the page connects to (on the host it was loaded from). */
  readonly wsPort: number;
  /** The HS256 secret the gateway verifies tokens with; no token endpoint without it. */
  readonly secret?: string;
  /** Lifetime of a minted token. */
  readonly tokenTtlSecs?: number;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Files the page may load: one plain name, no folders (so nothing outside `root` is reachable). */
const FILE = /^[a-z0-9][a-z0-9-]*\.(html|js|css|svg|png)$/;

const json = (statusCode: number, body: unknown): PageResponse => ({
  statusCode,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
});

/** A user id the platform's backend can use: decimal digits, 1–15 of them, not 0. */
const USER_ID = /^[1-9][0-9]{0,14}$/;

export function createDemoPage({ root, wsPort, secret, tokenTtlSecs = 3600 }: DemoPageOptions) {
  async function file(name: string): Promise<PageResponse> {
    if (!FILE.test(name)) return json(404, { error: 'not found' });
    try {
      const body = await readFile(path.join(root, name), name.endsWith('.png') ? 'base64' : 'utf8');
      return {
        statusCode: 200,
        headers: {
          'content-type': TYPES[path.extname(name)] ?? 'application/octet-stream',
          'cache-control': 'no-cache',
        },
        body,
      };
    } catch {
      return json(404, { error: 'not found' });
    }
  }

  function token(body: string | null | undefined): PageResponse {
    if (!secret) return json(503, { error: 'no dev secret (JWT_SECRET) configured' });
    let input: unknown;
    try {
      input = JSON.parse(body ?? '');
    } catch {
      return json(400, { error: 'body must be JSON {"user_id","username"}' });
    }
    const { user_id: userId, username } = (input ?? {}) as { user_id?: unknown; username?: unknown };
    const id = typeof userId === 'number' ? String(userId) : userId;
    if (typeof id !== 'string' || !USER_ID.test(id))
      return json(400, { error: 'user_id must be a positive integer' });
    if (typeof username !== 'string' || username.trim() === '' || username.length > 64)
      return json(400, { error: 'username must be 1–64 characters' });
    const signed = jwt.sign({ sub: id, username: username.trim(), roles: ['user'] }, secret, {
      algorithm: 'HS256',
      expiresIn: tokenTtlSecs,
    });
    return json(200, { token: signed, expires_in: tokenTtlSecs });
  }

  return {
    async handle(req: PageRequest): Promise<PageResponse> {
      const p = req.path.replace(/\/+$/, '') || '/';
      if (req.method === 'GET' && (p === '/' || p === '/demo')) return file('index.html');
      if (req.method === 'GET' && p === '/demo/config.json') return json(200, { ws_port: wsPort });
      if (req.method === 'GET' && p.startsWith('/demo/')) return file(p.slice('/demo/'.length));
      if (req.method === 'POST' && p === '/demo/token') return token(req.body);
      return json(404, { error: 'not found' });
    },
  };
}
