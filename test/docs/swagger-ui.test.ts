import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('Swagger UI at /docs in a real browser', () => {
  let server: TestServer;
  let chromium: TestBrowser;
  let browser: BrowserContext;
  before(async () => {
    server = await startServer();
    chromium = await launchBrowser();
    browser = chromium.context;
  });
  after(async () => {
    await chromium?.close();
    await server?.close();
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
