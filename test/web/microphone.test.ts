import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { GOFORWARD_RAW, words } from '../helpers/speech.js';

const run = promisify(execFile);

/**
 * Chromium's fake microphone plays (and loops) a WAV: goforward.raw from pocketsphinx-testdata,
 * made at test time into 48 kHz mono 16-bit (a browser's usual rate, so the server resamples)
 * with a second of silence after it, so the recognizer ends the utterance.
 */
async function fakeMicrophoneWav(dir: string): Promise<string> {
  const wav = path.join(dir, 'goforward-48k.wav');
  await run('sox', ['-t', 'raw', '-r', '16000', '-e', 'signed', '-b', '16', '-c', '1', GOFORWARD_RAW, '-r', '48000', '-b', '16', '-c', '1', wav, 'pad', '0.5', '1']);
  return wav;
}

describe('the live view\'s microphone button (transcribe fed by the browser\'s audio)', () => {
  let server: TestServer;
  let browser: TestBrowser;
  let page: Page;
  let dir: string;
  const pageErrors: string[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-mic-'));
    const wav = await fakeMicrophoneWav(dir);
    server = await startServer({ LIVE_INTERVAL_MS: '200' });
    browser = await launchBrowser({
      args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`],
    });
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(server.httpUrl('/'));
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('transcribes the microphone: the final transcript shows the words, Stop microphone ends with stopped', async () => {
    const panel = page.getByRole('region', { name: 'Try it' });
    const pipeline = panel.getByLabel('Pipeline', { exact: true });
    await pipeline.locator('option[value="transcribe"]').waitFor({ state: 'attached', timeout: 15_000 });
    await pipeline.focus();
    await pipeline.selectOption('transcribe');
    const microphone = panel.getByRole('button', { name: 'Microphone', exact: true });
    const stopMicrophone = panel.getByRole('button', { name: 'Stop microphone', exact: true });
    for (const button of [microphone, stopMicrophone]) assert.match(await button.ariaSnapshot(), /^- button "(Microphone|Stop microphone)"/, 'the button has a label');
    assert.equal(await stopMicrophone.isDisabled(), true, 'nothing to stop yet');
    // By keyboard: Tab from the pipeline reaches the Microphone button, Enter presses it.
    for (let i = 0; i < 40 && !(await microphone.evaluate((el) => el === document.activeElement)); i++) await page.keyboard.press('Tab');
    assert.equal(await microphone.evaluate((el) => el === document.activeElement), true, 'Microphone is reached with Tab');
    // Every partial hypothesis the page shows in place, as it shows it.
    await page.evaluate(() => {
      const partial = document.getElementById('try-partial')!;
      const seen: string[] = [];
      (window as unknown as { partialsSeen: string[] }).partialsSeen = seen;
      new MutationObserver(() => seen.push(partial.textContent ?? '')).observe(partial, { childList: true, characterData: true, subtree: true });
    });
    await page.keyboard.press('Enter');

    await page.locator('#try-status', { hasText: /session \S+ started; listening/ }).waitFor({ timeout: 30_000 });
    const final = page.locator('#try-results li.final', { hasText: /go forward ten meters/i });
    await final.first().waitFor({ timeout: 90_000 });
    assert.deepEqual(words((await final.first().textContent())!), ['go', 'forward', 'ten', 'meters']);
    const partials = await page.evaluate(() => (window as unknown as { partialsSeen: string[] }).partialsSeen);
    assert.ok(partials.some((p) => words(p)[0] === 'go'), `a partial hypothesis was shown before the final: ${JSON.stringify(partials.slice(0, 10))}`);

    await stopMicrophone.click();
    await page.locator('#try-status', { hasText: /stopped: reason completed, \d+ results/ }).waitFor({ timeout: 60_000 });
    assert.equal(await microphone.isDisabled(), false, 'the microphone can be used again');
    assert.deepEqual(pageErrors, []);
  });
});
