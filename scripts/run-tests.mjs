// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Node 20's `--test` takes paths, not globs, so the files are listed here.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve('dist/test');
// A test file that has not finished after this long fails as "timed out" and the run goes on:
// a hang (a child process that never starts, a promise that never settles) must cost minutes,
// not CI's whole budget. The slowest suite took 37 s in a run with two spinners beside it.
// TEST_FILE_TIMEOUT_MS overrides it (0: no limit).
const timeoutMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 600_000);
if (!Number.isInteger(timeoutMs) || timeoutMs < 0) {
  console.error(`TEST_FILE_TIMEOUT_MS must be a whole number of ms, 0 for no limit (got ${JSON.stringify(process.env.TEST_FILE_TIMEOUT_MS)})`);
  process.exit(2);
}
const only = process.argv.slice(2);
const files = [];
// `tsc` never deletes what it wrote: a test whose source was removed or renamed stays compiled in
// dist/test and would run. Only compiled tests whose test/**/*.test.ts is still there run.
const sources = path.resolve('test');
const leftovers = [];
(function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p);
    else if (!entry.name.endsWith('.test.js') || (only.length > 0 && !only.some((o) => p.includes(o)))) continue;
    else if (fs.existsSync(path.join(sources, path.relative(root, p)).replace(/\.js$/, '.ts'))) files.push(p);
    else leftovers.push(path.relative(process.cwd(), p));
  }
})(root);
if (leftovers.length > 0) {
  console.error(`not run, their sources are gone (left in dist/ by an earlier build): ${leftovers.join(', ')}`);
}
files.sort();
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
const timeout = timeoutMs > 0 ? [`--test-timeout=${timeoutMs}`] : [];
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...timeout, ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
