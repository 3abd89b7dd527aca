import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** Debian's chromium (installed by .ci/run); Playwright's own browser downloads are never used. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

describe('Swagger UI at /docs in a real browser', () => {
  let server: TestServer;
  let profile: string;
  let browser: BrowserContext;
  before(async () => {
    server = await startServer();
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-chromium-'));
    // launchPersistentContext is how Playwright takes a --user-data-dir: a fresh, throwaway profile.
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  it('runs "Try it out" on the session list and shows the live session in the response', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ options: { intervalMs: 500 } });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const outside: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(server.httpUrl('/')) && !r.url().startsWith('data:')) outside.push(r.url());
      });
      await page.goto(server.httpUrl('/docs/'));
      const op = page.locator('#operations-sessions-listSessions');
      await op.locator('.opblock-summary').click();
      await op.locator('button.try-out__btn').click();
      await op.locator('button.execute').click();
      const response = op.locator('.live-responses-table td.response-col_description:not(.col_header)');
      await response.getByText(id).first().waitFor({ timeout: 15_000 });
      const text = await response.innerText();
      assert.match(text, new RegExp(`"id": "${id}"`));
      assert.match(text, /"state": "running"/);
      assert.deepEqual(outside, [], 'Swagger UI loads nothing from outside the service');
    } finally {
      client.close();
      await client.waitClose();
    }
  });

  it('links the WebSocket protocol\'s AsyncAPI documents', async () => {
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(server.httpUrl('/docs/'));
    const link = page.locator('.info .description').getByRole('link', { name: 'asyncapi.yaml' });
    await link.waitFor({ timeout: 15_000 });
    const href = await link.getAttribute('href');
    assert.equal(href, '/asyncapi.yaml');
    const res = await page.request.get(server.httpUrl(href));
    assert.equal(res.status(), 200);
    assert.match(await res.text(), /^asyncapi: 3\./);
  });
});
