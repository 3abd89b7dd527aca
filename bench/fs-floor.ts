/**
 * The file-system floor of one chunk: the exact calls a step producer and consumer make for it
 * (src/pool/worker.ts), on one thread, with nothing else around them:
 *
 *   open(<seq>.tmp, 'w') + write + close, rename to <seq>.chunk   (the producer's ctx.write)
 *   readFileSync(<seq>.chunk, 'utf8')                              (the consumer's chunk.text())
 *   unlink(<seq>.chunk)                                            (consumed)
 *
 *   node dist/bench/fs-floor.js [--chunks 20000] [--sessions 20] <dir> [<dir> ...]
 *
 * Prints, per folder, CPU µs (user + system, this process) and wall µs per chunk and per call,
 * and the most chunks a second one core could take through them. Each folder gets `sessions`
 * spool-like subfolders used round-robin, as a crowd of sessions would.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { chunks: { type: 'string', default: '20000' }, sessions: { type: 'string', default: '20' } },
  allowPositionals: true,
});
const chunks = Number(values.chunks);
const sessions = Number(values.sessions);
if (positionals.length === 0) throw new Error('name at least one folder, e.g. data/fs-floor /dev/shm/fs-floor');

const name = (seq: number, ext: string) => `${String(seq).padStart(12, '0')}.${ext}`;
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

for (const root of positionals) {
  const base = fs.mkdtempSync(path.join(root, 'fs-floor-'));
  try {
    const dirs = Array.from({ length: sessions }, (_, i) => path.join(base, `s${i}`));
    for (const d of dirs) fs.mkdirSync(d);
    const text = `Data from producer #1 at ${(Date.now() / 1000).toFixed(3)}`;
    // Per call: CPU and wall µs summed over all chunks.
    const calls = ['open+write+close', 'rename', 'read', 'unlink'] as const;
    const cpu = Object.fromEntries(calls.map((c) => [c, 0])) as Record<(typeof calls)[number], number>;
    const wall = { ...cpu };
    const time = (call: (typeof calls)[number], fn: () => void) => {
      const c0 = cpuUs();
      const w0 = performance.now();
      fn();
      wall[call] += (performance.now() - w0) * 1000;
      cpu[call] += cpuUs() - c0;
    };
    const run = (count: number, record: boolean) => {
      for (let seq = 1; seq <= count; seq++) {
        const dir = dirs[seq % sessions]!;
        const tmp = path.join(dir, name(seq, 'tmp'));
        const file = path.join(dir, name(seq, 'chunk'));
        const step = record ? time : (_: string, fn: () => void) => fn();
        step('open+write+close', () => {
          const fd = fs.openSync(tmp, 'w');
          fs.writeSync(fd, text);
          fs.closeSync(fd);
        });
        step('rename', () => fs.renameSync(tmp, file));
        step('read', () => fs.readFileSync(file, 'utf8'));
        step('unlink', () => fs.unlinkSync(file));
      }
    };
    run(Math.min(1000, chunks), false); // warm-up, not counted
    // The total without the per-call clocks (getrusage is a syscall too), then the split.
    const c0 = cpuUs();
    const w0 = performance.now();
    run(chunks, false);
    const totalCpu = (cpuUs() - c0) / chunks;
    const totalWall = ((performance.now() - w0) * 1000) / chunks;
    run(chunks, true);
    const fsType = fsTypeOf(root);
    process.stdout.write(
      `${root} (${fsType}): ${chunks} chunks over ${sessions} folders\n` +
        `  per chunk: ${totalCpu.toFixed(1)} µs CPU, ${totalWall.toFixed(1)} µs wall → at most ${Math.round(1e6 / totalCpu).toLocaleString('en-US')} chunks/s per core\n` +
        `  split (timed call by call, so each figure carries ~1 µs of clock reading):\n` +
        calls.map((c) => `    ${c.padEnd(18)} ${(cpu[c] / chunks).toFixed(1).padStart(7)} µs CPU ${(wall[c] / chunks).toFixed(1).padStart(7)} µs wall\n`).join(''),
    );
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/** The file system type of the mount holding `dir`, from /proc/mounts (longest matching mount point). */
function fsTypeOf(dir: string): string {
  const abs = fs.realpathSync(dir);
  let best = { point: '', type: '?' };
  try {
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, point, type] = line.split(' ');
      if (!point || !type) continue;
      const inside = abs === point || abs.startsWith(point.endsWith('/') ? point : `${point}/`);
      if (inside && point.length > best.point.length) best = { point, type };
    }
  } catch {
    // Not Linux: the type stays unknown.
  }
  return best.type;
}
