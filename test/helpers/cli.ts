import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';

/** The compiled CLI (dist/src/cli/tandem.js). */
export const CLI = fileURLToPath(new URL('../../src/cli/tandem.js', import.meta.url));

/** How a child process ended and what it printed. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's output until it closes. */
export function collect(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
