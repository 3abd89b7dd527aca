/**
 * Summarises a `.cpuprofile` (from `--cpu-prof`): the functions with the most self time, and
 * how the samples split between idle, GC, program and the rest.
 *
 *   node dist/bench/profile-summary.js /tmp/prof/crowd.cpuprofile [top=25] [fromS-toS]
 *
 * With a window (seconds from the profile's start, e.g. 12.5-13.5) only samples inside it count;
 * `timeline` as the window prints busy % per 250 ms, to find the phase to look at.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, windowArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: profile-summary <file.cpuprofile> [top]\n');
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
const [fromS, toS] = windowArg && windowArg !== 'timeline' ? windowArg.split('-').map(Number) : [0, Infinity];
const buckets = new Map<number, number>();
let atUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  const delta = profile.timeDeltas[i] ?? 0;
  atUs += delta;
  if (!idleIds.has(id)) buckets.set(Math.floor(atUs / 250_000), (buckets.get(Math.floor(atUs / 250_000)) ?? 0) + delta);
  if (atUs < fromS! * 1e6 || atUs > toS! * 1e6) continue;
  selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
}
if (windowArg === 'timeline') {
  for (const [b, us] of [...buckets].sort((x, y) => x[0] - y[0])) process.stdout.write(`${(b / 4).toFixed(2).padStart(7)} s  ${'#'.repeat(Math.round(us / 5000))} ${Math.round(us / 2500)}%\n`);
  process.exit(0);
}
const totalUs = Math.min(profile.endTime - profile.startTime, (toS! - fromS!) * 1e6);
const byFunction = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const where = url ? `${url.replace(/^file:\/\//, '').split('/node_modules/').pop()!.replace(process.cwd() + path.sep, '')}:${lineNumber + 1}` : '';
  const key = `${functionName || '(anonymous)'} ${where}`.trim();
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}
const sorted = [...byFunction].sort((a, b) => b[1] - a[1]);
const idleUs = byFunction.get('(idle)') ?? 0;
const busyUs = totalUs - idleUs;
process.stdout.write(`${path.basename(file)}: ${(totalUs / 1e6).toFixed(1)} s profiled, ${((100 * busyUs) / totalUs).toFixed(1)}% busy\n`);
process.stdout.write(`self ms   % busy  function\n`);
for (const [key, us] of sorted.slice(0, Number(topArg ?? 25))) {
  if (key === '(idle)') continue;
  process.stdout.write(`${(us / 1000).toFixed(0).padStart(7)}  ${((100 * us) / busyUs).toFixed(1).padStart(6)}%  ${key}\n`);
}
