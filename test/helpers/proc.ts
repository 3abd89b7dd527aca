/** What this test process has open and running, read from /proc (Linux). */
import fs from 'node:fs';
import path from 'node:path';

/** Descriptors of this process open on files inside `dir` (a removed file's name ends in " (deleted)"). */
export function openFilesIn(dir: string): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir + path.sep)) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** This process's child processes whose command is `comm` (a pool thread's spawnSync child is one). */
export function children(comm: string): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      // pid (comm) state ppid …
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      if (m && m[1] === comm && Number(m[2]) === process.pid) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** How long ago process `pid` started, ms (its start time in /proc is in clock ticks since boot, 100 a second). */
export function ageMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const startedS = Number(fields[19]) / 100;
  const uptimeS = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return (uptimeS - startedS) * 1000;
}
