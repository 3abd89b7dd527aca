import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';

const main = fileURLToPath(new URL('../src/main.js', import.meta.url));

describe('configuration', () => {
  it('has working defaults: port 8000 on loopback, ./data, demo', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8000);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.defaultPipeline, 'demo');
    assert.equal(c.stopGraceMs, 2000);
    assert.ok(c.dataDir.endsWith('/data'));
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.pool));
  });

  it('names the variable that is wrong', () => {
    for (const [env, name] of [
      [{ PORT: 'eighty' }, 'PORT'],
      [{ PORT: '70000' }, 'PORT'],
      [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      [{ STOP_GRACE_MS: '-1' }, 'STOP_GRACE_MS'],
      [{ POOL_MIN_THREADS: '4', POOL_MAX_THREADS: '2' }, 'POOL_MIN_THREADS'],
      [{ SPOOL_FSYNC: 'maybe' }, 'SPOOL_FSYNC'],
    ] as const) {
      assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && err.message.includes(name), name);
    }
  });

  it('refuses to start the process on a bad value, naming it', () => {
    const r = spawnSync(process.execPath, [main], { env: { ...process.env, PORT: 'eighty' }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /PORT="eighty"/);
  });
});
