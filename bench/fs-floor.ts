/**
 * The file-system floors of the spool on given folders (bench/fs-cost.ts says what is timed):
 * a file per chunk, a framed record appended to an open segment, one write per batch, and a
 * stopped session's spool folder removed.
 * `npm run bench` measures the same on its --data-dir (scenario `fs-floor`); this runs it alone,
 * on any folders, e.g. to compare disks:
 *
 *   node dist/bench/fs-floor.js [--chunks 20000] [--records 65536] [--sessions 20] <dir> [<dir> ...]
 */
import { parseArgs } from 'node:util';
import { DEFAULT_FS_FLOOR, measureFsFloor } from './fs-cost.js';
import { renderFsFloor } from './table.js';

const { values, positionals } = parseArgs({
  options: {
    chunks: { type: 'string', default: String(DEFAULT_FS_FLOOR.chunks) },
    records: { type: 'string', default: String(DEFAULT_FS_FLOOR.records) },
    sessions: { type: 'string', default: String(DEFAULT_FS_FLOOR.sessions) },
  },
  allowPositionals: true,
});
const usage = (problem: string): never => {
  process.stderr.write(`fs-floor: ${problem}\nusage: node dist/bench/fs-floor.js [--chunks N] [--records N] [--sessions N] <dir> [<dir> ...]\n`);
  process.exit(2);
};
const count = (name: string, v: string) => {
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 ? n : usage(`--${name} takes a whole number ≥ 1, got ${JSON.stringify(v)}`);
};
if (positionals.length === 0) usage('name at least one folder, e.g. data/fs-floor /dev/shm/fs-floor');
const opts = {
  ...DEFAULT_FS_FLOOR,
  chunks: count('chunks', values.chunks),
  records: count('records', values.records),
  sessions: count('sessions', values.sessions),
};
for (const root of positionals) process.stdout.write(`${renderFsFloor(measureFsFloor(root, opts))}\n`);
