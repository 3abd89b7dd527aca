import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeFlagsOf, serviceNodeFlags } from '../../bench/service-flags.js';

describe("npm start's node flags (bench/service-flags.ts)", () => {
  it('gives V8 one background thread (on two cores its default four competed with the event loop) and no memory reducer (its collections dropped the optimized result path): docs/PERFORMANCE.md', () => {
    assert.deepEqual(serviceNodeFlags(), ['--v8-pool-size=1', '--no-memory-reducer']);
  });

  it('reads the flags between node and the service, and refuses a start script of another shape, naming it', () => {
    assert.deepEqual(nodeFlagsOf('node dist/src/main.js'), []);
    assert.deepEqual(nodeFlagsOf('node --a=1  --b dist/src/main.js'), ['--a=1', '--b']);
    assert.throws(() => nodeFlagsOf('tsx src/main.ts'), /start script should be `node \[--flags\] dist\/src\/main\.js`, got: tsx src\/main\.ts/);
    assert.throws(() => nodeFlagsOf('node --v8-pool-size=1'), /should be `node \[--flags\] dist\/src\/main\.js`/);
    assert.throws(() => nodeFlagsOf('node --v8-pool-size=1 dist/other.js'), /should be `node \[--flags\] dist\/src\/main\.js`/);
    assert.throws(() => nodeFlagsOf('node -r x dist/src/main.js'), /passes node "-r", which is not a --flag/);
    assert.throws(() => nodeFlagsOf('node -- dist/src/main.js'), /passes node "--", which is not a --flag/);
  });
});
