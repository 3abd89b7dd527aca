/**
 * The recognizer alone, as the transcribe scenario's floor: `pocketsphinx_continuous` (the
 * Debian package's own front end, same library, same model, same defaults) decoding the same
 * file in one process, no service around it. A figure the floor misses too is the engine's
 * cost on this machine at this moment, not the service's.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PocketsphinxFloor {
  audioSeconds: number;
  wallSeconds: number;
  /** User + system CPU of the decoder process, s. */
  cpuSeconds: number;
}

/** Decodes `wav` (16 kHz mono 16-bit) with pocketsphinx_continuous; bash's `times` gives its CPU. */
export async function measurePocketsphinxFloor(wav: string, audioSeconds: number): Promise<PocketsphinxFloor> {
  const began = performance.now();
  const { stdout } = await run('bash', ['-c', 'pocketsphinx_continuous -infile "$1" -logfn /dev/null >/dev/null 2>&1; times', 'floor', wav], {
    timeout: Math.round(60_000 + audioSeconds * 3000),
  });
  const wallSeconds = (performance.now() - began) / 1000;
  // `times`: the shell's user and system time, then its children's: "0m3.412s 0m0.541s".
  const children = stdout.trim().split('\n')[1] ?? '';
  const cpuSeconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
  return { audioSeconds, wallSeconds, cpuSeconds };
}
