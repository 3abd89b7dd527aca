import os from 'node:os';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError, isLoopback, loadConfig } from '../src/config.js';

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

  it('admits real-time 48 kHz f32le audio in 16 KiB frames by default', () => {
    const c = loadConfig({});
    const frameBytes = 16 * 1024;
    const framesPerSecond = (48_000 * 4) / frameBytes;
    assert.ok(frameBytes <= c.maxMessageBytes, `a ${frameBytes}-byte frame fits MAX_MESSAGE_BYTES=${c.maxMessageBytes}`);
    assert.ok(framesPerSecond <= c.maxMessagesPerSecond, `${framesPerSecond.toFixed(1)} frames/s fit MAX_MESSAGES_PER_SECOND=${c.maxMessagesPerSecond}`);
  });

  it('gives work to one step thread fewer than the cores, keeping the rest of POOL_MAX_THREADS as spares', () => {
    const cores = os.availableParallelism();
    const c = loadConfig({ POOL_MAX_THREADS: '2' });
    assert.equal(c.pool.maxThreads, 2);
    assert.equal(c.pool.activeThreads, Math.min(2, Math.max(1, cores - 1)));
    assert.equal(c.pool.heldAfterMs, c.batch.stallMs, 'a thread is held once a job has run STEP_BATCH_STALL_MS');
    assert.equal(loadConfig({ POOL_MAX_THREADS: '8', POOL_ACTIVE_THREADS: '8' }).pool.activeThreads, 8);
    assert.equal(loadConfig({ POOL_MAX_THREADS: '1' }).pool.activeThreads, 1);
  });

  it('names the variable that is wrong', () => {
    for (const [env, name] of [
      [{ PORT: 'eighty' }, 'PORT'],
      [{ PORT: '70000' }, 'PORT'],
      [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      [{ STOP_GRACE_MS: '-1' }, 'STOP_GRACE_MS'],
      [{ POOL_MIN_THREADS: '4', POOL_MAX_THREADS: '2' }, 'POOL_MIN_THREADS'],
      [{ POOL_ACTIVE_THREADS: '3', POOL_MAX_THREADS: '2' }, 'POOL_ACTIVE_THREADS'],
      [{ POOL_ACTIVE_THREADS: '0' }, 'POOL_ACTIVE_THREADS'],
      [{ SPOOL_FSYNC: 'maybe' }, 'SPOOL_FSYNC'],
      [{ STOP_GRACE_MS: '20000' }, 'SHUTDOWN_TIMEOUT_MS'],
      [{ CLIENT_TOKEN: 'has a space in it, sadly' }, 'CLIENT_TOKEN'],
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

const TOKEN = 'a-long-enough-admin-token';

describe('config: control-plane tokens', () => {
  it('refuses a non-loopback HOST without ADMIN_TOKEN, naming both variables', () => {
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'example.internal']) {
      assert.throws(
        () => loadConfig({ HOST: host }),
        (err: unknown) => err instanceof ConfigError && /HOST=.*not a loopback.*ADMIN_TOKEN/.test(err.message),
        host,
      );
    }
  });

  it('starts on loopback without a token, and anywhere with one', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.0.0.2']) assert.equal(loadConfig({ HOST: host }).tokens.admin, undefined);
    const c = loadConfig({ HOST: '0.0.0.0', ADMIN_TOKEN: TOKEN });
    assert.equal(c.tokens.admin, TOKEN);
    assert.equal(isLoopback('0.0.0.0'), false);
  });

  it('refuses a read-only token alone, one equal to the admin token, and short tokens without echoing them', () => {
    assert.throws(() => loadConfig({ ADMIN_READ_TOKEN: TOKEN }), /ADMIN_READ_TOKEN is set but ADMIN_TOKEN is not/);
    assert.throws(() => loadConfig({ ADMIN_TOKEN: TOKEN, ADMIN_READ_TOKEN: TOKEN }), /must differ/);
    assert.throws(
      () => loadConfig({ ADMIN_TOKEN: 'hunter2' }),
      (err: unknown) => err instanceof ConfigError && /ADMIN_TOKEN=\[redacted\]/.test(err.message) && !err.message.includes('hunter2'),
    );
  });

  it('reads the retention of ended sessions', () => {
    const c = loadConfig({ SESSION_RETAIN_COUNT: '7', SESSION_RETAIN_SECONDS: '2' });
    assert.equal(c.sessionRetainCount, 7);
    assert.equal(c.sessionRetainMs, 2000);
    assert.throws(() => loadConfig({ SESSION_RETAIN_COUNT: '-1' }), /SESSION_RETAIN_COUNT/);
  });

  it('keeps idle loop threads longer than the speech decoders they may hold, and ≤ 1 s when none are kept', () => {
    const c = loadConfig({ SPEECH_IDLE_DECODERS_PER_THREAD: '2', SPEECH_DECODER_IDLE_SECONDS: '30', POOL_IDLE_TIMEOUT_MS: '200' });
    assert.deepEqual({ ...c.speech, modelDir: undefined }, { library: 'libpocketsphinx.so.3', modelDir: undefined, idleDecodersPerThread: 2, decoderIdleMs: 30_000, finalPassHoldMs: 1000 });
    assert.ok(c.pool.loopIdleTimeoutMs > 30_000, `loop threads idle ${c.pool.loopIdleTimeoutMs} ms`);
    assert.equal(loadConfig({ SPEECH_IDLE_DECODERS_PER_THREAD: '0', SPEECH_DECODER_IDLE_SECONDS: '30' }).pool.loopIdleTimeoutMs, 1000);
    assert.equal(loadConfig({ SPEECH_IDLE_DECODERS_PER_THREAD: '0', POOL_IDLE_TIMEOUT_MS: '200' }).pool.loopIdleTimeoutMs, 200);
    assert.throws(() => loadConfig({ SPEECH_DECODER_IDLE_SECONDS: '0' }), /SPEECH_DECODER_IDLE_SECONDS/);
    assert.throws(() => loadConfig({ SPEECH_IDLE_DECODERS_PER_THREAD: '17' }), /SPEECH_IDLE_DECODERS_PER_THREAD/);
  });
});
