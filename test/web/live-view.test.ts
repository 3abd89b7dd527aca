import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

/**
 * The screenshot README shows, made by this test. Every run writes it under dist/ (so a run
 * leaves the checkout clean); `UPDATE_SCREENSHOT=1 npm test` writes docs/live-view.png, to commit.
 */
const SCREENSHOT = fileURLToPath(
  new URL(process.env.UPDATE_SCREENSHOT === '1' ? '../../../docs/live-view.png' : '../../live-view.png', import.meta.url),
);

describe('the live view at / in a real browser', () => {
  let server: TestServer;
  let browser: TestBrowser;
  let page: Page;
  const clients: TestClient[] = [];
  /** Every request any page made, and every WebSocket it opened. */
  const requests: string[] = [];
  let loads = 0;

  const row = (id: string) => page.locator(`tr[data-session="${id}"]`);
  const startClient = async (options: Record<string, unknown> = { intervalMs: 200 }) => {
    const client = await TestClient.open(server.wsUrl());
    clients.push(client);
    const id = await client.start({ options });
    return { client, id };
  };

  before(async () => {
    server = await startServer({ LIVE_INTERVAL_MS: '200' });
    browser = await launchBrowser({ viewport: { width: 1280, height: 1000 } });
    browser.context.on('request', (r) => requests.push(r.url()));
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on('websocket', (ws) => requests.push(ws.url()));
    page.on('load', () => loads++);
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await browser?.close();
    await server?.close();
  });

  it('lists a session started before it loaded and one started after, without a reload', async () => {
    const before = await startClient();
    await page.goto(server.httpUrl('/'));
    await row(before.id).waitFor({ timeout: 15_000 });
    const later = await startClient();
    await row(later.id).waitFor({ timeout: 15_000 });
    assert.equal(loads, 1, 'the page was loaded once');
    await page.locator(`tr[data-session="${later.id}"][data-state="running"]`).waitFor();
    assert.match(await row(later.id).innerText(), /demo\s+running\s+127\.0\.0\.1/);
    // The pool panel shows the threads.
    assert.match(await page.locator('#pool-numbers').innerText(), /Busy\s+\d+/);
  });

  it('filters by state and pipeline', async () => {
    const { client, id } = await startClient();
    client.send({ command: 'STOP' });
    await client.waitClose();
    await page.locator(`tr[data-session="${id}"][data-state="stopped"]`).waitFor();
    const sessions = page.getByRole('region', { name: 'Sessions' });
    const state = sessions.getByLabel('State', { exact: true });
    const pipeline = sessions.getByLabel('Pipeline', { exact: true });
    try {
      await state.selectOption('running');
      await row(id).waitFor({ state: 'hidden' });
      await state.selectOption('stopped');
      await row(id).waitFor({ state: 'visible' });
      await pipeline.selectOption('tail');
      await row(id).waitFor({ state: 'hidden' });
      await pipeline.selectOption('demo');
      await row(id).waitFor({ state: 'visible' });
    } finally {
      await pipeline.selectOption('');
      await state.selectOption('');
    }
  });

  it('opens the full inspect view of a session it is clicked', async () => {
    const { id } = await startClient();
    await page.getByRole('button', { name: `Inspect session ${id}` }).click();
    await page.locator('#inspect-body', { hasText: `"id": "${id}"` }).waitFor();
    const text = await page.locator('#inspect-body').innerText();
    assert.match(text, /"producer": \{/);
    assert.match(text, /"spoolSizeBytes": \d+/);
    await page.getByRole('button', { name: 'Close inspect view' }).click();
    await page.locator('#inspect').waitFor({ state: 'hidden' });
  });

  it('stops a session from the page: its client receives stopped with reason admin', async () => {
    const { client, id } = await startClient();
    await page.getByRole('button', { name: `Stop session ${id}` }).click();
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'admin');
    assert.equal(await client.waitClose(), 1000);
    await page.locator(`tr[data-session="${id}"][data-state="stopped"]`).waitFor();
    assert.match(await row(id).innerText(), /stopped \(admin\)/);
    assert.equal(await page.getByRole('button', { name: `Stop session ${id}` }).count(), 0, 'an ended session has no stop button');
  });

  it('try it: streams demo results in order from a form generated from the pipeline\'s schema, then stops', async () => {
    await page.getByRole('region', { name: 'Try it' }).getByLabel('Pipeline', { exact: true }).selectOption('demo');
    const interval = page.getByLabel('intervalMs');
    assert.equal(await interval.inputValue(), '1500', 'the schema\'s default is filled in');
    await interval.fill('50');
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.locator('#try-results li').nth(5).waitFor({ timeout: 15_000 });
    const items = await page.locator('#try-results li').evaluateAll((lis) => lis.map((li) => ({ seq: Number(li.getAttribute('data-seq')), text: li.textContent })));
    items.forEach((item, i) => {
      assert.equal(item.seq, i + 1, `result #${i + 1} has seq ${item.seq}`);
      assert.match(item.text!, new RegExp(`^Data from producer #${i + 1} at \\d+\\.\\d+$`));
    });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.locator('#try-status', { hasText: /stopped: reason client, \d+ results/ }).waitFor();
  });

  it('try it: builds each pipeline\'s form from its schema (text, checkbox, numbers) and sends the URL', async () => {
    const file = path.join(server.fileRoot, 'app.log');
    fs.writeFileSync(file, 'first line from the file\nERROR second line from the file\n');
    const panel = page.getByRole('region', { name: 'Try it' });
    await panel.getByLabel('Pipeline', { exact: true }).selectOption('tail');
    assert.equal(await panel.getByRole('textbox', { name: 'filter' }).inputValue(), '');
    assert.equal(await panel.getByRole('checkbox', { name: 'fromStart' }).isChecked(), false);
    assert.equal(await panel.getByRole('spinbutton', { name: 'pollMs' }).inputValue(), '100');
    assert.equal(await panel.getByRole('spinbutton', { name: 'maxChunkBytes' }).inputValue(), '1048576');
    await panel.getByLabel('URL').fill(pathToFileURL(file).href);
    await panel.getByRole('textbox', { name: 'filter' }).fill('^ERROR');
    await panel.getByRole('checkbox', { name: 'fromStart' }).check();
    await panel.getByRole('button', { name: 'Start', exact: true }).click();
    await page.locator('#try-results li', { hasText: 'ERROR second line from the file' }).waitFor({ timeout: 15_000 });
    assert.doesNotMatch(await page.locator('#try-results').innerText(), /first line/);
    await panel.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.locator('#try-status', { hasText: /stopped: reason client/ }).waitFor();
    await panel.getByLabel('Pipeline', { exact: true }).selectOption('demo');
  });

  it('gives every control an accessible name and reaches each with the keyboard', async () => {
    const { id } = await startClient();
    await page.getByRole('button', { name: `Stop session ${id}` }).waitFor();
    // Every control a user can use right now (disabled ones, like Stop with no session, cannot be).
    const selector = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
    const controls = page.locator(selector).filter({ visible: true });
    const count = await controls.count();
    assert.ok(count >= 15, `found ${count} controls`);
    for (let i = 0; i < count; i++) {
      const control = controls.nth(i);
      await control.evaluate((el, n) => el.setAttribute('data-control', String(n)), i);
      const snapshot = await control.ariaSnapshot();
      // e.g. `- button "Stop session …"`, `- combobox "State"`, `- spinbutton "intervalMs"`.
      assert.match(snapshot.split('\n')[0]!, /^- \w+ "[^"]+"/, `control ${await control.evaluate((el) => el.outerHTML.slice(0, 120))} has an accessible name: ${snapshot}`);
    }
    const reached = new Set<string>();
    await page.locator('body').focus();
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    for (let i = 0; i < count * 2 + 10 && reached.size < count; i++) {
      await page.keyboard.press('Tab');
      const n = await page.evaluate(() => document.activeElement?.getAttribute('data-control') ?? null);
      if (n !== null) reached.add(n);
    }
    const missed = [];
    for (let i = 0; i < count; i++) if (!reached.has(String(i))) missed.push(await controls.nth(i).evaluate((el) => el.outerHTML.slice(0, 120)));
    assert.deepEqual(missed, [], 'every control is reached with Tab');
  });

  it('loads nothing from outside the service', () => {
    const origin = server.httpUrl('');
    const wsOrigin = server.wsUrl('');
    const outside = requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith(wsOrigin + '/') && !u.startsWith('data:'));
    assert.ok(requests.some((u) => u.endsWith('/app/main.js')), 'the page loaded its script from the service');
    assert.ok(requests.some((u) => u.startsWith(wsOrigin + '/ws')), 'try it opened the service\'s own WebSocket');
    assert.deepEqual(outside, []);
  });
});
