/**
 * The demo page as people use it: the stack `npm start` runs (gateway, consumer, dev backend), the
 * page at `/` in headless Chromium, two players in two pages and a third page watching. Every step
 * asserts what the pages show, and each test leaves screenshots in `.artifacts/browser/`.
 *
 * `DEMO_SCREENSHOT=docs` also writes the README's picture of two windows mid-game
 * (docs/demo-two-windows.png).
 */
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, launchBrowser, screenshot, waitForText } from '../support/browser';
import { type LocalStack, startLocalStack } from '../support/local-stack';

jest.setTimeout(120_000);

let stack: LocalStack;
let browser: Browser;
let john: Page;
let ann: Page;
let eve: Page;
const pageErrors: string[] = [];

const VIEWPORT = { width: 960, height: 900 };

async function open(query: string): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`${query}: ${err.message}`));
  await page.goto(`${stack.pageUrl}?${query}`);
  return page;
}

async function signIn(page: Page, name: string): Promise<void> {
  await page.locator('#signin-button:not([disabled])').click();
  await waitForText(page, '#me', new RegExp(`^${name} #\\d+$`));
}

const frameTypes = (page: Page) =>
  page.$$eval('#frames li', (items) => items.map((li) => `${li.className}:${li.getAttribute('data-type')}`));

