import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { openFds, processMetrics } from '../../src/metrics/process.js';
import { seriesValue } from '../helpers/exposition.js';

/** The descriptors open now, listed: the listing's own is closed again when it returns. */
const listed = (): number => fs.readdirSync('/proc/self/fd').length - 1;

describe('open file descriptors', () => {
  it('are counted as the process has them, and followed as they open and close', async () => {
    const before = await openFds();
    assert.equal(before, listed());
    const fds = Array.from({ length: 300 }, () => fs.openSync('/dev/null', 'r'));
    try {
      assert.equal(await openFds(), before! + 300);
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    assert.equal(await openFds(), before);
  });

  it('reach a scrape once, as tandem_process_open_fds, with the count of the moment', async () => {
    const registry = new Registry();
    processMetrics(registry, 100);
    const fds = Array.from({ length: 100 }, () => fs.openSync('/dev/null', 'r'));
    try {
      const text = await registry.metrics();
      assert.equal(text.split('\n').filter((l) => l.startsWith('tandem_process_open_fds ')).length, 1, 'one sample');
      assert.equal(seriesValue(text, 'tandem_process_open_fds'), listed());
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    assert.equal(seriesValue(await registry.metrics(), 'tandem_process_open_fds'), listed());
  });
});
