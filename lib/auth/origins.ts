/**
 * Browser origins allowed to open a WebSocket and to have the session cookie bind it
 * (docs/decisions.md D8).
 *
 * - `{ kind: 'list' }` (`WS_ALLOWED_ORIGINS` set): an `Origin` that is present and not listed is
 *   refused; the cookie binds only when the `Origin` is listed.
 * - `{ kind: 'unset' }` (deployed stages without a list): every origin may connect, the cookie never
 *   binds.
 * - `{ kind: 'any' }` (stage `local` without a list, i.e. `npm start`): every origin may connect and
 *   the cookie binds.
 */
export type OriginPolicy =
  | { readonly kind: 'list'; readonly origins: ReadonlySet<string> }
  | { readonly kind: 'unset' }
  | { readonly kind: 'any' };

/**
 * One configured origin in the form browsers send it (`scheme://host[:port]`, lower case, no default
 * port, no path); undefined when the text is not an origin.
 */
export function normalizeOrigin(text: string): string | undefined {
  const trimmed = text.trim().replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) return undefined;
  return url.origin;
}

export function originAllowed(policy: OriginPolicy, origin: string): boolean {
  return policy.kind !== 'list' || policy.origins.has(origin.trim().toLowerCase());
}

/** Whether the session cookie may bind an upgrade with this `Origin` (undefined: none sent). */
export function originBindsCookie(policy: OriginPolicy, origin: string | undefined): boolean {
  if (policy.kind === 'any') return true;
  if (policy.kind === 'unset' || origin === undefined) return false;
  return policy.origins.has(origin.trim().toLowerCase());
}
