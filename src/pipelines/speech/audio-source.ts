/**
 * The audio a file-fed speech producer reads: recognizer PCM (s16le, mono, 16 kHz), either
 * straight from a WAV file's data chunk or from a `sox` child converting any other file.
 *
 * Who kills sox: the producer that started it, in its `finally` (stop, failure, end of file);
 * and, should its pool thread be terminated mid-task (the `finally` never runs then), the
 * kernel: sox is started through `setpriv --pdeathsig KILL`, and a parent-death signal fires
 * when the *thread* that forked the child exits, which a terminated worker thread does.
 * Converting in `prepare` on the main thread instead would hold START until a whole file was
 * converted and leave a temporary file no one owns if the session never ran.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { SAMPLE_RATE_HZ } from './recognizer.js';

/** How long close() waits for a killed sox to be reaped, in ms. */
const REAP_TIMEOUT_MS = 2000;

export type AudioInput =
  /** Samples as they lie in the file, from `offset`, `bytes` long. */
  | { kind: 'pcm'; file: string; offset: number; bytes: number }
  /** Anything sox reads; converted on the fly. */
  | { kind: 'sox'; file: string };

export interface AudioSource {
  /** Up to `maxBytes` of PCM (a whole number of samples), or null at the end of the audio. */
  read(maxBytes: number): Promise<Buffer | null>;
  /**
   * Releases the file, or kills the converter and waits for it to be reaped (at most
   * REAP_TIMEOUT_MS): a child not waited for stays a zombie once this thread is gone. Safe to
   * call twice.
   */
  close(): Promise<void>;
}

export function openAudio(input: AudioInput): AudioSource {
  return input.kind === 'pcm' ? new PcmFile(input.file, input.offset, input.bytes) : new SoxConversion(input.file);
}

/** sox's arguments: read `file`, write raw recognizer PCM to stdout. */
export function soxArguments(file: string): string[] {
  return ['-V1', file, '-t', 'raw', '-r', String(SAMPLE_RATE_HZ), '-c', '1', '-b', '16', '-e', 'signed-integer', '-L', '-'];
}

class PcmFile implements AudioSource {
  #fd: number | null;
  #at: number;
  readonly #end: number;

  constructor(file: string, offset: number, bytes: number) {
    this.#fd = fs.openSync(file, 'r');
    this.#at = offset;
    // A stray odd byte at the end is not a sample.
    this.#end = offset + bytes - (bytes % 2);
  }

  async read(maxBytes: number): Promise<Buffer | null> {
    if (this.#fd === null) return null;
    const want = Math.min(maxBytes - (maxBytes % 2), this.#end - this.#at);
    if (want <= 0) return null;
    const buf = Buffer.alloc(want);
    const n = fs.readSync(this.#fd, buf, 0, want, this.#at);
    if (n <= 0) return null;
    this.#at += n;
    return buf.subarray(0, n - (n % 2));
  }

  async close(): Promise<void> {
    if (this.#fd !== null) fs.closeSync(this.#fd);
    this.#fd = null;
  }
}

class SoxConversion implements AudioSource {
  readonly #child: ChildProcessByStdio<null, Readable, Readable>;
  readonly #file: string;
  readonly #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #pending: Buffer = Buffer.alloc(0);
  /** stdout has ended (or was destroyed): what #pending holds is all there is. */
  #ended = false;
  /** Resolves the read() waiting for stdout to become readable or end. */
  #wake: (() => void) | null = null;
  #stderr = '';

  constructor(file: string) {
    this.#file = file;
    this.#child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'sox', ...soxArguments(file)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#exit = new Promise((resolve) => {
      this.#child.once('error', (err) => {
        this.#stderr += err.message;
        resolve({ code: null, signal: null });
      });
      this.#child.once('close', (code, signal) => resolve({ code, signal }));
    });
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (s: string) => {
      if (this.#stderr.length < 2000) this.#stderr += s;
    });
    // Listening from the spawn on, not from the first read: when a child exits, Node resumes
    // (and so discards) any of its stdio streams nobody listens to (child_process flushStdio),
    // which lost a short file's whole output when the first read came after sox had exited.
    // A 'readable' listener holds the data in the stream's buffer until read() takes it.
    const stdout = this.#child.stdout;
    stdout.on('readable', () => this.#wakeReader());
    const ended = () => {
      this.#ended = true;
      this.#wakeReader();
    };
    stdout.once('end', ended);
    stdout.once('close', ended);
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** The converter's pid while it runs (tests look for it in /proc). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  async read(maxBytes: number): Promise<Buffer | null> {
    const want = maxBytes - (maxBytes % 2);
    while (this.#pending.length < want && !this.#ended) {
      const got = this.#child.stdout.read() as Buffer | null;
      if (got) this.#pending = this.#pending.length === 0 ? got : Buffer.concat([this.#pending, got]);
      else await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    const take = Math.min(want, this.#pending.length - (this.#pending.length % 2));
    if (take === 0) {
      const { code, signal } = await this.#exit;
      if (code !== 0) {
        // sox names the file in its own words; the client sees only its last part (src/ws/redact.ts).
        const why = this.#stderr.trim().replaceAll(this.#file, path.basename(this.#file)) || (signal ? `killed by ${signal}` : `exit code ${code}`);
        throw new Error(`sox could not convert '${this.#file}': ${why}`);
      }
      return null;
    }
    const out = this.#pending.subarray(0, take);
    this.#pending = this.#pending.subarray(take);
    return out;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    this.#child.stdout.destroy();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#exit, new Promise((resolve) => (timer = setTimeout(resolve, REAP_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }
}
