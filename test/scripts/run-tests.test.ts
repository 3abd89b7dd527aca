import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const runTests = fileURLToPath(new URL('../../../scripts/run-tests.mjs', import.meta.url));

describe('scripts/run-tests.mjs: what `npm test` runs', () => {
  it('runs the compiled tests whose source is there, and names, without running, those whose source is gone', () => {
    // A checkout of its own: test/kept.test.ts with its compiled file, and a compiled test whose
    // source was removed (tsc leaves it in dist/ until someone deletes it).
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-run-tests-'));
    try {
      fs.mkdirSync(path.join(root, 'test', 'part'), { recursive: true });
      fs.mkdirSync(path.join(root, 'dist', 'test', 'part'), { recursive: true });
      fs.writeFileSync(path.join(root, 'test', 'part', 'kept.test.ts'), '// its source\n');
      const compiled = (name: string) => `import { it } from 'node:test';\nit(${JSON.stringify(name)}, () => {});\n`;
      fs.writeFileSync(path.join(root, 'dist', 'test', 'part', 'kept.test.js'), compiled('the kept test ran'));
      fs.writeFileSync(path.join(root, 'dist', 'test', 'part', 'gone.test.js'), compiled('the leftover ran'));
      fs.writeFileSync(path.join(root, 'package.json'), '{"type":"module"}\n');
      // Without this test runner's own context: a nested `node --test` would report to it, not to stdout.
      const env = { ...process.env };
      delete env.NODE_TEST_CONTEXT;
      const run = spawnSync(process.execPath, [runTests], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /the kept test ran/);
      assert.doesNotMatch(run.stdout, /the leftover ran/);
      assert.match(run.stderr, /not run, their sources are gone .*dist\/test\/part\/gone\.test\.js/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