beforeAll(async () => {
  // Short games keep the run modest: 3 points win Bigger Dice (the platform plays to 10).
  browser = await launchBrowser();
  stack = await startLocalStack({ DEV_BACKEND_DICE_TARGET: '3' });
  [john, ann, eve] = await Promise.all([
    open('user=4&name=John&auth=token'),
    open('user=9&name=Ann&auth=credentials'),
    open('user=15&name=Eve&auth=token'),
  ]);
}, 200_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

afterEach(() => {
  expect(pageErrors.splice(0)).toEqual([]);
});

describe('the demo page', () => {
  it('connects, shows the welcome and signs in with a dev token and with the credential form', async () => {
    await waitForText(john, '#conn', /^connected$/);
    await signIn(john, 'John');
    await signIn(ann, 'Ann');
    await signIn(eve, 'Eve');
    const frames = await frameTypes(john);
    expect(frames[0]).toBe('in:system.welcome');
    expect(frames).toEqual(
      expect.arrayContaining([
        'out:system.authenticate',
        'in:system.authenticated',
        'out:chat.command.join_lobby',
      ]),
    );
    // John's page signed in with a minted token, Ann's with the credential form.
    const johnAuth = await john.$eval(
      '#frames li[data-type="system.authenticate"] pre',
      (el) => el.textContent,
    );
    expect(JSON.parse(johnAuth ?? '{}')).toEqual({
      type: 'system.authenticate',
      token: expect.stringMatching(/…$/),
    });
    const annAuth = await ann.$eval(
      '#frames li[data-type="system.authenticate"] pre',
      (el) => el.textContent,
    );
    expect(JSON.parse(annAuth ?? '{}')).toEqual({
      type: 'system.authenticate',
      user_id: '9',
      username: 'Ann',
    });
    // Everyone is listed as online on every page.
    for (const page of [john, ann, eve]) await waitForText(page, '#online-count', /^3$/);
    expect(await john.locator('#online li').allTextContents()).toEqual(['Ann#9', 'Eve#15', 'Johnyou']);
    // Frames in carry their delay since the last frame out.
    expect(await john.locator('#frames li.in .lat').count()).toBeGreaterThan(0);
    await screenshot(john, 'signed-in-john');
  });

  it('chats both ways: direct messages with typing and read receipts, and the lobby', async () => {
    await john.locator('#online li[data-user="9"]').click();
    await john.fill('#dm-input', 'Hi Ann, dice?');
    await john.click('#dm-send');
    await waitForText(ann, '#online li[data-user="4"] .tag', /^1 new$/);
    await ann.locator('#online li[data-user="4"]').click();
    await waitForText(ann, '#dm-log', /Hi Ann, dice\?/);
    // Ann opened the conversation: John's page shows his message read.
    await waitForText(john, '#dm-log li.mine', /read ✓/);
    await ann.locator('#dm-input').pressSequentially('Sure');
    await waitForText(john, '#typing', /^Ann is typing…$/);
    await ann.click('#dm-send');
    await waitForText(john, '#dm-log', /Sure/);
    expect(await john.locator('#dm-log li').allTextContents()).toEqual([
      expect.stringMatching(/^Hi Ann, dice\?/),
      expect.stringMatching(/^Sure/),
    ]);
    expect(await john.locator('#dm-log li.mine').count()).toBe(1);
    // Eve was not part of it.
    expect(await eve.locator('#online li[data-user="4"] .tag').textContent()).toBe('#4');

    await eve.fill('#lobby-input', 'Hello lobby!');
    await eve.click('#lobby-send');
    for (const page of [john, ann, eve]) await waitForText(page, '#lobby-log', /EveHello lobby!/);
    await screenshot(john, 'chat-john');
    await screenshot(ann, 'chat-ann');
  });

  it('plays Bigger Dice from create and join to game_over, watched by a third page', async () => {
    await john.selectOption('#create-type', 'bigger_dice');
    await john.fill('#create-name', 'Dice Night');
    await john.click('#create-button');
    await waitForText(john, '#room-title', /^Dice Night · Bigger Dice$/);
    await ann.locator('#rooms li[data-room="Dice Night"] button', { hasText: 'Join' }).click();
    await eve.locator('#rooms li[data-room="Dice Night"] button', { hasText: 'Watch' }).click();
    await waitForText(eve, '#room-title', /^Dice Night/);
    await waitForText(john, '#room-lobby', /Ann/);
    await waitForText(john, '#room-spectators', /Eve/);
    await waitForText(ann, '#room-banner', /Waiting for John to pick 2 players/);

    await john.locator('#room-lobby li[data-user="4"] button').click();
    await waitForText(john, '#room-players', /John/);
    await john.locator('#room-lobby li[data-user="9"] button').click();
    for (const page of [john, ann]) await page.locator('#ready-button:not([hidden]):not([disabled])').click();
    for (const page of [john, ann, eve]) await waitForText(page, '#room-status', /^playing$/);
    // The lobby lists dropped the room once the game started (room_removed, game_started).
    await waitForText(eve, '#rooms', /No open rooms/);
    expect(await eve.locator('#roll-button').isVisible()).toBe(false);

    // Room chat: the lobby channel before the game, the players' channel reaches the spectator too,
    // and the spectators' channel reaches spectators only.
    await john.fill('#room-chat-input', 'good luck!');
    await john.click('#room-chat-send');
    for (const page of [john, ann, eve]) await waitForText(page, '#room-log', /Johngood luck!/);
    await eve.fill('#room-chat-input', 'go Ann!');
    await eve.click('#room-chat-send');
    await waitForText(eve, '#room-log', /Eve 👁go Ann!/);

    let midGame = false;
    const deadline = Date.now() + 90_000;
    for (;;) {
      if ((await john.locator('#room-banner.win').count()) > 0) break;
      if (Date.now() > deadline) throw new Error('no game_over within 90 s');
      for (const page of [john, ann]) {
        const roll = page.locator('#roll-button');
        if (!(await roll.isEnabled())) continue;
        await roll.click();
        // Wait for the turn to move on (or the game to end) before looking again.
        await page.waitForFunction(
          "document.querySelector('#roll-button').disabled || document.querySelector('#room-banner.win') !== null",
          undefined,
          { timeout: 30_000, polling: 100 },
        );
      }
      // A round just won, before the game is over: the picture of the README.
      if (
        !midGame &&
        (await john.locator('.face.won').count()) === 1 &&
        !(await john.locator('#room-banner.win').count())
      ) {
        midGame = true;
        await twoWindows('dice-mid-game');
      }
      await john.waitForTimeout(100);
    }

    const banners = await Promise.all(
      [john, ann, eve].map((p) => waitForText(p, '#room-banner.win', /wins/)),
    );
    const winner = /^(John|Ann) wins/.exec(banners[0] ?? '')?.[1];
    expect(winner).toBeDefined();
    for (const text of banners) expect(text.startsWith(`${winner} wins`)).toBe(true);
    for (const page of [john, ann, eve]) {
      await waitForText(page, '#room-log', new RegExp(`Game over — ${winner} wins`));
      expect(await page.locator(`#dice-faces .face:has-text("${winner}") .score`).textContent()).toBe('3');
    }
    expect(await eve.locator('#room-log').textContent()).toMatch(/rolled [1-6]/);
    expect(midGame).toBe(true);
    expect(await john.locator('#room-log').textContent()).not.toContain('go Ann!');
    expect(await ann.locator('#room-log').textContent()).not.toContain('go Ann!');
    await Promise.all([
      screenshot(john, 'dice-over-john'),
      screenshot(ann, 'dice-over-ann'),
      screenshot(eve, 'dice-over-eve'),
    ]);

    for (const page of [john, ann]) await page.click('#leave-button');
    await waitForText(eve, '#lobby-log', /Room “Dice Night” was closed \(abandoned\)/);
    expect(await eve.locator('#room').isHidden()).toBe(true);
  });

  it('plays a Tic-Tac-Toe game to its result, watched by a third page', async () => {
    await ann.selectOption('#create-type', 'tic_tac_toe');
    await ann.fill('#create-name', 'Noughts');
    await ann.click('#create-button');
    await waitForText(ann, '#room-title', /^Noughts · Tic-Tac-Toe$/);
    await john.locator('#rooms li[data-room="Noughts"] button', { hasText: 'Join' }).click();
    await eve.locator('#rooms li[data-room="Noughts"] button', { hasText: 'Watch' }).click();
    await waitForText(ann, '#room-lobby', /John/);
    await waitForText(ann, '#room-spectators', /Eve/);
    await ann.locator('#room-lobby li[data-user="9"] button').click();
    await waitForText(ann, '#room-players', /Ann/);
    await ann.locator('#room-lobby li[data-user="4"] button').click();
    for (const page of [john, ann]) await page.locator('#ready-button:not([hidden]):not([disabled])').click();
    for (const page of [john, ann, eve]) await waitForText(page, '#room-status', /^playing$/);
    for (const page of [john, ann, eve]) await page.locator('#board:not([hidden])').waitFor();

    // Who plays X is a coin toss: X takes the top row while O answers in the middle row.
    const tag = await ann.locator('#room-players li[data-user="9"] .tag').textContent();
    const [x, o, xName, xId] = /· X/.test(tag ?? '') ? [ann, john, 'Ann', '9'] : [john, ann, 'John', '4'];
    for (const [page, cell] of [
      [x, 0],
      [o, 3],
      [x, 1],
      [o, 4],
      [x, 2],
    ] as const) {
      const button = page.locator(`#board button[data-cell="${cell}"]`);
      await page.waitForFunction(
        `!document.querySelector('#board button[data-cell="${cell}"]').disabled`,
        undefined,
        {
          timeout: 30_000,
          polling: 100,
        },
      );
      await button.click();
      await waitForText(eve, `#board button[data-cell="${cell}"]`, /^[XO]$/);
    }
    for (const page of [john, ann, eve]) {
      await waitForText(page, '#room-log', new RegExp(`${xName} wins game 1`));
      await waitForText(page, `#room-players li[data-user="${xId}"] .tag`, /^1 pts · [XO]$/);
    }
    await Promise.all([
      screenshot(john, 'ttt-result-john'),
      screenshot(ann, 'ttt-result-ann'),
      screenshot(eve, 'ttt-result-eve'),
    ]);
    // The next game starts with the marks swapped: the loser of game 1 now plays X and moves first.
    await waitForText(o, '#room-banner', /^Your turn$/);
  });

  it('removes a room once everybody has left it', async () => {
    for (const page of [john, ann]) await page.click('#leave-button');
    await waitForText(eve, '#lobby-log', /Room “Noughts” was closed \(abandoned\)/);
    expect(await eve.locator('#room').isHidden()).toBe(true);
  });
});

/** A picture of John's and Ann's windows side by side (the README's, with DEMO_SCREENSHOT=docs). */
async function twoWindows(name: string): Promise<void> {
  const [left, right] = await Promise.all([screenshot(john, `${name}-john`), screenshot(ann, `${name}-ann`)]);
  const img = (file: string) => `data:image/png;base64,${readFileSync(file).toString('base64')}`;
  const page = await browser.newPage({
    viewport: { width: VIEWPORT.width * 2 + 36, height: VIEWPORT.height + 24 },
  });
  await page.setContent(
    `<body style="margin:0;padding:12px;background:#2b3040;display:flex;gap:12px">
      <img src="${img(left)}" style="width:${VIEWPORT.width}px;border-radius:8px">
      <img src="${img(right)}" style="width:${VIEWPORT.width}px;border-radius:8px"></body>`,
  );
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  await page.close();
  if (process.env.DEMO_SCREENSHOT === 'docs') {
    copyFileSync(file, path.resolve(__dirname, '..', '..', 'docs', 'demo-two-windows.png'));
  }
}
