/** What Linux says about a process: resident memory, OS threads, CPU time, open-file limit. */
import fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux Node supports). */
const TICKS_PER_SECOND = 100;

export interface ProcSample {
  rssBytes: number;
  threads: number;
  /** User + system CPU time so far, in ms. */
  cpuMs: number;
}

export function sampleProcess(pid: number): ProcSample | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that closes the command name: utime is the 14th field overall.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return {
      rssBytes: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) * 1024,
      threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0),
      cpuMs: (ticks * 1000) / TICKS_PER_SECOND,
    };
  } catch {
    return null;
  }
}

/** Soft limit on open files of this process (children inherit it). */
export function openFilesLimit(): number {
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+(\S+)/m.exec(limits);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : Number.POSITIVE_INFINITY;
}

/** The children of `pid` (zombies included: a child not reaped is left behind too), from /proc. */
export function childrenOf(pid: number): { pid: number; name: string; state: string }[] {
  const out: { pid: number; name: string; state: string }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses.
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      if (Number(ppid) === pid) out.push({ pid: Number(entry), name: stat.slice(stat.indexOf('(') + 1, close), state: state! });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Each thread's CPU between two threadCpuMs() samples, in µs per `n` (results, steps), busiest
 * first; threads that used none are left out. Clock ticks are 10 ms: coarse over a short window.
 */
export function cpuUsByThread(before: Map<number, number>, after: Map<number, number>, n: number): { tid: number; us: number }[] {
  return [...after]
    .map(([tid, ms]) => ({ tid, us: ((ms - (before.get(tid) ?? 0)) * 1000) / n }))
    .filter((t) => t.us > 0)
    .sort((a, b) => b.us - a.us);
}

/** CPU time so far of each thread of `pid` (user + system, ms), by thread id, from /proc/PID/task. */
export function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}
