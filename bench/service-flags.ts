/**
 * The node flags the service runs with: those of `npm start` (package.json's `start` script,
 * `node <flags> dist/src/main.js`), its one owner. The bench's servers (tandem and the bare `ws`
 * floors alike), its wake-up floor and the soak run with them, so they measure the runtime
 * `npm start` gives.
 */
import fs from 'node:fs';

const PACKAGE_JSON = new URL('../../package.json', import.meta.url);
/** What `npm start` runs; the soak starts it by this path too. */
const SERVICE_SCRIPT = 'dist/src/main.js';

/** The `--` flags between `node` and the script in a start command; throws when it is not `node [--flags] dist/src/main.js`. */
export function nodeFlagsOf(start: string): string[] {
  const words = start.trim().split(/\s+/);
  if (words[0] !== 'node' || words[words.length - 1] !== SERVICE_SCRIPT) {
    throw new Error(`package.json's start script should be \`node [--flags] ${SERVICE_SCRIPT}\`, got: ${start}`);
  }
  const flags = words.slice(1, -1);
  const other = flags.find((w) => !w.startsWith('--') || w === '--');
  if (other !== undefined) throw new Error(`package.json's start script passes node "${other}", which is not a --flag: ${start}`);
  return flags;
}

let flags: readonly string[] | undefined;

/** `npm start`'s node flags, read from package.json once. */
export function serviceNodeFlags(): readonly string[] {
  if (flags === undefined) {
    const pkg = JSON.parse(fs.readFileSync(PACKAGE_JSON, 'utf8')) as { scripts?: { start?: string } };
    const start = pkg.scripts?.start;
    if (typeof start !== 'string') throw new Error('package.json has no start script');
    flags = nodeFlagsOf(start);
  }
  return flags;
}
