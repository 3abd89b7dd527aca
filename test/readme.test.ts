import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const read = (name: string) => fs.readFileSync(fileURLToPath(new URL(`../../${name}`, import.meta.url)), 'utf8');

describe('README', () => {
  it('lists every variable config.ts reads in its Configuration table, and no other', () => {
    const variables = [...read('src/config.ts').matchAll(/^ {2}([A-Z][A-Z0-9_]+): /gm)].map((m) => m[1]!);
    assert.ok(variables.length > 30, `found ${variables.length} variables in config.ts`);
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
    const rows = new Set([...section.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
    assert.deepEqual(variables.filter((v) => !rows.has(v)), [], 'variables missing from the table');
    assert.deepEqual([...rows].filter((v) => !variables.includes(v)), [], 'rows for variables config.ts no longer reads');
  });

  it('points at no folder outside the repository', () => {
    assert.doesNotMatch(read('README.md'), /\(?`?\.\.\/[\w-]+/);
  });
});
