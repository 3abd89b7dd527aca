/**
 * Loaded speech decoders kept by the pool thread that made them, lent to the next session that
 * runs on that thread.
 *
 * Why: loading pocketsphinx's model is ~100 MB of small allocations and 0.3–1 s of CPU. Done
 * per session, four sessions starting together spent that on two cores at once, and every
 * session allocated and freed 100 MB (the RSS swing of START/STOP churn). A decoder is reset
 * for a new stream far more cheaply (pocketsphinx.ts: PocketsphinxDecoder.reset).
 *
 * Why per thread, in module state: a decoder is native memory behind koffi pointers that only
 * its own thread uses, and the memory sits in that thread's malloc arena. The shelf frees an
 * idle decoder after `idleMs` on the thread's own timer, and keeps at most `perThread`; the
 * loop pool keeps an idle thread longer than that (config.ts: loopIdleTimeoutMs), since a thread
 * that is terminated runs no JavaScript and would take its decoders' memory with it unfreed. A
 * thread terminated under a hung session loses the decoder it lent: nothing else holds it, so
 * nothing can free it twice.
 *
 * Each change is posted to the main thread (WorkerPool.decoders(), metric
 * `tandem_speech_decoders`).
 */
import { isMainThread, parentPort, threadId } from 'node:worker_threads';
import type { WorkerEvent } from '../../pool/messages.js';

/** What the shelf needs of a decoder. */
export interface ShelfDecoder {
  /** Frees its native memory; called once. */
  free(): void;
}

export interface ShelfLimits {
  /** Idle decoders kept on this thread; 0 frees each one when its session returns it. */
  perThread: number;
  /** How long an idle decoder is kept, in ms. */
  idleMs: number;
}

interface Idle<D> {
  key: string;
  decoder: D;
  /** When it is freed unless lent again (performance.now() ms). */
  expiresAt: number;
}

export class DecoderShelf<D extends ShelfDecoder> {
  /** Idle decoders, the most recently returned last. */
  readonly #idle: Idle<D>[] = [];
  #busy = 0;
  /** Loaded since the last change was told. */
  #loaded = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #onChange: (idle: number, busy: number, loaded: number) => void;

  constructor(onChange: (idle: number, busy: number, loaded: number) => void = postCount) {
    this.#onChange = onChange;
  }

  get idle(): number {
    return this.#idle.length;
  }

  get busy(): number {
    return this.#busy;
  }

  /**
   * An idle decoder made with the same `key` (the settings it was loaded with), the most
   * recently returned first; else a new one from `load`. The caller gives it back with
   * `giveBack` or `discard`, exactly once.
   */
  borrow(key: string, load: () => D): D {
    let at = this.#idle.length - 1;
    while (at >= 0 && this.#idle[at]!.key !== key) at--;
    let decoder: D;
    if (at >= 0) decoder = this.#idle.splice(at, 1)[0]!.decoder;
    else {
      decoder = load();
      this.#loaded++;
    }
    this.#busy++;
    this.#changed();
    return decoder;
  }

  /** Takes back a decoder that is ready for a new session; keeps it within `limits`, else frees it. */
  giveBack(key: string, decoder: D, limits: ShelfLimits): void {
    this.#busy--;
    this.#idle.push({ key, decoder, expiresAt: performance.now() + limits.idleMs });
    // Over the limit, the oldest go first: the newest is the warmest.
    while (this.#idle.length > limits.perThread) this.#idle.shift()!.decoder.free();
    this.#schedule();
    this.#changed();
  }

  /** Frees a borrowed decoder that cannot be lent again (its state is unknown after an error). */
  discard(decoder: D): void {
    this.#busy--;
    decoder.free();
    this.#changed();
  }

  /** Frees every idle decoder now. */
  clear(): void {
    for (const entry of this.#idle.splice(0)) entry.decoder.free();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#changed();
  }

  /** One timer, for the idle decoder that expires first. */
  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#idle.length === 0) return;
    const first = Math.min(...this.#idle.map((entry) => entry.expiresAt));
    // Unref'd: an idle decoder must not keep a thread (or a test's process) alive.
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, first - performance.now())).unref();
  }

  #expire(): void {
    const now = performance.now();
    let freed = false;
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      if (this.#idle[i]!.expiresAt <= now) {
        this.#idle.splice(i, 1)[0]!.decoder.free();
        freed = true;
      }
    }
    this.#schedule();
    if (freed) this.#changed();
  }

  #changed(): void {
    const loaded = this.#loaded;
    this.#loaded = 0;
    this.#onChange(this.#idle.length, this.#busy, loaded);
  }
}

/** Tells the main thread this thread's counts (nothing to tell outside a pool thread). */
function postCount(idle: number, busy: number, loaded: number): void {
  if (isMainThread || !parentPort) return;
  const event: WorkerEvent = { type: 'decoders', count: { threadId, idle, busy, loaded } };
  parentPort.postMessage(event);
}
