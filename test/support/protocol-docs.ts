import { readFileSync } from 'node:fs';
import path from 'node:path';

const DOC = path.join(__dirname, '..', '..', 'docs', 'protocol.md');

export interface DocumentedError {
  readonly code: string;
  /** The message; `<placeholder>` parts of the documented text match any non-empty text. */
  readonly message: RegExp;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The gateway's own `system.error` frames as docs/protocol.md's "Errors" table lists them (the
 * backend's codes, which the gateway only relays, are left out). A test that accepts "the documented
 * error" takes it from here, so documenting a new error is all it takes to allow it.
 */
export function documentedErrors(): DocumentedError[] {
  const doc = readFileSync(DOC, 'utf8');
  const section = doc.slice(doc.indexOf('\n## Errors'), doc.indexOf('\n## ', doc.indexOf('\n## Errors') + 1));
  const errors: DocumentedError[] = [];
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([A-Z_]+)`\s*\|\s*`([^`]+)`\s*\|/.exec(line);
    if (!m) continue;
    const pattern = m[2]!
      .split(/<[^>]+>/)
      .map(escapeRegExp)
      .join('.+');
    errors.push({ code: m[1]!, message: new RegExp(`^${pattern}$`) });
  }
  if (errors.length < 5) throw new Error(`${DOC}: found only ${errors.length} errors in the Errors table`);
  return errors;
}

/** True when `frame` is a `system.error` that docs/protocol.md documents. */
export function isDocumentedError(
  errors: readonly DocumentedError[],
  frame: Record<string, unknown>,
): boolean {
  return (
    frame.type === 'system.error' &&
    Object.keys(frame).length === 3 &&
    errors.some(
      (e) => e.code === frame.code && typeof frame.message === 'string' && e.message.test(frame.message),
    )
  );
}
