import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'page-admin-token-0123456789';
const READ = 'page-read-token-0123456789';

describe('the live view with ADMIN_TOKEN and ADMIN_READ_TOKEN set', () => {
  let server: TestServer;
  let browser: TestBrowser;
  let client: TestClient;
  let id: string;
  const urls: string[] = [];
  before(async () => {
    server = await startServer({ ADMIN_TOKEN: ADMIN, ADMIN_READ_TOKEN: READ });
    browser = await launchBrowser();
    browser.context.on('request', (r) => urls.push(r.url()));
    client = await TestClient.open(server.wsUrl());
    id = await client.start({ options: { intervalMs: 200 } });
  });
  after(async () => {
    client?.terminate();
    await browser?.close();
    await server?.close();
  });

  /** A new tab: its session storage starts empty. */
  const openWithToken = async (token: string) => {
    const page = await browser.context.newPage();
    await page.goto(server.httpUrl('/'));
    await page.getByLabel('Admin or read-only token').fill(token);
    await page.getByRole('button', { name: 'Use token' }).click();
    return page;
  };

  it('asks for a token, and refuses a wrong one without showing anything', async () => {
    const page = await openWithToken('this-is-not-a-valid-token-000');
    await page.locator('#token-error', { hasText: /That token was refused \(UNAUTHORIZED\)/ }).waitFor();
    assert.equal(await page.locator('#main').isHidden(), true);
    assert.equal(await page.locator(`tr[data-session="${id}"]`).count(), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('tandem.token')), null, 'a refused token is not kept');
    await page.close();
  });

  it('shows a read-only token the sessions but no stop button', async () => {
    const page = await openWithToken(READ);
    await page.locator(`tr[data-session="${id}"][data-state="running"]`).waitFor();
    assert.match(await page.locator('#role').innerText(), /read-only/);
    assert.equal(await page.getByRole('button', { name: /^Stop session/ }).count(), 0);
    await page.close();
  });

  it('shows the admin token a stop button; the token stays in the tab, out of URLs and cookies', async () => {
    const page = await openWithToken(ADMIN);
    await page.getByRole('button', { name: `Stop session ${id}` }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('tandem.token')), ADMIN);
    assert.deepEqual(await browser.context.cookies(), []);
    assert.deepEqual(urls.filter((u) => u.includes(ADMIN) || u.includes(READ)), []);
    // A reload in the same tab keeps the token: no prompt again.
    await page.reload();
    await page.getByRole('button', { name: `Stop session ${id}` }).waitFor();
    await page.close();
  });
});
