/**
 * Headless Chromium for the browser tests: Debian's `/usr/bin/chromium` driven by playwright-core
 * (npm cannot download a browser build here). Screenshots go to `.artifacts/browser/`.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

export const ARTIFACTS = path.resolve(__dirname, '..', '..', '.artifacts', 'browser');

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Waits (generously: the machine is shared) until the text of `selector` matches `pattern`. */
export async function waitForText(
  page: Page,
  selector: string,
  pattern: RegExp,
  timeout = 30_000,
): Promise<string> {
  try {
    // A string runs in the page as is (the test code is compiled without the DOM library).
    const check = `(() => { const el = document.querySelector(${JSON.stringify(selector)});
      return el !== null && new RegExp(${JSON.stringify(pattern.source)}, ${JSON.stringify(pattern.flags)}).test(el.textContent ?? ''); })()`;
    await page.waitForFunction(check, undefined, { timeout, polling: 100 });
  } catch (err) {
    const now = await page
      .locator(selector)
      .first()
      .textContent({ timeout: 1000 })
      .catch(() => '(missing)');
    throw new Error(`${selector} never matched ${pattern} (it shows: ${JSON.stringify(now)})`, {
      cause: err,
    });
  }
  return (await page.locator(selector).first().textContent()) ?? '';
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}
